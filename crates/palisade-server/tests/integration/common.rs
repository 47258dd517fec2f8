//! A test server over a fresh store, and request helpers.

use std::num::NonZeroU32;
use std::time::Duration;

use axum::body::Body;
use axum::http::{HeaderMap, Method, Request, StatusCode};
use http_body_util::BodyExt;
use palisade_server::{AppState, ServerConfig};
use serde_json::Value;
use tower::ServiceExt;

/// A server state with one bootstrapped instance.
pub struct TestServer {
    pub state: AppState,
    pub instance_id: String,
    pub admin_key: String,
    _directory: tempfile::TempDir,
}

/// An answer: status, headers, JSON body (or `Value::Null` when empty or not JSON).
pub struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Value,
    pub text: String,
}

pub fn test_config() -> ServerConfig {
    ServerConfig {
        body_limit_bytes: 64 * 1024,
        request_timeout: Duration::from_secs(30),
        rate_limit_per_second: NonZeroU32::new(10_000).expect("non-zero"),
        rate_limit_burst: NonZeroU32::new(10_000).expect("non-zero"),
        ..ServerConfig::default()
    }
}

impl TestServer {
    /// A server on a fresh SQLite file.
    pub async fn sqlite() -> Self {
        Self::sqlite_with(test_config()).await
    }

    pub async fn sqlite_with(config: ServerConfig) -> Self {
        let directory = tempfile::tempdir().expect("tempdir");
        let url = palisade_store::testsuite::fresh_sqlite_url(directory.path());
        Self::over(&url, config, directory).await
    }

    /// A server on a fresh PostgreSQL schema, or `None` when no test database is configured.
    pub async fn postgres(test_name: &str) -> Option<Self> {
        let url = palisade_store::testsuite::fresh_postgres_url(test_name).await?;
        Some(Self::over(&url, test_config(), tempfile::tempdir().expect("tempdir")).await)
    }

    async fn over(url: &str, config: ServerConfig, directory: tempfile::TempDir) -> Self {
        let store = palisade_store::connect(url).await.expect("open store");
        let state = AppState::new(store, config);
        let bootstrap = palisade_server::bootstrap(&state, directory.path())
            .await
            .expect("bootstrap")
            .expect("a fresh store bootstraps");
        Self {
            state,
            instance_id: bootstrap.instance_id,
            admin_key: bootstrap.admin_key,
            _directory: directory,
        }
    }

    /// A test server over a state the caller built (and whose data directory it keeps).
    pub fn wrap(state: AppState, bootstrap: palisade_server::Bootstrap) -> Self {
        Self {
            state,
            instance_id: bootstrap.instance_id,
            admin_key: bootstrap.admin_key,
            _directory: tempfile::tempdir().expect("tempdir"),
        }
    }

    /// Sends a request with an optional bearer key and JSON body.
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        key: Option<&str>,
        body: Option<Value>,
    ) -> Answer {
        let mut builder = Request::builder().method(method).uri(path);
        if let Some(key) = key {
            builder = builder.header("authorization", format!("Bearer {key}"));
        }
        let request = match body {
            Some(json) => builder
                .header("content-type", "application/json")
                .body(Body::from(json.to_string())),
            None => builder.body(Body::empty()),
        }
        .expect("request");
        self.send(request).await
    }

    /// Sends a prepared request.
    pub async fn send(&self, request: Request<Body>) -> Answer {
        let response = palisade_server::app(self.state.clone())
            .oneshot(request)
            .await
            .expect("infallible");
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = response
            .into_body()
            .collect()
            .await
            .expect("body")
            .to_bytes();
        let text = String::from_utf8_lossy(&bytes).into_owned();
        let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        Answer {
            status,
            headers,
            body,
            text,
        }
    }

    /// Creates a key of `role` with the admin key and returns `(key_id, secret)`.
    pub async fn key_with_role(&self, role: &str) -> (String, String) {
        let answer = self
            .call(
                Method::POST,
                &format!("/instances/{}/v1/keys", self.instance_id),
                Some(&self.admin_key),
                Some(serde_json::json!({"name": format!("{role} key"), "role": role})),
            )
            .await;
        assert_eq!(answer.status, StatusCode::CREATED, "{}", answer.text);
        (
            answer.body["id"].as_str().expect("id").to_owned(),
            answer.body["secret"].as_str().expect("secret").to_owned(),
        )
    }

    /// Creates a second instance through the operator API and returns `(instance_id, admin_key)`.
    pub async fn second_instance(&self) -> (String, String) {
        let answer = self
            .call(
                Method::POST,
                "/v1/instances",
                Some(&self.admin_key),
                Some(serde_json::json!({"name": "other"})),
            )
            .await;
        assert_eq!(answer.status, StatusCode::CREATED, "{}", answer.text);
        (
            answer.body["instance"]["id"]
                .as_str()
                .expect("id")
                .to_owned(),
            answer.body["admin_key"].as_str().expect("key").to_owned(),
        )
    }
}

/// Asserts the SCC error shape and returns the first error's code.
pub fn assert_error_shape(answer: &Answer, status: StatusCode) -> String {
    assert_eq!(answer.status, status, "{}", answer.text);
    let body = &answer.body;
    assert_eq!(body["status_code"], status.as_u16(), "{}", answer.text);
    let trace = body["trace"].as_str().expect("trace is a string");
    assert!(!trace.is_empty());
    assert_eq!(
        answer
            .headers
            .get("x-request-id")
            .and_then(|v| v.to_str().ok()),
        Some(trace),
        "trace matches header"
    );
    let errors = body["errors"].as_array().expect("errors is an array");
    assert!(!errors.is_empty());
    for error in errors {
        let code = error["code"].as_str().expect("code");
        assert!(
            code.chars().all(|c| c.is_ascii_lowercase() || c == '_'),
            "snake_case code {code}"
        );
        assert!(error["message"].as_str().is_some_and(|m| !m.is_empty()));
    }
    errors[0]["code"].as_str().unwrap_or_default().to_owned()
}
