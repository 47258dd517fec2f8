//! Scope attachments of rules and templates:
//! `/config/v1/{rules|templates}/{id}/attachments[/{attachment_id}]`.
//!
//! Both have IBM's `RuleAttachment` shape (`attachment_id`, `rule_id` or `template_id`,
//! `account_id`, `included_scope`, `excluded_scopes`); one implementation serves both, with a
//! [`Parent`] saying which. Creating takes `{"attachments": [...]}` and is all or nothing: every
//! mistake of every entry comes back at once, with its JSON pointer.

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use palisade_model::error::ErrorCode;
use serde_json::{Map, Value, json};

use super::{OffsetParams, offset_page, required_if_match, with_etag};
use crate::auth::{Authorized, ConfigWrite, ReadAccess};
use crate::error::{ApiError, ApiResult};
use crate::json::ApiJson;
use crate::service::documents::{self, BodyErrors, Kind, body_object, new_id};
use crate::service::governance::scope::{attachments_clash, check_attachment, shared_defaults};
use crate::service::governance::{self, RULE, RULE_ATTACHMENT, TEMPLATE, TEMPLATE_ATTACHMENT};
use crate::state::AppState;

/// What attachments hang from.
#[derive(Debug, Clone, Copy)]
struct Parent {
    kind: Kind,
    attachment_kind: Kind,
    /// `rule_id` or `template_id`.
    id_field: &'static str,
    /// `rules` or `templates`.
    path: &'static str,
}

const RULES: Parent = Parent {
    kind: RULE,
    attachment_kind: RULE_ATTACHMENT,
    id_field: "rule_id",
    path: "rules",
};
const TEMPLATES: Parent = Parent {
    kind: TEMPLATE,
    attachment_kind: TEMPLATE_ATTACHMENT,
    id_field: "template_id",
    path: "templates",
};

/// Refuses (409) a template attachment that would default a property another template already
/// defaults for the same scope. `own_attachment_id` is skipped (an update checks against the
/// others only); `pointer` locates the attachment in the request for the error.
pub async fn check_template_clashes(
    state: &AppState,
    instance_id: &str,
    template_id: &str,
    template: &Value,
    attachment: &Value,
    own_attachment_id: Option<&str>,
    pointer: &str,
) -> ApiResult<()> {
    let others = documents::all(state, instance_id, TEMPLATE_ATTACHMENT).await?;
    for other in &others {
        let other_template_id = other.body["template_id"].as_str().unwrap_or_default();
        if Some(other.id.as_str()) == own_attachment_id
            || other_template_id == template_id
            || !attachments_clash(attachment, &other.body)
        {
            continue;
        }
        let Some(other_template) = state
            .store
            .get_document(instance_id, TEMPLATE.store_kind, other_template_id)
            .await?
        else {
            continue;
        };
        let shared = shared_defaults(template, &other_template.body);
        if let Some(property) = shared.first() {
            let scope = &attachment["included_scope"];
            return Err(ApiError::new(
                ErrorCode::Conflict,
                format!(
                    "property `{property}` is already defaulted for {} `{}` by template `{other_template_id}` \
                     (attachment `{}`); a property may be defaulted by one template per scope",
                    scope["scope_type"].as_str().unwrap_or("scope"),
                    scope["scope_id"].as_str().unwrap_or_default(),
                    other.id
                ),
            )
            .with_target(palisade_model::error::ErrorTarget::field(format!(
                "{pointer}/included_scope"
            ))));
        }
    }
    Ok(())
}

fn attachment_view(body: &Value) -> Value {
    body.clone()
}

async fn create(
    state: &AppState,
    instance_id: &str,
    parent: Parent,
    parent_id: &str,
    body: Value,
) -> ApiResult<Response> {
    let parent_document = documents::get(state, instance_id, parent.kind, parent_id).await?;
    let request = body_object(body)?;
    let mut errors = BodyErrors::default();
    errors.check_keys(&request, "", &["attachments"], &[]);
    let entries = errors.objects(&request, "", "attachments");
    if request.get("attachments").is_some_and(Value::is_array) && entries.is_empty() {
        errors.push(
            ErrorCode::InvalidField,
            "/attachments",
            "must list at least one attachment",
        );
    }
    let checked: Vec<(String, Map<String, Value>)> = entries
        .iter()
        .map(|(pointer, entry)| {
            (
                pointer.clone(),
                check_attachment(&mut errors, entry, pointer, &[]),
            )
        })
        .collect();
    errors.finish(())?;

    let mut bodies = Vec::with_capacity(checked.len());
    for (pointer, mut attachment) in checked {
        let attachment_id = format!("attachment-{}", new_id());
        attachment.insert("attachment_id".into(), json!(attachment_id));
        attachment.insert(parent.id_field.into(), json!(parent_id));
        let attachment = Value::Object(attachment);
        if parent.path == TEMPLATES.path {
            check_template_clashes(
                state,
                instance_id,
                parent_id,
                &parent_document.body,
                &attachment,
                None,
                &pointer,
            )
            .await?;
        }
        bodies.push((attachment_id, attachment));
    }
    for (attachment_id, attachment) in &bodies {
        documents::insert(
            state,
            instance_id,
            parent.attachment_kind,
            attachment_id,
            attachment,
        )
        .await?;
    }
    governance::changed(state, instance_id).await?;
    let views: Vec<Value> = bodies
        .iter()
        .map(|(_, body)| attachment_view(body))
        .collect();
    Ok((StatusCode::CREATED, ApiJson(json!({"attachments": views}))).into_response())
}

async fn list(
    state: &AppState,
    instance_id: &str,
    parent: Parent,
    parent_id: &str,
    paging: &OffsetParams,
) -> ApiResult<ApiJson<Value>> {
    let page = paging.parse()?;
    documents::get(state, instance_id, parent.kind, parent_id).await?;
    let items: Vec<Value> = documents::all(state, instance_id, parent.attachment_kind)
        .await?
        .iter()
        .filter(|attachment| attachment.body[parent.id_field] == parent_id)
        .map(|attachment| attachment_view(&attachment.body))
        .collect();
    Ok(ApiJson(offset_page(
        &format!(
            "/instances/{instance_id}/config/v1/{}/{parent_id}/attachments",
            parent.path
        ),
        "",
        "attachments",
        page,
        items,
    )))
}

/// Returns the attachment, or 404 also when it belongs to another rule or template.
async fn get_own(
    state: &AppState,
    instance_id: &str,
    parent: Parent,
    parent_id: &str,
    attachment_id: &str,
) -> ApiResult<palisade_store::Document> {
    let stored = documents::get(state, instance_id, parent.attachment_kind, attachment_id).await?;
    if stored.body[parent.id_field] != parent_id {
        return Err(ApiError::not_found(
            parent.attachment_kind.label,
            attachment_id,
        ));
    }
    Ok(stored)
}

async fn get(
    state: &AppState,
    instance_id: &str,
    parent: Parent,
    parent_id: &str,
    attachment_id: &str,
) -> ApiResult<Response> {
    let stored = get_own(state, instance_id, parent, parent_id, attachment_id).await?;
    Ok(with_etag(
        StatusCode::OK,
        attachment_view(&stored.body),
        stored.version,
    ))
}

async fn update(
    state: &AppState,
    instance_id: &str,
    parent: Parent,
    (parent_id, attachment_id): (&str, &str),
    headers: &HeaderMap,
    body: Value,
) -> ApiResult<Response> {
    let previous = get_own(state, instance_id, parent, parent_id, attachment_id).await?;
    let expected = required_if_match(headers, previous.version, "attachment")?;
    let request = body_object(body)?;
    let mut errors = BodyErrors::default();
    let mut attachment = check_attachment(
        &mut errors,
        &request,
        "",
        &["attachment_id", parent.id_field],
    );
    errors.finish(())?;
    attachment.insert("attachment_id".into(), json!(attachment_id));
    attachment.insert(parent.id_field.into(), json!(parent_id));
    let attachment = Value::Object(attachment);
    if parent.path == TEMPLATES.path {
        let template = documents::get(state, instance_id, TEMPLATE, parent_id).await?;
        check_template_clashes(
            state,
            instance_id,
            parent_id,
            &template.body,
            &attachment,
            Some(attachment_id),
            "",
        )
        .await?;
    }
    let stored = documents::replace(
        state,
        instance_id,
        parent.attachment_kind,
        attachment_id,
        &attachment,
        Some(expected),
    )
    .await?;
    governance::changed(state, instance_id).await?;
    Ok(with_etag(
        StatusCode::OK,
        attachment_view(&attachment),
        stored.version,
    ))
}

async fn delete(
    state: &AppState,
    instance_id: &str,
    parent: Parent,
    parent_id: &str,
    attachment_id: &str,
) -> ApiResult<StatusCode> {
    get_own(state, instance_id, parent, parent_id, attachment_id).await?;
    documents::delete(state, instance_id, parent.attachment_kind, attachment_id).await?;
    governance::changed(state, instance_id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Attaches a rule to scopes (all or nothing).
#[utoipa::path(post, path = "/instances/{instance_id}/config/v1/rules/{rule_id}/attachments", tag = "config governance", security(("bearer" = [])),
    params(("instance_id" = String, Path), ("rule_id" = String, Path)),
    request_body = serde_json::Value,
    responses((status = 201, body = serde_json::Value), (status = 400, body = palisade_model::error::ErrorBody),
        (status = 404, body = palisade_model::error::ErrorBody)))]
pub async fn create_rule_attachments(
    State(state): State<AppState>,
    auth: Authorized<ConfigWrite>,
    Path((_instance_id, rule_id)): Path<(String, String)>,
    ApiJson(body): ApiJson<Value>,
) -> ApiResult<Response> {
    create(&state, auth.instance_id(), RULES, &rule_id, body).await
}

/// Lists a rule's attachments.
#[utoipa::path(get, path = "/instances/{instance_id}/config/v1/rules/{rule_id}/attachments", tag = "config governance", security(("bearer" = [])),
    params(("instance_id" = String, Path), ("rule_id" = String, Path), OffsetParams),
    responses((status = 200, body = serde_json::Value), (status = 404, body = palisade_model::error::ErrorBody)))]
pub async fn list_rule_attachments(
    State(state): State<AppState>,
    auth: Authorized<ReadAccess>,
    Path((_instance_id, rule_id)): Path<(String, String)>,
    Query(paging): Query<OffsetParams>,
) -> ApiResult<ApiJson<Value>> {
    list(&state, auth.instance_id(), RULES, &rule_id, &paging).await
}

/// Returns one rule attachment with its ETag.
#[utoipa::path(get, path = "/instances/{instance_id}/config/v1/rules/{rule_id}/attachments/{attachment_id}", tag = "config governance", security(("bearer" = [])),
    params(("instance_id" = String, Path), ("rule_id" = String, Path), ("attachment_id" = String, Path)),
    responses((status = 200, body = serde_json::Value), (status = 404, body = palisade_model::error::ErrorBody)))]
pub async fn get_rule_attachment(
    State(state): State<AppState>,
    auth: Authorized<ReadAccess>,
    Path((_instance_id, rule_id, attachment_id)): Path<(String, String, String)>,
) -> ApiResult<Response> {
    get(&state, auth.instance_id(), RULES, &rule_id, &attachment_id).await
}

/// Replaces a rule attachment's scopes; needs `If-Match`.
#[utoipa::path(put, path = "/instances/{instance_id}/config/v1/rules/{rule_id}/attachments/{attachment_id}", tag = "config governance", security(("bearer" = [])),
    params(("instance_id" = String, Path), ("rule_id" = String, Path), ("attachment_id" = String, Path),
        ("If-Match" = String, Header, description = "The attachment's ETag")),
    request_body = serde_json::Value,
    responses((status = 200, body = serde_json::Value), (status = 400, body = palisade_model::error::ErrorBody),
        (status = 404, body = palisade_model::error::ErrorBody), (status = 412, body = palisade_model::error::ErrorBody),
        (status = 428, body = palisade_model::error::ErrorBody)))]
pub async fn update_rule_attachment(
    State(state): State<AppState>,
    auth: Authorized<ConfigWrite>,
    Path((_instance_id, rule_id, attachment_id)): Path<(String, String, String)>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<Value>,
) -> ApiResult<Response> {
    update(
        &state,
        auth.instance_id(),
        RULES,
        (&rule_id, &attachment_id),
        &headers,
        body,
    )
    .await
}

/// Detaches a rule from a scope.
#[utoipa::path(delete, path = "/instances/{instance_id}/config/v1/rules/{rule_id}/attachments/{attachment_id}", tag = "config governance", security(("bearer" = [])),
    params(("instance_id" = String, Path), ("rule_id" = String, Path), ("attachment_id" = String, Path)),
    responses((status = 204), (status = 404, body = palisade_model::error::ErrorBody)))]
pub async fn delete_rule_attachment(
    State(state): State<AppState>,
    auth: Authorized<ConfigWrite>,
    Path((_instance_id, rule_id, attachment_id)): Path<(String, String, String)>,
) -> ApiResult<StatusCode> {
    delete(&state, auth.instance_id(), RULES, &rule_id, &attachment_id).await
}

/// Attaches a template to scopes (all or nothing; 409 when a property would get two templates
/// in one scope).
#[utoipa::path(post, path = "/instances/{instance_id}/config/v1/templates/{template_id}/attachments", tag = "config governance", security(("bearer" = [])),
    params(("instance_id" = String, Path), ("template_id" = String, Path)),
    request_body = serde_json::Value,
    responses((status = 201, body = serde_json::Value), (status = 400, body = palisade_model::error::ErrorBody),
        (status = 404, body = palisade_model::error::ErrorBody), (status = 409, body = palisade_model::error::ErrorBody)))]
pub async fn create_template_attachments(
    State(state): State<AppState>,
    auth: Authorized<ConfigWrite>,
    Path((_instance_id, template_id)): Path<(String, String)>,
    ApiJson(body): ApiJson<Value>,
) -> ApiResult<Response> {
    create(&state, auth.instance_id(), TEMPLATES, &template_id, body).await
}

/// Lists a template's attachments.
#[utoipa::path(get, path = "/instances/{instance_id}/config/v1/templates/{template_id}/attachments", tag = "config governance", security(("bearer" = [])),
    params(("instance_id" = String, Path), ("template_id" = String, Path), OffsetParams),
    responses((status = 200, body = serde_json::Value), (status = 404, body = palisade_model::error::ErrorBody)))]
pub async fn list_template_attachments(
    State(state): State<AppState>,
    auth: Authorized<ReadAccess>,
    Path((_instance_id, template_id)): Path<(String, String)>,
    Query(paging): Query<OffsetParams>,
) -> ApiResult<ApiJson<Value>> {
    list(&state, auth.instance_id(), TEMPLATES, &template_id, &paging).await
}

/// Returns one template attachment with its ETag.
#[utoipa::path(get, path = "/instances/{instance_id}/config/v1/templates/{template_id}/attachments/{attachment_id}", tag = "config governance", security(("bearer" = [])),
    params(("instance_id" = String, Path), ("template_id" = String, Path), ("attachment_id" = String, Path)),
    responses((status = 200, body = serde_json::Value), (status = 404, body = palisade_model::error::ErrorBody)))]
pub async fn get_template_attachment(
    State(state): State<AppState>,
    auth: Authorized<ReadAccess>,
    Path((_instance_id, template_id, attachment_id)): Path<(String, String, String)>,
) -> ApiResult<Response> {
    get(
        &state,
        auth.instance_id(),
        TEMPLATES,
        &template_id,
        &attachment_id,
    )
    .await
}

/// Replaces a template attachment's scopes; needs `If-Match` (409 on a clash).
#[utoipa::path(put, path = "/instances/{instance_id}/config/v1/templates/{template_id}/attachments/{attachment_id}", tag = "config governance", security(("bearer" = [])),
    params(("instance_id" = String, Path), ("template_id" = String, Path), ("attachment_id" = String, Path),
        ("If-Match" = String, Header, description = "The attachment's ETag")),
    request_body = serde_json::Value,
    responses((status = 200, body = serde_json::Value), (status = 400, body = palisade_model::error::ErrorBody),
        (status = 404, body = palisade_model::error::ErrorBody), (status = 409, body = palisade_model::error::ErrorBody),
        (status = 412, body = palisade_model::error::ErrorBody), (status = 428, body = palisade_model::error::ErrorBody)))]
pub async fn update_template_attachment(
    State(state): State<AppState>,
    auth: Authorized<ConfigWrite>,
    Path((_instance_id, template_id, attachment_id)): Path<(String, String, String)>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<Value>,
) -> ApiResult<Response> {
    update(
        &state,
        auth.instance_id(),
        TEMPLATES,
        (&template_id, &attachment_id),
        &headers,
        body,
    )
    .await
}

/// Detaches a template from a scope.
#[utoipa::path(delete, path = "/instances/{instance_id}/config/v1/templates/{template_id}/attachments/{attachment_id}", tag = "config governance", security(("bearer" = [])),
    params(("instance_id" = String, Path), ("template_id" = String, Path), ("attachment_id" = String, Path)),
    responses((status = 204), (status = 404, body = palisade_model::error::ErrorBody)))]
pub async fn delete_template_attachment(
    State(state): State<AppState>,
    auth: Authorized<ConfigWrite>,
    Path((_instance_id, template_id, attachment_id)): Path<(String, String, String)>,
) -> ApiResult<StatusCode> {
    delete(
        &state,
        auth.instance_id(),
        TEMPLATES,
        &template_id,
        &attachment_id,
    )
    .await
}
