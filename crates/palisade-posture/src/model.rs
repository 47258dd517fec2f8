//! The posture domain: control libraries → controls → specifications → assessments (rules),
//! profiles, scopes, attachments and attestations.
//!
//! Field names and nesting are those of the SCC v3 API (`ControlLibrary`, `Control`,
//! `ControlSpecification`, `Assessment`, `Parameter`, `Profile`, `ProfileControls`,
//! `DefaultParameters`, `Scope`, `ProfileAttachment` in IBM's v3 SDK), so the server can read
//! request bodies into these types and return them as they are. Fields the SDK marks required
//! are always serialised (lists default to empty); optional ones are skipped when unset.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// `predefined` (shipped with Palisade) or `custom` (created by a user).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ContentType {
    /// Shipped with Palisade; read-only through the API.
    Predefined,
    /// Created by a user.
    #[default]
    Custom,
}

/// A control library: a catalogue of controls (NIST SP 800-53, a CIS benchmark, a custom one).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ControlLibrary {
    /// Identifier, stable across versions of built-in libraries (`nist-800-53-r5`).
    #[serde(default)]
    pub id: String,
    /// Owning account; unset for built-in libraries.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account_id: Option<String>,
    /// Display name.
    pub control_library_name: String,
    /// Free text.
    #[serde(default)]
    pub control_library_description: String,
    /// `predefined` or `custom`.
    #[serde(default)]
    pub control_library_type: ContentType,
    /// Version of the library content (`5.1.1`).
    #[serde(default)]
    pub control_library_version: String,
    /// Groups the versions of one library.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version_group_label: Option<String>,
    /// Whether this is the newest version of its group.
    #[serde(default = "default_true")]
    pub latest: bool,
    /// Whether controls have parents (`control_parent`).
    #[serde(default)]
    pub hierarchy_enabled: bool,
    /// Number of controls; recomputed by [`ControlLibrary::refresh_counts`].
    #[serde(default)]
    pub controls_count: usize,
    /// Number of distinct parents; recomputed by [`ControlLibrary::refresh_counts`].
    #[serde(default)]
    pub control_parents_count: usize,
    /// The controls.
    #[serde(default)]
    pub controls: Vec<Control>,
}

fn default_true() -> bool {
    true
}

impl ControlLibrary {
    /// Recomputes the derived counts (controls, parents, assessments and parameters) so a
    /// library assembled in code serialises consistently.
    pub fn refresh_counts(&mut self) {
        self.controls_count = self.controls.len();
        let mut parents: Vec<&str> = self
            .controls
            .iter()
            .filter_map(|control| control.control_parent.as_deref())
            .filter(|parent| !parent.is_empty())
            .collect();
        parents.sort_unstable();
        parents.dedup();
        self.control_parents_count = parents.len();
        self.hierarchy_enabled = self.control_parents_count > 0;
        for control in &mut self.controls {
            for specification in &mut control.control_specifications {
                specification.assessments_count = specification.assessments.len();
                for assessment in &mut specification.assessments {
                    assessment.parameter_count = assessment.parameters.len();
                }
            }
        }
    }

    /// Finds a control by `control_id`, or else by `control_name` (users write `AC-2` as
    /// often as the id).
    pub fn control(&self, id_or_name: &str) -> Option<&Control> {
        self.controls
            .iter()
            .find(|control| control.control_id == id_or_name)
            .or_else(|| {
                self.controls
                    .iter()
                    .find(|control| control.control_name.eq_ignore_ascii_case(id_or_name))
            })
    }
}

/// One control of a library.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Control {
    /// Identifier within the library (`ac-2`).
    pub control_id: String,
    /// Short name shown to users (`AC-2`).
    #[serde(default)]
    pub control_name: String,
    /// What the control requires (the title, for imported catalogs).
    #[serde(default)]
    pub control_description: String,
    /// Family or section (`Access Control`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub control_category: Option<String>,
    /// The enclosing control, for enhancements (`AC-2` for `AC-2(1)`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub control_parent: Option<String>,
    /// `low`, `medium`, `high`, `critical` when the library rates controls.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub control_severity: Option<String>,
    /// Tags (baselines, benchmark profile levels).
    #[serde(default)]
    pub control_tags: Vec<String>,
    /// Whether the control is required (SCC `control_requirement`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub control_requirement: Option<bool>,
    /// `enabled` or `disabled`: whether scans evaluate the control.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    /// Where the control is documented.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub control_docs: Option<ControlDoc>,
    /// How the control is checked.
    #[serde(default)]
    pub control_specifications: Vec<ControlSpecification>,
}

impl Control {
    /// Whether scans evaluate the control (`status` unset or anything but `disabled`).
    pub fn is_enabled(&self) -> bool {
        self.status.as_deref() != Some("disabled")
    }
}

/// A reference to a control's documentation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ControlDoc {
    /// Document identifier.
    #[serde(default)]
    pub control_docs_id: String,
    /// Document type.
    #[serde(default)]
    pub control_docs_type: String,
}

/// A specification: how a control is implemented for one component (service).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ControlSpecification {
    /// Identifier, unique within the control.
    #[serde(default, alias = "control_specification_id")]
    pub id: String,
    /// What the specification checks.
    #[serde(default, alias = "control_specification_description")]
    pub description: String,
    /// `user` or `provider`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub responsibility: Option<String>,
    /// The service the assessments target (`s3`).
    #[serde(default)]
    pub component_id: String,
    /// Display name of the service.
    #[serde(default)]
    pub component_name: String,
    /// Kind of component (`service`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub component_type: Option<String>,
    /// Environment (`aws`, `ibm-cloud`, `kubernetes`, `on-prem`).
    #[serde(default)]
    pub environment: String,
    /// Number of assessments; see [`ControlLibrary::refresh_counts`].
    #[serde(default)]
    pub assessments_count: usize,
    /// The assessments (rules, or manual checks).
    #[serde(default)]
    pub assessments: Vec<Assessment>,
}

/// An assessment: normally a rule (`assessment_id` = rule id), or a manual check.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Assessment {
    /// The rule id for automated assessments; any stable id for manual ones.
    pub assessment_id: String,
    /// `automated` (a rule) or `manual` (attested by a user).
    #[serde(default = "automated")]
    pub assessment_type: String,
    /// How the assessment is carried out (free text).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub assessment_method: Option<String>,
    /// What the assessment checks.
    #[serde(default)]
    pub assessment_description: String,
    /// Number of parameters; see [`ControlLibrary::refresh_counts`].
    #[serde(default)]
    pub parameter_count: usize,
    /// Parameters the assessment's rule takes.
    #[serde(default)]
    pub parameters: Vec<Parameter>,
}

fn automated() -> String {
    "automated".into()
}

impl Assessment {
    /// Whether a user, not a rule, decides the assessment.
    pub fn is_manual(&self) -> bool {
        self.assessment_type.eq_ignore_ascii_case("manual")
    }
}

/// A rule parameter and, in attachments, its value.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Parameter {
    /// The assessment (rule) the parameter belongs to; unset means "every rule declaring it".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub assessment_id: Option<String>,
    /// The assessment's type.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub assessment_type: Option<String>,
    /// The name used in the rule's `${name}` placeholders.
    pub parameter_name: String,
    /// Label for user interfaces.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parameter_display_name: Option<String>,
    /// `string`, `numeric`, `general`, `boolean`, `string_list`, `ip_list`, `timestamp`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parameter_type: Option<String>,
    /// The value (attachments only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parameter_value: Option<Value>,
}

/// A profile's default value for one rule parameter.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DefaultParameter {
    /// The assessment's type.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub assessment_type: Option<String>,
    /// The assessment (rule) the default applies to; unset means every rule declaring it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub assessment_id: Option<String>,
    /// The parameter's name.
    pub parameter_name: String,
    /// The default value (SCC sends strings; lists and numbers are accepted too).
    #[serde(default)]
    pub parameter_default_value: Value,
    /// Label for user interfaces.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parameter_display_name: Option<String>,
    /// The parameter's type.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parameter_type: Option<String>,
}

/// A profile: controls picked from libraries, plus default parameter values.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Profile {
    /// Identifier (`aws-foundations`).
    #[serde(default)]
    pub id: String,
    /// Display name.
    pub profile_name: String,
    /// Free text.
    #[serde(default)]
    pub profile_description: String,
    /// `predefined` or `custom`.
    #[serde(default)]
    pub profile_type: ContentType,
    /// Version of the profile.
    #[serde(default)]
    pub profile_version: String,
    /// Groups the versions of one profile.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version_group_label: Option<String>,
    /// Whether this is the newest version of its group.
    #[serde(default = "default_true")]
    pub latest: bool,
    /// Whether the picked controls have parents.
    #[serde(default)]
    pub hierarchy_enabled: bool,
    /// Number of controls.
    #[serde(default)]
    pub controls_count: usize,
    /// The picked controls.
    #[serde(default)]
    pub controls: Vec<ProfileControl>,
    /// Default values of rule parameters.
    #[serde(default)]
    pub default_parameters: Vec<DefaultParameter>,
}

/// A control picked by a profile: a reference (`control_library_id`, `control_id`) and, once
/// expanded with [`Profile::expand`], the control's own fields (SCC `ProfileControls`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProfileControl {
    /// The library holding the control.
    pub control_library_id: String,
    /// The control's id in that library (or its name, resolved by [`ControlLibrary::control`]).
    pub control_id: String,
    /// The library version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub control_library_version: Option<String>,
    /// Copied from the control by [`Profile::expand`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub control_name: Option<String>,
    /// Copied from the control by [`Profile::expand`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub control_description: Option<String>,
    /// Copied from the control by [`Profile::expand`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub control_category: Option<String>,
    /// Copied from the control by [`Profile::expand`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub control_parent: Option<String>,
    /// Copied from the control by [`Profile::expand`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub control_severity: Option<String>,
    /// Copied from the control by [`Profile::expand`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub control_requirement: Option<bool>,
    /// Copied from the control by [`Profile::expand`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub control_docs: Option<ControlDoc>,
    /// Copied from the control by [`Profile::expand`].
    #[serde(default)]
    pub control_specifications: Vec<ControlSpecification>,
}

impl ProfileControl {
    /// A bare reference to a control.
    pub fn reference(control_library_id: &str, control_id: &str) -> Self {
        ProfileControl {
            control_library_id: control_library_id.into(),
            control_id: control_id.into(),
            control_library_version: None,
            control_name: None,
            control_description: None,
            control_category: None,
            control_parent: None,
            control_severity: None,
            control_requirement: None,
            control_docs: None,
            control_specifications: Vec::new(),
        }
    }
}

/// A profile control that names a library or a control that does not exist.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "/controls/{index}: control \"{control_id}\" of library \"{control_library_id}\" {problem}"
)]
pub struct UnknownControl {
    /// Position in the profile's `controls`.
    pub index: usize,
    /// The library named.
    pub control_library_id: String,
    /// The control named.
    pub control_id: String,
    /// `is not in the library` or `names an unknown library`.
    pub problem: &'static str,
}

impl Profile {
    /// Resolves every picked control against `libraries`, in profile order. Every reference
    /// that does not resolve is reported (with its JSON pointer), not only the first.
    pub fn resolve<'l>(
        &self,
        libraries: &'l [ControlLibrary],
    ) -> Result<Vec<(&'l ControlLibrary, &'l Control)>, Vec<UnknownControl>> {
        let mut resolved = Vec::with_capacity(self.controls.len());
        let mut unknown = Vec::new();
        for (index, picked) in self.controls.iter().enumerate() {
            let library = libraries
                .iter()
                .find(|library| library.id == picked.control_library_id);
            match library.map(|library| (library, library.control(&picked.control_id))) {
                Some((library, Some(control))) => resolved.push((library, control)),
                Some((_, None)) => unknown.push(UnknownControl {
                    index,
                    control_library_id: picked.control_library_id.clone(),
                    control_id: picked.control_id.clone(),
                    problem: "is not in the library",
                }),
                None => unknown.push(UnknownControl {
                    index,
                    control_library_id: picked.control_library_id.clone(),
                    control_id: picked.control_id.clone(),
                    problem: "names an unknown library",
                }),
            }
        }
        if unknown.is_empty() {
            Ok(resolved)
        } else {
            Err(unknown)
        }
    }

    /// Returns the profile with each picked control's fields copied from its library (the SCC
    /// `ProfileControls` shape) and `controls_count` set.
    pub fn expand(&self, libraries: &[ControlLibrary]) -> Result<Profile, Vec<UnknownControl>> {
        let resolved = self.resolve(libraries)?;
        let mut expanded = self.clone();
        for (picked, (library, control)) in expanded.controls.iter_mut().zip(resolved) {
            picked.control_id = control.control_id.clone();
            picked.control_library_version = Some(library.control_library_version.clone());
            picked.control_name = Some(control.control_name.clone());
            picked.control_description = Some(control.control_description.clone());
            picked.control_category = control.control_category.clone();
            picked.control_parent = control.control_parent.clone();
            picked.control_severity = control.control_severity.clone();
            picked.control_requirement = control.control_requirement;
            picked.control_docs = control.control_docs.clone();
            picked.control_specifications = control.control_specifications.clone();
        }
        expanded.controls_count = expanded.controls.len();
        expanded.hierarchy_enabled = expanded
            .controls
            .iter()
            .any(|control| control.control_parent.is_some());
        Ok(expanded)
    }
}

/// How often an attachment is scanned.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Schedule {
    /// Every day.
    #[default]
    Daily,
    /// Every seven days.
    #[serde(rename = "every_7_days")]
    Every7Days,
    /// Every thirty days.
    #[serde(rename = "every_30_days")]
    Every30Days,
}

impl Schedule {
    /// The interval between two scheduled scans.
    pub fn interval(self) -> chrono::Duration {
        match self {
            Schedule::Daily => chrono::Duration::days(1),
            Schedule::Every7Days => chrono::Duration::days(7),
            Schedule::Every30Days => chrono::Duration::days(30),
        }
    }
}

/// A scope: which resources an attachment covers (see [`crate::scope`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Scope {
    /// Identifier.
    #[serde(default)]
    pub id: String,
    /// Display name.
    #[serde(default)]
    pub name: String,
    /// Free text.
    #[serde(default)]
    pub description: String,
    /// `aws`, `ibm-cloud`, `azure`, `gcp`, `kubernetes`, `on-prem`.
    #[serde(default)]
    pub environment: String,
    /// `scope_type`, `scope_id`, `exclusions` (SCC), plus Palisade's `regions`.
    #[serde(default)]
    pub properties: Vec<ScopeProperty>,
}

/// One scope property: `{name, value}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScopeProperty {
    /// `scope_type`, `scope_id`, `exclusions` or `regions`.
    pub name: String,
    /// A string, or for `exclusions` a list of `{scope_id, scope_type}`.
    #[serde(default)]
    pub value: Value,
}

/// A scope entry of an attachment: a reference to a stored scope (`{id}`) or an inline one
/// (`{environment, properties}`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AttachmentScope {
    /// Set when the entry references a stored scope.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// Environment of an inline scope.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub environment: Option<String>,
    /// Properties of an inline scope.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub properties: Vec<ScopeProperty>,
}

/// An attachment: profile + scope + schedule + parameter values + notification thresholds
/// (the scan-relevant fields of SCC's `ProfileAttachment`; the server adds the audit fields).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Attachment {
    /// Identifier.
    #[serde(default)]
    pub id: String,
    /// The profile attached.
    #[serde(default)]
    pub profile_id: String,
    /// Display name.
    #[serde(default)]
    pub name: String,
    /// Free text.
    #[serde(default)]
    pub description: String,
    /// The scopes covered (a union).
    #[serde(default)]
    pub scope: Vec<AttachmentScope>,
    /// How often the attachment is scanned.
    #[serde(default)]
    pub schedule: Schedule,
    /// `enabled` or `disabled`.
    #[serde(default = "enabled")]
    pub status: String,
    /// Parameter values; they win over the profile's defaults.
    #[serde(default)]
    pub attachment_parameters: Vec<Parameter>,
    /// When to raise a finding.
    #[serde(default)]
    pub notifications: AttachmentNotifications,
}

fn enabled() -> String {
    "enabled".into()
}

/// SCC `AttachmentNotifications`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AttachmentNotifications {
    /// Whether thresholds raise findings.
    #[serde(default)]
    pub enabled: bool,
    /// The thresholds.
    #[serde(default)]
    pub controls: NotificationControls,
}

/// SCC `AttachmentNotificationsControls`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct NotificationControls {
    /// A finding is raised when more than this many controls are not compliant.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub threshold_limit: Option<usize>,
    /// A finding is raised when any of these controls is not compliant.
    #[serde(default)]
    pub failed_control_ids: Vec<String>,
}

/// A user's verdict on a manual assessment, with its note, evidence and expiry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Attestation {
    /// The manual assessment attested.
    pub assessment_id: String,
    /// Restricts the attestation to one control; unset means every control using the
    /// assessment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub control_id: Option<String>,
    /// `pass` or `failure`.
    pub status: AttestedStatus,
    /// Why.
    #[serde(default)]
    pub note: String,
    /// Links or document ids backing the verdict.
    #[serde(default)]
    pub evidence: Vec<String>,
    /// Who attested.
    #[serde(default)]
    pub attested_by: String,
    /// When.
    pub attested_on: DateTime<Utc>,
    /// After this instant the assessment needs a new attestation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_on: Option<DateTime<Utc>>,
}

/// The verdict of an [`Attestation`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AttestedStatus {
    /// The control objective is met.
    Pass,
    /// The control objective is not met.
    Failure,
}

impl Attestation {
    /// Whether the attestation is in force at `now`.
    pub fn is_valid_at(&self, now: DateTime<Utc>) -> bool {
        self.attested_on <= now && self.expires_on.is_none_or(|expiry| now < expiry)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn library() -> ControlLibrary {
        serde_json::from_value(json!({
            "id": "lib", "control_library_name": "Lib", "control_library_version": "1",
            "controls": [
                {"control_id": "ac-2", "control_name": "AC-2", "control_description": "Accounts",
                 "control_specifications": [{"id": "s1", "description": "d", "component_id": "iam",
                    "environment": "aws",
                    "assessments": [{"assessment_id": "rule-a", "parameters": [{"parameter_name": "p"}]}]}]},
                {"control_id": "ac-2.1", "control_name": "AC-2(1)", "control_parent": "AC-2"}
            ]
        }))
        .expect("library decodes")
    }

    #[test]
    fn refresh_counts_fills_derived_fields() {
        let mut library = library();
        library.refresh_counts();
        assert_eq!(library.controls_count, 2);
        assert_eq!(library.control_parents_count, 1);
        assert!(library.hierarchy_enabled);
        let specification = &library.controls[0].control_specifications[0];
        assert_eq!(specification.assessments_count, 1);
        assert_eq!(specification.assessments[0].parameter_count, 1);
        assert_eq!(specification.assessments[0].assessment_type, "automated");
    }

    #[test]
    fn profile_resolves_by_id_or_name_and_reports_every_unknown_control() {
        let libraries = [library()];
        let profile: Profile = serde_json::from_value(json!({
            "profile_name": "p",
            "controls": [{"control_library_id": "lib", "control_id": "AC-2"}]
        }))
        .expect("profile decodes");
        let expanded = profile.expand(&libraries).expect("resolves");
        assert_eq!(expanded.controls[0].control_id, "ac-2");
        assert_eq!(expanded.controls[0].control_specifications.len(), 1);

        let broken: Profile = serde_json::from_value(json!({
            "profile_name": "p",
            "controls": [{"control_library_id": "lib", "control_id": "zz-9"},
                         {"control_library_id": "nope", "control_id": "ac-2"}]
        }))
        .expect("profile decodes");
        let errors = broken
            .resolve(&libraries)
            .expect_err("two unknown controls");
        assert_eq!(errors.len(), 2);
        assert!(
            errors[0].to_string().starts_with("/controls/0"),
            "{}",
            errors[0]
        );
        assert!(
            errors[1].to_string().contains("unknown library"),
            "{}",
            errors[1]
        );
    }

    #[test]
    fn attestation_validity_respects_expiry() {
        let attestation: Attestation = serde_json::from_value(json!({
            "assessment_id": "m", "status": "pass", "attested_on": "2026-01-01T00:00:00Z",
            "expires_on": "2026-02-01T00:00:00Z"
        }))
        .expect("decodes");
        let at = |text: &str| text.parse::<DateTime<Utc>>().expect("valid time");
        assert!(attestation.is_valid_at(at("2026-01-15T00:00:00Z")));
        assert!(!attestation.is_valid_at(at("2026-02-01T00:00:00Z")));
        assert!(!attestation.is_valid_at(at("2025-12-31T00:00:00Z")));
    }

    #[test]
    fn schedules_use_scc_spelling() {
        assert_eq!(
            serde_json::to_value(Schedule::Every7Days).expect("encodes"),
            json!("every_7_days")
        );
        assert_eq!(Schedule::Every30Days.interval(), chrono::Duration::days(30));
    }
}
