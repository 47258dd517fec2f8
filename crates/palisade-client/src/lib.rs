//! A typed client of Palisade's HTTP API, shared by the CLI and the collector agent.
//!
//! Errors keep the server's error body, so callers can show its code, message and trace id.

use palisade_model::error::{ErrorBody, ErrorItem};
use palisade_model::resource::Resource;
use palisade_model::tenancy::{ApiKey, Role};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// What a call can fail with.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The server answered with an error body.
    #[error("{status}: {}{}", summary(.body), trace_suffix(.body))]
    Api { status: u16, body: ErrorBody },
    /// The server answered with an error status but no readable body.
    #[error("{status}: {text}")]
    Status { status: u16, text: String },
    /// The server could not be reached, or its answer could not be read.
    #[error("request failed: {0}")]
    Transport(#[from] reqwest::Error),
    /// The URL is not usable.
    #[error("invalid server url `{0}`")]
    InvalidUrl(String),
}

impl ClientError {
    /// The HTTP status of an error answer, if the server answered.
    pub fn status(&self) -> Option<u16> {
        match self {
            ClientError::Api { status, .. } | ClientError::Status { status, .. } => Some(*status),
            ClientError::Transport(error) => error.status().map(|status| status.as_u16()),
            ClientError::InvalidUrl(_) => None,
        }
    }

    /// Whether trying again later may succeed: the server was unreachable, timed out, was
    /// overloaded (408, 429) or failed (5xx). Other answers will not change by retrying.
    pub fn is_transient(&self) -> bool {
        match self {
            ClientError::Transport(_) => true,
            ClientError::InvalidUrl(_) => false,
            _ => self
                .status()
                .is_some_and(|status| status == 408 || status == 429 || status >= 500),
        }
    }
}

fn summary(body: &ErrorBody) -> String {
    body.errors
        .iter()
        .map(|item| format!("{} ({})", item.message, item.code))
        .collect::<Vec<_>>()
        .join("; ")
}

fn trace_suffix(body: &ErrorBody) -> String {
    format!(" [trace {}]", body.trace)
}

/// Who a key belongs to, as `/v1/whoami` answers.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WhoAmI {
    pub key_id: String,
    pub key_name: String,
    pub instance_id: String,
    pub role: Role,
    pub operator: bool,
}

/// A created key, with its secret.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CreatedKey {
    #[serde(flatten)]
    pub key: ApiKey,
    pub secret: String,
}

#[derive(Debug, Deserialize)]
struct KeyList {
    keys: Vec<ApiKey>,
}

pub use reqwest::Method;

/// One record the server refused in an inventory push (it is in the quarantine).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RejectedResource {
    /// Position in the pushed batch.
    pub index: usize,
    /// The record's `id`, when it had one.
    #[serde(default)]
    pub id: Option<String>,
    /// Why, with JSON pointers under `/resources/{index}`.
    pub errors: Vec<ErrorItem>,
}

/// What an inventory push did.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PushOutcome {
    /// Records stored as new versions.
    pub stored: u64,
    /// Records the server already had (same id and `collected_at`): retries.
    pub duplicates: u64,
    /// Records that failed validation.
    pub rejected: Vec<RejectedResource>,
    /// The batch id the push carried, if any.
    #[serde(default)]
    pub batch_id: Option<String>,
    /// True when the server had already applied this batch id: nothing was written again, and
    /// the counts are those of the first push.
    #[serde(default)]
    pub replayed: bool,
}

/// What a collector's registration answers; `api_key` is shown only once.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Registration {
    pub collector_id: String,
    pub instance_id: String,
    pub name: String,
    pub key_id: String,
    pub api_key: String,
}

/// A client bound to one server and one key.
#[derive(Debug, Clone)]
pub struct Client {
    http: reqwest::Client,
    base_url: String,
    key: String,
}

impl Client {
    /// Creates a client for `base_url` (`http://127.0.0.1:8080`) using API key `key`.
    pub fn new(base_url: &str, key: &str) -> Result<Self, ClientError> {
        Self::build(base_url, key, None)
    }

    /// Like [`Client::new`], giving up on any request that takes longer than `timeout` (for
    /// long-running agents, which must not hang on a server that stopped answering).
    pub fn with_timeout(
        base_url: &str,
        key: &str,
        timeout: std::time::Duration,
    ) -> Result<Self, ClientError> {
        Self::build(base_url, key, Some(timeout))
    }

    fn build(
        base_url: &str,
        key: &str,
        timeout: Option<std::time::Duration>,
    ) -> Result<Self, ClientError> {
        if !(base_url.starts_with("http://") || base_url.starts_with("https://")) {
            return Err(ClientError::InvalidUrl(base_url.to_owned()));
        }
        // One TLS provider for the whole binary (ring); installing twice is harmless.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let mut builder = reqwest::Client::builder()
            .user_agent(concat!("palisade-client/", env!("CARGO_PKG_VERSION")));
        if let Some(timeout) = timeout {
            builder = builder.timeout(timeout).connect_timeout(timeout);
        }
        let http = builder.build()?;
        Ok(Self {
            http,
            base_url: base_url.trim_end_matches('/').to_owned(),
            key: key.to_owned(),
        })
    }

    /// Returns the key's identity.
    pub async fn whoami(&self) -> Result<WhoAmI, ClientError> {
        self.send(self.http.get(self.url("/v1/whoami"))).await
    }

    /// Lists the keys of the caller's instance.
    pub async fn list_keys(&self) -> Result<Vec<ApiKey>, ClientError> {
        let instance_id = self.whoami().await?.instance_id;
        let list: KeyList = self
            .send(
                self.http
                    .get(self.url(&format!("/instances/{instance_id}/v1/keys"))),
            )
            .await?;
        Ok(list.keys)
    }

    /// Creates a key in the caller's instance.
    pub async fn create_key(&self, name: &str, role: Role) -> Result<CreatedKey, ClientError> {
        let instance_id = self.whoami().await?.instance_id;
        let body = serde_json::json!({"name": name, "role": role});
        self.send(
            self.http
                .post(self.url(&format!("/instances/{instance_id}/v1/keys")))
                .json(&body),
        )
        .await
    }

    /// Revokes a key of the caller's instance.
    pub async fn revoke_key(&self, key_id: &str) -> Result<(), ClientError> {
        let instance_id = self.whoami().await?.instance_id;
        let request = self
            .http
            .delete(self.url(&format!("/instances/{instance_id}/v1/keys/{key_id}")));
        self.check(request).await.map(|_| ())
    }

    /// Sends a JSON request to any route (`path` from the server root) and returns the JSON
    /// answer; for routes without a typed method yet (the demo seeds a server with it).
    pub async fn json(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&serde_json::Value>,
    ) -> Result<serde_json::Value, ClientError> {
        let mut request = self.http.request(method, self.url(path));
        if let Some(body) = body {
            request = request.json(body);
        }
        self.send(request).await
    }

    /// Sends a raw body (audit events, flow logs, feeds, rule packs) to a route and returns the
    /// JSON answer.
    pub async fn upload(
        &self,
        method: reqwest::Method,
        path: &str,
        content_type: &str,
        body: Vec<u8>,
    ) -> Result<serde_json::Value, ClientError> {
        let request = self
            .http
            .request(method, self.url(path))
            .header(reqwest::header::CONTENT_TYPE, content_type)
            .body(body);
        self.send(request).await
    }

    /// Asks instance `instance_id` for an admission decision on a provisioning request
    /// (`{"operation", "resource", …}`); the answer is the decision
    /// (`{"allowed", "violations", "patch", "resource", …}`).
    pub async fn admission(
        &self,
        instance_id: &str,
        request: &serde_json::Value,
    ) -> Result<serde_json::Value, ClientError> {
        self.send(
            self.http
                .post(self.url(&format!("/instances/{instance_id}/v1/admission")))
                .json(request),
        )
        .await
    }

    /// Pushes one batch of resources to the caller's instance inventory
    /// (`POST /instances/{id}/v1/inventory`). Retrying the same batch is safe: the server stores
    /// each (id, `collected_at`) once. Keep batches under the server's body limit (10 MiB by
    /// default): a few thousand resources.
    pub async fn push_inventory(&self, resources: &[Resource]) -> Result<PushOutcome, ClientError> {
        let instance_id = self.whoami().await?.instance_id;
        self.push_inventory_to(&instance_id, resources).await
    }

    /// Like [`Client::push_inventory`], for a known instance id (saves the `whoami` call when
    /// pushing many batches).
    pub async fn push_inventory_to(
        &self,
        instance_id: &str,
        resources: &[Resource],
    ) -> Result<PushOutcome, ClientError> {
        let body = serde_json::json!({ "resources": resources });
        self.send(
            self.http
                .post(self.url(&format!("/instances/{instance_id}/v1/inventory")))
                .json(&body),
        )
        .await
    }

    /// Pushes one batch with an idempotency key: the server applies a `batch_id` once, and
    /// answers a resend with the first outcome (`replayed`). Agents use this to retry safely.
    pub async fn push_inventory_batch(
        &self,
        instance_id: &str,
        batch_id: &str,
        resources: &[Resource],
    ) -> Result<PushOutcome, ClientError> {
        let body = serde_json::json!({ "batch_id": batch_id, "resources": resources });
        self.send(
            self.http
                .post(self.url(&format!("/instances/{instance_id}/v1/inventory")))
                .json(&body),
        )
        .await
    }

    /// Exchanges a collector's one-time registration code for its API key
    /// (`POST /v1/collectors/register`, which takes no key: this client's key is not sent).
    pub async fn register_collector(&self, code: &str) -> Result<Registration, ClientError> {
        let body = serde_json::json!({ "registration_code": code });
        let response = self
            .http
            .post(self.url("/v1/collectors/register"))
            .json(&body)
            .send()
            .await?;
        Ok(Self::checked(response).await?.json().await?)
    }

    /// Sends a collector's heartbeat (`{"version", "host_name", "last_job"}`).
    pub async fn collector_heartbeat(
        &self,
        instance_id: &str,
        collector_id: &str,
        heartbeat: &serde_json::Value,
    ) -> Result<serde_json::Value, ClientError> {
        self.send(
            self.http
                .post(self.url(&format!(
                    "/instances/{instance_id}/v1/collectors/{collector_id}/heartbeat"
                )))
                .json(heartbeat),
        )
        .await
    }

    /// Returns a collector's jobs (its targets, credentials opened); only its own key may ask.
    pub async fn collector_jobs(
        &self,
        instance_id: &str,
        collector_id: &str,
    ) -> Result<Vec<serde_json::Value>, ClientError> {
        #[derive(Deserialize)]
        struct Jobs {
            jobs: Vec<serde_json::Value>,
        }
        let jobs: Jobs = self
            .send(self.http.get(self.url(&format!(
                "/instances/{instance_id}/v1/collectors/{collector_id}/jobs"
            ))))
            .await?;
        Ok(jobs.jobs)
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base_url)
    }

    async fn check(
        &self,
        request: reqwest::RequestBuilder,
    ) -> Result<reqwest::Response, ClientError> {
        let response = request.bearer_auth(&self.key).send().await?;
        Self::checked(response).await
    }

    async fn checked(response: reqwest::Response) -> Result<reqwest::Response, ClientError> {
        let status = response.status();
        if status.is_success() {
            return Ok(response);
        }
        let text = response.text().await.unwrap_or_default();
        Err(match serde_json::from_str::<ErrorBody>(&text) {
            Ok(body) => ClientError::Api {
                status: status.as_u16(),
                body,
            },
            Err(_) => ClientError::Status {
                status: status.as_u16(),
                text,
            },
        })
    }

    async fn send<T: DeserializeOwned>(
        &self,
        request: reqwest::RequestBuilder,
    ) -> Result<T, ClientError> {
        Ok(self.check(request).await?.json().await?)
    }
}
