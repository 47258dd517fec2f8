//! [`ApiError`]: the one error type handlers return, and how it becomes the SCC-shaped body.
//!
//! A handler returns `ApiError`; its `IntoResponse` only sets the status and carries the error in
//! a response extension. The [`crate::middleware::finish`] middleware, which knows the request's
//! trace id, renders the body and logs internal details once — so internals never reach clients
//! and every error body carries the same trace id as the log line.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use palisade_model::error::{ErrorBody, ErrorCode, ErrorItem, ErrorTarget};
use palisade_store::StoreError;

/// An error answer: one or more items, plus details for the log that clients never see.
#[derive(Debug, Clone)]
pub struct ApiError {
    pub items: Vec<ErrorItem>,
    /// Logged with the trace id; never sent.
    pub internal_detail: Option<String>,
    /// Seconds, for 429 and 503 answers.
    pub retry_after: Option<u64>,
}

impl ApiError {
    /// An error with one item.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            items: vec![ErrorItem {
                code,
                message: message.into(),
                target: None,
            }],
            internal_detail: None,
            retry_after: None,
        }
    }

    /// Points the (first) item at a target.
    pub fn with_target(mut self, target: ErrorTarget) -> Self {
        if let Some(first) = self.items.first_mut() {
            first.target = Some(target);
        }
        self
    }

    /// Several validation errors in one answer.
    pub fn many(items: Vec<ErrorItem>) -> Self {
        Self {
            items,
            internal_detail: None,
            retry_after: None,
        }
    }

    /// 404 for an object of `what` with `id` — also the answer for another instance's objects.
    pub fn not_found(what: &str, id: &str) -> Self {
        Self::new(ErrorCode::NotFound, format!("{what} `{id}` not found"))
    }

    /// A bug or unexpected failure: the client sees a generic message, the log sees `detail`.
    pub fn internal(detail: impl Into<String>) -> Self {
        let mut error = Self::new(
            ErrorCode::Internal,
            "internal error; this is likely a bug — report it with the trace id",
        );
        error.internal_detail = Some(detail.into());
        error
    }

    /// Returns the code of the first item; it decides the status.
    pub fn code(&self) -> ErrorCode {
        self.items
            .first()
            .map_or(ErrorCode::Internal, |item| item.code)
    }

    /// Returns the HTTP status of this error.
    pub fn status(&self) -> StatusCode {
        StatusCode::from_u16(self.code().http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }

    /// Renders the body with the request's trace id.
    pub fn body(&self, trace: &str) -> ErrorBody {
        ErrorBody {
            errors: self.items.clone(),
            trace: trace.to_owned(),
            status_code: self.status().as_u16(),
        }
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let messages: Vec<&str> = self
            .items
            .iter()
            .map(|item| item.message.as_str())
            .collect();
        write!(formatter, "{}: {}", self.code(), messages.join("; "))
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = self.status().into_response();
        response.extensions_mut().insert(self);
        response
    }
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::NotFound(what) => {
                ApiError::new(ErrorCode::NotFound, format!("{what} not found"))
            }
            StoreError::Conflict(what) => {
                ApiError::new(ErrorCode::Conflict, format!("{what} already exists"))
            }
            StoreError::VersionMismatch { .. } => ApiError::new(
                ErrorCode::PreconditionFailed,
                "the object changed since you read it; get it again and retry with its new ETag",
            )
            .with_target(ErrorTarget::header("If-Match")),
            other if other.is_unavailable() => {
                let mut error = ApiError::new(
                    ErrorCode::ServiceUnavailable,
                    "the store is unavailable; retry later",
                );
                error.internal_detail = Some(other.to_string());
                error.retry_after = Some(1);
                error
            }
            other => ApiError::internal(other.to_string()),
        }
    }
}

/// Result type of handlers.
pub type ApiResult<T> = Result<T, ApiError>;
