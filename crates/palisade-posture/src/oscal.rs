//! OSCAL import: a catalog (NIST SP 800-53, any OSCAL 1.x catalog) or a profile (a baseline
//! selecting controls of catalogs) becomes a control library.
//!
//! Only what a control library needs is read: group titles (the control category), control ids,
//! labels, titles, statement prose, the nesting of enhancements (the control parent) and the
//! `status: withdrawn` property (withdrawn controls are left out). A profile's controls come from
//! its `imports[].include-controls[].with-ids` (or every control of an imported catalog with
//! `include-all`); their titles come from the catalogs the caller passes in (the CLI loads the
//! files the profile's `href`s point to), and a control not found there keeps its id alone.

use std::collections::{BTreeMap, HashMap};

use serde_json::Value;

use crate::model::{ContentType, Control, ControlLibrary};

/// A document that is not an OSCAL catalog or profile.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{pointer}: {message}")]
pub struct OscalError {
    /// JSON pointer of the faulty value.
    pub pointer: String,
    /// What is wrong.
    pub message: String,
}

/// Options of an import.
#[derive(Debug, Clone, Default)]
pub struct ImportOptions {
    /// Library id; defaults to a slug of the document title.
    pub library_id: Option<String>,
    /// `predefined` for built-in content, else `custom`.
    pub library_type: ContentType,
    /// Whether each control's statement prose is appended to its description (titles alone
    /// keep a library small; the prose helps readers of reports).
    pub include_statements: bool,
}

/// Imports a catalog or a profile (`{"catalog": …}` or `{"profile": …}`). For a profile,
/// `catalogs` supply the controls' titles.
pub fn import(
    document: &Value,
    catalogs: &[Value],
    options: &ImportOptions,
) -> Result<ControlLibrary, OscalError> {
    if let Some(catalog) = document.get("catalog") {
        import_catalog(catalog, options)
    } else if let Some(profile) = document.get("profile") {
        import_profile(profile, catalogs, options)
    } else {
        Err(OscalError {
            pointer: String::new(),
            message: "not an OSCAL catalog or profile: expected a top-level `catalog` or \
                      `profile` object"
                .into(),
        })
    }
}

fn import_catalog(catalog: &Value, options: &ImportOptions) -> Result<ControlLibrary, OscalError> {
    let metadata = metadata(catalog, "/catalog")?;
    let mut controls = Vec::new();
    let mut collector = Collector {
        controls: &mut controls,
        include_statements: options.include_statements,
    };
    if let Some(groups) = catalog.get("groups").and_then(Value::as_array) {
        for (index, group) in groups.iter().enumerate() {
            collector.group(group, &format!("/catalog/groups/{index}"), None)?;
        }
    }
    if let Some(top) = catalog.get("controls").and_then(Value::as_array) {
        for (index, control) in top.iter().enumerate() {
            collector.control(control, &format!("/catalog/controls/{index}"), None, None)?;
        }
    }
    Ok(library(metadata, controls, options))
}

fn import_profile(
    profile: &Value,
    catalogs: &[Value],
    options: &ImportOptions,
) -> Result<ControlLibrary, OscalError> {
    let metadata = metadata(profile, "/profile")?;
    let mut known: HashMap<String, Control> = HashMap::new();
    for catalog in catalogs {
        let imported = import(catalog, &[], options)?;
        for control in imported.controls {
            known.entry(control.control_id.clone()).or_insert(control);
        }
    }
    let imports = profile
        .get("imports")
        .and_then(Value::as_array)
        .ok_or_else(|| OscalError {
            pointer: "/profile/imports".into(),
            message: "a profile needs an `imports` list".into(),
        })?;
    let mut selected: Vec<String> = Vec::new();
    for (index, entry) in imports.iter().enumerate() {
        let pointer = format!("/profile/imports/{index}");
        if entry.get("include-all").is_some() {
            let mut every: Vec<&Control> = known.values().collect();
            every.sort_by(|left, right| {
                sort_key(&left.control_id).cmp(&sort_key(&right.control_id))
            });
            selected.extend(every.into_iter().map(|control| control.control_id.clone()));
        }
        for (include_index, include) in entry
            .get("include-controls")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .enumerate()
        {
            let ids = include.get("with-ids").and_then(Value::as_array);
            for (id_index, id) in ids.into_iter().flatten().enumerate() {
                match id.as_str() {
                    Some(id) => selected.push(id.to_string()),
                    None => {
                        return Err(OscalError {
                            pointer: format!(
                                "{pointer}/include-controls/{include_index}/with-ids/{id_index}"
                            ),
                            message: "a control id must be a string".into(),
                        });
                    }
                }
            }
        }
    }
    let mut seen = std::collections::HashSet::new();
    let controls = selected
        .into_iter()
        .filter(|id| seen.insert(id.clone()))
        .map(|id| {
            known.get(&id).cloned().unwrap_or_else(|| Control {
                control_name: label_from_id(&id),
                control_parent: id.split_once('.').map(|(parent, _)| label_from_id(parent)),
                control_id: id,
                control_description: String::new(),
                control_category: None,
                control_severity: None,
                control_tags: Vec::new(),
                control_requirement: Some(true),
                status: None,
                control_docs: None,
                control_specifications: Vec::new(),
            })
        })
        .collect();
    Ok(library(metadata, controls, options))
}

struct Metadata {
    title: String,
    version: String,
    remarks: String,
}

fn metadata(document: &Value, pointer: &str) -> Result<Metadata, OscalError> {
    let metadata = document.get("metadata").ok_or_else(|| OscalError {
        pointer: format!("{pointer}/metadata"),
        message: "missing `metadata`".into(),
    })?;
    let title = metadata
        .get("title")
        .and_then(Value::as_str)
        .ok_or_else(|| OscalError {
            pointer: format!("{pointer}/metadata/title"),
            message: "missing `title`".into(),
        })?;
    Ok(Metadata {
        title: title.to_string(),
        version: metadata
            .get("version")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string(),
        remarks: metadata
            .get("remarks")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string(),
    })
}

fn library(metadata: Metadata, controls: Vec<Control>, options: &ImportOptions) -> ControlLibrary {
    let mut library = ControlLibrary {
        id: options
            .library_id
            .clone()
            .unwrap_or_else(|| slug(&metadata.title)),
        account_id: None,
        control_library_name: metadata.title,
        control_library_description: metadata.remarks,
        control_library_type: options.library_type,
        control_library_version: metadata.version,
        version_group_label: None,
        latest: true,
        hierarchy_enabled: false,
        controls_count: 0,
        control_parents_count: 0,
        controls,
    };
    library.refresh_counts();
    library
}

struct Collector<'c> {
    controls: &'c mut Vec<Control>,
    include_statements: bool,
}

impl Collector<'_> {
    fn group(
        &mut self,
        group: &Value,
        pointer: &str,
        category: Option<&str>,
    ) -> Result<(), OscalError> {
        // Nested groups keep the outermost title: it is the family users filter by.
        let title = group.get("title").and_then(Value::as_str);
        let category = category.or(title);
        if let Some(groups) = group.get("groups").and_then(Value::as_array) {
            for (index, inner) in groups.iter().enumerate() {
                self.group(inner, &format!("{pointer}/groups/{index}"), category)?;
            }
        }
        if let Some(controls) = group.get("controls").and_then(Value::as_array) {
            for (index, control) in controls.iter().enumerate() {
                self.control(
                    control,
                    &format!("{pointer}/controls/{index}"),
                    category,
                    None,
                )?;
            }
        }
        Ok(())
    }

    fn control(
        &mut self,
        control: &Value,
        pointer: &str,
        category: Option<&str>,
        parent: Option<&str>,
    ) -> Result<(), OscalError> {
        let id = control
            .get("id")
            .and_then(Value::as_str)
            .ok_or_else(|| OscalError {
                pointer: format!("{pointer}/id"),
                message: "a control needs a string `id`".into(),
            })?;
        let props = control.get("props").and_then(Value::as_array);
        let prop = |name: &str| {
            props.into_iter().flatten().find(|prop| {
                prop.get("name").and_then(Value::as_str) == Some(name)
                    && prop.get("class").is_none()
            })
        };
        let withdrawn = prop("status")
            .and_then(|prop| prop.get("value"))
            .and_then(Value::as_str)
            == Some("withdrawn");
        let label = prop("label")
            .and_then(|prop| prop.get("value"))
            .and_then(Value::as_str)
            .map(str::to_string)
            .unwrap_or_else(|| label_from_id(id));
        if !withdrawn {
            let title = control
                .get("title")
                .and_then(Value::as_str)
                .unwrap_or_default();
            let mut description = title.to_string();
            if self.include_statements {
                let mut prose = Vec::new();
                collect_statement(control, &mut prose);
                if !prose.is_empty() {
                    description = format!("{title}: {}", prose.join(" "));
                }
            }
            self.controls.push(Control {
                control_id: id.to_string(),
                control_name: label.clone(),
                control_description: description,
                control_category: category.map(str::to_string),
                control_parent: parent.map(str::to_string),
                control_severity: None,
                control_tags: Vec::new(),
                control_requirement: Some(true),
                status: None,
                control_docs: None,
                control_specifications: Vec::new(),
            });
        }
        if let Some(enhancements) = control.get("controls").and_then(Value::as_array) {
            for (index, enhancement) in enhancements.iter().enumerate() {
                self.control(
                    enhancement,
                    &format!("{pointer}/controls/{index}"),
                    category,
                    Some(&label),
                )?;
            }
        }
        Ok(())
    }
}

fn collect_statement(control: &Value, prose: &mut Vec<String>) {
    fn walk(part: &Value, prose: &mut Vec<String>) {
        if let Some(text) = part.get("prose").and_then(Value::as_str) {
            let label = part
                .get("props")
                .and_then(Value::as_array)
                .and_then(|props| {
                    props
                        .iter()
                        .find(|prop| prop.get("name").and_then(Value::as_str) == Some("label"))
                })
                .and_then(|prop| prop.get("value"))
                .and_then(Value::as_str);
            prose.push(match label {
                Some(label) => format!("{label} {text}"),
                None => text.to_string(),
            });
        }
        for inner in part
            .get("parts")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            walk(inner, prose);
        }
    }
    for part in control
        .get("parts")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        if part.get("name").and_then(Value::as_str) == Some("statement") {
            walk(part, prose);
        }
    }
}

/// `ac-2.1` → `AC-2(1)`, as NIST labels controls.
pub fn label_from_id(id: &str) -> String {
    match id.split_once('.') {
        Some((base, enhancement)) => format!("{}({enhancement})", base.to_uppercase()),
        None => id.to_uppercase(),
    }
}

/// Orders `ac-2`, `ac-2.1`, `ac-10` numerically within a family.
fn sort_key(id: &str) -> (String, Vec<u64>) {
    let (family, numbers) = id.split_once('-').unwrap_or((id, ""));
    (
        family.to_string(),
        numbers
            .split('.')
            .map(|number| number.parse().unwrap_or(u64::MAX))
            .collect(),
    )
}

fn slug(title: &str) -> String {
    let mut slug = String::new();
    for character in title.chars() {
        if character.is_ascii_alphanumeric() {
            slug.push(character.to_ascii_lowercase());
        } else if !slug.ends_with('-') && !slug.is_empty() {
            slug.push('-');
        }
    }
    slug.trim_end_matches('-').to_string()
}

/// Control ids per family, for summaries (`palisade content list`).
pub fn families(library: &ControlLibrary) -> BTreeMap<String, usize> {
    let mut families = BTreeMap::new();
    for control in &library.controls {
        let family = control
            .control_category
            .clone()
            .unwrap_or_else(|| "(none)".into());
        *families.entry(family).or_insert(0) += 1;
    }
    families
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn catalog() -> Value {
        json!({"catalog": {"uuid": "u", "metadata": {"title": "Tiny Catalog", "version": "2.0"},
            "groups": [{"id": "ac", "title": "Access Control", "controls": [
                {"id": "ac-2", "title": "Account Management",
                 "props": [{"name": "label", "value": "AC-02", "class": "zero-padded"}, {"name": "label", "value": "AC-2"}],
                 "parts": [{"name": "statement", "parts": [{"name": "item", "props": [{"name": "label", "value": "a."}], "prose": "Define accounts;"}]}],
                 "controls": [
                    {"id": "ac-2.1", "title": "Automated Account Management", "props": [{"name": "label", "value": "AC-2(1)"}]},
                    {"id": "ac-2.10", "title": "Withdrawn", "props": [{"name": "status", "value": "withdrawn"}]}
                 ]}
            ]}],
            "controls": [{"id": "x-1", "title": "Loose control"}]}})
    }

    #[test]
    fn catalog_controls_enhancements_and_withdrawn() {
        let library = import(
            &catalog(),
            &[],
            &ImportOptions {
                include_statements: true,
                ..ImportOptions::default()
            },
        )
        .expect("imports");
        assert_eq!(library.id, "tiny-catalog");
        assert_eq!(library.control_library_version, "2.0");
        let names: Vec<&str> = library
            .controls
            .iter()
            .map(|control| control.control_name.as_str())
            .collect();
        assert_eq!(names, ["AC-2", "AC-2(1)", "X-1"]);
        assert_eq!(library.controls[1].control_parent.as_deref(), Some("AC-2"));
        assert_eq!(
            library.controls[0].control_category.as_deref(),
            Some("Access Control")
        );
        assert_eq!(
            library.controls[0].control_description,
            "Account Management: a. Define accounts;"
        );
        assert_eq!(library.controls_count, 3);
        assert!(library.hierarchy_enabled);
    }

    #[test]
    fn profile_takes_selected_ids_with_catalog_titles() {
        let profile = json!({"profile": {"uuid": "p", "metadata": {"title": "Low baseline"},
            "imports": [{"href": "#cat", "include-controls": [{"with-ids": ["ac-2.1", "ac-2", "zz-9.2", "ac-2"]}]}]}});
        let library = import(&profile, &[catalog()], &ImportOptions::default()).expect("imports");
        let got: Vec<(&str, &str)> = library
            .controls
            .iter()
            .map(|control| {
                (
                    control.control_name.as_str(),
                    control.control_description.as_str(),
                )
            })
            .collect();
        assert_eq!(
            got,
            [
                ("AC-2(1)", "Automated Account Management"),
                ("AC-2", "Account Management"),
                ("ZZ-9(2)", "")
            ]
        );
        assert_eq!(library.controls[2].control_parent.as_deref(), Some("ZZ-9"));
    }

    #[test]
    fn non_oscal_documents_are_rejected_with_a_pointer() {
        let error =
            import(&json!({"foo": 1}), &[], &ImportOptions::default()).expect_err("not OSCAL");
        assert!(error.message.contains("catalog"), "{error}");
        let error = import(
            &json!({"catalog": {"metadata": {}}}),
            &[],
            &ImportOptions::default(),
        )
        .expect_err("no title");
        assert_eq!(error.pointer, "/catalog/metadata/title");
        let error = import(
            &json!({"catalog": {"metadata": {"title": "t"}, "controls": [{"title": "no id"}]}}),
            &[],
            &ImportOptions::default(),
        )
        .expect_err("no id");
        assert_eq!(error.pointer, "/catalog/controls/0/id");
    }
}
