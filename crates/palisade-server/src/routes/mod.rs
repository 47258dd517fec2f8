//! HTTP routes only: extract, call the store or a service, answer. One module per route family.
//!
//! Every route is registered through `utoipa_axum`'s `routes!`, which takes the path from the
//! handler's `#[utoipa::path]` annotation, so the OpenAPI document at `/openapi.json` cannot miss
//! a route or disagree with its path.

use utoipa::OpenApi;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::state::AppState;

pub mod health;
pub mod instances;
pub mod keys;

#[derive(OpenApi)]
#[openapi(
    info(title = "Palisade API", description = "Security and compliance center; SCC-compatible routes and Palisade's own."),
    modifiers(&BearerAuth),
    tags(
        (name = "health", description = "Liveness, readiness, metrics"),
        (name = "instances", description = "Instances (tenants) and the caller's identity"),
        (name = "keys", description = "API keys of an instance"),
    )
)]
struct ApiDoc;

struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some("A Palisade API key: `pal_…`"))
                    .build(),
            ),
        );
    }
}

/// All routes with their OpenAPI description.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(health::healthz))
        .routes(routes!(health::readyz))
        .routes(routes!(health::metrics))
        .routes(routes!(instances::whoami))
        .routes(routes!(
            instances::list_instances,
            instances::create_instance
        ))
        .routes(routes!(instances::get_instance))
        .routes(routes!(keys::list_keys, keys::create_key))
        .routes(routes!(keys::revoke_key))
}
