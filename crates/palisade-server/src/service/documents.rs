//! Configuration objects stored as versioned JSON documents, with the checks every API that
//! stores them needs: body shape (all mistakes at once, each with its JSON pointer), 404 for
//! absent objects, id-ordered pagination.
//!
//! Palisade's built-in control libraries and profiles (`palisade_posture::content`) are offered in
//! every instance as read-only `predefined` documents: [`get`] and [`all`] return them beside the
//! stored ones, so listing, attaching and scanning treat them like any other, and nothing is
//! written per instance (a new Palisade version brings its new content to every instance).

use std::collections::BTreeMap;
use std::sync::OnceLock;

use chrono::{DateTime, SecondsFormat, Utc};
use palisade_model::error::{ErrorCode, ErrorItem, ErrorTarget};
use palisade_store::{Document, DocumentQuery};
use serde_json::{Map, Value, json};

use crate::error::{ApiError, ApiResult};
use crate::json::escape_pointer_segment;
use crate::state::AppState;

/// A kind of document: its store kind and the name errors use for it.
#[derive(Debug, Clone, Copy)]
pub struct Kind {
    pub store_kind: &'static str,
    pub label: &'static str,
}

/// Formats a timestamp as the APIs show it (RFC 3339, UTC, seconds).
pub fn timestamp(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// Returns a new object id.
pub fn new_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// The built-in documents of a kind (predefined control libraries and profiles), in id order.
pub fn builtin(kind: Kind) -> &'static [Document] {
    static LIBRARIES: OnceLock<Vec<Document>> = OnceLock::new();
    static PROFILES: OnceLock<Vec<Document>> = OnceLock::new();
    let content = || match palisade_posture::content::builtin() {
        Ok(content) => Some(content),
        Err(error) => {
            tracing::error!(error = ?error, "the built-in content does not load");
            None
        }
    };
    if kind.store_kind == crate::routes::v3::CONTROL_LIBRARY.store_kind {
        LIBRARIES.get_or_init(|| {
            content()
                .map(|content| {
                    predefined_documents(
                        kind,
                        content
                            .libraries
                            .iter()
                            .map(|library| (library.id.clone(), serde_json::to_value(library))),
                    )
                })
                .unwrap_or_default()
        })
    } else if kind.store_kind == crate::routes::v3::PROFILE.store_kind {
        PROFILES.get_or_init(|| {
            content()
                .map(|content| {
                    predefined_documents(
                        kind,
                        content
                            .profiles
                            .iter()
                            .map(|profile| (profile.id.clone(), serde_json::to_value(profile))),
                    )
                })
                .unwrap_or_default()
        })
    } else {
        &[]
    }
}

/// Shapes built-in objects as the documents the v3 API shows: type `predefined`, audit fields by
/// `palisade`, version 1.
fn predefined_documents(
    kind: Kind,
    objects: impl Iterator<Item = (String, serde_json::Result<Value>)>,
) -> Vec<Document> {
    // A fixed time: the content is part of the release, not of an instance's history.
    let released = DateTime::from_timestamp(1_767_225_600, 0).unwrap_or_default();
    let mut documents: Vec<Document> = objects
        .filter_map(|(id, body)| match body {
            Ok(mut body) => {
                for (field, value) in [
                    ("created_on", json!(timestamp(released))),
                    ("created_by", json!("palisade")),
                    ("updated_on", json!(timestamp(released))),
                    ("updated_by", json!("palisade")),
                ] {
                    body[field] = value;
                }
                Some(Document {
                    kind: kind.store_kind.to_owned(),
                    id,
                    version: 1,
                    body,
                    created_at: released,
                    updated_at: released,
                })
            }
            Err(error) => {
                tracing::error!(error = %error, "built-in content does not serialise");
                None
            }
        })
        .collect();
    documents.sort_by(|left, right| left.id.cmp(&right.id));
    documents
}

/// Returns a document (stored, or built in) or 404.
pub async fn get(state: &AppState, instance_id: &str, kind: Kind, id: &str) -> ApiResult<Document> {
    if let Some(document) = state
        .store
        .get_document(instance_id, kind.store_kind, id)
        .await?
    {
        return Ok(document);
    }
    builtin(kind)
        .iter()
        .find(|document| document.id == id)
        .cloned()
        .ok_or_else(|| ApiError::not_found(kind.label, id))
}

/// Returns every document of a kind in id order, built-in ones included. Configuration
/// collections are small (at most thousands per instance), so filters run in memory over this.
pub async fn all(state: &AppState, instance_id: &str, kind: Kind) -> ApiResult<Vec<Document>> {
    let mut documents = state
        .store
        .list_documents(instance_id, kind.store_kind, &DocumentQuery::default())
        .await?;
    let builtin = builtin(kind);
    if !builtin.is_empty() {
        documents.extend(
            builtin
                .iter()
                .filter(|document| !documents.iter().any(|stored| stored.id == document.id))
                .cloned()
                .collect::<Vec<_>>(),
        );
        documents.sort_by(|left, right| left.id.cmp(&right.id));
    }
    Ok(documents)
}

/// Inserts a new document.
pub async fn insert(
    state: &AppState,
    instance_id: &str,
    kind: Kind,
    id: &str,
    body: &Value,
) -> ApiResult<Document> {
    Ok(state
        .store
        .insert_document(instance_id, kind.store_kind, id, body, Utc::now())
        .await?)
}

/// Replaces a document's body (optionally only at `expected_version`), or 404.
pub async fn replace(
    state: &AppState,
    instance_id: &str,
    kind: Kind,
    id: &str,
    body: &Value,
    expected_version: Option<i64>,
) -> ApiResult<Document> {
    match state
        .store
        .update_document(
            instance_id,
            kind.store_kind,
            id,
            body,
            expected_version,
            Utc::now(),
        )
        .await
    {
        Err(palisade_store::StoreError::NotFound(_)) => Err(ApiError::not_found(kind.label, id)),
        other => Ok(other?),
    }
}

/// Creates a document or replaces its body (singleton settings, attestations, uploaded packs).
/// A concurrent creation of the same id makes the insert clash; the update then wins.
pub async fn upsert(
    state: &AppState,
    instance_id: &str,
    kind: Kind,
    id: &str,
    body: &Value,
) -> ApiResult<Document> {
    let update = || {
        state
            .store
            .update_document(instance_id, kind.store_kind, id, body, None, Utc::now())
    };
    match update().await {
        Err(palisade_store::StoreError::NotFound(_)) => {
            match insert(state, instance_id, kind, id, body).await {
                Err(error) if error.code() == ErrorCode::Conflict => Ok(update().await?),
                other => other,
            }
        }
        other => Ok(other?),
    }
}

/// Deletes a document, or 404.
pub async fn delete(state: &AppState, instance_id: &str, kind: Kind, id: &str) -> ApiResult<()> {
    if state
        .store
        .delete_document(instance_id, kind.store_kind, id)
        .await?
    {
        Ok(())
    } else {
        Err(ApiError::not_found(kind.label, id))
    }
}

/// Collects body mistakes so one answer lists all of them.
#[derive(Debug, Default)]
pub struct BodyErrors {
    items: Vec<ErrorItem>,
}

impl BodyErrors {
    /// Records a mistake at a JSON pointer.
    pub fn push(&mut self, code: ErrorCode, pointer: &str, message: impl Into<String>) {
        let message = message.into();
        let location = if pointer.is_empty() {
            "the body".to_owned()
        } else {
            format!("`{pointer}`")
        };
        self.items.push(ErrorItem {
            code,
            message: format!("{location}: {message}"),
            target: Some(ErrorTarget::field(pointer)),
        });
    }

    /// Tells whether nothing was recorded.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// Returns `Ok(value)` when nothing was recorded, else every mistake.
    pub fn finish<T>(self, value: T) -> ApiResult<T> {
        if self.items.is_empty() {
            Ok(value)
        } else {
            Err(ApiError::many(self.items))
        }
    }

    /// Checks an object's keys: every `required` key present, no key outside `allowed` (or
    /// `required`), each mistake recorded at `pointer/key`.
    pub fn check_keys(
        &mut self,
        object: &Map<String, Value>,
        pointer: &str,
        required: &[&str],
        allowed: &[&str],
    ) {
        for key in required {
            if object.get(*key).is_none_or(Value::is_null) {
                self.push(
                    ErrorCode::MissingField,
                    &format!("{pointer}/{key}"),
                    "is required",
                );
            }
        }
        for key in object.keys() {
            if !required.contains(&key.as_str()) && !allowed.contains(&key.as_str()) {
                self.push(
                    ErrorCode::UnknownField,
                    &format!("{pointer}/{}", escape_pointer_segment(key)),
                    format!("unknown field `{key}`"),
                );
            }
        }
    }

    /// Checks that `object[key]`, when present, is a string (non-empty when `non_empty`).
    pub fn check_string(
        &mut self,
        object: &Map<String, Value>,
        pointer: &str,
        key: &str,
        non_empty: bool,
    ) {
        match object.get(key) {
            None | Some(Value::Null) => {}
            Some(Value::String(text)) if non_empty && text.trim().is_empty() => {
                self.push(
                    ErrorCode::InvalidField,
                    &format!("{pointer}/{key}"),
                    "must not be empty",
                );
            }
            Some(Value::String(_)) => {}
            Some(_) => self.push(
                ErrorCode::InvalidField,
                &format!("{pointer}/{key}"),
                "must be a string",
            ),
        }
    }

    /// Checks that `object[key]`, when present, is one of `allowed`.
    pub fn check_enum(
        &mut self,
        object: &Map<String, Value>,
        pointer: &str,
        key: &str,
        allowed: &[&str],
    ) {
        match object.get(key) {
            None | Some(Value::Null) => {}
            Some(Value::String(text)) if allowed.contains(&text.as_str()) => {}
            Some(_) => self.push(
                ErrorCode::InvalidField,
                &format!("{pointer}/{key}"),
                format!("must be one of {}", allowed.join(", ")),
            ),
        }
    }

    /// Checks that `object[key]`, when present, is a boolean.
    pub fn check_bool(&mut self, object: &Map<String, Value>, pointer: &str, key: &str) {
        if let Some(value) = object.get(key).filter(|value| !value.is_null())
            && !value.is_boolean()
        {
            self.push(
                ErrorCode::InvalidField,
                &format!("{pointer}/{key}"),
                "must be true or false",
            );
        }
    }

    /// Returns `object[key]` as an array of objects (empty when absent), recording a mistake
    /// for a non-array and for each non-object element.
    pub fn objects<'a>(
        &mut self,
        object: &'a Map<String, Value>,
        pointer: &str,
        key: &str,
    ) -> Vec<(String, &'a Map<String, Value>)> {
        match object.get(key) {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(items)) => items
                .iter()
                .enumerate()
                .filter_map(|(index, item)| {
                    let item_pointer = format!("{pointer}/{key}/{index}");
                    match item.as_object() {
                        Some(map) => Some((item_pointer, map)),
                        None => {
                            self.push(ErrorCode::InvalidField, &item_pointer, "must be an object");
                            None
                        }
                    }
                })
                .collect(),
            Some(_) => {
                self.push(
                    ErrorCode::InvalidField,
                    &format!("{pointer}/{key}"),
                    "must be an array",
                );
                Vec::new()
            }
        }
    }
}

/// Returns the body as an object, or a 400 naming the body.
pub fn body_object(body: Value) -> ApiResult<Map<String, Value>> {
    match body {
        Value::Object(map) => Ok(map),
        _ => Err(
            ApiError::new(ErrorCode::InvalidField, "the body must be a JSON object")
                .with_target(ErrorTarget::field("")),
        ),
    }
}

/// `limit` and `start` of a v3 list.
#[derive(Debug, Clone, Default, serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageParams {
    /// Page size, 1–200 (default 50).
    pub limit: Option<u32>,
    /// The `start` token of the previous page's `next`.
    pub start: Option<String>,
}

/// Builds an SCC v3 collection page from id-ordered items: `limit`, `total_count`, `first`,
/// `next` (with `href` and `start`, which IBM's pagers read) and the items under `key`.
pub fn page(
    path: &str,
    key: &str,
    params: &PageParams,
    items: Vec<(String, Value)>,
) -> ApiResult<Value> {
    let limit = params.limit.unwrap_or(50);
    if !(1..=200).contains(&limit) {
        return Err(ApiError::new(
            ErrorCode::InvalidParameter,
            "`limit` must be between 1 and 200",
        )
        .with_target(ErrorTarget::parameter("limit")));
    }
    let total_count = items.len();
    let start = params.start.as_deref().unwrap_or_default();
    let mut remaining = items
        .into_iter()
        .filter(|(id, _)| id.as_str() > start)
        .peekable();
    let mut page_items = Vec::new();
    let mut last_id = None;
    while page_items.len() < limit as usize {
        let Some((id, value)) = remaining.next() else {
            break;
        };
        last_id = Some(id);
        page_items.push(value);
    }
    let mut result = json!({
        "limit": limit,
        "total_count": total_count,
        "first": {"href": format!("{path}?limit={limit}")},
        key: page_items,
    });
    if remaining.peek().is_some()
        && let Some(last) = last_id
    {
        result["next"] =
            json!({"href": format!("{path}?limit={limit}&start={last}"), "start": last});
    }
    Ok(result)
}

/// Sorts documents into the `(id, body)` pairs [`page`] takes, after a filter.
pub fn pairs(documents: Vec<Document>, keep: impl Fn(&Value) -> bool) -> Vec<(String, Value)> {
    let mut pairs: BTreeMap<String, Value> = BTreeMap::new();
    for document in documents {
        if keep(&document.body) {
            pairs.insert(document.id, document.body);
        }
    }
    pairs.into_iter().collect()
}
