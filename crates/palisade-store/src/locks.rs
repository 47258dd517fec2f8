//! Locks shared by the server processes of one PostgreSQL database (scaled mode): who runs the
//! scheduler, who scans an attachment (and each shard of a scan), who owns an ingest partition, who is alive.
//!
//! They are PostgreSQL **session advisory locks** held on one dedicated connection per process
//! (not a pool connection, which would hand the session to other work). PostgreSQL releases a
//! session's locks when its connection ends, so a process that dies — even by SIGKILL, when the
//! kernel closes its socket — gives up everything it held, and another process can take over
//! without leases, heartbeats or clocks.
//!
//! Keys are two 32-bit integers: a *class* derived from the database, the schema in use and
//! the lock's purpose (so test runs that share a database through separate schemas, or two
//! Palisade deployments in one database, never contend), and a number within the class (a
//! partition, a member slot, a hash of an attachment). The two-integer form keeps them apart
//! from the single-`bigint` key of the migration lock.
//!
//! When the connection fails every lock it held is gone: callers see an error, must treat all
//! their locks as lost, and [`ClusterLocks`] reconnects at the next call.

use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};

use sqlx::any::AnyConnectOptions;
use sqlx::{AnyConnection, Connection, Row};
use tokio::sync::Mutex;

use crate::StoreResult;

type BoxFuture<'a, T> = std::pin::Pin<Box<dyn std::future::Future<Output = T> + Send + 'a>>;

/// What a lock is for; each purpose is its own class of keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LockPurpose {
    /// One per live process (a slot number): counting them tells how many processes share work.
    Member,
    /// Ownership of an ingest partition.
    Partition,
    /// The one process that runs the scan scheduler.
    Scheduler,
    /// A scan of one attachment (number: a hash of instance and attachment).
    Scan,
    /// One shard of a scan being evaluated (number: a hash of instance, report and shard).
    ScanShard,
}

impl LockPurpose {
    fn name(self) -> &'static str {
        match self {
            Self::Member => "member",
            Self::Partition => "partition",
            Self::Scheduler => "scheduler",
            Self::Scan => "scan",
            Self::ScanShard => "scan-shard",
        }
    }
}

/// One lock: a purpose and a number within it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct LockKey {
    pub purpose: LockPurpose,
    pub number: i32,
}

impl LockKey {
    pub fn new(purpose: LockPurpose, number: i32) -> Self {
        Self { purpose, number }
    }
}

/// 32-bit FNV-1a, kept non-negative: stable across Rust versions and processes.
pub fn stable_hash32(text: &str) -> i32 {
    let mut hash: u32 = 0x811c_9dc5;
    for byte in text.bytes() {
        hash ^= u32::from(byte);
        hash = hash.wrapping_mul(0x0100_0193);
    }
    i32::try_from(hash & 0x7fff_ffff).unwrap_or(0)
}

/// A process's advisory locks on one dedicated PostgreSQL connection.
#[derive(Debug)]
pub struct ClusterLocks {
    options: AnyConnectOptions,
    connection: Mutex<Option<(AnyConnection, String)>>,
    /// Counts connections opened: locks taken under an older generation are gone.
    generation: AtomicU64,
}

impl ClusterLocks {
    /// Connects to `postgres://…` (the store's URL: same database and schema). Returns `None` for
    /// other stores: an embedded SQLite database has one process, which holds every lock.
    pub async fn connect(url: &str) -> StoreResult<Option<Self>> {
        if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
            return Ok(None);
        }
        sqlx::any::install_default_drivers();
        let locks = Self {
            options: AnyConnectOptions::from_str(url)?,
            connection: Mutex::new(None),
            generation: AtomicU64::new(0),
        };
        // Fail at start-up, not at the first lock, when the database cannot be reached.
        locks
            .with_connection(|_, _| Box::pin(async { Ok(()) }))
            .await?;
        Ok(Some(locks))
    }

    /// Runs `work` on the dedicated connection, opening it first if needed. An error drops the
    /// connection (its locks are released by PostgreSQL) so the next call starts afresh.
    async fn with_connection<T>(
        &self,
        work: impl for<'c> FnOnce(
            &'c mut AnyConnection,
            &'c str,
        ) -> BoxFuture<'c, Result<T, sqlx::Error>>,
    ) -> StoreResult<T> {
        let mut guard = self.connection.lock().await;
        if guard.is_none() {
            let mut connection = AnyConnection::connect_with(&self.options).await?;
            let namespace: String = sqlx::query(
                "SELECT current_database() || '/' || COALESCE(current_schema(), '') AS namespace",
            )
            .fetch_one(&mut connection)
            .await?
            .try_get("namespace")?;
            *guard = Some((connection, namespace));
            self.generation.fetch_add(1, Ordering::SeqCst);
        }
        let Some((connection, namespace)) = guard.as_mut() else {
            return Err(sqlx::Error::PoolClosed.into());
        };
        match work(connection, namespace).await {
            Ok(value) => Ok(value),
            Err(error) => {
                *guard = None;
                Err(error.into())
            }
        }
    }

    /// Which connection the locks live on: when it changes (the previous one failed), every lock
    /// taken before is gone, whatever the caller believes.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::SeqCst)
    }

    fn class(namespace: &str, purpose: LockPurpose) -> i32 {
        stable_hash32(&format!("palisade/{namespace}/{}", purpose.name()))
    }

    /// Takes a lock if no other process holds it; true when this process holds it now (also when
    /// it already did: session locks stack, so call [`ClusterLocks::unlock`] once per success).
    pub async fn try_lock(&self, key: LockKey) -> StoreResult<bool> {
        self.with_connection(move |connection, namespace| {
            let class = Self::class(namespace, key.purpose);
            Box::pin(async move {
                sqlx::query("SELECT pg_try_advisory_lock($1, $2) AS taken")
                    .bind(class)
                    .bind(key.number)
                    .fetch_one(&mut *connection)
                    .await?
                    .try_get::<bool, _>("taken")
            })
        })
        .await
    }

    /// Releases a lock this process holds (once).
    pub async fn unlock(&self, key: LockKey) -> StoreResult<()> {
        self.with_connection(move |connection, namespace| {
            let class = Self::class(namespace, key.purpose);
            Box::pin(async move {
                sqlx::query("SELECT pg_advisory_unlock($1, $2) AS released")
                    .bind(class)
                    .bind(key.number)
                    .fetch_one(&mut *connection)
                    .await
                    .map(|_| ())
            })
        })
        .await
    }

    /// The numbers of a purpose's locks held now, by any process of this namespace, ascending.
    pub async fn held_numbers(&self, purpose: LockPurpose) -> StoreResult<Vec<i32>> {
        self.with_connection(move |connection, namespace| {
            let class = Self::class(namespace, purpose);
            Box::pin(async move {
                let rows = sqlx::query(
                    "SELECT objid::bigint AS number FROM pg_locks WHERE locktype = 'advisory' \
                     AND granted AND objsubid = 2 AND classid = $1::bigint::oid \
                     AND database = (SELECT oid FROM pg_database WHERE datname = current_database()) \
                     ORDER BY 1",
                )
                .bind(i64::from(class))
                .fetch_all(&mut *connection)
                .await?;
                rows.iter()
                    .map(|row| {
                        row.try_get::<i64, _>("number")
                            .map(|number| i32::try_from(number).unwrap_or(i32::MAX))
                    })
                    .collect()
            })
        })
        .await
    }

    /// How many locks of a purpose are held, by any process of this namespace.
    pub async fn held(&self, purpose: LockPurpose) -> StoreResult<u64> {
        Ok(self.held_numbers(purpose).await?.len() as u64)
    }

    /// Checks that the connection — and so every lock it holds — is still alive.
    pub async fn check(&self) -> StoreResult<()> {
        self.with_connection(|connection, _| {
            Box::pin(async move {
                sqlx::query("SELECT 1")
                    .execute(&mut *connection)
                    .await
                    .map(|_| ())
            })
        })
        .await
    }

    /// Closes the connection, releasing every lock (graceful shutdown).
    pub async fn release_all(&self) {
        if let Some((connection, _)) = self.connection.lock().await.take() {
            let _ = connection.close().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_are_stable_and_non_negative() {
        assert_eq!(stable_hash32("palisade"), stable_hash32("palisade"));
        assert_ne!(stable_hash32("a"), stable_hash32("b"));
        for text in ["", "x", "palisade/test/t_1/partition", "é"] {
            assert!(stable_hash32(text) >= 0);
        }
    }
}
