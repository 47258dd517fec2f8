//! Store errors.

/// What can go wrong in a store call.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The object (or the instance it should belong to) does not exist.
    #[error("{0} not found")]
    NotFound(String),
    /// An object with this identity already exists.
    #[error("{0} already exists")]
    Conflict(String),
    /// An optimistic-concurrency check failed: the object changed since it was read.
    #[error("version mismatch: expected {expected}, current {current}")]
    VersionMismatch { expected: i64, current: i64 },
    /// The URL names no supported backend.
    #[error("unsupported store url `{0}`: expected sqlite://PATH or postgres://…")]
    UnsupportedUrl(String),
    /// A stored value could not be read back; a bug or a damaged database.
    #[error("corrupt stored data: {0}")]
    Corrupt(String),
    /// The database failed.
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
}

impl StoreError {
    /// Tells whether the failure is the backend being unreachable or overloaded rather than a
    /// problem with the request, so callers can answer 503 and clients retry.
    pub fn is_unavailable(&self) -> bool {
        matches!(
            self,
            StoreError::Database(
                sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Io(_)
            )
        )
    }
}
