//! The content shipped with Palisade, embedded in the binary: control libraries (NIST SP 800-53
//! rev5 imported from NIST's OSCAL catalog; CIS AWS Foundations v3.0.0, CIS Kubernetes v1.9.0
//! policies, CIS Controls v8), the built-in SCC JSON rules, their mapping to controls, the
//! predefined profiles and the `/v3/services` catalogue. The files live in `content/` at the
//! repository root (see its README: it is also the contract collectors follow).
//!
//! The libraries in `content/libraries` list controls only; [`builtin`] adds to each control one
//! specification per (environment, service) whose assessments are the rules `mappings.json`
//! maps to it. CIS AWS recommendations no rule checks get a manual assessment instead, so the
//! CIS profile reports them `user_evaluation_required` until a user attests them.
//!
//! Everything is parsed once per process ([`builtin`] caches); a broken embedded file is a bug
//! the tests catch, reported as a [`ContentError`] rather than a panic.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use palisade_rules::Rule;
use serde_json::Value;

use crate::model::{
    Assessment, ContentType, Control, ControlLibrary, ControlSpecification, Profile,
};
use crate::oscal::{self, ImportOptions};

/// The library id of NIST SP 800-53 rev5.
pub const NIST_LIBRARY_ID: &str = "nist-800-53-r5";

/// The NIST catalog: the HIGH baseline resolved catalog (370 controls and enhancements),
/// which holds every control of the LOW and MODERATE baselines too.
const NIST_CATALOG: &str = include_str!(
    "../../../content/oscal/NIST_SP-800-53_rev5_HIGH-baseline-resolved-profile_catalog-min.json"
);

const LIBRARY_FILES: [(&str, &str); 3] = [
    (
        "libraries/cis-aws-foundations-v3.json",
        include_str!("../../../content/libraries/cis-aws-foundations-v3.json"),
    ),
    (
        "libraries/cis-kubernetes-v1.9.json",
        include_str!("../../../content/libraries/cis-kubernetes-v1.9.json"),
    ),
    (
        "libraries/cis-controls-v8.json",
        include_str!("../../../content/libraries/cis-controls-v8.json"),
    ),
];

/// The rule files, in a stable order.
pub const RULE_FILES: [(&str, &str); 11] = [
    (
        "rules/aws-s3.json",
        include_str!("../../../content/rules/aws-s3.json"),
    ),
    (
        "rules/aws-iam.json",
        include_str!("../../../content/rules/aws-iam.json"),
    ),
    (
        "rules/aws-ec2.json",
        include_str!("../../../content/rules/aws-ec2.json"),
    ),
    (
        "rules/aws-efs.json",
        include_str!("../../../content/rules/aws-efs.json"),
    ),
    (
        "rules/aws-cloudtrail.json",
        include_str!("../../../content/rules/aws-cloudtrail.json"),
    ),
    (
        "rules/aws-config.json",
        include_str!("../../../content/rules/aws-config.json"),
    ),
    (
        "rules/aws-kms.json",
        include_str!("../../../content/rules/aws-kms.json"),
    ),
    (
        "rules/aws-rds.json",
        include_str!("../../../content/rules/aws-rds.json"),
    ),
    (
        "rules/kubernetes.json",
        include_str!("../../../content/rules/kubernetes.json"),
    ),
    (
        "rules/linux.json",
        include_str!("../../../content/rules/linux.json"),
    ),
    (
        "rules/ibm-cloud.json",
        include_str!("../../../content/rules/ibm-cloud.json"),
    ),
];

const PROFILE_FILES: [(&str, &str); 8] = [
    (
        "profiles/cis-aws-foundations.json",
        include_str!("../../../content/profiles/cis-aws-foundations.json"),
    ),
    (
        "profiles/cis-kubernetes-workloads.json",
        include_str!("../../../content/profiles/cis-kubernetes-workloads.json"),
    ),
    (
        "profiles/cis-controls-v8-linux.json",
        include_str!("../../../content/profiles/cis-controls-v8-linux.json"),
    ),
    (
        "profiles/nist-800-53-aws.json",
        include_str!("../../../content/profiles/nist-800-53-aws.json"),
    ),
    (
        "profiles/nist-800-53-kubernetes.json",
        include_str!("../../../content/profiles/nist-800-53-kubernetes.json"),
    ),
    (
        "profiles/nist-800-53-linux.json",
        include_str!("../../../content/profiles/nist-800-53-linux.json"),
    ),
    (
        "profiles/nist-800-53-ibm-cloud.json",
        include_str!("../../../content/profiles/nist-800-53-ibm-cloud.json"),
    ),
    (
        "profiles/nist-800-53-all.json",
        include_str!("../../../content/profiles/nist-800-53-all.json"),
    ),
];

const MAPPINGS: &str = include_str!("../../../content/mappings.json");
const SERVICES: &str = include_str!("../../../content/services.json");

/// Where each mapping prefix points.
const MAPPING_LIBRARIES: [(&str, &str); 3] = [
    ("cis-aws", "cis-aws-foundations-v3"),
    ("cis-k8s", "cis-kubernetes-v1.9"),
    ("cis-v8", "cis-controls-v8"),
];

/// An embedded file that does not parse or does not fit the rest (a bug in `content/`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("content/{file}: {message}")]
pub struct ContentError {
    /// The file, relative to `content/`.
    pub file: String,
    /// What is wrong, with the JSON pointer when there is one.
    pub message: String,
}

/// Everything built in.
#[derive(Debug, Clone)]
pub struct BuiltinContent {
    /// Control libraries, with specifications and assessments filled in.
    pub libraries: Vec<ControlLibrary>,
    /// Rules, parsed.
    pub rules: Vec<Rule>,
    /// Rules as SCC JSON documents (what `/v3/rules` returns for system-defined rules).
    pub rule_documents: Vec<Value>,
    /// Predefined profiles.
    pub profiles: Vec<Profile>,
    /// The `/v3/services` catalogue (SCC `Service` objects).
    pub services: Vec<Value>,
    /// Rule id → library id → control ids (from `mappings.json`).
    pub mappings: BTreeMap<String, BTreeMap<String, Vec<String>>>,
}

impl BuiltinContent {
    /// A library by id.
    pub fn library(&self, id: &str) -> Option<&ControlLibrary> {
        self.libraries.iter().find(|library| library.id == id)
    }

    /// A profile by id or (case-insensitive) name.
    pub fn profile(&self, id_or_name: &str) -> Option<&Profile> {
        self.profiles.iter().find(|profile| {
            profile.id == id_or_name || profile.profile_name.eq_ignore_ascii_case(id_or_name)
        })
    }
}

/// The built-in content, parsed once per process.
pub fn builtin() -> Result<&'static BuiltinContent, ContentError> {
    static CONTENT: OnceLock<Result<BuiltinContent, ContentError>> = OnceLock::new();
    CONTENT.get_or_init(load).as_ref().map_err(Clone::clone)
}

/// The built-in rules as JSON documents, without parsing the libraries (cheap; what rule
/// fixtures and `palisade rules` need).
pub fn builtin_rule_documents() -> Result<Vec<Value>, ContentError> {
    let mut documents = Vec::new();
    for (file, text) in RULE_FILES {
        match parse_json(file, text)? {
            Value::Array(rules) => documents.extend(rules),
            _ => return Err(error(file, "expected a JSON array of rules")),
        }
    }
    Ok(documents)
}

fn error(file: &str, message: impl Into<String>) -> ContentError {
    ContentError {
        file: file.into(),
        message: message.into(),
    }
}

fn parse_json(file: &str, text: &str) -> Result<Value, ContentError> {
    serde_json::from_str(text).map_err(|problem| error(file, problem.to_string()))
}

fn load() -> Result<BuiltinContent, ContentError> {
    let rule_documents = builtin_rule_documents()?;
    let rules =
        palisade_rules::parse_rules(&Value::Array(rule_documents.clone())).map_err(|errors| {
            let listed: Vec<String> = errors.iter().map(ToString::to_string).collect();
            error("rules", listed.join("; "))
        })?;
    let mappings: BTreeMap<String, BTreeMap<String, Vec<String>>> = serde_json::from_str(MAPPINGS)
        .map_err(|problem| error("mappings.json", problem.to_string()))?;

    let nist_document = parse_json("oscal/NIST catalog", NIST_CATALOG)?;
    let mut libraries = vec![
        oscal::import(
            &nist_document,
            &[],
            &ImportOptions {
                library_id: Some(NIST_LIBRARY_ID.into()),
                library_type: ContentType::Predefined,
                include_statements: false,
            },
        )
        .map_err(|problem| error("oscal/NIST catalog", problem.to_string()))?,
    ];
    libraries[0].control_library_name = "NIST SP 800-53 Revision 5".into();
    for (file, text) in LIBRARY_FILES {
        let library: ControlLibrary =
            serde_json::from_str(text).map_err(|problem| error(file, problem.to_string()))?;
        libraries.push(library);
    }

    let services: Vec<Value> = match parse_json("services.json", SERVICES)? {
        Value::Array(services) => services,
        _ => return Err(error("services.json", "expected a JSON array of services")),
    };
    let display_names: BTreeMap<&str, &str> = services
        .iter()
        .filter_map(|service| {
            Some((
                service.get("service_name")?.as_str()?,
                service.get("service_display_name")?.as_str()?,
            ))
        })
        .collect();
    let environments: BTreeMap<&str, &str> = services
        .iter()
        .filter_map(|service| {
            Some((
                service.get("service_name")?.as_str()?,
                service.get("environment")?.as_str()?,
            ))
        })
        .collect();

    for rule in &rules {
        let Some(mapped) = mappings.get(&rule.id) else {
            return Err(error(
                "mappings.json",
                format!("rule \"{}\" is not mapped to any control", rule.id),
            ));
        };
        for (prefix, control_refs) in mapped {
            for control_ref in control_refs {
                let (library_id, control_id) =
                    resolve_reference(prefix, control_ref).ok_or_else(|| {
                        error(
                            "mappings.json",
                            format!(
                                "/{}/{prefix}: unknown library of \"{control_ref}\"",
                                rule.id
                            ),
                        )
                    })?;
                let library = libraries
                    .iter_mut()
                    .find(|library| library.id == library_id)
                    .ok_or_else(|| error("mappings.json", format!("no library {library_id}")))?;
                let control = library
                    .controls
                    .iter_mut()
                    .find(|control| control.control_id == control_id)
                    .ok_or_else(|| {
                        error(
                            "mappings.json",
                            format!(
                                "/{}/{prefix}: control \"{control_id}\" is not in {library_id}",
                                rule.id
                            ),
                        )
                    })?;
                let service = &rule.target.service_name;
                add_assessment(
                    control,
                    service,
                    display_names
                        .get(service.as_str())
                        .copied()
                        .unwrap_or(service),
                    environments
                        .get(service.as_str())
                        .copied()
                        .unwrap_or_default(),
                    rule,
                );
            }
        }
    }
    if let Some(cis_aws) = libraries
        .iter_mut()
        .find(|library| library.id == "cis-aws-foundations-v3")
    {
        for control in &mut cis_aws.controls {
            if control.control_specifications.is_empty() {
                control.control_specifications.push(ControlSpecification {
                    id: format!("{}-manual", control.control_id),
                    description: "Checked by a person; attest the result".into(),
                    responsibility: Some("user".into()),
                    component_id: "aws-account".into(),
                    component_name: "AWS account".into(),
                    component_type: None,
                    environment: "aws".into(),
                    assessments_count: 1,
                    assessments: vec![Assessment {
                        assessment_id: format!("manual-cis-aws-{}", control.control_id),
                        assessment_type: "manual".into(),
                        assessment_method: Some("attestation".into()),
                        assessment_description: control.control_description.clone(),
                        parameter_count: 0,
                        parameters: Vec::new(),
                    }],
                });
            }
        }
    }
    for library in &mut libraries {
        library.refresh_counts();
    }

    let mut profiles = Vec::new();
    for (file, text) in PROFILE_FILES {
        let profile: Profile =
            serde_json::from_str(text).map_err(|problem| error(file, problem.to_string()))?;
        if let Err(unknown) = profile.resolve(&libraries) {
            let listed: Vec<String> = unknown.iter().map(ToString::to_string).collect();
            return Err(error(file, listed.join("; ")));
        }
        profiles.push(profile);
    }
    Ok(BuiltinContent {
        libraries,
        rules,
        rule_documents,
        profiles,
        services,
        mappings,
    })
}

fn resolve_reference<'r>(prefix: &str, control_ref: &'r str) -> Option<(&'static str, &'r str)> {
    if prefix == NIST_LIBRARY_ID {
        return Some((NIST_LIBRARY_ID, control_ref));
    }
    let (short, control_id) = control_ref.split_once(':')?;
    MAPPING_LIBRARIES
        .iter()
        .find(|(candidate, _)| *candidate == short)
        .map(|(_, library_id)| (*library_id, control_id))
}

fn add_assessment(
    control: &mut Control,
    service: &str,
    display_name: &str,
    environment: &str,
    rule: &Rule,
) {
    let specification_id = format!("{}-{service}", control.control_id);
    let position = control
        .control_specifications
        .iter()
        .position(|specification| specification.id == specification_id);
    let index = match position {
        Some(index) => index,
        None => {
            control.control_specifications.push(ControlSpecification {
                id: specification_id,
                description: format!("{display_name} configuration"),
                responsibility: Some("user".into()),
                component_id: service.into(),
                component_name: display_name.into(),
                component_type: Some("service".into()),
                environment: environment.into(),
                assessments_count: 0,
                assessments: Vec::new(),
            });
            control.control_specifications.len() - 1
        }
    };
    let specification = &mut control.control_specifications[index];
    if specification
        .assessments
        .iter()
        .any(|assessment| assessment.assessment_id == rule.id)
    {
        return;
    }
    specification.assessments.push(Assessment {
        assessment_id: rule.id.clone(),
        assessment_type: "automated".into(),
        assessment_method: Some("rule".into()),
        assessment_description: rule.description.clone().unwrap_or_default(),
        parameter_count: rule.parameters.len(),
        parameters: rule
            .parameters
            .iter()
            .map(|parameter| crate::model::Parameter {
                assessment_id: Some(rule.id.clone()),
                assessment_type: Some("automated".into()),
                parameter_name: parameter.name.clone(),
                parameter_display_name: parameter.display_name.clone(),
                parameter_type: Some(parameter.parameter_type.as_str().into()),
                parameter_value: None,
            })
            .collect(),
    });
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    #[test]
    fn content_loads_and_every_rule_is_mapped_to_nist_and_cis() {
        let content = builtin().expect("built-in content loads");
        assert!(content.rules.len() >= 80, "{} rules", content.rules.len());
        let nist = content.library(NIST_LIBRARY_ID).expect("NIST library");
        assert!(
            nist.controls.len() >= 300,
            "{} NIST controls",
            nist.controls.len()
        );
        for rule in &content.rules {
            let mapped = &content.mappings[&rule.id];
            assert!(
                !mapped.get(NIST_LIBRARY_ID).is_none_or(Vec::is_empty),
                "{} has no NIST control",
                rule.id
            );
            assert!(
                !mapped.get("cis").is_none_or(Vec::is_empty),
                "{} has no CIS control",
                rule.id
            );
        }
        let assessed: BTreeSet<&str> = content
            .libraries
            .iter()
            .flat_map(|library| &library.controls)
            .flat_map(|control| &control.control_specifications)
            .flat_map(|specification| &specification.assessments)
            .map(|assessment| assessment.assessment_id.as_str())
            .collect();
        for rule in &content.rules {
            assert!(
                assessed.contains(rule.id.as_str()),
                "{} is in no library",
                rule.id
            );
        }
    }

    #[test]
    fn every_rule_targets_a_catalogued_service_and_kind() {
        let content = builtin().expect("built-in content loads");
        let catalogued: BTreeSet<(String, String)> = content
            .services
            .iter()
            .flat_map(|service| {
                let name = service["service_name"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string();
                service["supported_configs"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(move |config| {
                        (
                            name.clone(),
                            config["resource_kind"]
                                .as_str()
                                .unwrap_or_default()
                                .to_string(),
                        )
                    })
            })
            .collect();
        for rule in &content.rules {
            let target = (
                rule.target.service_name.clone(),
                rule.target.resource_kind.clone(),
            );
            assert!(
                catalogued.contains(&target),
                "{target:?} is not in services.json"
            );
        }
    }

    #[test]
    fn profiles_resolve_and_find_by_id_or_name() {
        let content = builtin().expect("built-in content loads");
        assert_eq!(content.profiles.len(), PROFILE_FILES.len());
        let cis = content.profile("cis-aws-foundations").expect("CIS profile");
        assert_eq!(
            content
                .profile(&cis.profile_name.to_uppercase())
                .map(|profile| &profile.id),
            Some(&cis.id)
        );
        let library = content
            .library("cis-aws-foundations-v3")
            .expect("CIS AWS library");
        let manual = library.control("1.1").expect("1.1");
        assert!(manual.control_specifications[0].assessments[0].is_manual());
        let automated = library.control("1.4").expect("1.4");
        assert_eq!(
            automated.control_specifications[0].assessments[0].assessment_id,
            "aws-iam-root-mfa"
        );
    }
}
