//! The compiled policy of one request scope, and the per-process cache of policies.
//!
//! A [`Policy`] holds the rules attached (and enabled) for a scope, compiled once into a
//! [`RuleSet`], and the templates attached for it, most specific scope first. Building one reads
//! the instance's whole governance configuration (four document lists, kept per generation) and
//! compiles; serving a decision from the cache costs one point read of the generation.
//!
//! The cache is bounded: when it holds more than [`MAX_CACHED_POLICIES`] scopes it is cleared
//! (rebuilding is cheap; an unbounded map keyed by caller-chosen account ids is not).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use palisade_rules::templates::Template;
use palisade_rules::{ParameterValues, RuleSet};
use serde_json::Value;

use super::scope::{RequestScope, attachment_covers, specificity};
use super::{RULE, RULE_ATTACHMENT, TEMPLATE, TEMPLATE_ATTACHMENT};
use crate::error::{ApiError, ApiResult};
use crate::service::documents;
use crate::state::AppState;

/// Most scopes kept compiled at once, over all instances.
pub const MAX_CACHED_POLICIES: usize = 10_000;

/// One rule of a policy, in [`RuleSet`] order.
#[derive(Debug, Clone)]
pub struct PolicyRule {
    pub rule_id: String,
    pub name: String,
    /// `disallow`, `audit_log`, or `none` when the rule has no enforcement action (monitor only).
    pub action: &'static str,
}

/// The compiled rules and templates of one request scope.
pub struct Policy {
    pub rule_set: RuleSet,
    pub rules: Vec<PolicyRule>,
    /// Most specific scope first; see [`super::scope`].
    pub templates: Vec<Template>,
}

/// The governance configuration of an instance at one generation.
struct InstanceConfig {
    generation: i64,
    rules: HashMap<String, Value>,
    rule_attachments: Vec<Value>,
    templates: HashMap<String, Value>,
    template_attachments: Vec<Value>,
}

/// Compiled policies by (instance, request scope), each with the generation it was built at.
type PolicyCache = HashMap<(String, RequestScope), (i64, Arc<Policy>)>;

/// Per-process caches of configuration governance; one per [`AppState`].
#[derive(Default)]
pub struct Governance {
    configs: Mutex<HashMap<String, Arc<InstanceConfig>>>,
    policies: Mutex<PolicyCache>,
    pub(crate) decision_log: super::admission::DecisionLog,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding the lock leaves plain data that is still consistent (each update is
    // one insert or clear), so a poisoned lock is used as is.
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Governance {
    /// Drops everything cached for an instance (after a change in this process).
    pub fn forget(&self, instance_id: &str) {
        lock(&self.configs).remove(instance_id);
        lock(&self.policies).retain(|(instance, _), _| instance != instance_id);
    }
}

/// The action a rule body's `enforcement_actions` asks for: the strongest one.
pub fn action_of(rule: &Value) -> &'static str {
    let actions: Vec<&str> = rule["enforcement_actions"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|action| action["action"].as_str())
        .collect();
    if actions.contains(&"disallow") {
        "disallow"
    } else if actions.contains(&"audit_log") {
        "audit_log"
    } else {
        "none"
    }
}

/// The engine's form of a stored rule (its `rule_id` as the id).
pub fn engine_rule_json(rule_id: &str, rule: &Value) -> Value {
    let mut candidate = serde_json::Map::new();
    candidate.insert("id".into(), Value::String(rule_id.to_owned()));
    for key in ["description", "target", "required_config", "labels"] {
        if let Some(value) = rule.get(key) {
            candidate.insert(key.into(), value.clone());
        }
    }
    Value::Object(candidate)
}

async fn load_config(
    state: &AppState,
    instance_id: &str,
    generation: i64,
) -> ApiResult<InstanceConfig> {
    let by_id = |documents: Vec<palisade_store::Document>| {
        documents
            .into_iter()
            .map(|document| (document.id, document.body))
            .collect::<HashMap<_, _>>()
    };
    let bodies = |documents: Vec<palisade_store::Document>| {
        documents
            .into_iter()
            .map(|document| document.body)
            .collect::<Vec<_>>()
    };
    Ok(InstanceConfig {
        generation,
        rules: by_id(documents::all(state, instance_id, RULE).await?),
        rule_attachments: bodies(documents::all(state, instance_id, RULE_ATTACHMENT).await?),
        templates: by_id(documents::all(state, instance_id, TEMPLATE).await?),
        template_attachments: bodies(
            documents::all(state, instance_id, TEMPLATE_ATTACHMENT).await?,
        ),
    })
}

fn build_policy(config: &InstanceConfig, scope: &RequestScope) -> ApiResult<Policy> {
    let mut rule_ids: Vec<&str> = config
        .rule_attachments
        .iter()
        .filter(|attachment| attachment_covers(attachment, scope))
        .filter_map(|attachment| attachment["rule_id"].as_str())
        .collect();
    rule_ids.sort_unstable();
    rule_ids.dedup();
    let mut rules = Vec::new();
    let mut metadata = Vec::new();
    for rule_id in rule_ids {
        let Some(body) = config.rules.get(rule_id) else {
            continue;
        };
        // A disabled rule stays attached but is not evaluated.
        if body["enabled"] == Value::Bool(false) {
            continue;
        }
        match palisade_rules::parse_rule(&engine_rule_json(rule_id, body)) {
            Ok(rule) => {
                rules.push(rule);
                metadata.push(PolicyRule {
                    rule_id: rule_id.to_owned(),
                    name: body["name"].as_str().unwrap_or_default().to_owned(),
                    action: action_of(body),
                });
            }
            // Stored rules were validated on write; one that no longer parses (an engine
            // change) is skipped, loudly, rather than blocking every decision of the scope.
            Err(problems) => tracing::warn!(
                rule_id,
                problems = ?problems,
                "a stored configuration rule no longer parses; it is not enforced"
            ),
        }
    }
    let rule_set = RuleSet::compile(&rules, &ParameterValues::default()).map_err(|problems| {
        ApiError::internal(format!("compiling attached rules: {problems:?}"))
    })?;

    let mut templates: Vec<(u8, String, Template)> = Vec::new();
    for attachment in &config.template_attachments {
        if !attachment_covers(attachment, scope) {
            continue;
        }
        let Some(template_id) = attachment["template_id"].as_str() else {
            continue;
        };
        let Some(body) = config.templates.get(template_id) else {
            continue;
        };
        match serde_json::from_value::<Template>(body.clone()) {
            Ok(mut template) => {
                template.id = Some(template_id.to_owned());
                templates.push((
                    specificity(&attachment["included_scope"]),
                    template_id.to_owned(),
                    template,
                ));
            }
            Err(error) => tracing::warn!(
                template_id,
                %error,
                "a stored template no longer parses; it is not applied"
            ),
        }
    }
    // Most specific first, then by id so that the order (and so the patch) is stable.
    templates.sort_by(|left, right| right.0.cmp(&left.0).then_with(|| left.1.cmp(&right.1)));
    // A template attached at two levels applies once, at its most specific one.
    let mut seen = std::collections::HashSet::new();
    templates.retain(|(_, template_id, _)| seen.insert(template_id.clone()));
    Ok(Policy {
        rule_set,
        rules: metadata,
        templates: templates
            .into_iter()
            .map(|(_, _, template)| template)
            .collect(),
    })
}

/// Returns the policy of a request scope, from the cache when the generation still matches.
pub async fn policy_for(
    state: &AppState,
    instance_id: &str,
    scope: &RequestScope,
) -> ApiResult<Arc<Policy>> {
    let governance = &state.governance;
    let generation = super::generation(state, instance_id).await?;
    let key = (instance_id.to_owned(), scope.clone());
    if let Some((cached_generation, policy)) = lock(&governance.policies).get(&key)
        && *cached_generation == generation
    {
        return Ok(policy.clone());
    }
    let cached_config = lock(&governance.configs)
        .get(instance_id)
        .filter(|config| config.generation == generation)
        .cloned();
    let config = match cached_config {
        Some(config) => config,
        None => {
            let config = Arc::new(load_config(state, instance_id, generation).await?);
            lock(&governance.configs).insert(instance_id.to_owned(), config.clone());
            config
        }
    };
    let policy = Arc::new(build_policy(&config, scope)?);
    let mut policies = lock(&governance.policies);
    if policies.len() >= MAX_CACHED_POLICIES {
        policies.clear();
    }
    policies.insert(key, (generation, policy.clone()));
    Ok(policy)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn config() -> InstanceConfig {
        let rule = |name: &str, enabled: bool, action: &str| {
            json!({"name": name, "description": name, "enabled": enabled,
                   "target": {"service_name": "s3", "resource_kind": "bucket"},
                   "required_config": {"property": "encrypted", "operator": "is_true"},
                   "enforcement_actions": [{"action": action}]})
        };
        let attach = |rule_id: &str, scope_type: &str, scope_id: &str| {
            json!({"rule_id": rule_id, "template_id": rule_id,
                   "included_scope": {"scope_type": scope_type, "scope_id": scope_id}})
        };
        let template = |property: &str| {
            json!({"target": {"service_name": "s3", "resource_kind": "bucket"},
                   "customized_defaults": [{"property": property, "value": "from-template"}]})
        };
        InstanceConfig {
            generation: 1,
            rules: [
                ("r-on".to_owned(), rule("on", true, "disallow")),
                ("r-off".to_owned(), rule("off", false, "disallow")),
                (
                    "r-elsewhere".to_owned(),
                    rule("elsewhere", true, "audit_log"),
                ),
            ]
            .into(),
            rule_attachments: vec![
                attach("r-on", "account", "a"),
                attach("r-off", "account", "a"),
                attach("r-elsewhere", "account", "b"),
                attach("r-missing", "account", "a"),
            ],
            templates: [
                ("t-account".to_owned(), template("x")),
                ("t-group".to_owned(), template("x")),
            ]
            .into(),
            template_attachments: vec![
                attach("t-account", "account", "a"),
                attach("t-group", "account.resource_group", "rg"),
            ],
        }
    }

    #[test]
    fn policies_keep_attached_enabled_rules_and_order_templates_by_scope() {
        let scope = RequestScope {
            account_id: "a".into(),
            resource_group: Some("rg".into()),
            enterprise_id: None,
            account_group_id: None,
        };
        let policy = build_policy(&config(), &scope).expect("builds");
        let ids: Vec<&str> = policy
            .rules
            .iter()
            .map(|rule| rule.rule_id.as_str())
            .collect();
        assert_eq!(ids, ["r-on"]);
        assert_eq!(policy.rules[0].action, "disallow");
        let templates: Vec<Option<&str>> = policy
            .templates
            .iter()
            .map(|template| template.id.as_deref())
            .collect();
        assert_eq!(templates, [Some("t-group"), Some("t-account")]);
    }

    #[test]
    fn the_strongest_action_wins() {
        assert_eq!(
            action_of(
                &json!({"enforcement_actions": [{"action": "audit_log"}, {"action": "disallow"}]})
            ),
            "disallow"
        );
        assert_eq!(action_of(&json!({"enforcement_actions": []})), "none");
    }
}
