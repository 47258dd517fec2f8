//! The RS256 key pair that signs webhook bodies, and the JWT itself.
//!
//! Each instance gets its own 2048-bit key pair the first time it needs one (its public-key route
//! or its first webhook); it is kept in the store so every replica and every restart signs with
//! the same key. The JWT is assembled here rather than with a JWT crate: signing one fixed
//! algorithm is three base64url segments, and `rsa` (the only crate that can *generate* RSA keys
//! without a C toolchain) already does the signature. `ring` checks it in the tests, so signer
//! and verifier are independent implementations.

use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use palisade_store::notifications::SigningKey;
use palisade_store::{Store, StoreError};
use rsa::pkcs1v15::SigningKey as RsaSigner;
use rsa::pkcs8::{DecodePrivateKey, EncodePrivateKey, EncodePublicKey, LineEnding};
use rsa::signature::{SignatureEncoding, Signer};
use sha2::{Digest, Sha256};

use crate::error::{ApiError, ApiResult};

/// Modulus size of generated keys.
const KEY_BITS: usize = 2048;
/// How long a signed body stays valid: receivers should refuse replays older than this.
pub const TOKEN_LIFETIME_SECONDS: i64 = 300;

/// Generates a key pair (slow: run it off the async threads).
fn generate() -> Result<SigningKey, String> {
    let private = rsa::RsaPrivateKey::new(&mut rand::rngs::OsRng, KEY_BITS)
        .map_err(|error| format!("generating an RSA key: {error}"))?;
    let private_key_pem = private
        .to_pkcs8_pem(LineEnding::LF)
        .map_err(|error| format!("encoding the private key: {error}"))?
        .to_string();
    let public_key_pem = private
        .to_public_key()
        .to_public_key_pem(LineEnding::LF)
        .map_err(|error| format!("encoding the public key: {error}"))?;
    Ok(SigningKey {
        private_key_pem,
        public_key_pem,
        created_at: Utc::now(),
    })
}

/// Returns the instance's key pair, making and storing it on first use. Two concurrent first
/// uses both generate, one insert wins, and both return the winner.
pub async fn signing_key(store: &Arc<dyn Store>, instance_id: &str) -> ApiResult<SigningKey> {
    if let Some(key) = store.get_signing_key(instance_id).await? {
        return Ok(key);
    }
    let generated = tokio::task::spawn_blocking(generate)
        .await
        .map_err(|error| ApiError::internal(format!("key generation task failed: {error}")))?
        .map_err(ApiError::internal)?;
    match store.insert_signing_key(instance_id, &generated).await {
        Ok(()) => Ok(generated),
        Err(StoreError::Conflict(_)) => store
            .get_signing_key(instance_id)
            .await?
            .ok_or_else(|| ApiError::internal("signing key vanished after a conflict")),
        Err(other) => Err(other.into()),
    }
}

/// The key id put in JWT headers: the first 16 hex digits of the public key's SHA-256, so a
/// receiver can tell which key signed when keys are ever rotated.
pub fn key_id(key: &SigningKey) -> String {
    hex::encode(Sha256::digest(key.public_key_pem.as_bytes()))[..16].to_owned()
}

/// Signs `claims` (plus `iss`, `iat`, `exp`, `jti`) as a compact RS256 JWT.
pub fn sign(
    key: &SigningKey,
    claims: &serde_json::Value,
    token_id: &str,
    at: DateTime<Utc>,
) -> Result<String, String> {
    let private = rsa::RsaPrivateKey::from_pkcs8_pem(&key.private_key_pem)
        .map_err(|error| format!("stored signing key does not parse: {error}"))?;
    let header = serde_json::json!({"alg": "RS256", "typ": "JWT", "kid": key_id(key)});
    let mut claims = match claims {
        serde_json::Value::Object(object) => object.clone(),
        other => {
            let mut object = serde_json::Map::new();
            object.insert("data".into(), other.clone());
            object
        }
    };
    claims.insert("iss".into(), "palisade".into());
    claims.insert("iat".into(), at.timestamp().into());
    claims.insert(
        "exp".into(),
        (at.timestamp() + TOKEN_LIFETIME_SECONDS).into(),
    );
    claims.insert("jti".into(), token_id.into());
    let signing_input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(serde_json::Value::Object(claims).to_string())
    );
    let signature = RsaSigner::<Sha256>::new(private).sign(signing_input.as_bytes());
    Ok(format!(
        "{signing_input}.{}",
        URL_SAFE_NO_PAD.encode(signature.to_bytes())
    ))
}

#[cfg(test)]
mod tests {
    use rsa::pkcs1v15::VerifyingKey;
    use rsa::pkcs8::DecodePublicKey;
    use rsa::signature::Verifier;

    use super::*;

    #[test]
    fn tokens_verify_with_the_public_key_and_carry_the_claims() {
        let key = generate().expect("key");
        assert!(key.public_key_pem.starts_with("-----BEGIN PUBLIC KEY-----"));
        let at = Utc::now();
        let token = sign(&key, &serde_json::json!({"findings": [1]}), "d-1", at).expect("sign");
        let parts: Vec<&str> = token.split('.').collect();
        assert_eq!(parts.len(), 3);
        let public = rsa::RsaPublicKey::from_public_key_pem(&key.public_key_pem).expect("pem");
        let signature = rsa::pkcs1v15::Signature::try_from(
            URL_SAFE_NO_PAD.decode(parts[2]).expect("b64").as_slice(),
        )
        .expect("signature");
        VerifyingKey::<Sha256>::new(public)
            .verify(format!("{}.{}", parts[0], parts[1]).as_bytes(), &signature)
            .expect("verifies");
        let claims: serde_json::Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).expect("b64")).expect("json");
        assert_eq!(claims["findings"], serde_json::json!([1]));
        assert_eq!(claims["jti"], "d-1");
        assert_eq!(claims["exp"], at.timestamp() + TOKEN_LIFETIME_SECONDS);
        let header: serde_json::Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[0]).expect("b64")).expect("json");
        assert_eq!(header["alg"], "RS256");
        assert_eq!(header["kid"], key_id(&key));
    }
}
