//! Activity insights: `POST …/v1/activity/events` (ingest, durable before 2xx), batches, Sigma
//! rule packs (built-in and uploaded; enable/disable), per-rule settings (enable/disable,
//! severity override) and pack parameters. Findings are occurrences of provider
//! `activity-insights` in the findings API.

use std::collections::BTreeMap;

use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use palisade_insights::packs::{BUILTIN_PACKS, builtin_pack};
use palisade_model::error::{ErrorCode, ErrorTarget};
use palisade_model::event::AuditSourceFormat;
use palisade_sigma::{PackParameters, RuleKind, load_pack};
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;

use crate::auth::{Authorized, ConfigWrite, DataPush, ReadAccess};
use crate::error::{ApiError, ApiResult};
use crate::json::ApiJson;
use crate::service::documents;
use crate::service::insights::activity::{
    self, CustomPack, PACK, PackFile, PackSetting, RuleSetting, custom_source_name,
};
use crate::service::insights::{
    self as insights, ACTIVITY, BatchListParams, BatchView, IngestAnswer, IngestParams,
};
use crate::state::AppState;

/// Query of an events ingest.
#[derive(Debug, Clone, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct EventsParams {
    /// A name for the batch (a file name), shown in errors and listings. Default `upload`.
    pub source: Option<String>,
    /// Process the batch before answering (the answer then carries its findings count).
    #[serde(default)]
    pub wait: bool,
    /// The records' format when known (`aws_cloud_trail`, `ibm_activity_tracker`,
    /// `kubernetes_audit`, `generic_json`); recognised record by record when absent.
    #[param(value_type = Option<String>)]
    pub format: Option<AuditSourceFormat>,
}

/// Accepts a batch of audit events: CloudTrail `{"Records":[…]}` objects, JSON arrays or JSON
/// Lines of CloudTrail, IBM Activity Tracker (CADF) or Kubernetes audit events, plain or
/// gzipped. Bad records are answered with their line and skipped; the good ones are durable
/// when this answers `202` (`200` with `?wait=true`, once processed).
#[utoipa::path(post, path = "/instances/{instance_id}/v1/activity/events", tag = "activity insights", security(("bearer" = [])),
    params(("instance_id" = String, Path), EventsParams),
    request_body(content = String, description = "Audit events in any supported layout", content_type = "application/octet-stream"),
    responses((status = 202, body = IngestAnswer), (status = 200, body = IngestAnswer), (status = 413, body = palisade_model::error::ErrorBody)))]
pub async fn ingest_events(
    State(state): State<AppState>,
    auth: Authorized<DataPush>,
    Path(_instance_id): Path<String>,
    Query(params): Query<EventsParams>,
    body: Body,
) -> ApiResult<(StatusCode, ApiJson<IngestAnswer>)> {
    let bytes = insights::read_body(&state, body).await?;
    let ingest = IngestParams {
        source: params.source.clone(),
        wait: params.wait,
    };
    let source = ingest.source_name();
    let decoded = tokio::task::spawn_blocking({
        let source = source.clone();
        move || activity::decode_events(&bytes, &source, params.format)
    })
    .await
    .map_err(|error| ApiError::internal(format!("decoding events: {error}")))??;
    let payload = insights::json_lines(&decoded.events)?;
    let batch = insights::enqueue(
        &state,
        auth.instance_id(),
        ACTIVITY,
        &source,
        &auth.key.id,
        &payload,
        decoded.events.len() as u64,
        decoded.rejected,
        json!({}),
    )
    .await?;
    let answer = insights::answer(&state, batch, ingest.wait, decoded.rejections).await?;
    Ok((answer.status_code(), ApiJson(answer)))
}

/// Lists the instance's activity batches, newest first.
#[utoipa::path(get, path = "/instances/{instance_id}/v1/activity/batches", tag = "activity insights", security(("bearer" = [])),
    params(("instance_id" = String, Path), BatchListParams), responses((status = 200, body = Vec<BatchView>)))]
pub async fn list_activity_batches(
    State(state): State<AppState>,
    auth: Authorized<ReadAccess>,
    Path(_instance_id): Path<String>,
    Query(params): Query<BatchListParams>,
) -> ApiResult<ApiJson<Vec<BatchView>>> {
    insights::list_batches(&state, auth.instance_id(), ACTIVITY, &params)
        .await
        .map(ApiJson)
}

/// Returns one activity batch: its status and, once processed, its findings count.
#[utoipa::path(get, path = "/instances/{instance_id}/v1/activity/batches/{batch_id}", tag = "activity insights", security(("bearer" = [])),
    params(("instance_id" = String, Path), ("batch_id" = String, Path)),
    responses((status = 200, body = BatchView), (status = 404, body = palisade_model::error::ErrorBody)))]
pub async fn get_activity_batch(
    State(state): State<AppState>,
    auth: Authorized<ReadAccess>,
    Path((_instance_id, batch_id)): Path<(String, String)>,
) -> ApiResult<ApiJson<BatchView>> {
    let batch = insights::batch(&state, auth.instance_id(), ACTIVITY, &batch_id).await?;
    Ok(ApiJson(BatchView::of(&batch)))
}

/// A rule pack as listed.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct PackView {
    pub id: String,
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Shipped with Palisade (cannot be replaced or deleted, only disabled).
    pub builtin: bool,
    pub enabled: bool,
    /// Rule files in the pack.
    pub files: usize,
    /// Documents of the pack that do not load, when it is enabled.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub load_errors: Vec<String>,
}

async fn pack_views(state: &AppState, instance_id: &str) -> ApiResult<Vec<PackView>> {
    let (settings, _) = activity::settings(state, instance_id).await?;
    let engine = activity::engine(state, instance_id).await?;
    let errors_of = |pack_id: &str| -> Vec<String> {
        engine
            .load_errors
            .iter()
            .filter(|error| {
                engine
                    .pack_of_source
                    .get(&error.source_name)
                    .is_some_and(|id| id == pack_id)
            })
            .map(ToString::to_string)
            .collect()
    };
    let mut views: Vec<PackView> = BUILTIN_PACKS
        .iter()
        .map(|pack| PackView {
            id: pack.id.to_owned(),
            name: pack.name.to_owned(),
            description: Some(pack.description.to_owned()),
            builtin: true,
            enabled: settings
                .packs
                .get(pack.id)
                .is_none_or(|setting| setting.enabled),
            files: pack.sources().len(),
            load_errors: errors_of(pack.id),
        })
        .collect();
    for (pack, _) in activity::custom_packs(state, instance_id).await? {
        views.push(PackView {
            load_errors: errors_of(&pack.id),
            id: pack.id,
            name: pack.name,
            description: pack.description,
            builtin: false,
            enabled: pack.enabled,
            files: pack.files.len(),
        });
    }
    Ok(views)
}

/// Lists the rule packs: the built-in ones and those uploaded to this instance.
#[utoipa::path(get, path = "/instances/{instance_id}/v1/activity/packs", tag = "activity insights", security(("bearer" = [])),
    params(("instance_id" = String, Path)), responses((status = 200, body = Vec<PackView>)))]
pub async fn list_packs(
    State(state): State<AppState>,
    auth: Authorized<ReadAccess>,
    Path(_instance_id): Path<String>,
) -> ApiResult<ApiJson<Vec<PackView>>> {
    pack_views(&state, auth.instance_id()).await.map(ApiJson)
}

/// Query of a pack upload.
#[derive(Debug, Clone, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PackParams {
    /// Display name (default: the pack id).
    pub name: Option<String>,
    pub description: Option<String>,
}

fn check_pack_id(pack_id: &str) -> ApiResult<()> {
    let valid = !pack_id.is_empty()
        && pack_id.len() <= 64
        && pack_id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if valid {
        Ok(())
    } else {
        Err(ApiError::new(
            ErrorCode::InvalidParameter,
            "`pack_id`: 1 to 64 letters, digits, `-` or `_`",
        )
        .with_target(ErrorTarget::parameter("pack_id")))
    }
}

/// Uploads (or replaces) a pack: the body is Sigma YAML, one or more `---`-separated rules and
/// correlations. Documents that do not load are answered; if none loads, nothing is stored.
#[utoipa::path(put, path = "/instances/{instance_id}/v1/activity/packs/{pack_id}", tag = "activity insights", security(("bearer" = [])),
    params(("instance_id" = String, Path), ("pack_id" = String, Path), PackParams),
    request_body(content = String, description = "Sigma rules (YAML)", content_type = "application/yaml"),
    responses((status = 200, body = PackView), (status = 400, body = palisade_model::error::ErrorBody), (status = 409, body = palisade_model::error::ErrorBody)))]
pub async fn put_pack(
    State(state): State<AppState>,
    auth: Authorized<ConfigWrite>,
    Path((_instance_id, pack_id)): Path<(String, String)>,
    Query(params): Query<PackParams>,
    body: Body,
) -> ApiResult<ApiJson<PackView>> {
    check_pack_id(&pack_id)?;
    if builtin_pack(&pack_id).is_some() {
        return Err(ApiError::new(
            ErrorCode::Conflict,
            format!("`{pack_id}` is a built-in pack: it can be disabled, not replaced"),
        ));
    }
    let bytes = insights::read_body(&state, body).await?;
    let text = String::from_utf8(bytes.to_vec()).map_err(|error| {
        ApiError::new(
            ErrorCode::InvalidField,
            format!("a rule pack must be UTF-8 YAML: {error}"),
        )
    })?;
    let file = PackFile {
        name: format!("{pack_id}.yml"),
        text,
    };
    let instance_id = auth.instance_id().to_owned();
    let (parameters, _) = activity::settings(&state, &instance_id).await?;
    let (loaded, errors) = {
        let sources = [palisade_sigma::RuleSource {
            name: custom_source_name(&pack_id, &file.name),
            text: file.text.clone(),
        }];
        let (pack, errors) = load_pack(&sources, &PackParameters(parameters.parameters));
        (
            pack.detection_rules().len() + pack.correlation_rules().len(),
            errors,
        )
    };
    if loaded == 0 {
        let mut message = String::from("no rule of the pack loads");
        for error in errors.iter().take(20) {
            message.push_str(&format!("; {error}"));
        }
        return Err(ApiError::new(ErrorCode::InvalidField, message));
    }
    let existing = state
        .store
        .get_document(&instance_id, PACK.store_kind, &pack_id)
        .await?;
    let pack = CustomPack {
        id: pack_id.clone(),
        name: params.name.unwrap_or_else(|| pack_id.clone()),
        description: params.description,
        enabled: existing
            .as_ref()
            .and_then(|document| document.body["enabled"].as_bool())
            .unwrap_or(true),
        files: vec![file],
    };
    let body = serde_json::to_value(&pack)
        .map_err(|error| ApiError::internal(format!("rule pack: {error}")))?;
    documents::upsert(&state, &instance_id, PACK, &pack_id, &body).await?;
    let view = pack_views(&state, &instance_id)
        .await?
        .into_iter()
        .find(|view| view.id == pack_id)
        .ok_or_else(|| ApiError::internal("the stored pack is not listed"))?;
    Ok(ApiJson(view))
}

/// Body of a pack change.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PackChange {
    pub enabled: bool,
}

/// Enables or disables a pack (built-in or uploaded).
#[utoipa::path(patch, path = "/instances/{instance_id}/v1/activity/packs/{pack_id}", tag = "activity insights", security(("bearer" = [])),
    params(("instance_id" = String, Path), ("pack_id" = String, Path)), request_body = PackChange,
    responses((status = 200, body = PackView), (status = 404, body = palisade_model::error::ErrorBody)))]
pub async fn update_pack(
    State(state): State<AppState>,
    auth: Authorized<ConfigWrite>,
    Path((_instance_id, pack_id)): Path<(String, String)>,
    ApiJson(change): ApiJson<PackChange>,
) -> ApiResult<ApiJson<PackView>> {
    let instance_id = auth.instance_id().to_owned();
    if builtin_pack(&pack_id).is_some() {
        let (mut settings, _) = activity::settings(&state, &instance_id).await?;
        settings.packs.insert(
            pack_id.clone(),
            PackSetting {
                enabled: change.enabled,
            },
        );
        activity::save_settings(&state, &instance_id, &settings).await?;
    } else {
        let document = documents::get(&state, &instance_id, PACK, &pack_id).await?;
        let mut body = document.body;
        body["enabled"] = json!(change.enabled);
        documents::replace(&state, &instance_id, PACK, &pack_id, &body, None).await?;
    }
    let view = pack_views(&state, &instance_id)
        .await?
        .into_iter()
        .find(|view| view.id == pack_id)
        .ok_or_else(|| ApiError::not_found("rule pack", &pack_id))?;
    Ok(ApiJson(view))
}

/// Deletes an uploaded pack.
#[utoipa::path(delete, path = "/instances/{instance_id}/v1/activity/packs/{pack_id}", tag = "activity insights", security(("bearer" = [])),
    params(("instance_id" = String, Path), ("pack_id" = String, Path)),
    responses((status = 204), (status = 404, body = palisade_model::error::ErrorBody), (status = 409, body = palisade_model::error::ErrorBody)))]
pub async fn delete_pack(
    State(state): State<AppState>,
    auth: Authorized<ConfigWrite>,
    Path((_instance_id, pack_id)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    if builtin_pack(&pack_id).is_some() {
        return Err(ApiError::new(
            ErrorCode::Conflict,
            format!("`{pack_id}` is a built-in pack: disable it instead"),
        ));
    }
    documents::delete(&state, auth.instance_id(), PACK, &pack_id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A rule of an enabled pack.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct RuleView {
    pub id: String,
    pub title: String,
    /// `detection` or `correlation`.
    pub kind: String,
    /// The pack it comes from.
    pub pack: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub level: Option<String>,
    /// The severity its findings get (the override, or the one derived from the level).
    pub severity: String,
    /// Whether its findings are reported.
    pub enabled: bool,
    /// The user's settings for it.
    pub settings: RuleSetting,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
}

/// Filters of the rule listing.
#[derive(Debug, Clone, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct RuleListParams {
    /// Only rules of this pack.
    pub pack: Option<String>,
    /// Only enabled (`true`) or disabled (`false`) rules.
    pub enabled: Option<bool>,
}

/// Lists the rules of the enabled packs with their effective settings.
#[utoipa::path(get, path = "/instances/{instance_id}/v1/activity/rules", tag = "activity insights", security(("bearer" = [])),
    params(("instance_id" = String, Path), RuleListParams), responses((status = 200, body = Vec<RuleView>)))]
pub async fn list_activity_rules(
    State(state): State<AppState>,
    auth: Authorized<ReadAccess>,
    Path(_instance_id): Path<String>,
    Query(params): Query<RuleListParams>,
) -> ApiResult<ApiJson<Vec<RuleView>>> {
    let engine = activity::engine(&state, auth.instance_id()).await?;
    let rules = engine
        .pack
        .detection_rules()
        .iter()
        .chain(engine.pack.correlation_rules())
        .map(|rule| {
            let settings = engine
                .settings
                .rules
                .get(&rule.id)
                .cloned()
                .unwrap_or_default();
            RuleView {
                id: rule.id.clone(),
                title: rule.title.clone(),
                kind: match rule.kind {
                    RuleKind::Detection => "detection",
                    RuleKind::Correlation => "correlation",
                }
                .to_owned(),
                pack: engine.pack_of(rule).to_owned(),
                level: rule.level.map(|level| level.as_str().to_owned()),
                severity: settings
                    .severity
                    .unwrap_or_else(|| palisade_insights::activity::severity_of(rule.level))
                    .as_str()
                    .to_owned(),
                enabled: engine.rule_enabled(&rule.id),
                settings,
                description: rule.description.clone(),
                tags: rule.tags.clone(),
            }
        })
        .filter(|view| params.pack.as_ref().is_none_or(|pack| *pack == view.pack))
        .filter(|view| params.enabled.is_none_or(|enabled| enabled == view.enabled))
        .collect();
    Ok(ApiJson(rules))
}

/// Replaces a rule's settings: `{"enabled": false}` stops its findings, `{"severity": "LOW"}`
/// overrides their severity, `{}` restores the defaults.
#[utoipa::path(put, path = "/instances/{instance_id}/v1/activity/rules/{rule_id}", tag = "activity insights", security(("bearer" = [])),
    params(("instance_id" = String, Path), ("rule_id" = String, Path)), request_body = RuleSetting,
    responses((status = 200, body = RuleSetting), (status = 404, body = palisade_model::error::ErrorBody)))]
pub async fn put_activity_rule(
    State(state): State<AppState>,
    auth: Authorized<ConfigWrite>,
    Path((_instance_id, rule_id)): Path<(String, String)>,
    ApiJson(setting): ApiJson<RuleSetting>,
) -> ApiResult<ApiJson<RuleSetting>> {
    let instance_id = auth.instance_id().to_owned();
    let engine = activity::engine(&state, &instance_id).await?;
    let known = engine
        .pack
        .detection_rules()
        .iter()
        .chain(engine.pack.correlation_rules())
        .any(|rule| rule.id == rule_id);
    if !known {
        return Err(ApiError::not_found("rule", &rule_id));
    }
    let (mut settings, _) = activity::settings(&state, &instance_id).await?;
    if setting == RuleSetting::default() {
        settings.rules.remove(&rule_id);
    } else {
        settings.rules.insert(rule_id, setting.clone());
    }
    activity::save_settings(&state, &instance_id, &settings).await?;
    Ok(ApiJson(setting))
}

/// Returns the pack parameters (values of `${name}` placeholders in pack files).
#[utoipa::path(get, path = "/instances/{instance_id}/v1/activity/parameters", tag = "activity insights", security(("bearer" = [])),
    params(("instance_id" = String, Path)), responses((status = 200, body = BTreeMap<String, String>)))]
pub async fn get_parameters(
    State(state): State<AppState>,
    auth: Authorized<ReadAccess>,
    Path(_instance_id): Path<String>,
) -> ApiResult<ApiJson<BTreeMap<String, String>>> {
    let (settings, _) = activity::settings(&state, auth.instance_id()).await?;
    Ok(ApiJson(settings.parameters))
}

/// Replaces the pack parameters, e.g. `{"change_window_hours": "8-18", "failed_login_threshold": "5"}`.
#[utoipa::path(put, path = "/instances/{instance_id}/v1/activity/parameters", tag = "activity insights", security(("bearer" = [])),
    params(("instance_id" = String, Path)), request_body = BTreeMap<String, String>,
    responses((status = 200, body = BTreeMap<String, String>)))]
pub async fn put_parameters(
    State(state): State<AppState>,
    auth: Authorized<ConfigWrite>,
    Path(_instance_id): Path<String>,
    ApiJson(parameters): ApiJson<BTreeMap<String, String>>,
) -> ApiResult<ApiJson<BTreeMap<String, String>>> {
    let instance_id = auth.instance_id().to_owned();
    let (mut settings, _) = activity::settings(&state, &instance_id).await?;
    settings.parameters = parameters.clone();
    activity::save_settings(&state, &instance_id, &settings).await?;
    Ok(ApiJson(parameters))
}
