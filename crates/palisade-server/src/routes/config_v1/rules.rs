//! Rules: `/config/v1/rules[/{rule_id}]`.
//!
//! Bodies are IBM's `RuleRequest`; `target` and `required_config` are checked by the rule
//! engine's own validator, so a rule the API accepts is one the admission endpoint can evaluate,
//! and every mistake comes back at once with its JSON pointer.

use std::collections::{HashMap, HashSet};

use axum::Extension;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use palisade_model::error::ErrorCode;
use serde_json::{Map, Value, json};

use super::{
    AUDIT_FIELDS, OffsetParams, bulk_status, bulk_trace, encode_query_value, failed_entry,
    offset_page, required_if_match, with_etag,
};
use crate::auth::{Authorized, ConfigWrite, ReadAccess};
use crate::error::{ApiError, ApiResult};
use crate::json::ApiJson;
use crate::middleware::TraceId;
use crate::routes::v3::account_of;
use crate::service::documents::{self, BodyErrors, body_object, new_id, timestamp};
use crate::service::governance::policy::engine_rule_json;
use crate::service::governance::{self, RULE, RULE_ATTACHMENT};
use crate::state::AppState;

const REQUIRED: &[&str] = &[
    "name",
    "description",
    "target",
    "required_config",
    "enforcement_actions",
];
const OPTIONAL: &[&str] = &["account_id", "rule_type", "labels", "enabled"];
/// Fields of a rule as read that an update body may carry back.
const READ_ONLY: &[&str] = &["rule_id", "number_of_attachments"];

/// Validates a rule body at `pointer` and returns the stored fields (without audit fields).
fn normalise(
    errors: &mut BodyErrors,
    request: &Map<String, Value>,
    pointer: &str,
    rule_id: &str,
) -> Map<String, Value> {
    let mut allowed = OPTIONAL.to_vec();
    allowed.extend_from_slice(READ_ONLY);
    allowed.extend_from_slice(AUDIT_FIELDS);
    errors.check_keys(request, pointer, REQUIRED, &allowed);
    errors.check_string(request, pointer, "name", true);
    errors.check_string(request, pointer, "description", false);
    errors.check_string(request, pointer, "account_id", true);
    errors.check_enum(request, pointer, "rule_type", &["user_defined"]);
    errors.check_bool(request, pointer, "enabled");
    if request.contains_key("enforcement_actions") {
        for (action_pointer, action) in errors.objects(request, pointer, "enforcement_actions") {
            errors.check_keys(action, &action_pointer, &["action"], &[]);
            errors.check_enum(
                action,
                &action_pointer,
                "action",
                &["disallow", "audit_log"],
            );
        }
    }
    if request.contains_key("target") && request.contains_key("required_config") {
        let candidate = engine_rule_json(rule_id, &Value::Object(request.clone()));
        if let Err(problems) = palisade_rules::parse_rule(&candidate) {
            for problem in problems {
                errors.push(
                    ErrorCode::InvalidField,
                    &format!("{pointer}{}", problem.pointer),
                    problem.message,
                );
            }
        }
    }
    let mut rule = Map::new();
    for key in [
        "name",
        "description",
        "target",
        "required_config",
        "enforcement_actions",
    ] {
        if let Some(value) = request.get(key) {
            rule.insert(key.into(), value.clone());
        }
    }
    // IBM's SDK reads `operator` as required on target attributes; the engine defaults it.
    if let Some(attributes) = rule
        .get_mut("target")
        .and_then(|target| target.get_mut("additional_target_attributes"))
        .and_then(Value::as_array_mut)
    {
        for attribute in attributes.iter_mut().filter_map(Value::as_object_mut) {
            attribute
                .entry("operator")
                .or_insert_with(|| json!("string_equals"));
        }
    }
    rule.insert("rule_type".into(), json!("user_defined"));
    rule.insert(
        "labels".into(),
        request.get("labels").cloned().unwrap_or(json!([])),
    );
    if let Some(enabled) = request.get("enabled").filter(|value| value.is_boolean()) {
        rule.insert("enabled".into(), enabled.clone());
    }
    rule
}

/// How many attachments each rule has.
async fn attachment_counts(state: &AppState, instance_id: &str) -> ApiResult<HashMap<String, u64>> {
    let mut counts = HashMap::new();
    for attachment in documents::all(state, instance_id, RULE_ATTACHMENT).await? {
        if let Some(rule_id) = attachment.body["rule_id"].as_str() {
            *counts.entry(rule_id.to_owned()).or_insert(0) += 1;
        }
    }
    Ok(counts)
}

/// A rule as the API shows it.
fn view(body: &Value, number_of_attachments: u64) -> Value {
    let mut view = body.clone();
    view["number_of_attachments"] = json!(number_of_attachments);
    view
}

/// Creates rules in bulk; each entry answers on its own (201 all created, 207 otherwise).
#[utoipa::path(post, path = "/instances/{instance_id}/config/v1/rules", tag = "config governance", security(("bearer" = [])),
    params(("instance_id" = String, Path), ("Transaction-Id" = Option<String>, Header)),
    request_body = serde_json::Value,
    responses((status = 201, body = serde_json::Value), (status = 207, body = serde_json::Value),
        (status = 400, body = palisade_model::error::ErrorBody)))]
pub async fn create_rules(
    State(state): State<AppState>,
    auth: Authorized<ConfigWrite>,
    Path(_instance_id): Path<String>,
    Extension(trace): Extension<TraceId>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<Value>,
) -> ApiResult<Response> {
    let request = body_object(body)?;
    let mut errors = BodyErrors::default();
    errors.check_keys(&request, "", &["rules"], &[]);
    let entries = errors.objects(&request, "", "rules");
    if request.get("rules").is_some_and(Value::is_array) && entries.is_empty() {
        errors.push(
            ErrorCode::InvalidField,
            "/rules",
            "must list at least one rule",
        );
    }
    errors.finish(())?;
    let trace = bulk_trace(&headers, Some(&trace));
    let instance_id = auth.instance_id().to_owned();
    let mut answers = Vec::with_capacity(entries.len());
    let mut created = 0;
    for (index, (pointer, entry)) in entries.iter().enumerate() {
        // IBM numbers the entries a client left without a `request_id` from 1.
        let request_id = entry
            .get("request_id")
            .filter(|value| !value.is_null())
            .cloned()
            .unwrap_or_else(|| json!((index + 1).to_string()));
        match create_one(&state, &auth, &instance_id, entry, pointer).await {
            Ok(rule) => {
                created += 1;
                answers.push(
                    json!({"request_id": request_id, "status_code": 201, "rule": view(&rule, 0)}),
                );
            }
            Err(error) => answers.push(failed_entry(&request_id, &error, &trace)),
        }
    }
    if created > 0 {
        governance::changed(&state, &instance_id).await?;
    }
    Ok((
        bulk_status(created, entries.len()),
        ApiJson(json!({"rules": answers})),
    )
        .into_response())
}

async fn create_one(
    state: &AppState,
    auth: &Authorized<ConfigWrite>,
    instance_id: &str,
    entry: &Map<String, Value>,
    pointer: &str,
) -> ApiResult<Value> {
    let mut errors = BodyErrors::default();
    errors.check_keys(entry, pointer, &["rule"], &["request_id"]);
    errors.check_string(entry, pointer, "request_id", false);
    let rule_id = format!("rule-{}", new_id());
    let rule_pointer = format!("{pointer}/rule");
    let mut rule = match entry.get("rule") {
        Some(Value::Object(request)) => normalise(&mut errors, request, &rule_pointer, &rule_id),
        None | Some(Value::Null) => Map::new(),
        Some(_) => {
            errors.push(ErrorCode::InvalidField, &rule_pointer, "must be an object");
            Map::new()
        }
    };
    errors.finish(())?;
    let account = account_of(
        entry
            .get("rule")
            .and_then(|rule| rule.get("account_id"))
            .and_then(Value::as_str),
        instance_id,
    );
    let now = timestamp(chrono::Utc::now());
    rule.insert("rule_id".into(), json!(rule_id));
    rule.insert("account_id".into(), json!(account));
    rule.entry("enabled").or_insert(json!(true));
    rule.insert("creation_date".into(), json!(now));
    rule.insert("created_by".into(), json!(auth.key.id));
    rule.insert("modification_date".into(), json!(now));
    rule.insert("modified_by".into(), json!(auth.key.id));
    let body = Value::Object(rule);
    documents::insert(state, instance_id, RULE, &rule_id, &body).await?;
    Ok(body)
}

/// Query parameters of the rule list.
#[derive(Debug, Default, serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct RuleFilter {
    /// Only rules of this account.
    pub account_id: Option<String>,
    /// `true`: only rules with attachments; `false`: only rules without.
    pub attached: Option<String>,
    /// Comma-separated labels; rules with any of them.
    pub labels: Option<String>,
    /// Comma-separated scope ids; rules attached to any of them.
    pub scopes: Option<String>,
}

fn split_list(text: &Option<String>) -> Option<HashSet<String>> {
    text.as_ref().map(|text| {
        text.split(',')
            .map(str::trim)
            .filter(|item| !item.is_empty())
            .map(str::to_owned)
            .collect()
    })
}

/// Lists rules, filtered by account, attachment, labels and attached scopes.
#[utoipa::path(get, path = "/instances/{instance_id}/config/v1/rules", tag = "config governance", security(("bearer" = [])),
    params(("instance_id" = String, Path), RuleFilter, OffsetParams),
    responses((status = 200, body = serde_json::Value), (status = 400, body = palisade_model::error::ErrorBody)))]
pub async fn list_rules(
    State(state): State<AppState>,
    auth: Authorized<ReadAccess>,
    Path(instance_id): Path<String>,
    Query(filter): Query<RuleFilter>,
    Query(paging): Query<OffsetParams>,
) -> ApiResult<ApiJson<Value>> {
    let page = paging.parse()?;
    let attached = match filter.attached.as_deref() {
        None => None,
        Some("true") => Some(true),
        Some("false") => Some(false),
        Some(_) => {
            return Err(ApiError::new(
                ErrorCode::InvalidParameter,
                "`attached` must be true or false",
            )
            .with_target(palisade_model::error::ErrorTarget::parameter("attached")));
        }
    };
    let labels = split_list(&filter.labels);
    let scopes = split_list(&filter.scopes);
    let attachments = documents::all(&state, auth.instance_id(), RULE_ATTACHMENT).await?;
    let mut counts: HashMap<&str, u64> = HashMap::new();
    let mut scopes_of: HashMap<&str, HashSet<&str>> = HashMap::new();
    for attachment in &attachments {
        let Some(rule_id) = attachment.body["rule_id"].as_str() else {
            continue;
        };
        *counts.entry(rule_id).or_insert(0) += 1;
        if let Some(scope_id) = attachment.body["included_scope"]["scope_id"].as_str() {
            scopes_of.entry(rule_id).or_default().insert(scope_id);
        }
    }
    let rules = documents::all(&state, auth.instance_id(), RULE).await?;
    let items: Vec<Value> = rules
        .iter()
        .filter(|rule| {
            let count = counts.get(rule.id.as_str()).copied().unwrap_or(0);
            filter
                .account_id
                .as_deref()
                .is_none_or(|account| rule.body["account_id"] == account)
                && attached.is_none_or(|wanted| wanted == (count > 0))
                && labels.as_ref().is_none_or(|wanted| {
                    rule.body["labels"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .filter_map(Value::as_str)
                        .any(|label| wanted.contains(label))
                })
                && scopes.as_ref().is_none_or(|wanted| {
                    scopes_of
                        .get(rule.id.as_str())
                        .is_some_and(|attached| attached.iter().any(|id| wanted.contains(*id)))
                })
        })
        .map(|rule| {
            view(
                &rule.body,
                counts.get(rule.id.as_str()).copied().unwrap_or(0),
            )
        })
        .collect();
    let query = filter
        .account_id
        .as_deref()
        .map(|account| format!("account_id={}&", encode_query_value(account)))
        .unwrap_or_default();
    Ok(ApiJson(offset_page(
        &format!("/instances/{instance_id}/config/v1/rules"),
        &query,
        "rules",
        page,
        items,
    )))
}

/// Returns one rule with its ETag.
#[utoipa::path(get, path = "/instances/{instance_id}/config/v1/rules/{rule_id}", tag = "config governance", security(("bearer" = [])),
    params(("instance_id" = String, Path), ("rule_id" = String, Path)),
    responses((status = 200, body = serde_json::Value), (status = 404, body = palisade_model::error::ErrorBody)))]
pub async fn get_rule(
    State(state): State<AppState>,
    auth: Authorized<ReadAccess>,
    Path((_instance_id, rule_id)): Path<(String, String)>,
) -> ApiResult<Response> {
    let stored = documents::get(&state, auth.instance_id(), RULE, &rule_id).await?;
    let count = attachment_counts(&state, auth.instance_id())
        .await?
        .remove(&rule_id)
        .unwrap_or(0);
    Ok(with_etag(
        StatusCode::OK,
        view(&stored.body, count),
        stored.version,
    ))
}

/// Replaces a rule; needs `If-Match` with the rule's ETag.
#[utoipa::path(put, path = "/instances/{instance_id}/config/v1/rules/{rule_id}", tag = "config governance", security(("bearer" = [])),
    params(("instance_id" = String, Path), ("rule_id" = String, Path), ("If-Match" = String, Header, description = "The rule's ETag")),
    request_body = serde_json::Value,
    responses((status = 200, body = serde_json::Value), (status = 400, body = palisade_model::error::ErrorBody),
        (status = 404, body = palisade_model::error::ErrorBody), (status = 412, body = palisade_model::error::ErrorBody),
        (status = 428, body = palisade_model::error::ErrorBody)))]
pub async fn update_rule(
    State(state): State<AppState>,
    auth: Authorized<ConfigWrite>,
    Path((_instance_id, rule_id)): Path<(String, String)>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<Value>,
) -> ApiResult<Response> {
    let instance_id = auth.instance_id().to_owned();
    let previous = documents::get(&state, &instance_id, RULE, &rule_id).await?;
    let expected = required_if_match(&headers, previous.version, "rule")?;
    let request = body_object(body)?;
    let mut errors = BodyErrors::default();
    let mut rule = normalise(&mut errors, &request, "", &rule_id);
    errors.finish(())?;
    rule.insert("rule_id".into(), json!(rule_id));
    rule.insert(
        "account_id".into(),
        json!(account_of(
            request.get("account_id").and_then(Value::as_str),
            previous.body["account_id"].as_str().unwrap_or(&instance_id),
        )),
    );
    if !rule.contains_key("enabled") {
        rule.insert(
            "enabled".into(),
            previous.body.get("enabled").cloned().unwrap_or(json!(true)),
        );
    }
    for field in ["creation_date", "created_by"] {
        rule.insert(field.into(), previous.body[field].clone());
    }
    rule.insert(
        "modification_date".into(),
        json!(timestamp(chrono::Utc::now())),
    );
    rule.insert("modified_by".into(), json!(auth.key.id));
    let body = Value::Object(rule);
    let stored =
        documents::replace(&state, &instance_id, RULE, &rule_id, &body, Some(expected)).await?;
    governance::changed(&state, &instance_id).await?;
    let count = attachment_counts(&state, &instance_id)
        .await?
        .remove(&rule_id)
        .unwrap_or(0);
    Ok(with_etag(
        StatusCode::OK,
        view(&body, count),
        stored.version,
    ))
}

/// Deletes a rule and its attachments.
#[utoipa::path(delete, path = "/instances/{instance_id}/config/v1/rules/{rule_id}", tag = "config governance", security(("bearer" = [])),
    params(("instance_id" = String, Path), ("rule_id" = String, Path)),
    responses((status = 204), (status = 404, body = palisade_model::error::ErrorBody)))]
pub async fn delete_rule(
    State(state): State<AppState>,
    auth: Authorized<ConfigWrite>,
    Path((_instance_id, rule_id)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    let instance_id = auth.instance_id().to_owned();
    documents::get(&state, &instance_id, RULE, &rule_id).await?;
    // Attachments first: a rule left without attachments is harmless, an attachment without its
    // rule is not shown anywhere.
    for attachment in documents::all(&state, &instance_id, RULE_ATTACHMENT).await? {
        if attachment.body["rule_id"] == rule_id.as_str() {
            state
                .store
                .delete_document(&instance_id, RULE_ATTACHMENT.store_kind, &attachment.id)
                .await?;
        }
    }
    documents::delete(&state, &instance_id, RULE, &rule_id).await?;
    governance::changed(&state, &instance_id).await?;
    Ok(StatusCode::NO_CONTENT)
}
