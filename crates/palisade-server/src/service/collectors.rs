//! Collector agents: creation with a one-time registration code, the code's exchange for a
//! `collector` key, heartbeats and status, and the jobs handed to an agent.
//!
//! - **Registration codes** are 32 random bytes (`palreg_` + base64url). Only their SHA-256 is
//!   stored (a code is high-entropy, so a fast hash is enough — unlike passwords), until the
//!   code is used or expires ([`REGISTRATION_VALIDITY`]). The exchange claims the code and
//!   stores the new key in one store transaction, so a code works once.
//! - **Targets** say what a collector collects: `aws` (an `aws_cloud` credential, regions),
//!   `host` (the machine the agent runs on, a directory holding a mounted image, or another
//!   machine over SSH with a `user_name_pem` credential whose `host` names it) or `import`
//!   (export files on the agent's machine), each with an interval.
//! - **Jobs** are the targets with their credentials opened by
//!   [`crate::service::credentials::reveal`], answered only to the collector's own key, never to
//!   an API reader. The agent schedules them itself, so it keeps collecting (and spooling) while
//!   the server is away.
//! - **Status** is derived from the last heartbeat ([`status`]): `pending` until registered
//!   (`expired` when the code ran out), then `active`, `stale` and `offline` as heartbeats stop.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Duration, Utc};
use palisade_model::error::ErrorCode;
use palisade_store::StoredCollector;
use rand::RngCore;
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

use crate::error::{ApiError, ApiResult};
use crate::service::credentials::{self, CREDENTIAL};
use crate::service::documents::{self, BodyErrors, timestamp};
use crate::state::AppState;

/// How long a registration code works.
pub const REGISTRATION_VALIDITY: Duration = Duration::hours(24);
/// Heartbeats younger than this make a collector `active`.
pub const ACTIVE_WITHIN: Duration = Duration::minutes(2);
/// Heartbeats younger than this (and older than [`ACTIVE_WITHIN`]) make it `stale`; older ones
/// `offline`.
pub const STALE_WITHIN: Duration = Duration::minutes(10);
/// Default interval of a target.
const DEFAULT_INTERVAL_SECONDS: u64 = 3600;
/// Longest interval of a target (30 days).
const MAX_INTERVAL_SECONDS: u64 = 30 * 24 * 3600;
/// Largest job result a heartbeat may carry, serialised.
const MAX_JOB_RESULT_BYTES: usize = 16 * 1024;

const CODE_PREFIX: &str = "palreg_";

/// Import kinds a target may name (the importers of `palisade-collect`).
const IMPORT_KINDS: [&str; 5] = ["kubernetes", "terraform", "gcp", "azure", "ibm"];

/// A new registration code and the hash that is stored.
pub fn new_registration_code() -> (String, String) {
    let mut bytes = [0_u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    let code = format!("{CODE_PREFIX}{}", URL_SAFE_NO_PAD.encode(bytes));
    let hash = code_hash(&code);
    (code, hash)
}

/// The stored form of a registration code.
pub fn code_hash(code: &str) -> String {
    hex::encode(Sha256::digest(code.trim().as_bytes()))
}

/// A collector's status at `now`.
pub fn status(collector: &StoredCollector, now: DateTime<Utc>) -> &'static str {
    match (&collector.key_id, collector.last_heartbeat_at) {
        (None, _) => {
            if collector
                .code_expires_at
                .is_some_and(|expires| expires > now)
            {
                "pending"
            } else {
                "expired"
            }
        }
        (Some(_), None) => "registered",
        (Some(_), Some(beat)) if now - beat <= ACTIVE_WITHIN => "active",
        (Some(_), Some(beat)) if now - beat <= STALE_WITHIN => "stale",
        (Some(_), Some(_)) => "offline",
    }
}

/// The API view of a collector (no code, no secret).
pub fn view(collector: &StoredCollector, now: DateTime<Utc>) -> Value {
    let optional_time = |at: Option<DateTime<Utc>>| at.map(timestamp);
    json!({
        "id": collector.id,
        "name": collector.name,
        "description": collector.description,
        "targets": collector.targets,
        "status": status(collector, now),
        "created_at": timestamp(collector.created_at),
        "registration_expires_at": optional_time(collector.code_expires_at),
        "registered_at": optional_time(collector.registered_at),
        "key_id": collector.key_id,
        "last_heartbeat_at": optional_time(collector.last_heartbeat_at),
        "version": collector.agent_version,
        "host_name": collector.host_name,
        "last_job": collector.last_job,
    })
}

/// What a collector body (`POST`/`PUT`) says, checked.
pub struct CollectorSpec {
    pub name: String,
    pub description: String,
    pub targets: Value,
}

/// Checks a collector body: `name`, optional `description` and `targets`. Every mistake is
/// reported at its JSON pointer; credentials named by targets must exist and have the right
/// type.
pub async fn check_spec(
    state: &AppState,
    instance_id: &str,
    body: &Map<String, Value>,
) -> ApiResult<CollectorSpec> {
    let mut errors = BodyErrors::default();
    errors.check_keys(body, "", &["name"], &["description", "targets"]);
    errors.check_string(body, "", "name", true);
    errors.check_string(body, "", "description", false);
    if let Some(name) = body.get("name").and_then(Value::as_str)
        && name.chars().count() > 128
    {
        errors.push(ErrorCode::InvalidField, "/name", "at most 128 characters");
    }
    let mut targets = Vec::new();
    let mut seen_ids = Vec::new();
    for (pointer, target) in errors.objects(body, "", "targets") {
        let checked = check_target(state, instance_id, &pointer, target, &mut errors).await?;
        if let Some(id) = checked.get("id").and_then(Value::as_str) {
            if seen_ids.iter().any(|seen| seen == id) {
                errors.push(
                    ErrorCode::InvalidField,
                    &format!("{pointer}/id"),
                    "two targets have this id",
                );
            }
            seen_ids.push(id.to_owned());
        }
        targets.push(Value::Object(checked));
    }
    errors.finish(CollectorSpec {
        name: body
            .get("name")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .trim()
            .to_owned(),
        description: body
            .get("description")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned(),
        targets: Value::Array(targets),
    })
}

/// Checks one target and returns it completed (an `id` and `interval_seconds` when absent).
async fn check_target(
    state: &AppState,
    instance_id: &str,
    pointer: &str,
    target: &Map<String, Value>,
    errors: &mut BodyErrors,
) -> ApiResult<Map<String, Value>> {
    let kind = target.get("kind").and_then(Value::as_str).unwrap_or("");
    let (required, optional): (&[&str], &[&str]) = match kind {
        "aws" => (&["kind", "credential_id"], &["regions"]),
        "host" => (&["kind"], &["root", "account_id", "credential_id"]),
        "import" => (&["kind", "import_kind", "paths"], &["account_id"]),
        _ => {
            errors.push(
                ErrorCode::InvalidField,
                &format!("{pointer}/kind"),
                "must be one of aws, host, import",
            );
            return Ok(target.clone());
        }
    };
    let mut allowed = vec!["id", "name", "interval_seconds"];
    allowed.extend_from_slice(optional);
    errors.check_keys(target, pointer, required, &allowed);
    for key in ["id", "name", "credential_id", "root", "account_id"] {
        errors.check_string(target, pointer, key, key != "account_id");
    }
    errors.check_enum(target, pointer, "import_kind", &IMPORT_KINDS);
    if let Some(id) = target.get("id").and_then(Value::as_str)
        && (id.len() > 64
            || !id
                .bytes()
                .all(|byte| byte.is_ascii_alphanumeric() || byte == b'-' || byte == b'_'))
    {
        errors.push(
            ErrorCode::InvalidField,
            &format!("{pointer}/id"),
            "1–64 letters, digits, `-` or `_`",
        );
    }
    if let Some(root) = target.get("root").and_then(Value::as_str)
        && !root.starts_with('/')
    {
        errors.push(
            ErrorCode::InvalidField,
            &format!("{pointer}/root"),
            "must be an absolute path on the collector's machine",
        );
    }
    for key in ["regions", "paths"] {
        match target.get(key) {
            None | Some(Value::Null) => {}
            Some(Value::Array(items))
                if items
                    .iter()
                    .all(|item| item.as_str().is_some_and(|text| !text.trim().is_empty())) =>
            {
                if key == "paths" && items.is_empty() {
                    errors.push(
                        ErrorCode::InvalidField,
                        &format!("{pointer}/paths"),
                        "must name at least one file",
                    );
                }
            }
            Some(_) => errors.push(
                ErrorCode::InvalidField,
                &format!("{pointer}/{key}"),
                "must be an array of non-empty strings",
            ),
        }
    }
    let interval = match target.get("interval_seconds") {
        None | Some(Value::Null) => DEFAULT_INTERVAL_SECONDS,
        Some(value) => match value.as_u64() {
            Some(seconds) if (1..=MAX_INTERVAL_SECONDS).contains(&seconds) => seconds,
            _ => {
                errors.push(
                    ErrorCode::InvalidField,
                    &format!("{pointer}/interval_seconds"),
                    format!("must be an integer from 1 to {MAX_INTERVAL_SECONDS}"),
                );
                DEFAULT_INTERVAL_SECONDS
            }
        },
    };
    if target.contains_key("root") && target.contains_key("credential_id") {
        errors.push(
            ErrorCode::InvalidField,
            &format!("{pointer}/root"),
            "a host target reads either a directory (`root`) or another machine over SSH (`credential_id`), not both",
        );
    }
    if let Some(credential_id) = target.get("credential_id").and_then(Value::as_str) {
        // An AWS target signs with keys; a host target with a credential connects over SSH.
        let expected = if kind == "aws" {
            "aws_cloud"
        } else {
            "user_name_pem"
        };
        match state
            .store
            .get_document(instance_id, CREDENTIAL.store_kind, credential_id)
            .await?
        {
            None => errors.push(
                ErrorCode::InvalidField,
                &format!("{pointer}/credential_id"),
                format!("no credential `{credential_id}` in this instance"),
            ),
            Some(document) if document.body["type"] != expected => errors.push(
                ErrorCode::InvalidField,
                &format!("{pointer}/credential_id"),
                format!(
                    "credential `{credential_id}` is {}, an {kind} target needs {expected}",
                    document.body["type"]
                ),
            ),
            Some(_) => {}
        }
    }
    let mut checked = target.clone();
    if !checked.contains_key("id") {
        checked.insert(
            "id".into(),
            json!(documents::new_id().replace('-', "")[..16].to_owned()),
        );
    }
    checked.insert("interval_seconds".into(), json!(interval));
    Ok(checked)
}

/// The jobs of a collector: its targets, each with its credential opened. A target whose
/// credential is gone (or no longer opens) becomes a job with an `error`, so the agent reports
/// it instead of collecting with nothing.
pub async fn jobs(
    state: &AppState,
    instance_id: &str,
    collector: &StoredCollector,
) -> ApiResult<Vec<Value>> {
    let mut jobs = Vec::new();
    for target in collector.targets.as_array().into_iter().flatten() {
        let mut job = target.clone();
        if let Some(credential_id) = target.get("credential_id").and_then(Value::as_str) {
            match credentials::reveal(state, instance_id, credential_id).await {
                Ok(credential) => {
                    job["credential"] = credential;
                }
                Err(error) if error.code() == ErrorCode::ServiceUnavailable => return Err(error),
                Err(error) => {
                    job["error"] = json!(format!(
                        "credential `{credential_id}` is unavailable: {}",
                        error.items.first().map_or("", |item| item.message.as_str())
                    ));
                }
            }
        }
        jobs.push(job);
    }
    Ok(jobs)
}

/// Checks the job result a heartbeat carries: an object of bounded size.
pub fn check_job_result(result: &Value) -> ApiResult<()> {
    if !result.is_object() {
        return Err(ApiError::new(
            ErrorCode::InvalidField,
            "`/last_job`: must be an object",
        ));
    }
    if result.to_string().len() > MAX_JOB_RESULT_BYTES {
        return Err(ApiError::new(
            ErrorCode::InvalidField,
            format!("`/last_job`: at most {MAX_JOB_RESULT_BYTES} bytes"),
        ));
    }
    Ok(())
}

/// The collectors of an instance with their status, for the dashboard.
pub async fn overview(state: &AppState, instance_id: &str) -> ApiResult<Vec<Value>> {
    let now = Utc::now();
    Ok(state
        .store
        .list_collectors(instance_id)
        .await?
        .iter()
        .map(|collector| view(collector, now))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn collector() -> StoredCollector {
        StoredCollector {
            id: "c".into(),
            name: "c".into(),
            description: String::new(),
            targets: json!([]),
            created_at: Utc::now(),
            code_expires_at: None,
            key_id: None,
            registered_at: None,
            last_heartbeat_at: None,
            agent_version: None,
            host_name: None,
            last_job: None,
        }
    }

    #[test]
    fn status_follows_registration_and_heartbeats() {
        let now = Utc::now();
        let mut pending = collector();
        pending.code_expires_at = Some(now + Duration::hours(1));
        assert_eq!(status(&pending, now), "pending");
        pending.code_expires_at = Some(now - Duration::seconds(1));
        assert_eq!(status(&pending, now), "expired");
        let mut registered = collector();
        registered.key_id = Some("k".into());
        assert_eq!(status(&registered, now), "registered");
        for (age, expected) in [(10, "active"), (300, "stale"), (3600, "offline")] {
            registered.last_heartbeat_at = Some(now - Duration::seconds(age));
            assert_eq!(status(&registered, now), expected, "{age} s");
        }
    }

    #[test]
    fn codes_are_random_and_only_their_hash_is_kept() {
        let (code, hash) = new_registration_code();
        let (other, _) = new_registration_code();
        assert_ne!(code, other);
        assert!(code.starts_with(CODE_PREFIX));
        assert!(!hash.contains(&code[CODE_PREFIX.len()..]));
        assert_eq!(code_hash(&format!(" {code}\n")), hash, "pasted codes trim");
    }
}
