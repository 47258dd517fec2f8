//! Dashboard sessions: which key a signed-in browser acts as, until when.
//!
//! Rows are keyed by the SHA-256 of the session id the browser holds (the caller hashes; the
//! store never sees the id), so a copy of the table signs nobody in. A session never outlives
//! its key: revoking the key deletes its sessions ([`SessionStore::delete_key_sessions`]).

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::StoreResult;

/// A dashboard session as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredSession {
    pub instance_id: String,
    pub key_id: String,
    /// The CSRF token of the session's forms.
    pub csrf: String,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

/// Dashboard sessions, by the hash of their id.
#[async_trait]
pub trait SessionStore {
    /// Stores a new session; `Conflict` if the hash exists, `NotFound` without its instance.
    async fn create_session(&self, id_hash: &str, session: &StoredSession) -> StoreResult<()>;
    /// Returns the session if it exists and has not expired at `now`. Sessions are found by
    /// their id alone: callers check the key and instance they name.
    async fn find_session(
        &self,
        id_hash: &str,
        now: DateTime<Utc>,
    ) -> StoreResult<Option<StoredSession>>;
    /// Deletes one session (sign-out); returns whether it existed.
    async fn delete_session(&self, id_hash: &str) -> StoreResult<bool>;
    /// Deletes every session of a key of this instance (revocation); returns how many.
    async fn delete_key_sessions(&self, instance_id: &str, key_id: &str) -> StoreResult<u64>;
    /// Deletes the sessions expired at `now`; returns how many.
    async fn purge_expired_sessions(&self, now: DateTime<Utc>) -> StoreResult<u64>;
}
