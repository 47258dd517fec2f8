//! Credentials collectors use (cloud keys, passwords, SSH keys), encrypted at rest.
//!
//! Secret fields are sealed with ChaCha20-Poly1305 (ring) under the server's **master key**
//! before they reach the store; the associated data binds each sealed value to its instance,
//! credential and field, so a sealed blob copied into another row or instance does not open.
//! The API never returns a secret: reads show it masked. Only [`reveal`] opens one, for the
//! collector job that needs it.
//!
//! The master key comes from `PALISADE_MASTER_KEY` (base64 of 32 bytes) or from
//! `<data_dir>/master.key`, created (mode 0600) on the first start. Without it the credential
//! routes answer 503 rather than store secrets in the clear.

use std::path::Path;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use palisade_model::error::ErrorCode;
use ring::aead::{Aad, CHACHA20_POLY1305, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use ring::rand::{SecureRandom, SystemRandom};
use serde_json::{Map, Value, json};

use crate::error::{ApiError, ApiResult};
use crate::service::documents::{self, BodyErrors, Kind};
use crate::state::AppState;

/// Stored credentials.
pub const CREDENTIAL: Kind = Kind {
    store_kind: "credential",
    label: "credential",
};

/// What a secret looks like in every answer.
pub const MASK: &str = "********";

/// A credential type: its name, required fields, optional fields, and which fields are secret.
type CredentialType = (
    &'static str,
    &'static [&'static str],
    &'static [&'static str],
    &'static [&'static str],
);

/// The credential types.
const TYPES: [CredentialType; 4] = [
    (
        "aws_cloud",
        &["access_key_id", "secret_access_key", "region"],
        &["session_token", "endpoint_url", "role_arn"],
        &["secret_access_key", "session_token"],
    ),
    (
        "username_password",
        &["username", "password"],
        &["host"],
        &["password"],
    ),
    (
        "user_name_pem",
        &["username", "pem"],
        &["host", "port", "passphrase"],
        &["pem", "passphrase"],
    ),
    ("ibm_cloud", &["api_key"], &["account_id"], &["api_key"]),
];

/// The server's key for sealing secrets.
pub struct MasterKey {
    key: LessSafeKey,
}

impl std::fmt::Debug for MasterKey {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str("MasterKey(…)")
    }
}

impl MasterKey {
    /// A key from its 32 bytes.
    ///
    /// # Errors
    /// When the bytes are not a ChaCha20-Poly1305 key.
    pub fn from_bytes(bytes: &[u8]) -> anyhow::Result<Self> {
        let unbound = UnboundKey::new(&CHACHA20_POLY1305, bytes)
            .map_err(|_| anyhow::anyhow!("a master key is 32 bytes"))?;
        Ok(Self {
            key: LessSafeKey::new(unbound),
        })
    }

    /// The key from `PALISADE_MASTER_KEY` (base64) if set, else from `<data_dir>/master.key`,
    /// which is created with a random key (mode 0600) when it does not exist.
    ///
    /// # Errors
    /// When the variable or file holds no valid key, or the file cannot be written.
    pub fn load_or_create(data_dir: &Path, from_env: Option<&str>) -> anyhow::Result<Self> {
        if let Some(text) = from_env {
            let bytes = STANDARD
                .decode(text.trim())
                .map_err(|error| anyhow::anyhow!("PALISADE_MASTER_KEY is not base64: {error}"))?;
            return Self::from_bytes(&bytes);
        }
        let path = data_dir.join("master.key");
        if path.exists() {
            let text = std::fs::read_to_string(&path)?;
            let bytes = STANDARD
                .decode(text.trim())
                .map_err(|error| anyhow::anyhow!("{} is not base64: {error}", path.display()))?;
            return Self::from_bytes(&bytes);
        }
        let mut bytes = [0u8; 32];
        SystemRandom::new()
            .fill(&mut bytes)
            .map_err(|_| anyhow::anyhow!("no randomness for the master key"))?;
        let encoded = STANDARD.encode(bytes);
        {
            use std::io::Write as _;
            use std::os::unix::fs::OpenOptionsExt as _;
            let mut file = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&path)?;
            writeln!(file, "{encoded}")?;
            file.sync_all()?;
        }
        Self::from_bytes(&bytes)
    }

    fn seal(&self, plaintext: &str, context: &str) -> ApiResult<String> {
        let mut nonce = [0u8; NONCE_LEN];
        SystemRandom::new()
            .fill(&mut nonce)
            .map_err(|_| ApiError::internal("no randomness for a nonce"))?;
        let mut buffer = plaintext.as_bytes().to_vec();
        self.key
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(context.as_bytes()),
                &mut buffer,
            )
            .map_err(|_| ApiError::internal("sealing a secret failed"))?;
        let mut sealed = nonce.to_vec();
        sealed.extend_from_slice(&buffer);
        Ok(STANDARD.encode(sealed))
    }

    fn open(&self, sealed: &str, context: &str) -> ApiResult<String> {
        let fail = || {
            ApiError::new(
                ErrorCode::Internal,
                "a stored secret does not open with this server's master key (was the key changed?)",
            )
        };
        let bytes = STANDARD.decode(sealed).map_err(|_| fail())?;
        if bytes.len() < NONCE_LEN {
            return Err(fail());
        }
        let (nonce, ciphertext) = bytes.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| fail())?;
        let mut buffer = ciphertext.to_vec();
        let plaintext = self
            .key
            .open_in_place(nonce, Aad::from(context.as_bytes()), &mut buffer)
            .map_err(|_| fail())?;
        String::from_utf8(plaintext.to_vec()).map_err(|_| fail())
    }
}

fn master(state: &AppState) -> ApiResult<&MasterKey> {
    state.config.master_key.as_deref().ok_or_else(|| {
        ApiError::new(
            ErrorCode::ServiceUnavailable,
            "this server has no master key, so it cannot store credentials",
        )
    })
}

fn context(instance_id: &str, credential_id: &str, field: &str) -> String {
    format!("palisade-credential\u{0}{instance_id}\u{0}{credential_id}\u{0}{field}")
}

/// Checks a credential body and seals its secrets; returns the stored body.
pub fn seal_body(
    state: &AppState,
    instance_id: &str,
    id: &str,
    request: &Map<String, Value>,
) -> ApiResult<Value> {
    let master = master(state)?;
    let mut errors = BodyErrors::default();
    let kind = request
        .get("type")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let Some((_, required, optional, secret)) = TYPES.iter().find(|(name, ..)| *name == kind)
    else {
        errors.push(
            ErrorCode::InvalidField,
            "/type",
            format!("must be one of {}", TYPES.map(|(name, ..)| name).join(", ")),
        );
        return errors.finish(Value::Null);
    };
    let mut allowed: Vec<&str> = vec!["name", "description", "type"];
    allowed.extend(optional.iter());
    let mut all_required: Vec<&str> = vec!["name"];
    all_required.extend(required.iter());
    errors.check_keys(request, "", &all_required, &allowed);
    for key in all_required.iter().chain(optional.iter()) {
        errors.check_string(request, "", key, true);
    }
    errors.finish(())?;
    let mut public = Map::new();
    let mut sealed = Map::new();
    for (key, value) in request {
        let text = value.as_str().unwrap_or_default();
        if secret.contains(&key.as_str()) {
            sealed.insert(
                key.clone(),
                json!(master.seal(text, &context(instance_id, id, key))?),
            );
        } else {
            public.insert(key.clone(), value.clone());
        }
    }
    public.insert("id".into(), json!(id));
    public.insert("sealed".into(), Value::Object(sealed));
    Ok(Value::Object(public))
}

/// The API view of a stored credential: secrets masked, the access key id cut to its end.
pub fn masked(stored: &Value) -> Value {
    let mut view = stored.clone();
    if let Some(object) = view.as_object_mut() {
        let sealed: Vec<String> = object
            .remove("sealed")
            .and_then(|sealed| sealed.as_object().map(|map| map.keys().cloned().collect()))
            .unwrap_or_default();
        for key in sealed {
            object.insert(key, json!(MASK));
        }
        if let Some(Value::String(key_id)) = object.get_mut("access_key_id") {
            let tail: String = key_id
                .chars()
                .rev()
                .take(4)
                .collect::<Vec<_>>()
                .into_iter()
                .rev()
                .collect();
            *key_id = format!("{MASK}{tail}");
        }
    }
    view
}

/// The credential with its secrets opened, for the collector job that uses it. Never answer
/// this to an API caller.
pub async fn reveal(state: &AppState, instance_id: &str, id: &str) -> ApiResult<Value> {
    let master = master(state)?;
    let stored = documents::get(state, instance_id, CREDENTIAL, id)
        .await?
        .body;
    let mut revealed = stored.clone();
    if let Some(object) = revealed.as_object_mut() {
        let sealed = object.remove("sealed").unwrap_or(Value::Null);
        for (key, value) in sealed.as_object().into_iter().flatten() {
            let opened = master.open(
                value.as_str().unwrap_or_default(),
                &context(instance_id, id, key),
            )?;
            object.insert(key.clone(), json!(opened));
        }
    }
    Ok(revealed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_secrets_open_only_in_their_own_context() {
        let key = MasterKey::from_bytes(&[7u8; 32]).expect("key");
        let sealed = key.seal("s3cr3t", "a").expect("seal");
        assert!(!sealed.contains("s3cr3t"));
        assert_eq!(key.open(&sealed, "a").expect("open"), "s3cr3t");
        assert!(key.open(&sealed, "b").is_err(), "moved to another row");
        let other = MasterKey::from_bytes(&[8u8; 32]).expect("key");
        assert!(other.open(&sealed, "a").is_err(), "another master key");
        // Two seals of the same secret differ (random nonces).
        assert_ne!(key.seal("s3cr3t", "a").expect("seal"), sealed);
    }

    #[test]
    fn master_key_file_is_created_private_and_reused() {
        let directory = tempfile::tempdir().expect("tempdir");
        let first = MasterKey::load_or_create(directory.path(), None).expect("create");
        let sealed = first.seal("x", "c").expect("seal");
        let again = MasterKey::load_or_create(directory.path(), None).expect("load");
        assert_eq!(again.open(&sealed, "c").expect("open"), "x");
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(directory.path().join("master.key"))
            .expect("metadata")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        assert!(MasterKey::load_or_create(directory.path(), Some("not base64!")).is_err());
    }

    #[test]
    fn masked_views_hide_every_secret() {
        let stored = json!({"id": "c", "type": "aws_cloud", "access_key_id": "AKIAEXAMPLE1234",
            "region": "us-east-1", "sealed": {"secret_access_key": "Zm9v"}});
        let view = masked(&stored);
        assert_eq!(view["secret_access_key"], MASK);
        assert_eq!(view["access_key_id"], format!("{MASK}1234"));
        assert!(view.get("sealed").is_none());
    }
}
