//! Middleware shared by every route: trace ids, error bodies, metrics and timeouts.

use std::sync::OnceLock;
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use palisade_model::error::ErrorCode;

use crate::error::ApiError;
use crate::state::AppState;

/// The request's trace id, in request extensions for handlers that want to log it.
#[derive(Debug, Clone)]
pub struct TraceId(pub String);

/// Marks an error answer that already has its body (the dashboard's HTML error pages): [`finish`]
/// logs the [`ApiError`] it carries but keeps the body.
#[derive(Debug, Clone, Copy)]
pub struct KeepErrorBody;

static REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");
static CORRELATION_ID: HeaderName = HeaderName::from_static("x-correlation-id");

/// Returns the process's Prometheus handle, installing the recorder on first use. The recorder
/// is global to the process, so every app built in one process (tests build many) shares it.
pub fn metrics_handle() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new().build_recorder();
            let handle = recorder.handle();
            // Fails only if another recorder is installed; then ours still renders (empty).
            let _ = metrics::set_global_recorder(recorder);
            handle
        })
        .clone()
}

/// Gives every request a trace id (the client's `X-Request-Id` / `X-Correlation-Id`, or a new
/// one), records metrics, and renders error bodies: handler errors carried as [`ApiError`]
/// extensions, and the bodiless errors of axum's own layers (404, 405, 413 …).
pub async fn finish(mut request: Request, next: Next) -> Response {
    let started = Instant::now();
    let trace = [&REQUEST_ID, &CORRELATION_ID]
        .iter()
        .find_map(|name| request.headers().get(*name))
        .and_then(|value| value.to_str().ok())
        .filter(|value| {
            !value.is_empty() && value.len() <= 128 && value.bytes().all(|b| b.is_ascii_graphic())
        })
        .map_or_else(|| uuid::Uuid::now_v7().to_string(), str::to_owned);
    request.extensions_mut().insert(TraceId(trace.clone()));
    let method = request.method().clone();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |path| path.as_str().to_owned());

    let mut response = next.run(request).await;

    let keep_body = response
        .extensions_mut()
        .remove::<KeepErrorBody>()
        .is_some();
    let error = response
        .extensions_mut()
        .remove::<ApiError>()
        .or_else(|| default_error(&response));
    if let Some(error) = &error {
        if error.code() == ErrorCode::Internal {
            tracing::error!(trace = %trace, detail = ?error.internal_detail, %method, %route, "internal error");
        } else if let Some(detail) = &error.internal_detail {
            tracing::warn!(trace = %trace, detail = %detail, %method, %route, "request failed");
        }
    }
    if let Some(error) = error.filter(|_| !keep_body) {
        let mut rendered = (error.status(), axum::Json(error.body(&trace))).into_response();
        if let Some(seconds) = error.retry_after {
            rendered
                .headers_mut()
                .insert(axum::http::header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        for (name, value) in response.headers() {
            if name == axum::http::header::ALLOW {
                rendered.headers_mut().insert(name, value.clone());
            }
        }
        response = rendered;
    }
    if let Ok(value) = HeaderValue::from_str(&trace) {
        response.headers_mut().insert(REQUEST_ID.clone(), value);
    }
    let status = response.status().as_u16().to_string();
    metrics::counter!("palisade_http_requests_total", "method" => method.to_string(), "route" => route.clone(), "status" => status)
        .increment(1);
    metrics::histogram!("palisade_http_request_duration_seconds", "method" => method.to_string(), "route" => route)
        .record(started.elapsed().as_secs_f64());
    response
}

/// Maps an error answer that carries no [`ApiError`] (made by axum or tower layers) to one.
fn default_error(response: &Response) -> Option<ApiError> {
    let status = response.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return None;
    }
    let error = match status {
        StatusCode::NOT_FOUND => ApiError::new(ErrorCode::NotFound, "no such route"),
        StatusCode::METHOD_NOT_ALLOWED => ApiError::new(
            ErrorCode::MethodNotAllowed,
            "this route does not take this method",
        ),
        StatusCode::PAYLOAD_TOO_LARGE => ApiError::new(
            ErrorCode::PayloadTooLarge,
            "the body is larger than this route accepts",
        ),
        StatusCode::REQUEST_TIMEOUT => {
            ApiError::new(ErrorCode::RequestTimeout, "the request took too long")
        }
        StatusCode::UNSUPPORTED_MEDIA_TYPE => {
            ApiError::new(ErrorCode::UnsupportedMediaType, "unsupported content type")
        }
        status if status.is_server_error() => {
            ApiError::internal(format!("{status} without an error value (a panic?)"))
        }
        status => ApiError::new(
            ErrorCode::BadRequest,
            status.canonical_reason().unwrap_or("bad request"),
        ),
    };
    Some(error)
}

/// Answers 408 when a request takes longer than the configured timeout.
pub async fn timeout(State(state): State<AppState>, request: Request, next: Next) -> Response {
    match tokio::time::timeout(state.config.request_timeout, next.run(request)).await {
        Ok(response) => response,
        Err(_) => ApiError::new(
            ErrorCode::RequestTimeout,
            "the request took longer than the server allows",
        )
        .into_response(),
    }
}
