//! The service catalogue: `GET /v3/services[/{services_name}]` — what `service_name` /
//! `resource_kind` pairs Palisade collects and which properties rules can check. Not
//! instance-scoped, as in SCC; it still needs a valid key.

use axum::extract::Path;
use serde_json::{Value, json};

use crate::auth::Authenticated;
use crate::error::{ApiError, ApiResult};
use crate::json::ApiJson;

fn catalogue() -> ApiResult<&'static [Value]> {
    palisade_posture::content::builtin()
        .map(|content| content.services.as_slice())
        .map_err(|error| ApiError::internal(format!("built-in content: {error:?}")))
}

/// Lists the services.
#[utoipa::path(get, path = "/v3/services", tag = "v3 services", security(("bearer" = [])),
    responses((status = 200, body = serde_json::Value), (status = 401, body = palisade_model::error::ErrorBody)))]
pub async fn list_services(_caller: Authenticated) -> ApiResult<ApiJson<Value>> {
    Ok(ApiJson(json!({"services": catalogue()?})))
}

/// Returns one service with its resource kinds and properties.
#[utoipa::path(get, path = "/v3/services/{services_name}", tag = "v3 services", security(("bearer" = [])),
    params(("services_name" = String, Path)),
    responses((status = 200, body = serde_json::Value), (status = 404, body = palisade_model::error::ErrorBody)))]
pub async fn get_service(
    _caller: Authenticated,
    Path(service_name): Path<String>,
) -> ApiResult<ApiJson<Value>> {
    catalogue()?
        .iter()
        .find(|service| service["service_name"] == service_name.as_str())
        .cloned()
        .map(ApiJson)
        .ok_or_else(|| ApiError::not_found("service", &service_name))
}
