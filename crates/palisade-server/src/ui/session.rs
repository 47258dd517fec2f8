//! Dashboard sessions: sign-in with an API key, sessions kept in the store, the session cookie
//! and CSRF tokens.
//!
//! The key a person types is verified once with [`crate::auth::KeyVerifier`] and never stored:
//! the browser gets a random 256-bit session id (`HttpOnly; SameSite=Strict; Path=/ui`, and
//! `Secure` unless the page is plain http on a loopback host); the store keeps the SHA-256 of that
//! id with the key id, its instance, a CSRF token and the expiry ([`palisade_store::SessionStore`]),
//! so sessions survive a restart and are shared by replicas, and a copy of the table signs nobody
//! in. Every request re-reads the key (one indexed read), so revoking a key ends its sessions at
//! once; revocation also deletes them.
//!
//! Every state-changing form carries the session's CSRF token (checked in constant time) on top
//! of `SameSite=Strict`. The sign-in form, which has no session yet, uses a double-submit token: a
//! short-lived cookie and a hidden field that must match (so another site cannot sign a browser
//! in with the attacker's key).

use axum::extract::{Form, FromRequestParts, Query, State};
use axum::http::header::{COOKIE, HOST, LOCATION, SET_COOKIE};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{Duration, Utc};
use maud::html;
use palisade_model::error::ErrorCode;
use palisade_model::tenancy::{Action, ApiKey};
use palisade_store::StoredSession;
use rand::RngCore;
use serde::Deserialize;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::UiError;
use super::layout;
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;

/// The session cookie.
pub const SESSION_COOKIE: &str = "palisade_session";
/// The double-submit cookie of the sign-in form.
pub const SIGN_IN_COOKIE: &str = "palisade_sign_in";
/// How long a session lasts without signing in again.
const SESSION_HOURS: i64 = 8;

/// What the store keys a session by: the SHA-256 of the id the browser holds, in hex.
pub fn session_hash(id: &str) -> String {
    hex::encode(Sha256::digest(id.as_bytes()))
}

/// Opens a session for a verified key; returns the id for the cookie.
async fn open_session(state: &AppState, key: &ApiKey) -> ApiResult<String> {
    let now = Utc::now();
    // Expired sessions are dropped as new ones open: one indexed delete, no sweeper task.
    state.store.purge_expired_sessions(now).await?;
    let id = random_token();
    let session = StoredSession {
        instance_id: key.instance_id.clone(),
        key_id: key.id.clone(),
        csrf: random_token(),
        created_at: now,
        expires_at: now + Duration::hours(SESSION_HOURS),
    };
    state
        .store
        .create_session(&session_hash(&id), &session)
        .await?;
    Ok(id)
}

fn random_token() -> String {
    let mut bytes = [0_u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

fn same_token(left: &str, right: &str) -> bool {
    !left.is_empty() && bool::from(left.as_bytes().ct_eq(right.as_bytes()))
}

/// Returns a cookie's value from the request's `Cookie` headers.
fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(cookie_name, _)| *cookie_name == name)
        .map(|(_, value)| value)
}

/// Whether the cookie must be `Secure`: always, except for plain http on a loopback host (a
/// developer's machine, the tests). Behind a TLS-terminating proxy, `X-Forwarded-Proto: https`
/// counts as https.
fn needs_secure_cookie(headers: &HeaderMap) -> bool {
    let forwarded_https = headers
        .get("x-forwarded-proto")
        .and_then(|value| value.to_str().ok())
        .is_some_and(|proto| proto.eq_ignore_ascii_case("https"));
    if forwarded_https {
        return true;
    }
    let host = headers
        .get(HOST)
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default();
    !is_loopback_host(host)
}

fn is_loopback_host(host: &str) -> bool {
    // `[::1]:8080`, `127.0.0.1:8080`, `localhost:8080`, or without a port.
    let name = if host.parse::<std::net::IpAddr>().is_ok() {
        host
    } else if let Some(rest) = host.strip_prefix('[') {
        rest.split(']').next().unwrap_or_default()
    } else {
        host.rsplit_once(':').map_or(host, |(name, _)| name)
    };
    name.eq_ignore_ascii_case("localhost")
        || name
            .parse::<std::net::IpAddr>()
            .is_ok_and(|address| address.is_loopback())
}

fn set_cookie(headers: &HeaderMap, name: &str, value: &str, max_age_seconds: i64) -> HeaderValue {
    let secure = if needs_secure_cookie(headers) {
        "; Secure"
    } else {
        ""
    };
    let text = format!(
        "{name}={value}; HttpOnly; SameSite=Strict; Path=/ui; Max-Age={max_age_seconds}{secure}"
    );
    // Tokens are base64url, so the header is always valid; a failure would be a bug.
    HeaderValue::from_str(&text).unwrap_or_else(|_| HeaderValue::from_static("invalid=1"))
}

/// A signed-in person: the key they signed in with (re-read on every request) and their
/// session's CSRF token.
#[derive(Debug, Clone)]
pub struct Session {
    pub key: ApiKey,
    /// The stored hash of the session id.
    hash: String,
    csrf: String,
}

impl Session {
    /// The instance every page of this session shows.
    pub fn instance_id(&self) -> &str {
        &self.key.instance_id
    }

    /// The CSRF token forms carry.
    pub fn csrf(&self) -> &str {
        &self.csrf
    }

    /// Whether the key's role allows an action (pages hide what it does not).
    pub fn can(&self, action: Action) -> bool {
        self.key.role.allows(action)
    }

    /// Refuses an action the role does not allow (a hand-made request past a hidden button).
    pub fn require(&self, action: Action) -> Result<(), UiError> {
        if self.can(action) {
            Ok(())
        } else {
            Err(ApiError::new(
                ErrorCode::Forbidden,
                format!(
                    "a key with role `{}` may not do this ({action:?})",
                    self.key.role
                ),
            )
            .into())
        }
    }

    /// Checks a form's CSRF token against the session's.
    pub fn check_csrf(&self, token: &str) -> Result<(), UiError> {
        if same_token(token, &self.csrf) {
            Ok(())
        } else {
            Err(ApiError::new(
                ErrorCode::Forbidden,
                "the form's security token does not match this session; reload the page and try again",
            )
            .into())
        }
    }
}

impl FromRequestParts<AppState> for Session {
    type Rejection = UiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let next = parts
            .uri
            .path_and_query()
            .map_or("/ui/", |path| path.as_str())
            .to_owned();
        let sign_in = || UiError::SignIn { next: next.clone() };
        let id = cookie(&parts.headers, SESSION_COOKIE)
            .filter(|id| !id.is_empty())
            .ok_or_else(sign_in)?;
        let hash = session_hash(id);
        let record = state
            .store
            .find_session(&hash, Utc::now())
            .await?
            .ok_or_else(sign_in)?;
        let stored = state.store.find_key(&record.key_id).await?;
        let Some(stored) = stored.filter(|stored| {
            stored.key.revoked_at.is_none()
                && stored.key.instance_id == record.instance_id
                && stored.key.role.allows(Action::Read)
        }) else {
            state.store.delete_session(&hash).await?;
            return Err(sign_in());
        };
        state.check_rate(&stored.key.id)?;
        Ok(Session {
            key: stored.key,
            hash,
            csrf: record.csrf,
        })
    }
}

/// `?next=` of the sign-in page: where to go after signing in.
#[derive(Debug, Default, Deserialize)]
pub struct NextParam {
    pub next: Option<String>,
}

/// Only dashboard paths are followed after sign-in (no open redirect to another site).
fn safe_next(next: Option<&str>) -> String {
    match next {
        Some(path)
            if path.starts_with("/ui/")
                && !path.starts_with("//")
                && !path.contains('\\')
                && !path.starts_with("/ui/sign-") =>
        {
            path.to_owned()
        }
        _ => "/ui/".to_owned(),
    }
}

fn sign_in_page(
    status: StatusCode,
    headers: &HeaderMap,
    token: &str,
    next: &str,
    problem: Option<&str>,
) -> Response {
    let body = html! {
        section.sign-in aria-labelledby="sign-in-title" {
            h1 #sign-in-title { "Sign in to Palisade" }
            p { "Paste an API key of your instance (" code { "pal_…" } "). The dashboard keeps it only on the server, for this session." }
            @if let Some(problem) = problem {
                p.flash.error role="alert" { (problem) }
            }
            form method="post" action="/ui/sign-in" {
                input type="hidden" name="csrf" value=(token);
                input type="hidden" name="next" value=(next);
                label for="key" { "API key" }
                input #key type="password" name="key" autocomplete="current-password" required autofocus spellcheck="false";
                button type="submit" { "Sign in" }
            }
            p.hint { "An admin key is printed once when the server first starts, and kept in " code { "bootstrap.txt" } " in its data directory." }
        }
    };
    let mut response = (status, layout::bare("Sign in", body)).into_response();
    response
        .extensions_mut()
        .insert(crate::middleware::KeepErrorBody);
    response
        .headers_mut()
        .insert(SET_COOKIE, set_cookie(headers, SIGN_IN_COOKIE, token, 3600));
    response
}

/// `GET /ui/sign-in`: the sign-in form.
pub async fn sign_in_form(headers: HeaderMap, Query(params): Query<NextParam>) -> Response {
    let token = cookie(&headers, SIGN_IN_COOKIE)
        .filter(|token| token.len() == 43)
        .map_or_else(random_token, str::to_owned);
    sign_in_page(
        StatusCode::OK,
        &headers,
        &token,
        &safe_next(params.next.as_deref()),
        None,
    )
}

/// The sign-in form's fields.
#[derive(Debug, Deserialize)]
pub struct SignInForm {
    #[serde(default)]
    pub key: String,
    #[serde(default)]
    pub csrf: String,
    #[serde(default)]
    pub next: Option<String>,
}

/// `POST /ui/sign-in`: verifies the key and opens a session.
pub async fn sign_in(
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(form): Form<SignInForm>,
) -> Response {
    let next = safe_next(form.next.as_deref());
    let cookie_token = cookie(&headers, SIGN_IN_COOKIE).unwrap_or_default();
    if !same_token(&form.csrf, cookie_token) {
        return sign_in_page(
            StatusCode::FORBIDDEN,
            &headers,
            &random_token(),
            &next,
            Some("The sign-in form expired or was sent from another page; try again."),
        );
    }
    let key = match state.verifier.verify(&state.store, form.key.trim()).await {
        Ok(key) => key,
        Err(error) if error.code() == ErrorCode::Unauthorized => {
            tracing::info!("dashboard sign-in refused: unknown key");
            return sign_in_page(
                StatusCode::UNAUTHORIZED,
                &headers,
                &form.csrf,
                &next,
                Some("That key is not valid: it is unknown, revoked or mistyped."),
            );
        }
        Err(error) => return UiError::from(error).into_response(),
    };
    if !key.role.allows(Action::Read) {
        return sign_in_page(
            StatusCode::FORBIDDEN,
            &headers,
            &form.csrf,
            &next,
            Some(&format!(
                "A key with role `{}` cannot read the dashboard; use a viewer, editor or admin key.",
                key.role
            )),
        );
    }
    let session_id = match open_session(&state, &key).await {
        Ok(id) => id,
        Err(error) => return UiError::from(error).into_response(),
    };
    tracing::info!(key = %key.id, role = %key.role, "dashboard sign-in");
    let mut response = (StatusCode::SEE_OTHER, [(LOCATION, next)]).into_response();
    let headers_out = response.headers_mut();
    headers_out.append(
        SET_COOKIE,
        set_cookie(&headers, SESSION_COOKIE, &session_id, SESSION_HOURS * 3600),
    );
    headers_out.append(SET_COOKIE, set_cookie(&headers, SIGN_IN_COOKIE, "", 0));
    response
}

/// A form that only carries the CSRF token.
#[derive(Debug, Deserialize)]
pub struct CsrfForm {
    #[serde(default)]
    pub csrf: String,
}

/// `POST /ui/sign-out`: closes the session.
pub async fn sign_out(
    State(state): State<AppState>,
    headers: HeaderMap,
    session: Session,
    Form(form): Form<CsrfForm>,
) -> Result<Response, UiError> {
    session.check_csrf(&form.csrf)?;
    state.store.delete_session(&session.hash).await?;
    let mut response = (StatusCode::SEE_OTHER, [(LOCATION, "/ui/sign-in")]).into_response();
    response
        .headers_mut()
        .append(SET_COOKIE, set_cookie(&headers, SESSION_COOKIE, "", 0));
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_hosts_are_recognised() {
        for host in [
            "localhost",
            "localhost:8080",
            "127.0.0.1:1",
            "[::1]:80",
            "::1",
        ] {
            assert!(is_loopback_host(host), "{host}");
        }
        for host in ["", "example.com", "10.0.0.1:80", "localhost.example.com"] {
            assert!(!is_loopback_host(host), "{host}");
        }
    }

    #[test]
    fn only_dashboard_paths_are_followed_after_sign_in() {
        assert_eq!(safe_next(Some("/ui/findings?x=1")), "/ui/findings?x=1");
        for bad in [
            "//evil.example/ui/",
            "https://evil.example",
            "/v1/keys",
            "/ui/sign-in",
            "/ui/\\evil",
        ] {
            assert_eq!(safe_next(Some(bad)), "/ui/", "{bad}");
        }
    }

    #[test]
    fn sessions_are_stored_by_a_hash_of_their_id() {
        let id = random_token();
        assert_eq!(id.len(), 43, "256 bits, base64url");
        let hash = session_hash(&id);
        assert_eq!(hash.len(), 64);
        assert!(!hash.contains(&id));
        assert_eq!(hash, session_hash(&id));
        assert_ne!(hash, session_hash(&random_token()));
    }

    #[test]
    fn cookies_are_found_among_others() {
        let mut headers = HeaderMap::new();
        headers.insert(
            COOKIE,
            HeaderValue::from_static("a=1; palisade_session=xyz; b=2"),
        );
        assert_eq!(cookie(&headers, SESSION_COOKIE), Some("xyz"));
        assert_eq!(cookie(&headers, "c"), None);
    }
}
