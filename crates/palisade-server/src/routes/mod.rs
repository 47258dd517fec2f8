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

pub mod activity;
pub mod admission;
pub mod attestations;
pub mod collectors;
pub mod config_v1;
pub mod credentials;
pub mod findings;
pub mod health;
pub mod instances;
pub mod inventory;
pub mod keys;
pub mod network;
pub mod notifications;
pub mod v3;

#[derive(OpenApi)]
#[openapi(
    info(title = "Palisade API", description = "Security and compliance center; SCC-compatible routes and Palisade's own."),
    modifiers(&BearerAuth),
    tags(
        (name = "health", description = "Liveness, readiness, metrics"),
        (name = "instances", description = "Instances (tenants) and the caller's identity"),
        (name = "keys", description = "API keys of an instance"),
        (name = "inventory", description = "Resources pushed by collectors, their history, and the quarantine"),
        (name = "findings", description = "Findings v1 (IBM Security Insights compatible): providers, notes, occurrences"),
        (name = "findings lifecycle", description = "Palisade: finding status, OCSF export, ASFF import, cards"),
        (name = "activity insights", description = "Palisade: audit-event ingest, Sigma rule packs and rule settings"),
        (name = "network insights", description = "Palisade: flow-log ingest, detector configuration, threat-intelligence feeds"),
        (name = "collectors", description = "Palisade: collector agents (registration, heartbeats, jobs) and their credentials, sealed at rest"),
        (name = "notifications", description = "Notifications v1 (IBM compatible): channels, public key; and the delivery log"),
        (name = "v3 settings", description = "SCC v3: instance settings"),
        (name = "v3 control libraries", description = "SCC v3: control libraries"),
        (name = "v3 profiles", description = "SCC v3: profiles"),
        (name = "v3 attachments", description = "SCC v3: profile attachments"),
        (name = "v3 scopes", description = "SCC v3: scopes and subscopes"),
        (name = "v3 targets", description = "SCC v3: cross-account targets"),
        (name = "v3 integrations", description = "SCC v3: provider types and their instances"),
        (name = "v3 rules", description = "SCC v3: rules"),
        (name = "v3 reports", description = "SCC v3: scans and reports"),
        (name = "v3 services", description = "SCC v3: the catalogue of services and properties rules can check"),
        (name = "config governance", description = "Configuration Governance v1 (IBM compatible): rules, templates and their scope attachments"),
        (name = "admission", description = "Palisade: provisioning decisions, the decision log, Kubernetes admission webhooks"),
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
    let mut router = routes();
    document_common_errors(router.get_openapi_mut());
    router
}

/// The error answers the shared layers give on any route, whatever its handler documents: the
/// auth extractor (401, 403; 404 for another instance's path), the extractors of parameters and
/// bodies (400, 413, 415), the rate limiter (429), the timeout (408), the store (503) and the
/// panic catcher (500), all with the `ErrorBody` shape. Added to every operation that does not
/// document the status itself, so that no answer contradicts the document (issue 11's API fuzz
/// test checks every status, content type and body against it).
fn document_common_errors(openapi: &mut utoipa::openapi::OpenApi) {
    use utoipa::openapi::{ContentBuilder, Ref, RefOr, ResponseBuilder};

    let error = |description: &str| {
        RefOr::T(
            ResponseBuilder::new()
                .description(description)
                .content(
                    "application/json",
                    ContentBuilder::new()
                        .schema(Some(Ref::from_schema_name("ErrorBody")))
                        .build(),
                )
                .build(),
        )
    };
    for (path, item) in &mut openapi.paths.paths {
        let operations = [
            &mut item.get,
            &mut item.put,
            &mut item.post,
            &mut item.delete,
            &mut item.patch,
        ];
        for operation in operations.into_iter().flatten() {
            let authenticated = operation
                .security
                .as_ref()
                .is_some_and(|requirements| !requirements.is_empty());
            let has_body = operation.request_body.is_some();
            let has_parameters = operation
                .parameters
                .as_ref()
                .is_some_and(|parameters| !parameters.is_empty());
            let mut statuses = vec![
                (
                    "408",
                    "The request took longer than the server's request timeout.",
                ),
                (
                    "500",
                    "An internal error; the log has details under the trace id.",
                ),
            ];
            if authenticated {
                statuses.extend([
                    (
                        "401",
                        "No API key, or a key that is unknown, revoked or expired.",
                    ),
                    ("403", "The key's role does not allow this operation."),
                    (
                        "429",
                        "The key sent more requests than its rate allows; see `Retry-After`.",
                    ),
                    ("503", "The store is unavailable; retry later."),
                ]);
            }
            if has_parameters || has_body {
                statuses.push(("400", "A parameter or the body is malformed or invalid."));
            }
            if path.contains('{') {
                statuses.push((
                    "404",
                    "The path names an object (or instance) that does not exist for this key.",
                ));
            }
            if has_body {
                statuses.extend([
                    ("413", "The body is larger than this route accepts."),
                    (
                        "415",
                        "The body's content type is not one this route accepts.",
                    ),
                ]);
            }
            for (status, description) in statuses {
                operation
                    .responses
                    .responses
                    .entry(status.to_owned())
                    .or_insert_with(|| error(description));
            }
        }
    }
}

fn routes() -> OpenApiRouter<AppState> {
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
        .merge(findings::router())
        .merge(notifications::router())
        .routes(routes!(
            inventory::push_inventory,
            inventory::list_inventory
        ))
        .routes(routes!(inventory::resource_history))
        .routes(routes!(inventory::get_batch))
        .routes(routes!(inventory::list_quarantine))
        .merge(insights_router())
        .routes(routes!(
            attestations::put_attestation,
            attestations::delete_attestation
        ))
        .routes(routes!(attestations::list_attestations))
        .routes(routes!(
            credentials::create_credential,
            credentials::list_credentials
        ))
        .routes(routes!(
            credentials::get_credential,
            credentials::replace_credential,
            credentials::delete_credential
        ))
        .merge(collectors_router())
        .merge(v3_router())
        .merge(config_v1::router())
        .merge(admission::router())
}

/// Collector agents.
fn collectors_router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(
            collectors::create_collector,
            collectors::list_collectors
        ))
        .routes(routes!(
            collectors::get_collector,
            collectors::replace_collector,
            collectors::delete_collector
        ))
        .routes(routes!(collectors::renew_registration_code))
        .routes(routes!(collectors::register))
        .routes(routes!(collectors::heartbeat))
        .routes(routes!(collectors::collector_jobs))
        .routes(routes!(inventory::list_inventory_batches))
        .routes(routes!(inventory::get_inventory_batch))
}

/// Activity and network insights.
fn insights_router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(activity::ingest_events))
        .routes(routes!(activity::list_activity_batches))
        .routes(routes!(activity::get_activity_batch))
        .routes(routes!(activity::list_packs))
        .routes(routes!(
            activity::put_pack,
            activity::update_pack,
            activity::delete_pack
        ))
        .routes(routes!(activity::list_activity_rules))
        .routes(routes!(activity::put_activity_rule))
        .routes(routes!(activity::get_parameters, activity::put_parameters))
        .routes(routes!(network::ingest_flows))
        .routes(routes!(network::list_network_batches))
        .routes(routes!(network::get_network_batch))
        .routes(routes!(network::get_detectors, network::put_detectors))
        .routes(routes!(network::list_feeds))
        .routes(routes!(
            network::put_feed,
            network::get_feed,
            network::delete_feed
        ))
}

/// The SCC v3 posture routes.
fn v3_router() -> OpenApiRouter<AppState> {
    use v3::{
        attachments, libraries, profiles, providers, reports, rules, scopes, services, settings,
        targets,
    };
    OpenApiRouter::new()
        .routes(routes!(settings::get_settings, settings::update_settings))
        .routes(routes!(settings::post_test_event))
        .routes(routes!(
            libraries::create_control_library,
            libraries::list_control_libraries
        ))
        .routes(routes!(
            libraries::get_control_library,
            libraries::replace_custom_control_library,
            libraries::delete_custom_control_library
        ))
        .routes(routes!(profiles::create_profile, profiles::list_profiles))
        .routes(routes!(
            profiles::get_profile,
            profiles::replace_profile,
            profiles::delete_custom_profile
        ))
        .routes(routes!(
            profiles::list_profile_parameters,
            profiles::replace_profile_parameters
        ))
        .routes(routes!(profiles::compare_profiles))
        .routes(routes!(
            attachments::create_profile_attachment,
            attachments::list_profile_attachments
        ))
        .routes(routes!(
            attachments::get_profile_attachment,
            attachments::replace_profile_attachment,
            attachments::delete_profile_attachment
        ))
        .routes(routes!(attachments::upgrade_attachment))
        .routes(routes!(attachments::list_instance_attachments))
        .routes(routes!(scopes::create_scope, scopes::list_scopes))
        .routes(routes!(
            scopes::get_scope,
            scopes::update_scope,
            scopes::delete_scope
        ))
        .routes(routes!(scopes::create_subscope, scopes::list_subscopes))
        .routes(routes!(
            scopes::get_subscope,
            scopes::update_subscope,
            scopes::delete_subscope
        ))
        .routes(routes!(targets::create_target, targets::list_targets))
        .routes(routes!(
            targets::get_target,
            targets::replace_target,
            targets::delete_target
        ))
        .routes(routes!(providers::list_provider_types))
        .routes(routes!(providers::get_provider_type_by_id))
        .routes(routes!(
            providers::create_provider_type_instance,
            providers::list_provider_type_instances
        ))
        .routes(routes!(
            providers::get_provider_type_instance,
            providers::update_provider_type_instance,
            providers::delete_provider_type_instance
        ))
        .routes(routes!(services::list_services))
        .routes(routes!(services::get_service))
        .routes(routes!(reports::create_scan))
        .routes(routes!(reports::list_reports))
        .routes(routes!(reports::get_latest_reports))
        .routes(routes!(reports::get_report))
        .routes(routes!(reports::get_report_summary))
        .routes(routes!(reports::get_report_controls))
        .routes(routes!(reports::list_report_evaluations))
        .routes(routes!(reports::list_report_resources))
        .routes(routes!(reports::get_report_download_file))
        .routes(routes!(
            reports::create_scan_report,
            reports::list_scan_reports
        ))
        .routes(routes!(reports::get_scan_report))
        .routes(routes!(reports::get_scan_report_download_file))
        .routes(routes!(reports::get_report_tags))
        .routes(routes!(reports::get_report_rule))
        .routes(routes!(reports::get_report_violations_drift))
        .routes(routes!(rules::create_rule, rules::list_rules))
        .routes(routes!(
            rules::get_rule,
            rules::replace_rule,
            rules::delete_rule
        ))
}
