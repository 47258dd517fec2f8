//! Configuration Governance v1 (IBM compatible) under `/instances/{instance_id}/config/v1`, so
//! IBM's `ibm-scc` SDK (`ConfigurationGovernanceV1`) works with the service URL
//! `<palisade>/instances/{instance_id}`:
//!
//! - rules: bulk create with multi-status answers, list with filters (`account_id`, `attached`,
//!   `labels`, `scopes`, `limit`/`offset`), get, `PUT` with `If-Match`, delete;
//! - rule attachments (`included_scope`, `excluded_scopes`);
//! - templates (`customized_defaults`) and template attachments, on the same path pattern as
//!   IBM's Go SDK (`/config/v1/templates[/{id}[/attachments[/{id}]]]`); attaching a template
//!   that would default a property another template already defaults for the same scope is
//!   refused (409).
//!
//! Objects are documents (see [`crate::service::governance`]); each write bumps the instance's
//! governance generation so that cached admission policies are rebuilt. `account_id` names an
//! account inside the instance (defaulting to the instance's id).
//!
//! Palisade extension: a rule's `enabled` (default `true`) turns a rule off without detaching
//! it; a `PUT` without `enabled` keeps the rule's current value (IBM's SDK does not send it).

use axum::http::header::{ETAG, IF_MATCH};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use palisade_model::error::{ErrorCode, ErrorItem, ErrorTarget};
use serde_json::{Value, json};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::error::{ApiError, ApiResult};
use crate::json::ApiJson;
use crate::middleware::TraceId;
use crate::state::AppState;

pub mod attachments;
pub mod rules;
pub mod templates;

/// The routes of this module, with their OpenAPI description.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(rules::create_rules, rules::list_rules))
        .routes(routes!(
            rules::get_rule,
            rules::update_rule,
            rules::delete_rule
        ))
        .routes(routes!(
            attachments::create_rule_attachments,
            attachments::list_rule_attachments
        ))
        .routes(routes!(
            attachments::get_rule_attachment,
            attachments::update_rule_attachment,
            attachments::delete_rule_attachment
        ))
        .routes(routes!(
            templates::create_templates,
            templates::list_templates
        ))
        .routes(routes!(
            templates::get_template,
            templates::update_template,
            templates::delete_template
        ))
        .routes(routes!(
            attachments::create_template_attachments,
            attachments::list_template_attachments
        ))
        .routes(routes!(
            attachments::get_template_attachment,
            attachments::update_template_attachment,
            attachments::delete_template_attachment
        ))
}

/// Server-set audit fields of rules and templates; accepted (and ignored) in update bodies.
pub const AUDIT_FIELDS: &[&str] = &[
    "creation_date",
    "created_by",
    "modification_date",
    "modified_by",
];

/// `limit` and `offset` of a v1 list.
#[derive(Debug, Clone, Default, serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct OffsetParams {
    /// Page size, 1–1000 (default 100).
    pub limit: Option<String>,
    /// Items to skip (default 0).
    pub offset: Option<String>,
}

impl OffsetParams {
    /// Returns `(limit, offset)`, or a 400 naming the parameter.
    pub fn parse(&self) -> ApiResult<(usize, usize)> {
        let invalid = |name: &str, expected: &str| {
            ApiError::new(
                ErrorCode::InvalidParameter,
                format!("`{name}` must be {expected}"),
            )
            .with_target(ErrorTarget::parameter(name))
        };
        let limit = match &self.limit {
            None => 100,
            Some(text) => text
                .parse::<usize>()
                .ok()
                .filter(|limit| (1..=1000).contains(limit))
                .ok_or_else(|| invalid("limit", "a whole number from 1 to 1000"))?,
        };
        let offset = match &self.offset {
            None => 0,
            Some(text) => text
                .parse::<usize>()
                .map_err(|_| invalid("offset", "a whole number, 0 or more"))?,
        };
        Ok((limit, offset))
    }
}

/// A v1 list page: `offset`, `limit`, `total_count`, `first` and `last` links, and the items
/// under `key`. `query` is the filter part of the links (`account_id=…&`), already encoded.
pub fn offset_page(
    path: &str,
    query: &str,
    key: &str,
    (limit, offset): (usize, usize),
    items: Vec<Value>,
) -> Value {
    let total_count = items.len();
    let last_offset = total_count.saturating_sub(1) / limit * limit;
    let page: Vec<Value> = items.into_iter().skip(offset).take(limit).collect();
    json!({
        "offset": offset,
        "limit": limit,
        "total_count": total_count,
        "first": {"href": format!("{path}?{query}limit={limit}&offset=0")},
        "last": {"href": format!("{path}?{query}limit={limit}&offset={last_offset}")},
        key: page,
    })
}

/// Percent-encodes a query value (RFC 3986 unreserved characters kept).
pub fn encode_query_value(value: &str) -> String {
    let mut encoded = String::with_capacity(value.len());
    for byte in value.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'~') {
            encoded.push(char::from(byte));
        } else {
            encoded.push_str(&format!("%{byte:02X}"));
        }
    }
    encoded
}

/// The ETag of a stored version.
pub fn etag(version: i64) -> String {
    format!("\"{version}\"")
}

/// A JSON answer with the object's ETag.
pub fn with_etag(status: StatusCode, body: Value, version: i64) -> Response {
    let mut response = (status, ApiJson(body)).into_response();
    if let Ok(value) = HeaderValue::from_str(&etag(version)) {
        response.headers_mut().insert(ETAG, value);
    }
    response
}

/// Reads `If-Match` into the version it names: 428 when absent, 412 when it is not the current
/// version of the `label` being changed.
pub fn required_if_match(headers: &HeaderMap, current_version: i64, label: &str) -> ApiResult<i64> {
    let Some(value) = headers.get(IF_MATCH).and_then(|value| value.to_str().ok()) else {
        return Err(ApiError::new(
            ErrorCode::PreconditionRequired,
            format!("send `If-Match` with the ETag of the {label} you read"),
        )
        .with_target(ErrorTarget::header("If-Match")));
    };
    let value = value.trim();
    if value == "*" {
        return Ok(current_version);
    }
    let version = value
        .trim_start_matches("W/")
        .trim_matches('"')
        .parse::<i64>()
        .ok();
    match version {
        Some(version) if version == current_version => Ok(version),
        _ => Err(ApiError::new(
            ErrorCode::PreconditionFailed,
            format!(
                "the {label} changed since you read it; get it again and retry with its new ETag"
            ),
        )
        .with_target(ErrorTarget::header("If-Match"))),
    }
}

/// The trace of one bulk item: the client's `Transaction-Id` (IBM's header), else the request's
/// trace id.
pub fn bulk_trace(headers: &HeaderMap, trace: Option<&TraceId>) -> String {
    headers
        .get("transaction-id")
        .and_then(|value| value.to_str().ok())
        .filter(|value| !value.is_empty() && value.len() <= 128)
        .map(str::to_owned)
        .or_else(|| trace.map(|trace| trace.0.clone()))
        .unwrap_or_default()
}

/// One failed entry of a multi-status answer.
pub fn failed_entry(request_id: &Value, error: &ApiError, trace: &str) -> Value {
    let errors: Vec<Value> = error
        .items
        .iter()
        .map(|item: &ErrorItem| {
            let mut entry = json!({"code": item.code.as_str(), "message": item.message});
            if let Some(target) = &item.target {
                entry["target"] = json!(target);
            }
            entry
        })
        .collect();
    let mut entry = json!({
        "status_code": error.status().as_u16(),
        "errors": errors,
        "trace": trace,
    });
    if !request_id.is_null() {
        entry["request_id"] = request_id.clone();
    }
    entry
}

/// The status of a bulk create: 201 when every entry was created, else 207 (Multi-Status).
pub fn bulk_status(created: usize, total: usize) -> StatusCode {
    if created == total {
        StatusCode::CREATED
    } else {
        StatusCode::MULTI_STATUS
    }
}

/// The `account_id` query parameter of v1 lists.
#[derive(Debug, Clone, Default, serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AccountFilter {
    /// Only objects of this account (an account inside the instance).
    pub account_id: Option<String>,
}
