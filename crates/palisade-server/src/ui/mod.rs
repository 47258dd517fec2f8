//! The web dashboard, under `/ui/`: server-rendered HTML, embedded in the binary.
//!
//! - Pages are [`maud`] templates: compiled with the server, type-checked, escaping every value
//!   by default. One small stylesheet and one small script are embedded ([`assets`]); the script
//!   only enhances (reading and acting work without JavaScript), and charts are inline SVG.
//! - People sign in with an API key ([`session`]); the session is kept in the store (it survives
//!   restarts) and its role decides what pages show: viewers read, editors and admins act and
//!   change configuration ([`configure`], [`forms`]), admins also manage keys.
//! - All data comes through the store traits and the `service::` functions the API uses, so a
//!   page and its API route cannot disagree. Large collections (evaluations, findings) are read a
//!   page at a time with the store's keyset paging.
//!
//! The dashboard is not part of the OpenAPI document: it is a client of the same services, not an
//! API. Its URLs carry no instance id — a session belongs to exactly one instance, its key's.

mod assets;
mod charts;
mod configure;
mod findings;
mod forms;
mod layout;
mod overview;
mod posture;
mod session;
mod settings;

use axum::Router;
use axum::extract::Request;
use axum::http::header::{CACHE_CONTROL, LOCATION};
use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use maud::html;
use palisade_model::error::ErrorCode;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};

pub use session::{SESSION_COOKIE, SIGN_IN_COOKIE, session_hash};

use crate::error::ApiError;
use crate::state::AppState;

/// Builds the dashboard's routes (merged into [`crate::app`], outside the OpenAPI document).
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/", get(redirect_home))
        .route("/ui", get(redirect_home))
        .route("/ui/", get(overview::page))
        .route(
            "/ui/sign-in",
            get(session::sign_in_form).post(session::sign_in),
        )
        .route("/ui/sign-out", post(session::sign_out))
        .route("/ui/assets/style.css", get(assets::style))
        .route("/ui/assets/app.js", get(assets::script))
        .route("/ui/posture", get(posture::attachments))
        .route(
            "/ui/posture/attachments/{attachment_id}",
            get(posture::attachment),
        )
        .route(
            "/ui/posture/attachments/{attachment_id}/scan",
            post(posture::scan),
        )
        .route(
            "/ui/posture/attachments/{attachment_id}/attestations/{assessment_id}",
            post(posture::attest),
        )
        .route("/ui/posture/reports/{report_id}", get(posture::report))
        .route(
            "/ui/posture/reports/{report_id}/controls/{control_id}",
            get(posture::control),
        )
        .route(
            "/ui/posture/reports/{report_id}/evaluations",
            get(posture::evaluations),
        )
        .route(
            "/ui/posture/reports/{report_id}/download",
            get(posture::download),
        )
        .route("/ui/findings", get(findings::list))
        .route(
            "/ui/findings/{account_id}/{provider_id}/{occurrence_id}",
            get(findings::finding),
        )
        .route(
            "/ui/findings/{account_id}/{provider_id}/{occurrence_id}/status",
            post(findings::change_status),
        )
        .route("/ui/configuration", get(settings::configuration))
        .route(
            "/ui/configuration/keys",
            get(settings::keys).post(configure::create_key),
        )
        .route(
            "/ui/configuration/keys/{key_id}/revoke",
            post(configure::revoke_key),
        )
        .route("/ui/configuration/scopes", post(configure::create_scope))
        .route("/ui/configuration/scopes/new", get(configure::new_scope))
        .route(
            "/ui/configuration/scopes/{scope_id}",
            get(configure::edit_scope).post(configure::update_scope),
        )
        .route(
            "/ui/configuration/profiles",
            post(configure::create_profile),
        )
        .route(
            "/ui/configuration/profiles/new",
            get(configure::new_profile),
        )
        .route(
            "/ui/configuration/profiles/{profile_id}",
            get(configure::edit_profile).post(configure::update_profile),
        )
        .route(
            "/ui/configuration/attachments",
            post(configure::create_attachment),
        )
        .route(
            "/ui/configuration/attachments/new",
            get(configure::new_attachment),
        )
        .route(
            "/ui/configuration/attachments/{attachment_id}",
            get(configure::edit_attachment).post(configure::update_attachment),
        )
        .route("/ui/configuration/rules", post(configure::create_rule))
        .route("/ui/configuration/rules/new", get(configure::new_rule))
        .route(
            "/ui/configuration/rules/{rule_id}",
            get(configure::edit_rule).post(configure::update_rule),
        )
        .route(
            "/ui/configuration/templates",
            post(configure::create_template),
        )
        .route(
            "/ui/configuration/templates/new",
            get(configure::new_template),
        )
        .route(
            "/ui/configuration/templates/{template_id}",
            get(configure::edit_template).post(configure::update_template),
        )
        .route(
            "/ui/configuration/channels",
            post(configure::create_channel),
        )
        .route(
            "/ui/configuration/channels/new",
            get(configure::new_channel),
        )
        .route(
            "/ui/configuration/channels/{channel_id}",
            get(configure::edit_channel).post(configure::update_channel),
        )
        .route("/ui/{*rest}", get(not_found))
        .layer(axum::middleware::from_fn(page_headers))
}

async fn redirect_home() -> Response {
    (StatusCode::SEE_OTHER, [(LOCATION, "/ui/")]).into_response()
}

async fn not_found() -> UiError {
    UiError::Page(ApiError::new(ErrorCode::NotFound, "there is no such page"))
}

/// Security headers of every dashboard answer. The policy allows only this origin's stylesheet
/// and script, no inline script or style, and no framing (clickjacking of the action buttons).
async fn page_headers(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    for (name, value) in [
        (
            "content-security-policy",
            "default-src 'none'; style-src 'self'; script-src 'self'; img-src 'self' data:; \
             form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
        ("x-frame-options", "DENY"),
        ("x-content-type-options", "nosniff"),
        ("referrer-policy", "same-origin"),
    ] {
        headers.insert(
            HeaderName::from_static(name),
            HeaderValue::from_static(value),
        );
    }
    // Pages show tenant data: never cache them (assets set their own policy).
    headers
        .entry(CACHE_CONTROL)
        .or_insert(HeaderValue::from_static("no-store"));
    response
}

/// Why a dashboard request did not give its page.
#[derive(Debug)]
pub enum UiError {
    /// No (valid) session: go to the sign-in page, then back to `next`.
    SignIn { next: String },
    /// An error shown as an HTML page with its status.
    Page(ApiError),
}

impl From<ApiError> for UiError {
    fn from(error: ApiError) -> Self {
        UiError::Page(error)
    }
}

impl From<palisade_store::StoreError> for UiError {
    fn from(error: palisade_store::StoreError) -> Self {
        UiError::Page(error.into())
    }
}

impl IntoResponse for UiError {
    fn into_response(self) -> Response {
        match self {
            UiError::SignIn { next } => {
                let location = format!("/ui/sign-in?next={}", encode(&next));
                (StatusCode::SEE_OTHER, [(LOCATION, location)]).into_response()
            }
            UiError::Page(error) => {
                let status = error.status();
                let title = status.canonical_reason().unwrap_or("Error");
                let body = html! {
                    h1 { (title) }
                    @for item in &error.items {
                        p.flash.error role="alert" { (item.message) }
                    }
                    p { a href="/ui/" { "Back to the overview" } }
                };
                let mut response = (status, layout::bare(title, body)).into_response();
                // The error travels on for logging by the shared middleware, which keeps this
                // page instead of writing the API's JSON body over it.
                response.extensions_mut().insert(error);
                response
                    .extensions_mut()
                    .insert(crate::middleware::KeepErrorBody);
                response
            }
        }
    }
}

/// Characters escaped in a path segment or query value of a dashboard link.
const COMPONENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// Percent-encodes one path segment or query value.
pub(crate) fn encode(text: &str) -> String {
    utf8_percent_encode(text, COMPONENT).to_string()
}
