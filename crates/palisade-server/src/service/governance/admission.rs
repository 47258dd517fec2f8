//! Admission decisions: a provisioning request in, allowed or denied out, and the decision log.
//!
//! The request is `{"operation": "create" | "update", "resource": {…}}` (the resource as
//! proposed, in the normalised shape; its envelope names the account, resource group and tags),
//! optionally with `enterprise_id` / `account_group_id` (where the account sits, for scopes of
//! those types) and `source` (who is asking: `api`, `kubernetes`, `terraform` …, for the log).
//!
//! 1. The templates attached to the request's scope fill the properties the request leaves
//!    unset; the additions are a JSON Patch on the resource (`/config/…`).
//! 2. Every attached, enabled rule whose target matches the result evaluates it. A rule that
//!    fails — or cannot be evaluated (`error`), which for a guardrail must not mean "allowed" —
//!    is a violation with its action.
//! 3. Any `disallow` violation denies; `audit_log` (and monitor-only) violations allow.
//!    Violations are listed `disallow` first, then `audit_log`, then monitor-only.
//! 4. The decision (who, what, which rules, outcome) goes to the decision log.
//!
//! The log is written by a batching writer ([`DecisionLog`]) that commits whatever decisions are
//! waiting in one transaction, after the answer: see there for why, and for what a crash can
//! lose.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use palisade_model::error::{ErrorCode, ErrorTarget};
use palisade_model::resource::Resource;
use palisade_rules::templates::{PatchOperation, apply_templates};
use palisade_rules::{Outcome, Status};
use palisade_store::StoredDecision;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use tokio::sync::{mpsc, oneshot};

use super::policy::policy_for;
use super::scope::RequestScope;
use crate::error::{ApiError, ApiResult};
use crate::service::documents::{BodyErrors, timestamp};
use crate::state::AppState;

/// A parsed provisioning request.
#[derive(Debug, Clone)]
pub struct AdmissionRequest {
    /// `create` or `update`.
    pub operation: String,
    pub resource: Resource,
    pub scope: RequestScope,
    /// Who is asking (`api`, `kubernetes`, `terraform` …).
    pub source: String,
}

/// One violated rule.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Violation {
    pub rule_id: String,
    pub rule_name: String,
    /// `disallow`, `audit_log`, or `none` (monitor only).
    pub action: String,
    /// `failure` or `error`.
    pub status: String,
    /// The deciding conditions: property, operator, expected and found values, reason.
    #[schema(value_type = Vec<Object>)]
    pub details: Vec<palisade_rules::Detail>,
}

/// The answer to a provisioning request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AdmissionDecision {
    /// The decision's id in the log.
    pub decision_id: String,
    pub allowed: bool,
    pub violations: Vec<Violation>,
    /// What the templates added, as an RFC 6902 JSON Patch on the resource.
    #[schema(value_type = Vec<Object>)]
    pub patch: Vec<Value>,
    /// The resource with the templates' defaults filled in.
    #[schema(value_type = Object)]
    pub resource: Value,
    /// The rules that evaluated the resource (attached, enabled, target matching).
    pub rules_evaluated: Vec<String>,
    /// The templates that applied, most specific scope first.
    pub templates_applied: Vec<String>,
    /// Defaults that could not be placed (the path runs through a non-object), with why.
    #[schema(value_type = Vec<Object>)]
    pub skipped_defaults: Vec<Value>,
}

const REQUEST_KEYS: &[&str] = &["resource", "enterprise_id", "account_group_id", "source"];

/// Reads a provisioning request body, naming every mistake by JSON pointer.
pub fn parse_request(body: Value) -> ApiResult<AdmissionRequest> {
    let Value::Object(request) = body else {
        return Err(
            ApiError::new(ErrorCode::InvalidField, "the body must be a JSON object")
                .with_target(ErrorTarget::field("")),
        );
    };
    let mut errors = BodyErrors::default();
    let mut allowed = vec!["operation"];
    allowed.extend_from_slice(REQUEST_KEYS);
    errors.check_keys(&request, "", &["operation", "resource"], &allowed);
    errors.check_enum(&request, "", "operation", &["create", "update"]);
    for key in ["enterprise_id", "account_group_id", "source"] {
        errors.check_string(&request, "", key, true);
    }
    let resource = match request.get("resource") {
        Some(Value::Object(resource)) => {
            let mut resource = resource.clone();
            // A resource not created yet has no provider id: name it by its name, so the log
            // still says what was asked for.
            if resource.get("id").is_none_or(Value::is_null) {
                let id = resource
                    .get("name")
                    .and_then(Value::as_str)
                    .unwrap_or("(new)")
                    .to_owned();
                resource.insert("id".into(), Value::String(id));
            }
            match serde_path_to_error::deserialize::<_, Resource>(Value::Object(resource)) {
                Ok(resource) => Some(resource),
                Err(error) => {
                    let pointer = format!("/resource{}", pointer_of(error.path()));
                    errors.push(ErrorCode::InvalidField, &pointer, error.inner().to_string());
                    None
                }
            }
        }
        None | Some(Value::Null) => None,
        Some(_) => {
            errors.push(ErrorCode::InvalidField, "/resource", "must be an object");
            None
        }
    };
    errors.finish(())?;
    let Some(resource) = resource else {
        return Err(ApiError::internal(
            "admission request checked without a resource",
        ));
    };
    let text = |key: &str| request.get(key).and_then(Value::as_str).map(str::to_owned);
    Ok(AdmissionRequest {
        operation: text("operation").unwrap_or_default(),
        scope: RequestScope {
            account_id: resource.account_id.clone(),
            resource_group: resource.resource_group.clone(),
            enterprise_id: text("enterprise_id"),
            account_group_id: text("account_group_id"),
        },
        source: text("source").unwrap_or_else(|| "api".to_owned()),
        resource,
    })
}

/// serde_path_to_error's path as a JSON pointer (`/tags`), or empty for the value itself.
fn pointer_of(path: &serde_path_to_error::Path) -> String {
    use serde_path_to_error::Segment;
    let mut pointer = String::new();
    for segment in path.iter() {
        match segment {
            Segment::Seq { index } => pointer.push_str(&format!("/{index}")),
            Segment::Map { key } | Segment::Enum { variant: key } => {
                pointer.push('/');
                pointer.push_str(&crate::json::escape_pointer_segment(key));
            }
            Segment::Unknown => {}
        }
    }
    pointer
}

/// The JSON Patch (on the resource's `config`) that the templates attached to `scope` would
/// apply to `resource`: what a mutating webhook returns. Nothing is logged.
pub async fn template_patch(
    state: &AppState,
    instance_id: &str,
    scope: &RequestScope,
    resource: &Resource,
) -> ApiResult<Vec<PatchOperation>> {
    let policy = policy_for(state, instance_id, scope).await?;
    let applicable: Vec<_> = policy
        .templates
        .iter()
        .filter(|template| template.applies_to(resource))
        .cloned()
        .collect();
    if applicable.is_empty() {
        return Ok(Vec::new());
    }
    Ok(apply_templates(&resource.config, &applicable).patch)
}

/// Decides a request and logs the decision on behalf of `key_id`.
pub async fn decide(
    state: &AppState,
    instance_id: &str,
    key_id: &str,
    request: AdmissionRequest,
) -> ApiResult<AdmissionDecision> {
    let now = Utc::now();
    let policy = policy_for(state, instance_id, &request.scope).await?;
    let mut resource = request.resource;

    let applicable: Vec<_> = policy
        .templates
        .iter()
        .filter(|template| template.applies_to(&resource))
        .cloned()
        .collect();
    let mut patch = Vec::new();
    let mut skipped_defaults = Vec::new();
    if !applicable.is_empty() {
        let applied = apply_templates(&resource.config, &applicable);
        resource.config = applied.config;
        for operation in applied.patch {
            patch.push(
                json!({"op": operation.op, "path": format!("/config{}", operation.path),
                              "value": operation.value}),
            );
        }
        for skipped in applied.skipped {
            skipped_defaults.push(json!({"property": skipped.property, "reason": skipped.reason}));
        }
    }

    let mut outcomes: Vec<Outcome> = Vec::new();
    policy
        .rule_set
        .evaluate_outcomes(&resource, now, &mut outcomes);
    let mut violations = Vec::new();
    let mut rules_evaluated = Vec::with_capacity(outcomes.len());
    for outcome in outcomes {
        let Some(rule) = policy.rules.get(outcome.rule_index) else {
            continue;
        };
        rules_evaluated.push(rule.rule_id.clone());
        if outcome.status == Status::Pass {
            continue;
        }
        violations.push(Violation {
            rule_id: rule.rule_id.clone(),
            rule_name: rule.name.clone(),
            action: rule.action.to_owned(),
            status: outcome.status.as_str().to_owned(),
            details: outcome.details,
        });
    }
    // What blocks first, then what is recorded; by rule id within an action.
    let rank = |action: &str| match action {
        "disallow" => 0,
        "audit_log" => 1,
        _ => 2,
    };
    violations.sort_by(|left, right| {
        rank(&left.action)
            .cmp(&rank(&right.action))
            .then_with(|| left.rule_id.cmp(&right.rule_id))
    });
    let allowed = !violations
        .iter()
        .any(|violation| violation.action == "disallow");
    let decision = AdmissionDecision {
        decision_id: uuid::Uuid::now_v7().to_string(),
        allowed,
        violations,
        patch,
        resource: serde_json::to_value(&resource)
            .map_err(|error| ApiError::internal(format!("encoding a resource: {error}")))?,
        rules_evaluated,
        templates_applied: applicable
            .iter()
            .filter_map(|template| template.id.clone())
            .collect(),
        skipped_defaults,
    };
    let stored = stored_decision(
        &decision,
        &resource,
        key_id,
        &request.source,
        &request.operation,
        now,
    );
    state
        .governance
        .decision_log
        .record(state, instance_id, stored)
        .await?;
    Ok(decision)
}

/// The log row of a decision; its body is what the decision listing shows.
fn stored_decision(
    decision: &AdmissionDecision,
    resource: &Resource,
    key_id: &str,
    source: &str,
    operation: &str,
    decided_at: DateTime<Utc>,
) -> StoredDecision {
    let body = json!({
        "decision_id": decision.decision_id,
        "decided_at": timestamp(decided_at),
        "key_id": key_id,
        "source": source,
        "operation": operation,
        "allowed": decision.allowed,
        "resource": {
            "id": resource.id,
            "environment": resource.environment,
            "account_id": resource.account_id,
            "service_name": resource.service_name,
            "resource_kind": resource.resource_kind,
            "resource_group": resource.resource_group,
            "region": resource.region,
            "name": resource.name,
        },
        // Which rules and why in short (the properties at fault); the full details with
        // expected and found values went back in the answer, and would multiply the log's size.
        "violations": decision.violations.iter().map(|violation| json!({
            "rule_id": violation.rule_id,
            "rule_name": violation.rule_name,
            "action": violation.action,
            "status": violation.status,
            "properties": violation.details.iter().map(|detail| detail.property.as_str()).collect::<Vec<_>>(),
        })).collect::<Vec<_>>(),
        "rules_evaluated": decision.rules_evaluated,
        "templates_applied": decision.templates_applied,
        "patch": decision.patch,
    });
    StoredDecision {
        id: decision.decision_id.clone(),
        decided_at,
        key_id: key_id.to_owned(),
        source: source.to_owned(),
        operation: operation.to_owned(),
        allowed: decision.allowed,
        account_id: resource.account_id.clone(),
        service_name: resource.service_name.clone(),
        resource_kind: resource.resource_kind.clone(),
        resource_id: resource.id.clone(),
        violated_rule_ids: decision
            .violations
            .iter()
            .map(|violation| violation.rule_id.clone())
            .collect(),
        body,
    }
}

/// Decisions one group commit writes at most.
const MAX_BATCH: usize = 256;
/// Attempts at committing one batch before its decisions are given up (and logged as lost).
const WRITE_ATTEMPTS: u32 = 3;

/// What the decision log writer receives.
enum Message {
    /// A decision of an instance to append.
    Decision(String, Box<StoredDecision>),
    /// Answered once every decision sent before it is committed (or given up).
    Flush(oneshot::Sender<()>),
}

/// The decision log writer: decisions are queued and committed in batches by one task, started
/// on first use in the current runtime.
///
/// The answer to a request does not wait for its decision's commit: a durable commit (an fsync
/// with `synchronous=FULL`) costs milliseconds on ordinary disks, more than the whole decision,
/// and a provisioning pipeline or the Kubernetes API server should not wait on the audit trail.
/// What a crash can lose is the batch in flight (decisions of the last few milliseconds); a
/// graceful shutdown flushes ([`DecisionLog::flush`]). The queue is bounded, so a store that
/// falls behind slows admission down instead of growing memory. Reads of the log flush first,
/// so a client sees its own decisions.
#[derive(Default)]
pub struct DecisionLog {
    sender: std::sync::OnceLock<mpsc::Sender<Message>>,
}

impl DecisionLog {
    /// Queues a decision for the log.
    pub async fn record(
        &self,
        state: &AppState,
        instance_id: &str,
        decision: StoredDecision,
    ) -> ApiResult<()> {
        let sender = self.sender.get_or_init(|| {
            let (sender, receiver) = mpsc::channel(4 * MAX_BATCH);
            tokio::spawn(write_batches(state.clone(), receiver));
            sender
        });
        match sender
            .send(Message::Decision(
                instance_id.to_owned(),
                Box::new(decision),
            ))
            .await
        {
            Ok(()) => Ok(()),
            // The writer's runtime is gone (a test runtime ended): write directly.
            Err(mpsc::error::SendError(Message::Decision(instance_id, decision))) => Ok(state
                .store
                .record_decisions(&instance_id, &[*decision])
                .await?),
            Err(mpsc::error::SendError(Message::Flush(_))) => Ok(()),
        }
    }

    /// Returns once every decision queued before the call is committed (or given up).
    pub async fn flush(&self) {
        let Some(sender) = self.sender.get() else {
            return;
        };
        let (done, flushed) = oneshot::channel();
        if sender.send(Message::Flush(done)).await.is_ok() {
            let _ = flushed.await;
        }
    }
}

/// Takes whatever is waiting (up to [`MAX_BATCH`] messages), commits the decisions one
/// transaction per instance, then answers the flushes that came with them.
async fn write_batches(state: AppState, mut receiver: mpsc::Receiver<Message>) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while receiver.recv_many(&mut batch, MAX_BATCH).await > 0 {
        let mut by_instance: HashMap<String, Vec<StoredDecision>> = HashMap::new();
        let mut flushes = Vec::new();
        for message in batch.drain(..) {
            match message {
                Message::Decision(instance_id, decision) => {
                    by_instance.entry(instance_id).or_default().push(*decision);
                }
                Message::Flush(done) => flushes.push(done),
            }
        }
        for (instance_id, decisions) in by_instance {
            write_with_retries(&state, &instance_id, &decisions).await;
        }
        for done in flushes {
            let _ = done.send(());
        }
    }
}

async fn write_with_retries(state: &AppState, instance_id: &str, decisions: &[StoredDecision]) {
    for attempt in 1..=WRITE_ATTEMPTS {
        match state.store.record_decisions(instance_id, decisions).await {
            // A conflict means an earlier attempt did commit before its error reached us.
            Ok(()) | Err(palisade_store::StoreError::Conflict(_)) => return,
            Err(error) if attempt < WRITE_ATTEMPTS => {
                tracing::warn!(instance_id, attempt, error = %error, "writing admission decisions failed; retrying");
                tokio::time::sleep(std::time::Duration::from_millis(100 * u64::from(attempt)))
                    .await;
            }
            Err(error) => tracing::error!(
                instance_id,
                lost = decisions.len(),
                error = %error,
                "admission decisions could not be written to the decision log and are lost"
            ),
        }
    }
}

/// Lists the decision log as the API shows it.
pub fn decision_view(decision: &StoredDecision) -> Value {
    let mut body = match &decision.body {
        Value::Object(map) => map.clone(),
        _ => Map::new(),
    };
    body.insert("decision_id".into(), json!(decision.id));
    body.insert("allowed".into(), json!(decision.allowed));
    Value::Object(body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_checked_with_pointers() {
        let error = parse_request(json!({"operation": "delete", "resource": {"service_name": 3}}))
            .expect_err("refused");
        let targets: Vec<String> = error
            .items
            .iter()
            .filter_map(|item| item.target.clone().map(|target| target.name))
            .collect();
        assert!(targets.contains(&"/operation".to_owned()), "{targets:?}");
        assert!(
            targets.iter().any(|target| target.starts_with("/resource")),
            "{targets:?}"
        );
        let request = parse_request(json!({"operation": "create", "source": "terraform",
            "resource": {"name": "b", "service_name": "s3", "resource_kind": "bucket",
                         "account_id": "a", "resource_group": "rg"}}))
        .expect("valid");
        assert_eq!(request.resource.id, "b");
        assert_eq!(request.scope.resource_group.as_deref(), Some("rg"));
        assert_eq!(request.source, "terraform");
    }
}
