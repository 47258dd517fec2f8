//! `/healthz`, `/readyz`, `/metrics`.

use axum::extract::State;
use axum::http::header::CONTENT_TYPE;
use axum::response::IntoResponse;
use serde::Serialize;
use utoipa::ToSchema;

use crate::error::ApiResult;
use crate::json::ApiJson;
use crate::state::AppState;

/// A health answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct HealthStatus {
    /// `ok` or `ready`.
    pub status: &'static str,
}

/// Answers while the process runs.
#[utoipa::path(get, path = "/healthz", tag = "health", responses((status = 200, body = HealthStatus)))]
pub async fn healthz() -> ApiJson<HealthStatus> {
    ApiJson(HealthStatus { status: "ok" })
}

/// Answers 200 when the store answers, 503 otherwise.
#[utoipa::path(get, path = "/readyz", tag = "health", responses(
    (status = 200, body = HealthStatus),
    (status = 503, body = palisade_model::error::ErrorBody),
))]
pub async fn readyz(State(state): State<AppState>) -> ApiResult<ApiJson<HealthStatus>> {
    state.store.ping().await.map_err(|error| {
        let mut api_error = crate::error::ApiError::new(
            palisade_model::error::ErrorCode::ServiceUnavailable,
            "the store does not answer",
        );
        api_error.internal_detail = Some(error.to_string());
        api_error.retry_after = Some(1);
        api_error
    })?;
    Ok(ApiJson(HealthStatus { status: "ready" }))
}

/// Prometheus metrics in the text exposition format.
#[utoipa::path(get, path = "/metrics", tag = "health", responses((status = 200, content_type = "text/plain", body = String)))]
pub async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    (
        [(CONTENT_TYPE, "text/plain; version=0.0.4")],
        state.metrics.render(),
    )
}
