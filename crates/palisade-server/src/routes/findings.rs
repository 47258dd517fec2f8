//! Findings: IBM's Findings v1 at `/instances/{instance_id}/findings/v1/{account_id}/…` (so IBM's
//! SDK works with the service URL `<palisade>/instances/{instance_id}/findings`), and Palisade's
//! own lifecycle, export, import and card routes at `/instances/{instance_id}/v1/findings…`.
//!
//! Reading needs a reading role; writing notes and occurrences is pushing data (ingest keys and
//! partner tools may); changing a finding's status is a security team's decision (editor, admin).

use std::collections::HashMap;

use axum::body::{Body, Bytes};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use palisade_model::error::{ErrorCode, ErrorTarget};
use palisade_store::findings::{
    FindingStatus, OccurrenceCursor, OccurrenceFilter, OccurrenceKey, ProviderQuery,
    StoredOccurrence,
};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::{Authorized, ConfigWrite, DataPush, ReadAccess};
use crate::error::{ApiError, ApiResult};
use crate::json::ApiJson;
use crate::service::findings::asff::{self, ImportReport};
use crate::service::findings::cards::{self, CardList};
use crate::service::findings::model::{ApiNote, ApiOccurrence, NoteName};
use crate::service::findings::{
    FindingReference, OccurrenceView, StatusChangeRequest, check_path_id, graph, note_record,
    note_view, occurrence_record, occurrence_view, ocsf, status_change,
};
use crate::state::AppState;

const DEFAULT_PAGE_SIZE: u32 = 100;
const MAX_PAGE_SIZE: u32 = 1000;
const DEFAULT_PROVIDER_LIMIT: u32 = 200;
const EXPORT_PAGE: u32 = 500;

/// The routes of this module, with their OpenAPI description.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(post_graph))
        .routes(routes!(list_providers))
        .routes(routes!(create_note, list_notes))
        .routes(routes!(get_note, update_note, delete_note))
        .routes(routes!(list_note_occurrences))
        .routes(routes!(create_occurrence, list_occurrences))
        .routes(routes!(
            get_occurrence,
            update_occurrence,
            delete_occurrence
        ))
        .routes(routes!(get_occurrence_note))
        .routes(routes!(list_findings))
        .routes(routes!(change_status))
        .routes(routes!(export_findings))
        .routes(routes!(import_asff))
        .routes(routes!(list_cards))
}

fn parameter_error(name: &str, message: impl Into<String>) -> ApiError {
    ApiError::new(
        ErrorCode::InvalidParameter,
        format!("`{name}`: {}", message.into()),
    )
    .with_target(ErrorTarget::parameter(name))
}

fn page_size(value: Option<u32>) -> ApiResult<u32> {
    match value {
        None => Ok(DEFAULT_PAGE_SIZE),
        Some(size) if (1..=MAX_PAGE_SIZE).contains(&size) => Ok(size),
        Some(_) => Err(parameter_error(
            "page_size",
            format!("must be between 1 and {MAX_PAGE_SIZE}"),
        )),
    }
}

/// The token of the next page: empty when this page is short (there is nothing after it),
/// otherwise the encoded position of its last item.
fn next_page_token<T>(page: &[T], size: u32, position: impl Fn(&T) -> String) -> String {
    if page.len() == size as usize {
        page.last()
            .map(|last| encode_token(&position(last)))
            .unwrap_or_default()
    } else {
        String::new()
    }
}

fn encode_token(text: &str) -> String {
    URL_SAFE_NO_PAD.encode(text)
}

fn decode_token(token: Option<&str>) -> ApiResult<Option<String>> {
    match token.filter(|token| !token.is_empty()) {
        None => Ok(None),
        Some(token) => URL_SAFE_NO_PAD
            .decode(token)
            .ok()
            .and_then(|bytes| String::from_utf8(bytes).ok())
            .map(Some)
            .ok_or_else(|| parameter_error("page_token", "is not a token this API returned")),
    }
}

/// Path of the account-level routes.
#[derive(Debug, Deserialize)]
pub struct AccountPath {
    pub instance_id: String,
    pub account_id: String,
}

/// Path of the provider-level routes.
#[derive(Debug, Deserialize)]
pub struct ProviderPath {
    pub instance_id: String,
    pub account_id: String,
    pub provider_id: String,
}

/// Path of one note.
#[derive(Debug, Deserialize)]
pub struct NotePath {
    pub instance_id: String,
    pub account_id: String,
    pub provider_id: String,
    pub note_id: String,
}

/// Path of one occurrence.
#[derive(Debug, Deserialize)]
pub struct OccurrencePath {
    pub instance_id: String,
    pub account_id: String,
    pub provider_id: String,
    pub occurrence_id: String,
}

fn check_ids(ids: &[(&str, &str)]) -> ApiResult<()> {
    for (name, value) in ids {
        check_path_id(name, value)?;
    }
    Ok(())
}

/// Runs a read-only GraphQL query over the account's findings (see `service::findings::graph`).
#[utoipa::path(post, path = "/instances/{instance_id}/findings/v1/{account_id}/graph", tag = "findings",
    security(("bearer" = [])),
    params(("instance_id" = String, Path), ("account_id" = String, Path)),
    request_body(description = "A GraphQL query, as text or `{\"query\": …}`",
        content((String = "application/graphql"), (serde_json::Value = "application/json"))),
    responses((status = 200, body = serde_json::Value), (status = 400, body = palisade_model::error::ErrorBody)))]
pub async fn post_graph(
    State(state): State<AppState>,
    auth: Authorized<ReadAccess>,
    Path(path): Path<AccountPath>,
    body: Bytes,
) -> ApiResult<ApiJson<serde_json::Value>> {
    check_ids(&[("account_id", &path.account_id)])?;
    let query = graph::query_of(&body)?;
    Ok(ApiJson(
        graph::execute(
            &state.store,
            auth.instance_id(),
            &path.account_id,
            &query,
            Utc::now(),
        )
        .await?,
    ))
}

/// Query of `GET …/providers`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ProviderListQuery {
    /// Providers per page (default 200, at most 1000).
    pub limit: Option<u32>,
    /// Providers to skip.
    pub skip: Option<u64>,
    pub start_provider_id: Option<String>,
    pub end_provider_id: Option<String>,
}

/// A provider.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ApiProvider {
    /// `{account_id}/providers/{provider_id}`.
    pub name: String,
    pub id: String,
}

/// IBM's `ApiListProvidersResponse`.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ProviderList {
    pub providers: Vec<ApiProvider>,
    pub limit: u32,
    pub skip: u64,
    pub total_count: u64,
}

/// Lists the account's providers.
#[utoipa::path(get, path = "/instances/{instance_id}/findings/v1/{account_id}/providers", tag = "findings",
    security(("bearer" = [])),
    params(("instance_id" = String, Path), ("account_id" = String, Path), ProviderListQuery),
    responses((status = 200, body = ProviderList), (status = 400, body = palisade_model::error::ErrorBody)))]
pub async fn list_providers(
    State(state): State<AppState>,
    auth: Authorized<ReadAccess>,
    Path(path): Path<AccountPath>,
    Query(query): Query<ProviderListQuery>,
) -> ApiResult<ApiJson<ProviderList>> {
    check_ids(&[("account_id", &path.account_id)])?;
    let limit = match query.limit {
        None => DEFAULT_PROVIDER_LIMIT,
        Some(limit) if (1..=MAX_PAGE_SIZE).contains(&limit) => limit,
        Some(_) => return Err(parameter_error("limit", "must be between 1 and 1000")),
    };
    let skip = query.skip.unwrap_or(0);
    let (providers, total_count) = state
        .store
        .list_providers(
            auth.instance_id(),
            &path.account_id,
            &ProviderQuery {
                skip,
                limit,
                start_provider_id: query.start_provider_id,
                end_provider_id: query.end_provider_id,
            },
        )
        .await?;
    Ok(ApiJson(ProviderList {
        providers: providers
            .into_iter()
            .map(|provider| ApiProvider {
                name: format!("{}/providers/{}", provider.account_id, provider.id),
                id: provider.id,
            })
            .collect(),
        limit,
        skip,
        total_count,
    }))
}

/// Registers a note (a kind of finding, KPI, card or section) under a provider.
#[utoipa::path(post, path = "/instances/{instance_id}/findings/v1/{account_id}/providers/{provider_id}/notes", tag = "findings",
    security(("bearer" = [])),
    params(("instance_id" = String, Path), ("account_id" = String, Path), ("provider_id" = String, Path)),
    request_body = ApiNote,
    responses((status = 200, body = ApiNote), (status = 400, body = palisade_model::error::ErrorBody),
        (status = 409, body = palisade_model::error::ErrorBody)))]
pub async fn create_note(
    State(state): State<AppState>,
    auth: Authorized<DataPush>,
    Path(path): Path<ProviderPath>,
    ApiJson(note): ApiJson<ApiNote>,
) -> ApiResult<ApiJson<ApiNote>> {
    check_ids(&[
        ("account_id", &path.account_id),
        ("provider_id", &path.provider_id),
    ])?;
    let record = note_record(&path.account_id, &path.provider_id, &note)?;
    let stored = state
        .store
        .insert_note(auth.instance_id(), &record, Utc::now())
        .await?;
    Ok(ApiJson(note_view(&stored)?))
}

/// Query of paged lists.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageQuery {
    /// Items per page (default 100, at most 1000).
    pub page_size: Option<u32>,
    /// `next_page_token` of the previous page.
    pub page_token: Option<String>,
}

/// IBM's `ApiListNotesResponse`.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct NoteList {
    pub notes: Vec<ApiNote>,
    /// Empty when there are no more notes.
    pub next_page_token: String,
}

/// Lists a provider's notes, in id order.
#[utoipa::path(get, path = "/instances/{instance_id}/findings/v1/{account_id}/providers/{provider_id}/notes", tag = "findings",
    security(("bearer" = [])),
    params(("instance_id" = String, Path), ("account_id" = String, Path), ("provider_id" = String, Path), PageQuery),
    responses((status = 200, body = NoteList), (status = 400, body = palisade_model::error::ErrorBody)))]
pub async fn list_notes(
    State(state): State<AppState>,
    auth: Authorized<ReadAccess>,
    Path(path): Path<ProviderPath>,
    Query(query): Query<PageQuery>,
) -> ApiResult<ApiJson<NoteList>> {
    check_ids(&[
        ("account_id", &path.account_id),
        ("provider_id", &path.provider_id),
    ])?;
    let size = page_size(query.page_size)?;
    let after = decode_token(query.page_token.as_deref())?;
    let notes = state
        .store
        .list_notes(
            auth.instance_id(),
            &path.account_id,
            &path.provider_id,
            after.as_deref(),
            size,
        )
        .await?;
    let next_page_token = next_page_token(&notes, size, |note| note.record.id.clone());
    Ok(ApiJson(NoteList {
        notes: notes.iter().map(note_view).collect::<ApiResult<_>>()?,
        next_page_token,
    }))
}

/// Returns one note.
#[utoipa::path(get, path = "/instances/{instance_id}/findings/v1/{account_id}/providers/{provider_id}/notes/{note_id}", tag = "findings",
    security(("bearer" = [])),
    params(("instance_id" = String, Path), ("account_id" = String, Path), ("provider_id" = String, Path), ("note_id" = String, Path)),
    responses((status = 200, body = ApiNote), (status = 404, body = palisade_model::error::ErrorBody)))]
pub async fn get_note(
    State(state): State<AppState>,
    auth: Authorized<ReadAccess>,
    Path(path): Path<NotePath>,
) -> ApiResult<ApiJson<ApiNote>> {
    let stored = state
        .store
        .get_note(
            auth.instance_id(),
            &path.account_id,
            &path.provider_id,
            &path.note_id,
        )
        .await?
        .ok_or_else(|| ApiError::not_found("note", &path.note_id))?;
    Ok(ApiJson(note_view(&stored)?))
}

/// Replaces a note; the body's `id` must be the path's.
#[utoipa::path(put, path = "/instances/{instance_id}/findings/v1/{account_id}/providers/{provider_id}/notes/{note_id}", tag = "findings",
    security(("bearer" = [])),
    params(("instance_id" = String, Path), ("account_id" = String, Path), ("provider_id" = String, Path), ("note_id" = String, Path)),
    request_body = ApiNote,
    responses((status = 200, body = ApiNote), (status = 400, body = palisade_model::error::ErrorBody),
        (status = 404, body = palisade_model::error::ErrorBody)))]
pub async fn update_note(
    State(state): State<AppState>,
    auth: Authorized<DataPush>,
    Path(path): Path<NotePath>,
    ApiJson(note): ApiJson<ApiNote>,
) -> ApiResult<ApiJson<ApiNote>> {
    check_ids(&[
        ("account_id", &path.account_id),
        ("provider_id", &path.provider_id),
    ])?;
    if note.id != path.note_id {
        return Err(ApiError::new(
            ErrorCode::InvalidField,
            format!(
                "`/id`: `{}` is not the note of the path, `{}`",
                note.id, path.note_id
            ),
        )
        .with_target(ErrorTarget::field("/id")));
    }
    let record = note_record(&path.account_id, &path.provider_id, &note)?;
    let stored = state
        .store
        .update_note(auth.instance_id(), &record, Utc::now())
        .await
        .map_err(|error| match error {
            palisade_store::StoreError::NotFound(_) => ApiError::not_found("note", &path.note_id),
            other => other.into(),
        })?;
    Ok(ApiJson(note_view(&stored)?))
}

/// Deletes a note; its occurrences stay.
#[utoipa::path(delete, path = "/instances/{instance_id}/findings/v1/{account_id}/providers/{provider_id}/notes/{note_id}", tag = "findings",
    security(("bearer" = [])),
    params(("instance_id" = String, Path), ("account_id" = String, Path), ("provider_id" = String, Path), ("note_id" = String, Path)),
    responses((status = 204), (status = 404, body = palisade_model::error::ErrorBody)))]
pub async fn delete_note(
    State(state): State<AppState>,
    auth: Authorized<DataPush>,
    Path(path): Path<NotePath>,
) -> ApiResult<StatusCode> {
    if state
        .store
        .delete_note(
            auth.instance_id(),
            &path.account_id,
            &path.provider_id,
            &path.note_id,
        )
        .await?
    {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found("note", &path.note_id))
    }
}

/// IBM's `ApiListOccurrencesResponse` (and `ApiListNoteOccurrencesResponse`).
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct OccurrenceList {
    pub occurrences: Vec<OccurrenceView>,
    /// Empty when there are no more occurrences.
    pub next_page_token: String,
}

/// Lists the occurrences of a note, from any provider of the account, oldest first.
#[utoipa::path(get, path = "/instances/{instance_id}/findings/v1/{account_id}/providers/{provider_id}/notes/{note_id}/occurrences", tag = "findings",
    security(("bearer" = [])),
    params(("instance_id" = String, Path), ("account_id" = String, Path), ("provider_id" = String, Path), ("note_id" = String, Path), PageQuery),
    responses((status = 200, body = OccurrenceList), (status = 404, body = palisade_model::error::ErrorBody)))]
pub async fn list_note_occurrences(
    State(state): State<AppState>,
    auth: Authorized<ReadAccess>,
    Path(path): Path<NotePath>,
    Query(query): Query<PageQuery>,
) -> ApiResult<ApiJson<OccurrenceList>> {
    let size = page_size(query.page_size)?;
    let after = decode_token(query.page_token.as_deref())?;
    let after_seq = match &after {
        None => None,
        Some(text) => Some(
            text.parse::<i64>()
                .map_err(|_| parameter_error("page_token", "is not a token this API returned"))?,
        ),
    };
    if state
        .store
        .get_note(
            auth.instance_id(),
            &path.account_id,
            &path.provider_id,
            &path.note_id,
        )
        .await?
        .is_none()
    {
        return Err(ApiError::not_found("note", &path.note_id));
    }
    let occurrences = state
        .store
        .list_note_occurrences(
            auth.instance_id(),
            &path.account_id,
            &path.provider_id,
            &path.note_id,
            after_seq,
            size,
        )
        .await?;
    let next_page_token = next_page_token(&occurrences, size, |last| last.seq.to_string());
    let now = Utc::now();
    Ok(ApiJson(OccurrenceList {
        occurrences: occurrences
            .iter()
            .map(|occurrence| occurrence_view(occurrence, now))
            .collect::<ApiResult<_>>()?,
        next_page_token,
    }))
}

fn replace_if_exists(headers: &HeaderMap) -> ApiResult<bool> {
    match headers.get("replace-if-exists") {
        None => Ok(false),
        Some(value) => match value.to_str().map(str::to_ascii_lowercase).as_deref() {
            Ok("true") => Ok(true),
            Ok("false") => Ok(false),
            _ => Err(ApiError::new(
                ErrorCode::BadRequest,
                "`Replace-If-Exists` must be `true` or `false`",
            )
            .with_target(ErrorTarget::header("Replace-If-Exists"))),
        },
    }
}

/// Reports an occurrence. With `Replace-If-Exists: true` a known id is reported again (counted,
/// `last_seen` moved, body replaced, reopened if resolved) instead of answering 409.
///
/// In scaled mode (`serve --bus`) the occurrence travels through the ingest bus like every
/// ingest: it is durable on the bus before any 2xx, and recorded by its partition's worker in
/// one transaction with the batch's completion. The answer waits for that, within the
/// request's time, so a client sees the stored occurrence as in embedded mode; when the worker
/// is slower the answer is `202` with the batch to follow.
#[utoipa::path(post, path = "/instances/{instance_id}/findings/v1/{account_id}/providers/{provider_id}/occurrences", tag = "findings",
    security(("bearer" = [])),
    params(("instance_id" = String, Path), ("account_id" = String, Path), ("provider_id" = String, Path),
        ("Replace-If-Exists" = Option<bool>, Header, description = "Replace (and count) an existing occurrence instead of answering 409")),
    request_body = ApiOccurrence,
    responses((status = 200, body = OccurrenceView),
        (status = 202, body = crate::service::insights::IngestAnswer, description = "Scaled mode: queued on the bus, not recorded yet"),
        (status = 400, body = palisade_model::error::ErrorBody),
        (status = 409, body = palisade_model::error::ErrorBody)))]
pub async fn create_occurrence(
    State(state): State<AppState>,
    auth: Authorized<DataPush>,
    Path(path): Path<ProviderPath>,
    headers: HeaderMap,
    ApiJson(occurrence): ApiJson<ApiOccurrence>,
) -> ApiResult<Response> {
    check_ids(&[
        ("account_id", &path.account_id),
        ("provider_id", &path.provider_id),
    ])?;
    let replace = replace_if_exists(&headers)?;
    let record = occurrence_record(
        &state.store,
        auth.instance_id(),
        &path.account_id,
        &path.provider_id,
        &occurrence,
    )
    .await?;
    let key = OccurrenceKey {
        account_id: record.account_id.clone(),
        provider_id: record.provider_id.clone(),
        id: record.id.clone(),
    };
    let now = Utc::now();
    let stored = if state.cluster.scaled() {
        match queue_occurrence(&state, auth.instance_id(), &auth.key.id, &record, replace).await? {
            Ok(()) => read_occurrence(&state, auth.instance_id(), &key).await?,
            Err(queued) => {
                return Ok((StatusCode::ACCEPTED, ApiJson(queued)).into_response());
            }
        }
    } else if replace {
        state
            .store
            .record_occurrences(auth.instance_id(), std::slice::from_ref(&record), now)
            .await?;
        read_occurrence(&state, auth.instance_id(), &key).await?
    } else {
        state
            .store
            .insert_occurrence(auth.instance_id(), &record, now)
            .await?
    };
    Ok(ApiJson(occurrence_view(&stored, now)?).into_response())
}

/// An occurrence that was just recorded.
async fn read_occurrence(
    state: &AppState,
    instance_id: &str,
    key: &OccurrenceKey,
) -> ApiResult<palisade_store::findings::StoredOccurrence> {
    state
        .store
        .get_occurrence(instance_id, key)
        .await?
        .ok_or_else(|| ApiError::internal("occurrence missing right after it was recorded"))
}

/// Scaled mode: publishes the occurrence on the bus and waits for its worker; `Err` with the
/// batch when the worker has not recorded it within the request's time. Without
/// `Replace-If-Exists`, a known id is refused before anything is queued (two creates of one new
/// id racing each other are both recorded, the second counted as a report of the first).
async fn queue_occurrence(
    state: &AppState,
    instance_id: &str,
    key_id: &str,
    record: &palisade_store::findings::OccurrenceRecord,
    replace: bool,
) -> ApiResult<Result<(), crate::service::insights::IngestAnswer>> {
    use crate::service::insights;
    if !replace {
        let key = OccurrenceKey {
            account_id: record.account_id.clone(),
            provider_id: record.provider_id.clone(),
            id: record.id.clone(),
        };
        if state
            .store
            .get_occurrence(instance_id, &key)
            .await?
            .is_some()
        {
            return Err(palisade_store::StoreError::Conflict(format!(
                "occurrence {} already exists",
                record.id
            ))
            .into());
        }
    }
    let payload = insights::json_lines(std::slice::from_ref(record))?;
    let batch = insights::enqueue(
        state,
        instance_id,
        insights::OCCURRENCES,
        "occurrences",
        key_id,
        &payload,
        1,
        0,
        serde_json::Value::Null,
    )
    .await?;
    let batch = insights::wait_for_owner(state, batch).await?;
    match batch.status {
        palisade_store::insights::BatchStatus::Processed => Ok(Ok(())),
        palisade_store::insights::BatchStatus::Pending => Ok(Err(insights::IngestAnswer {
            batch: insights::BatchView::of(&batch),
            rejected: Vec::new(),
        })),
        palisade_store::insights::BatchStatus::Failed => Err(ApiError::internal(format!(
            "the occurrence could not be recorded: {}",
            batch.error.as_deref().unwrap_or("no reason given")
        ))),
    }
}

/// Lists a provider's occurrences, in id order.
#[utoipa::path(get, path = "/instances/{instance_id}/findings/v1/{account_id}/providers/{provider_id}/occurrences", tag = "findings",
    security(("bearer" = [])),
    params(("instance_id" = String, Path), ("account_id" = String, Path), ("provider_id" = String, Path), PageQuery),
    responses((status = 200, body = OccurrenceList), (status = 400, body = palisade_model::error::ErrorBody)))]
pub async fn list_occurrences(
    State(state): State<AppState>,
    auth: Authorized<ReadAccess>,
    Path(path): Path<ProviderPath>,
    Query(query): Query<PageQuery>,
) -> ApiResult<ApiJson<OccurrenceList>> {
    check_ids(&[
        ("account_id", &path.account_id),
        ("provider_id", &path.provider_id),
    ])?;
    let size = page_size(query.page_size)?;
    let after = decode_token(query.page_token.as_deref())?;
    let occurrences = state
        .store
        .list_occurrences(
            auth.instance_id(),
            &path.account_id,
            &path.provider_id,
            after.as_deref(),
            size,
        )
        .await?;
    let next_page_token = next_page_token(&occurrences, size, |last| last.record.id.clone());
    let now = Utc::now();
    Ok(ApiJson(OccurrenceList {
        occurrences: occurrences
            .iter()
            .map(|occurrence| occurrence_view(occurrence, now))
            .collect::<ApiResult<_>>()?,
        next_page_token,
    }))
}

fn occurrence_key(path: &OccurrencePath) -> OccurrenceKey {
    OccurrenceKey {
        account_id: path.account_id.clone(),
        provider_id: path.provider_id.clone(),
        id: path.occurrence_id.clone(),
    }
}

/// Returns one occurrence with its lifecycle.
#[utoipa::path(get, path = "/instances/{instance_id}/findings/v1/{account_id}/providers/{provider_id}/occurrences/{occurrence_id}", tag = "findings",
    security(("bearer" = [])),
    params(("instance_id" = String, Path), ("account_id" = String, Path), ("provider_id" = String, Path), ("occurrence_id" = String, Path)),
    responses((status = 200, body = OccurrenceView), (status = 404, body = palisade_model::error::ErrorBody)))]
pub async fn get_occurrence(
    State(state): State<AppState>,
    auth: Authorized<ReadAccess>,
    Path(path): Path<OccurrencePath>,
) -> ApiResult<ApiJson<OccurrenceView>> {
    let stored = state
        .store
        .get_occurrence(auth.instance_id(), &occurrence_key(&path))
        .await?
        .ok_or_else(|| ApiError::not_found("occurrence", &path.occurrence_id))?;
    Ok(ApiJson(occurrence_view(&stored, Utc::now())?))
}

/// Replaces an occurrence's content without counting a new report; the body's `id` must be the
/// path's.
#[utoipa::path(put, path = "/instances/{instance_id}/findings/v1/{account_id}/providers/{provider_id}/occurrences/{occurrence_id}", tag = "findings",
    security(("bearer" = [])),
    params(("instance_id" = String, Path), ("account_id" = String, Path), ("provider_id" = String, Path), ("occurrence_id" = String, Path)),
    request_body = ApiOccurrence,
    responses((status = 200, body = OccurrenceView), (status = 400, body = palisade_model::error::ErrorBody),
        (status = 404, body = palisade_model::error::ErrorBody)))]
pub async fn update_occurrence(
    State(state): State<AppState>,
    auth: Authorized<DataPush>,
    Path(path): Path<OccurrencePath>,
    ApiJson(occurrence): ApiJson<ApiOccurrence>,
) -> ApiResult<ApiJson<OccurrenceView>> {
    check_ids(&[
        ("account_id", &path.account_id),
        ("provider_id", &path.provider_id),
    ])?;
    if occurrence.id != path.occurrence_id {
        return Err(ApiError::new(
            ErrorCode::InvalidField,
            format!(
                "`/id`: `{}` is not the occurrence of the path, `{}`",
                occurrence.id, path.occurrence_id
            ),
        )
        .with_target(ErrorTarget::field("/id")));
    }
    let record = occurrence_record(
        &state.store,
        auth.instance_id(),
        &path.account_id,
        &path.provider_id,
        &occurrence,
    )
    .await?;
    let now = Utc::now();
    let stored = state
        .store
        .update_occurrence(auth.instance_id(), &record, now)
        .await
        .map_err(|error| match error {
            palisade_store::StoreError::NotFound(_) => {
                ApiError::not_found("occurrence", &path.occurrence_id)
            }
            other => other.into(),
        })?;
    Ok(ApiJson(occurrence_view(&stored, now)?))
}

/// Deletes an occurrence.
#[utoipa::path(delete, path = "/instances/{instance_id}/findings/v1/{account_id}/providers/{provider_id}/occurrences/{occurrence_id}", tag = "findings",
    security(("bearer" = [])),
    params(("instance_id" = String, Path), ("account_id" = String, Path), ("provider_id" = String, Path), ("occurrence_id" = String, Path)),
    responses((status = 204), (status = 404, body = palisade_model::error::ErrorBody)))]
pub async fn delete_occurrence(
    State(state): State<AppState>,
    auth: Authorized<DataPush>,
    Path(path): Path<OccurrencePath>,
) -> ApiResult<StatusCode> {
    if state
        .store
        .delete_occurrence(auth.instance_id(), &occurrence_key(&path))
        .await?
    {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found("occurrence", &path.occurrence_id))
    }
}

/// Returns the note an occurrence is of.
#[utoipa::path(get, path = "/instances/{instance_id}/findings/v1/{account_id}/providers/{provider_id}/occurrences/{occurrence_id}/note", tag = "findings",
    security(("bearer" = [])),
    params(("instance_id" = String, Path), ("account_id" = String, Path), ("provider_id" = String, Path), ("occurrence_id" = String, Path)),
    responses((status = 200, body = ApiNote), (status = 404, body = palisade_model::error::ErrorBody)))]
pub async fn get_occurrence_note(
    State(state): State<AppState>,
    auth: Authorized<ReadAccess>,
    Path(path): Path<OccurrencePath>,
) -> ApiResult<ApiJson<ApiNote>> {
    let occurrence = state
        .store
        .get_occurrence(auth.instance_id(), &occurrence_key(&path))
        .await?
        .ok_or_else(|| ApiError::not_found("occurrence", &path.occurrence_id))?;
    let record = &occurrence.record;
    let note = state
        .store
        .get_note(
            auth.instance_id(),
            &record.account_id,
            &record.note_provider_id,
            &record.note_id,
        )
        .await?
        .ok_or_else(|| {
            ApiError::not_found(
                "note",
                &NoteName::format(
                    &record.account_id,
                    &record.note_provider_id,
                    &record.note_id,
                ),
            )
        })?;
    Ok(ApiJson(note_view(&note)?))
}

/// Filters of Palisade's finding listing and export.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct FindingQuery {
    pub account_id: Option<String>,
    /// Comma-separated provider ids.
    pub provider_id: Option<String>,
    pub note_id: Option<String>,
    /// Comma-separated: FINDING, KPI.
    pub kind: Option<String>,
    /// Comma-separated: LOW, MEDIUM, HIGH, CRITICAL.
    pub severity: Option<String>,
    /// Comma-separated: open, acknowledged, resolved, suppressed.
    pub status: Option<String>,
    /// A resource CRN, id or URL.
    pub resource: Option<String>,
    /// Last seen at or after (RFC 3339).
    pub since: Option<String>,
    /// Last seen before (RFC 3339).
    pub until: Option<String>,
    /// Items per page (default 100, at most 1000).
    pub page_size: Option<u32>,
    pub page_token: Option<String>,
    /// Export format; only `ocsf`.
    pub format: Option<String>,
}

fn list_of(value: &Option<String>) -> Vec<String> {
    value
        .iter()
        .flat_map(|text| text.split(','))
        .map(str::trim)
        .filter(|item| !item.is_empty())
        .map(str::to_owned)
        .collect()
}

fn time_parameter(name: &str, value: &Option<String>) -> ApiResult<Option<DateTime<Utc>>> {
    value
        .as_deref()
        .map(|text| {
            DateTime::parse_from_rfc3339(text)
                .map(|at| at.with_timezone(&Utc))
                .map_err(|error| parameter_error(name, format!("not an RFC 3339 time: {error}")))
        })
        .transpose()
}

pub(crate) fn finding_filter(query: &FindingQuery) -> ApiResult<OccurrenceFilter> {
    let severities: Vec<String> = list_of(&query.severity)
        .into_iter()
        .map(|severity| severity.to_ascii_uppercase())
        .collect();
    let names = crate::service::findings::model::severity_names();
    if let Some(bad) = severities
        .iter()
        .find(|severity| !names.contains(&severity.as_str()))
    {
        return Err(parameter_error(
            "severity",
            format!("`{bad}` is not one of {}", names.join(", ")),
        ));
    }
    let kinds: Vec<String> = list_of(&query.kind)
        .into_iter()
        .map(|kind| kind.to_ascii_uppercase())
        .collect();
    let statuses = list_of(&query.status)
        .iter()
        .map(|status| {
            status
                .to_ascii_lowercase()
                .parse::<FindingStatus>()
                .map_err(|message| parameter_error("status", message))
        })
        .collect::<ApiResult<Vec<_>>>()?;
    let provider_ids = list_of(&query.provider_id);
    if provider_ids.len() > 50 {
        return Err(parameter_error("provider_id", "name at most 50 providers"));
    }
    Ok(OccurrenceFilter {
        account_id: query.account_id.clone(),
        provider_ids,
        note_provider_id: None,
        note_id: query.note_id.clone(),
        kinds,
        severities,
        statuses,
        resource: query.resource.clone(),
        since: time_parameter("since", &query.since)?,
        until: time_parameter("until", &query.until)?,
    })
}

/// The position of an occurrence in the time-ordered listing, before encoding as a page token.
fn cursor_text(occurrence: &StoredOccurrence) -> String {
    format!(
        "{}|{}",
        palisade_store::format_timestamp(occurrence.last_seen),
        occurrence.seq
    )
}

/// The page token that continues a listing after `occurrence` (the dashboard's "next" link).
pub(crate) fn cursor_token(occurrence: &StoredOccurrence) -> String {
    encode_token(&cursor_text(occurrence))
}

pub(crate) fn decode_cursor(token: Option<&str>) -> ApiResult<Option<OccurrenceCursor>> {
    let Some(text) = decode_token(token)? else {
        return Ok(None);
    };
    let bad = || parameter_error("page_token", "is not a token this API returned");
    let (time, seq) = text.split_once('|').ok_or_else(bad)?;
    Ok(Some(OccurrenceCursor {
        last_seen: DateTime::parse_from_rfc3339(time)
            .map_err(|_| bad())?
            .with_timezone(&Utc),
        seq: seq.parse().map_err(|_| bad())?,
    }))
}

/// Findings of the instance with their lifecycle, newest first.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct FindingList {
    pub findings: Vec<OccurrenceView>,
    /// Empty when there are no more findings.
    pub next_page_token: String,
}

/// Lists findings (occurrences) of every provider and account, newest `last_seen` first, with
/// filters: one query for partner tools and Palisade's own sources alike.
#[utoipa::path(get, path = "/instances/{instance_id}/v1/findings", tag = "findings lifecycle",
    security(("bearer" = [])),
    params(("instance_id" = String, Path), FindingQuery),
    responses((status = 200, body = FindingList), (status = 400, body = palisade_model::error::ErrorBody)))]
pub async fn list_findings(
    State(state): State<AppState>,
    auth: Authorized<ReadAccess>,
    Path(_instance_id): Path<String>,
    Query(query): Query<FindingQuery>,
) -> ApiResult<ApiJson<FindingList>> {
    let filter = finding_filter(&query)?;
    let size = page_size(query.page_size)?;
    let cursor = decode_cursor(query.page_token.as_deref())?;
    let now = Utc::now();
    // A status filter must see expired suppressions as open; the sweep is an indexed no-op when
    // nothing expired (and without a status filter, rendering reads them as open anyway).
    if !filter.statuses.is_empty() {
        state.store.expire_suppressions(now).await?;
    }
    let occurrences = state
        .store
        .query_occurrences(auth.instance_id(), &filter, cursor.as_ref(), size)
        .await?;
    let next_page_token = next_page_token(&occurrences, size, cursor_text);
    Ok(ApiJson(FindingList {
        findings: occurrences
            .iter()
            .map(|occurrence| occurrence_view(occurrence, now))
            .collect::<ApiResult<_>>()?,
        next_page_token,
    }))
}

/// Outcome of a status change.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct StatusChangeResult {
    pub status: String,
    pub updated: Vec<FindingReference>,
    /// Named findings that do not exist (in this instance).
    pub not_found: Vec<FindingReference>,
}

/// Moves findings through the lifecycle: open, acknowledged, resolved, or suppressed with a
/// reason and an optional end.
#[utoipa::path(post, path = "/instances/{instance_id}/v1/findings/status", tag = "findings lifecycle",
    security(("bearer" = [])),
    params(("instance_id" = String, Path)),
    request_body = StatusChangeRequest,
    responses((status = 200, body = StatusChangeResult), (status = 400, body = palisade_model::error::ErrorBody)))]
pub async fn change_status(
    State(state): State<AppState>,
    auth: Authorized<ConfigWrite>,
    Path(_instance_id): Path<String>,
    ApiJson(request): ApiJson<StatusChangeRequest>,
) -> ApiResult<ApiJson<StatusChangeResult>> {
    let now = Utc::now();
    let change = status_change(&request, now)?;
    let keys: Vec<OccurrenceKey> = request
        .findings
        .iter()
        .map(|reference| OccurrenceKey {
            account_id: reference.account_id.clone(),
            provider_id: reference.provider_id.clone(),
            id: reference.id.clone(),
        })
        .collect();
    let changed = state
        .store
        .set_occurrence_status(auth.instance_id(), &keys, &change, now)
        .await?;
    let (updated, not_found): (Vec<FindingReference>, Vec<FindingReference>) =
        request.findings.into_iter().partition(|reference| {
            changed.iter().any(|key| {
                key.account_id == reference.account_id
                    && key.provider_id == reference.provider_id
                    && key.id == reference.id
            })
        });
    tracing::info!(status = %change.status, updated = updated.len(), by = %auth.key.id, "finding status changed");
    Ok(ApiJson(StatusChangeResult {
        status: change.status.as_str().to_owned(),
        updated,
        not_found,
    }))
}

/// Exports findings as OCSF, one JSON object per line (Compliance Finding 2003 for posture,
/// Detection Finding 2004 for the rest), with the listing's filters. Streamed page by page.
#[utoipa::path(get, path = "/instances/{instance_id}/v1/findings/export", tag = "findings lifecycle",
    security(("bearer" = [])),
    params(("instance_id" = String, Path), FindingQuery),
    responses((status = 200, description = "OCSF events as JSON Lines", content_type = "application/x-ndjson", body = String),
        (status = 400, body = palisade_model::error::ErrorBody)))]
pub async fn export_findings(
    State(state): State<AppState>,
    auth: Authorized<ReadAccess>,
    Path(_instance_id): Path<String>,
    Query(query): Query<FindingQuery>,
) -> ApiResult<Response> {
    match query.format.as_deref() {
        None | Some("ocsf") => {}
        Some(other) => {
            return Err(parameter_error(
                "format",
                format!("`{other}` is not supported; use ocsf"),
            ));
        }
    }
    if query.page_size.is_some() || query.page_token.is_some() {
        return Err(parameter_error(
            "page_size",
            "an export is not paged; filter it instead",
        ));
    }
    let filter = finding_filter(&query)?;
    let instance_id = auth.instance_id().to_owned();
    let now = Utc::now();
    if !filter.statuses.is_empty() {
        state.store.expire_suppressions(now).await?;
    }
    struct Cursor {
        state: AppState,
        instance_id: String,
        filter: OccurrenceFilter,
        after: Option<OccurrenceCursor>,
        done: bool,
        titles: HashMap<(String, String, String), Option<String>>,
    }
    let start = Cursor {
        state,
        instance_id,
        filter,
        after: None,
        done: false,
        titles: HashMap::new(),
    };
    let stream = futures_util::stream::unfold(start, move |mut cursor| async move {
        if cursor.done {
            return None;
        }
        let page = match cursor
            .state
            .store
            .query_occurrences(
                &cursor.instance_id,
                &cursor.filter,
                cursor.after.as_ref(),
                EXPORT_PAGE,
            )
            .await
        {
            Ok(page) => page,
            Err(error) => {
                tracing::error!(error = %error, "findings export failed mid-stream");
                return Some((
                    Err(std::io::Error::other("export failed")),
                    Cursor {
                        done: true,
                        ..cursor
                    },
                ));
            }
        };
        if page.len() < EXPORT_PAGE as usize {
            cursor.done = true;
        }
        let mut lines = String::new();
        for occurrence in &page {
            let record = &occurrence.record;
            let title_key = (
                record.account_id.clone(),
                record.note_provider_id.clone(),
                record.note_id.clone(),
            );
            if !cursor.titles.contains_key(&title_key) {
                let title = cursor
                    .state
                    .store
                    .get_note(
                        &cursor.instance_id,
                        &title_key.0,
                        &title_key.1,
                        &title_key.2,
                    )
                    .await
                    .ok()
                    .flatten()
                    .and_then(|note| {
                        note.record
                            .body
                            .get("short_description")
                            .and_then(serde_json::Value::as_str)
                            .map(str::to_owned)
                    });
                cursor.titles.insert(title_key.clone(), title);
            }
            let title = cursor.titles.get(&title_key).and_then(Option::as_deref);
            lines.push_str(&ocsf::to_ocsf(&cursor.instance_id, occurrence, title, now).to_string());
            lines.push('\n');
        }
        cursor.after = page.last().map(|last| OccurrenceCursor {
            last_seen: last.last_seen,
            seq: last.seq,
        });
        if page.is_empty() {
            cursor.done = true;
        }
        Some((Ok(Bytes::from(lines)), cursor))
    });
    Ok((
        [(header::CONTENT_TYPE, "application/x-ndjson")],
        Body::from_stream(stream),
    )
        .into_response())
}

/// Query of the ASFF import.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ImportQuery {
    /// The account to import into; default each finding's `AwsAccountId`.
    pub account_id: Option<String>,
}

/// Imports AWS Security Hub findings (ASFF) as occurrences of provider `aws-security-hub`.
#[utoipa::path(post, path = "/instances/{instance_id}/v1/findings/import/asff", tag = "findings lifecycle",
    security(("bearer" = [])),
    params(("instance_id" = String, Path), ImportQuery),
    request_body(content = serde_json::Value, description = "`{\"Findings\": [...]}` as BatchImportFindings takes, or an array"),
    responses((status = 200, body = ImportReport), (status = 400, body = palisade_model::error::ErrorBody)))]
pub async fn import_asff(
    State(state): State<AppState>,
    auth: Authorized<DataPush>,
    Path(_instance_id): Path<String>,
    Query(query): Query<ImportQuery>,
    ApiJson(document): ApiJson<serde_json::Value>,
) -> ApiResult<ApiJson<ImportReport>> {
    if let Some(account_id) = &query.account_id {
        check_path_id("account_id", account_id)?;
    }
    let report = asff::import(
        &state.store,
        auth.instance_id(),
        &document,
        query.account_id.as_deref(),
        Utc::now(),
    )
    .await?;
    Ok(ApiJson(report))
}

/// Query of the card route.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct CardQuery {
    pub account_id: String,
}

/// Computes the account's dashboard cards: counts and KPI sums over each element's time range,
/// with a point per day for time series.
#[utoipa::path(get, path = "/instances/{instance_id}/v1/findings/cards", tag = "findings lifecycle",
    security(("bearer" = [])),
    params(("instance_id" = String, Path), CardQuery),
    responses((status = 200, body = CardList), (status = 400, body = palisade_model::error::ErrorBody)))]
pub async fn list_cards(
    State(state): State<AppState>,
    auth: Authorized<ReadAccess>,
    Path(_instance_id): Path<String>,
    Query(query): Query<CardQuery>,
) -> ApiResult<ApiJson<CardList>> {
    check_path_id("account_id", &query.account_id)?;
    Ok(ApiJson(
        cards::cards(
            &state.store,
            auth.instance_id(),
            &query.account_id,
            Utc::now(),
        )
        .await?,
    ))
}
