//! API keys: their format, hashing, verification, and the typed permission extractors.
//!
//! A key reads `pal_<key id>_<secret>`. The id (32 hex digits) lets the server find the key's
//! row without scanning; the secret (32 random bytes, base64url) is checked against an argon2id
//! hash. Argon2 is deliberately slow, so a successful check is remembered by the SHA-256 of the
//! whole token together with the stored hash it matched: the next request with the same token
//! costs one indexed read (which also sees a revocation at once) and a map lookup.
//!
//! Handlers state what they need in their signature — `Authorized<ReadAccess>`,
//! `Authorized<ConfigWrite>` … — so a route cannot be written without a permission.

use std::collections::HashMap;
use std::marker::PhantomData;
use std::sync::{Arc, Mutex};

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use axum::extract::{FromRequestParts, RawPathParams};
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use palisade_model::error::{ErrorCode, ErrorTarget};
use palisade_model::tenancy::{Action, ApiKey};
use palisade_store::{Store, StoredKey};
use rand::RngCore;
use sha2::{Digest, Sha256};

use crate::error::ApiError;
use crate::state::AppState;

const KEY_PREFIX: &str = "pal_";
const KEY_ID_LENGTH: usize = 32;
/// Bound on remembered verifications; the map is simply cleared when full (re-verifying costs
/// one argon2 run per active key, which is cheap at that rate).
const VERIFIED_CACHE_LIMIT: usize = 10_000;

/// A newly minted key: the secret token (shown once) and what is stored.
#[derive(Debug, Clone)]
pub struct MintedKey {
    pub token: String,
    pub stored: StoredKey,
}

/// Creates a key for an instance; the caller stores `stored` and shows `token` once.
pub fn mint_key(
    instance_id: &str,
    name: &str,
    role: palisade_model::tenancy::Role,
    operator: bool,
) -> Result<MintedKey, ApiError> {
    let key_id = uuid::Uuid::new_v4().simple().to_string();
    let mut secret_bytes = [0_u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut secret_bytes);
    let secret = URL_SAFE_NO_PAD.encode(secret_bytes);
    let salt = SaltString::generate(&mut rand::rngs::OsRng);
    let secret_hash = Argon2::default()
        .hash_password(secret.as_bytes(), &salt)
        .map_err(|error| ApiError::internal(format!("argon2 hash failed: {error}")))?
        .to_string();
    Ok(MintedKey {
        token: format!("{KEY_PREFIX}{key_id}_{secret}"),
        stored: StoredKey {
            key: ApiKey {
                id: key_id,
                instance_id: instance_id.to_owned(),
                name: name.to_owned(),
                role,
                operator,
                created_at: chrono::Utc::now(),
                revoked_at: None,
            },
            secret_hash,
        },
    })
}

/// Splits a token into key id and secret, if it has the right shape.
fn split_token(token: &str) -> Option<(&str, &str)> {
    let rest = token.strip_prefix(KEY_PREFIX)?;
    let key_id = rest.get(..KEY_ID_LENGTH)?;
    let secret = rest.get(KEY_ID_LENGTH..)?.strip_prefix('_')?;
    (key_id.bytes().all(|byte| byte.is_ascii_hexdigit()) && !secret.is_empty())
        .then_some((key_id, secret))
}

/// Checks tokens against stored keys, remembering successful checks.
#[derive(Debug, Default)]
pub struct KeyVerifier {
    /// SHA-256 of a token → the stored hash it was verified against.
    verified: Mutex<HashMap<[u8; 32], String>>,
}

impl KeyVerifier {
    /// Returns the key a token belongs to, or `Unauthorized`.
    pub async fn verify(&self, store: &Arc<dyn Store>, token: &str) -> Result<ApiKey, ApiError> {
        let unauthorized = || {
            ApiError::new(
                ErrorCode::Unauthorized,
                "the API key is missing, malformed, unknown or revoked",
            )
            .with_target(ErrorTarget::header("Authorization"))
        };
        let (key_id, secret) = split_token(token).ok_or_else(unauthorized)?;
        let stored = store.find_key(key_id).await?.ok_or_else(unauthorized)?;
        if stored.key.revoked_at.is_some() {
            return Err(unauthorized());
        }
        let fingerprint: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        if self.lock().get(&fingerprint) == Some(&stored.secret_hash) {
            return Ok(stored.key);
        }
        let secret_owned = secret.to_owned();
        let hash_owned = stored.secret_hash.clone();
        let matches = tokio::task::spawn_blocking(move || {
            PasswordHash::new(&hash_owned)
                .map(|parsed| {
                    Argon2::default()
                        .verify_password(secret_owned.as_bytes(), &parsed)
                        .is_ok()
                })
                .unwrap_or(false)
        })
        .await
        .map_err(|error| ApiError::internal(format!("key verification task failed: {error}")))?;
        if !matches {
            return Err(unauthorized());
        }
        let mut verified = self.lock();
        if verified.len() >= VERIFIED_CACHE_LIMIT {
            verified.clear();
        }
        verified.insert(fingerprint, stored.secret_hash);
        Ok(stored.key)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<[u8; 32], String>> {
        // A panic while holding this lock cannot leave the map inconsistent (single inserts).
        self.verified
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// A permission a route needs; one marker type per [`Action`].
pub trait Permission: Send + Sync + 'static {
    const ACTION: Action;
}

/// Reading objects of the instance.
pub struct ReadAccess;
impl Permission for ReadAccess {
    const ACTION: Action = Action::Read;
}

/// Writing configuration.
pub struct ConfigWrite;
impl Permission for ConfigWrite {
    const ACTION: Action = Action::WriteConfig;
}

/// Managing API keys.
pub struct KeyManagement;
impl Permission for KeyManagement {
    const ACTION: Action = Action::ManageKeys;
}

/// Pushing data (inventory, events, flows, occurrences).
pub struct DataPush;
impl Permission for DataPush {
    const ACTION: Action = Action::PushData;
}

/// Acting as a collector agent.
pub struct CollectorAgent;
impl Permission for CollectorAgent {
    const ACTION: Action = Action::RunCollector;
}

/// The caller's key, checked for permission `P` and, when the route has an `{instance_id}`,
/// for belonging to that instance.
pub struct Authorized<P> {
    pub key: ApiKey,
    _permission: PhantomData<P>,
}

impl<P> Authorized<P> {
    /// Returns the instance the key (and so the request) belongs to.
    pub fn instance_id(&self) -> &str {
        &self.key.instance_id
    }
}

/// The caller's key, of any role, without an instance check (for `/v1/whoami`).
pub struct Authenticated(pub ApiKey);

/// The caller's key, which must be an operator key (for instance management).
pub struct Operator(pub ApiKey);

async fn authenticate(parts: &mut Parts, state: &AppState) -> Result<ApiKey, ApiError> {
    let header = parts
        .headers
        .get(AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default();
    let token = header
        .strip_prefix("Bearer ")
        .or_else(|| header.strip_prefix("bearer "))
        .map(str::trim)
        .unwrap_or_default();
    if token.is_empty() {
        return Err(ApiError::new(
            ErrorCode::Unauthorized,
            "send an API key as `Authorization: Bearer <key>`",
        )
        .with_target(ErrorTarget::header("Authorization")));
    }
    let key = state.verifier.verify(&state.store, token).await?;
    state.check_rate(&key.id)?;
    Ok(key)
}

impl<P: Permission> FromRequestParts<AppState> for Authorized<P> {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let key = authenticate(parts, state).await?;
        let path_params = RawPathParams::from_request_parts(parts, state)
            .await
            .map_err(|error| ApiError::internal(format!("path parameters: {error}")))?;
        if let Some((_, instance_id)) = path_params.iter().find(|(name, _)| *name == "instance_id")
        {
            // Another instance's objects answer exactly like absent ones: 404, never 403, so a
            // key cannot even learn which instance ids exist.
            if instance_id != key.instance_id {
                return Err(ApiError::not_found("instance", instance_id));
            }
        }
        if !key.role.allows(P::ACTION) {
            return Err(ApiError::new(
                ErrorCode::Forbidden,
                format!(
                    "a key with role `{}` may not do this ({:?})",
                    key.role,
                    P::ACTION
                ),
            ));
        }
        Ok(Self {
            key,
            _permission: PhantomData,
        })
    }
}

impl FromRequestParts<AppState> for Authenticated {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        authenticate(parts, state).await.map(Authenticated)
    }
}

impl FromRequestParts<AppState> for Operator {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let key = authenticate(parts, state).await?;
        if !key.operator {
            return Err(ApiError::new(
                ErrorCode::Forbidden,
                "only the operator key may manage instances",
            ));
        }
        Ok(Operator(key))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minted_tokens_split_back_into_id_and_secret() {
        let minted =
            mint_key("inst", "ci", palisade_model::tenancy::Role::Viewer, false).expect("mint");
        let (key_id, secret) = split_token(&minted.token).expect("well-formed");
        assert_eq!(key_id, minted.stored.key.id);
        assert!(
            !minted.stored.secret_hash.contains(secret),
            "the hash must not contain the secret"
        );
        assert!(minted.stored.secret_hash.starts_with("$argon2id$"));
    }

    #[test]
    fn malformed_tokens_are_rejected_before_any_lookup() {
        for token in [
            "",
            "pal_",
            "pal_123_abc",
            "xyz_0123456789abcdef0123456789abcdef_secret",
            "pal_0123456789abcdef0123456789abcdeg_s",
            "pal_0123456789abcdef0123456789abcdef_",
        ] {
            assert!(split_token(token).is_none(), "{token}");
        }
    }
}
