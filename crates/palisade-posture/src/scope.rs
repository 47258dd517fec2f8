//! Scope resolution: which resources an attachment covers.
//!
//! SCC describes a scope by properties: `scope_type` (`enterprise`, `enterprise.account`,
//! `account`, `account.resource_group`), `scope_id` and `exclusions` (`[{scope_id,
//! scope_type}]`). Palisade adds `environment` (every resource of the scope's environment) as a
//! scope type and an optional `regions` property (a list) that narrows any scope.
//!
//! Resolution yields a [`ScopeSelector`]: plain data, a union of [`ScopeClause`]s, that works
//! two ways — [`ScopeSelector::matches`] in memory (the offline CLI), and as the input of a
//! store query builder (each clause is `environment = ? AND <target> AND <regions> AND NOT
//! (<exclusion> OR …)`, clauses joined by `OR`), so the server never loads resources it does
//! not scan.

use std::collections::BTreeSet;

use palisade_model::resource::Resource;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::model::{AttachmentScope, Scope, ScopeProperty};

/// A bad scope, named by its position and the property at fault.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{pointer}: {message}")]
pub struct ScopeError {
    /// JSON pointer of the faulty value within the attachment's `scope` list (or the scope).
    pub pointer: String,
    /// What is wrong.
    pub message: String,
}

/// What one clause selects, before exclusions.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ScopeTarget {
    /// Every resource (of the clause's environment, when it has one).
    All,
    /// Resources whose `account_id` equals the value.
    Account {
        /// The account.
        account_id: String,
    },
    /// Resources whose `resource_group` equals the value.
    ResourceGroup {
        /// The resource group (its id or name, as the collector reports it).
        resource_group: String,
    },
}

impl ScopeTarget {
    /// Whether the resource is selected by this target.
    pub fn matches(&self, resource: &Resource) -> bool {
        match self {
            ScopeTarget::All => true,
            ScopeTarget::Account { account_id } => resource.account_id == *account_id,
            ScopeTarget::ResourceGroup { resource_group } => {
                resource.resource_group.as_deref() == Some(resource_group.as_str())
            }
        }
    }
}

/// One scope, resolved: environment, target, optional regions, exclusions.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScopeClause {
    /// Resources must be of this environment; `None` means any.
    pub environment: Option<String>,
    /// What the clause selects.
    pub target: ScopeTarget,
    /// When not empty, resources must be in one of these regions.
    pub regions: BTreeSet<String>,
    /// Resources matching any of these are left out.
    pub exclusions: Vec<ScopeTarget>,
}

impl ScopeClause {
    /// Whether the clause covers the resource.
    pub fn matches(&self, resource: &Resource) -> bool {
        self.environment
            .as_deref()
            .is_none_or(|environment| resource.environment == environment)
            && self.target.matches(resource)
            && (self.regions.is_empty()
                || resource
                    .region
                    .as_ref()
                    .is_some_and(|region| self.regions.contains(region)))
            && !self
                .exclusions
                .iter()
                .any(|exclusion| exclusion.matches(resource))
    }
}

/// The resources an attachment covers: a union of clauses.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScopeSelector {
    /// A resource is covered when any clause covers it. No clause covers nothing.
    pub clauses: Vec<ScopeClause>,
}

impl ScopeSelector {
    /// A selector covering every resource (the offline CLI with no scope given).
    pub fn everything() -> Self {
        ScopeSelector {
            clauses: vec![ScopeClause {
                environment: None,
                target: ScopeTarget::All,
                regions: BTreeSet::new(),
                exclusions: Vec::new(),
            }],
        }
    }

    /// Whether the resource is in scope.
    pub fn matches(&self, resource: &Resource) -> bool {
        self.clauses.iter().any(|clause| clause.matches(resource))
    }

    /// Keeps the resources in scope.
    pub fn filter<'r>(&self, resources: &'r [Resource]) -> Vec<&'r Resource> {
        resources
            .iter()
            .filter(|resource| self.matches(resource))
            .collect()
    }
}

/// Resolves an attachment's scope entries; `{id}` entries are looked up with `find_scope`.
/// Every bad entry is reported, not only the first.
pub fn resolve_attachment_scopes<'s>(
    entries: &[AttachmentScope],
    find_scope: impl Fn(&str) -> Option<&'s Scope>,
) -> Result<ScopeSelector, Vec<ScopeError>> {
    let mut selector = ScopeSelector::default();
    let mut errors = Vec::new();
    for (index, entry) in entries.iter().enumerate() {
        let pointer = format!("/scope/{index}");
        let resolved = match &entry.id {
            Some(id) => match find_scope(id) {
                Some(scope) => resolve_scope(scope, &pointer),
                None => Err(vec![ScopeError {
                    pointer: format!("{pointer}/id"),
                    message: format!("unknown scope \"{id}\""),
                }]),
            },
            None => resolve_properties(
                entry.environment.as_deref().unwrap_or_default(),
                &entry.properties,
                &pointer,
            ),
        };
        match resolved {
            Ok(clause) => selector.clauses.push(clause),
            Err(mut entry_errors) => errors.append(&mut entry_errors),
        }
    }
    if errors.is_empty() {
        Ok(selector)
    } else {
        Err(errors)
    }
}

/// Resolves one stored scope; `pointer` prefixes the error pointers.
pub fn resolve_scope(scope: &Scope, pointer: &str) -> Result<ScopeClause, Vec<ScopeError>> {
    resolve_properties(&scope.environment, &scope.properties, pointer)
}

fn resolve_properties(
    environment: &str,
    properties: &[ScopeProperty],
    pointer: &str,
) -> Result<ScopeClause, Vec<ScopeError>> {
    let mut errors = Vec::new();
    let mut scope_type: Option<(usize, &str)> = None;
    let mut scope_id: Option<(usize, &str)> = None;
    let mut exclusions = Vec::new();
    let mut regions = BTreeSet::new();
    for (index, property) in properties.iter().enumerate() {
        let value_pointer = format!("{pointer}/properties/{index}/value");
        match property.name.as_str() {
            "scope_type" | "scope_id" => match property.value.as_str() {
                Some(text) if property.name == "scope_type" => scope_type = Some((index, text)),
                Some(text) => scope_id = Some((index, text)),
                None => errors.push(ScopeError {
                    pointer: value_pointer,
                    message: format!("`{}` must be a string", property.name),
                }),
            },
            "exclusions" => match &property.value {
                Value::Array(items) => {
                    for (item_index, item) in items.iter().enumerate() {
                        let item_pointer = format!("{value_pointer}/{item_index}");
                        let field = |name: &str| item.get(name).and_then(Value::as_str);
                        match target_of(field("scope_type"), field("scope_id")) {
                            Ok(target) => exclusions.push(target),
                            Err(message) => errors.push(ScopeError {
                                pointer: item_pointer,
                                message,
                            }),
                        }
                    }
                }
                Value::Null => {}
                _ => errors.push(ScopeError {
                    pointer: value_pointer,
                    message: "`exclusions` must be a list of {scope_id, scope_type}".into(),
                }),
            },
            "regions" => match &property.value {
                Value::Array(items) => {
                    for (item_index, item) in items.iter().enumerate() {
                        match item.as_str() {
                            Some(region) => {
                                regions.insert(region.to_string());
                            }
                            None => errors.push(ScopeError {
                                pointer: format!("{value_pointer}/{item_index}"),
                                message: "a region must be a string".into(),
                            }),
                        }
                    }
                }
                Value::String(region) => {
                    regions.insert(region.clone());
                }
                _ => errors.push(ScopeError {
                    pointer: value_pointer,
                    message: "`regions` must be a list of strings".into(),
                }),
            },
            // Unknown properties are kept by the server and ignored here, as SCC ignores
            // properties it does not use.
            _ => {}
        }
    }
    let target = match target_of(scope_type.map(|(_, text)| text), scope_id.map(|(_, t)| t)) {
        Ok(target) => Some(target),
        Err(message) => {
            let index = scope_type.or(scope_id).map(|(index, _)| index);
            errors.push(ScopeError {
                pointer: match index {
                    Some(index) => format!("{pointer}/properties/{index}/value"),
                    None => format!("{pointer}/properties"),
                },
                message,
            });
            None
        }
    };
    match target {
        Some(target) if errors.is_empty() => Ok(ScopeClause {
            environment: (!environment.is_empty()).then(|| environment.to_string()),
            target,
            regions,
            exclusions,
        }),
        _ => Err(errors),
    }
}

fn target_of(scope_type: Option<&str>, scope_id: Option<&str>) -> Result<ScopeTarget, String> {
    let id = || {
        scope_id
            .filter(|id| !id.is_empty())
            .map(str::to_string)
            .ok_or_else(|| {
                format!(
                    "scope_type \"{}\" needs a scope_id",
                    scope_type.unwrap_or("")
                )
            })
    };
    match scope_type {
        None | Some("enterprise" | "environment") => Ok(ScopeTarget::All),
        Some("account" | "enterprise.account") => Ok(ScopeTarget::Account { account_id: id()? }),
        Some("account.resource_group") => Ok(ScopeTarget::ResourceGroup {
            resource_group: id()?,
        }),
        Some("enterprise.account_group") => Err(
            "scope_type \"enterprise.account_group\" is not supported: Palisade does not know \
             account groups; list the accounts as separate scopes"
                .into(),
        ),
        Some(other) => Err(format!(
            "unknown scope_type \"{other}\" (expected enterprise, enterprise.account, account, \
             account.resource_group or environment)"
        )),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn resource(id: &str, environment: &str, account: &str, group: &str, region: &str) -> Resource {
        serde_json::from_value(json!({
            "id": id, "environment": environment, "account_id": account,
            "service_name": "s3", "resource_kind": "bucket",
            "resource_group": group, "region": region
        }))
        .expect("resource decodes")
    }

    fn inline(environment: &str, properties: Value) -> AttachmentScope {
        serde_json::from_value(json!({"environment": environment, "properties": properties}))
            .expect("scope decodes")
    }

    #[test]
    fn account_scope_with_resource_group_exclusion() {
        let selector = resolve_attachment_scopes(
            &[inline(
                "aws",
                json!([
                    {"name": "scope_type", "value": "account"},
                    {"name": "scope_id", "value": "111"},
                    {"name": "exclusions", "value": [{"scope_type": "account.resource_group", "scope_id": "sandbox"}]}
                ]),
            )],
            |_| None,
        )
        .expect("valid scope");
        assert!(selector.matches(&resource("a", "aws", "111", "prod", "us-east-1")));
        assert!(!selector.matches(&resource("b", "aws", "111", "sandbox", "us-east-1")));
        assert!(!selector.matches(&resource("c", "aws", "222", "prod", "us-east-1")));
        assert!(!selector.matches(&resource("d", "ibm-cloud", "111", "prod", "us-south")));
    }

    #[test]
    fn union_of_stored_and_inline_scopes_with_regions() {
        let stored: Scope = serde_json::from_value(json!({
            "id": "s1", "environment": "ibm-cloud",
            "properties": [{"name": "scope_type", "value": "account.resource_group"},
                           {"name": "scope_id", "value": "rg-1"}]
        }))
        .expect("scope decodes");
        let selector = resolve_attachment_scopes(
            &[
                serde_json::from_value(json!({"id": "s1"})).expect("decodes"),
                inline(
                    "aws",
                    json!([{"name": "scope_type", "value": "environment"},
                           {"name": "regions", "value": ["eu-west-1"]}]),
                ),
            ],
            |id| (id == "s1").then_some(&stored),
        )
        .expect("valid scopes");
        assert!(selector.matches(&resource("a", "ibm-cloud", "x", "rg-1", "us-south")));
        assert!(selector.matches(&resource("b", "aws", "x", "", "eu-west-1")));
        assert!(!selector.matches(&resource("c", "aws", "x", "", "us-east-1")));
        assert!(!selector.matches(&resource("d", "ibm-cloud", "x", "rg-2", "us-south")));
    }

    #[test]
    fn every_bad_entry_is_reported_with_its_pointer() {
        let errors = resolve_attachment_scopes(
            &[
                serde_json::from_value(json!({"id": "missing"})).expect("decodes"),
                inline("aws", json!([{"name": "scope_type", "value": "account"}])),
                inline(
                    "aws",
                    json!([{"name": "scope_type", "value": "galaxy"},
                           {"name": "exclusions", "value": [{"scope_type": "account"}]}]),
                ),
            ],
            |_| None,
        )
        .expect_err("three bad entries");
        let pointers: Vec<&str> = errors.iter().map(|error| error.pointer.as_str()).collect();
        assert_eq!(
            pointers,
            [
                "/scope/0/id",
                "/scope/1/properties/0/value",
                "/scope/2/properties/1/value/0",
                "/scope/2/properties/0/value"
            ]
        );
        assert!(errors[3].message.contains("galaxy"), "{}", errors[3]);
    }

    #[test]
    fn empty_selector_covers_nothing_and_everything_covers_all() {
        let bucket = resource("a", "aws", "1", "g", "r");
        assert!(!ScopeSelector::default().matches(&bucket));
        assert!(ScopeSelector::everything().matches(&bucket));
    }
}
