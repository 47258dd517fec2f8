//! Work shared between server processes (scaled mode): who reads which ingest partition, who
//! runs the scheduler, who scans an attachment.
//!
//! Every claim is a PostgreSQL session advisory lock on the process's dedicated connection
//! (`palisade_store::locks`): PostgreSQL drops them when the process dies, so work moves to
//! the survivors without timeouts of our own.
//!
//! - **Members.** Each process holds one member slot; the number of held slots is the number of
//!   live processes.
//! - **Partitions.** Ingest batches are spread over the bus's partitions by entity key (the
//!   instance: its detector state is per instance). Each process aims at its fair share — an
//!   equal part, the remainder going to the lowest member slots ([`fair_share`]) — taking free
//!   partitions up to it and releasing any above it (after the batch in hand), so a newcomer gets work and a dead process's partitions are taken
//!   over at the next [`REBALANCE`] tick. A partition's worker reads the partition's consumer and
//!   acknowledges each batch after its results committed; the state a batch needs is read from
//!   the store (activity correlations) or rebuilt (network windows, which live in memory and are
//!   dropped when the partition is released, so a later owner never works from stale ones).
//! - **Scheduler.** The process holding the scheduler lock runs scheduled scans; another takes
//!   it at its next tick when the holder dies.
//! - **Scans.** A scan holds its attachment's lock, so the same attachment is never scanned by
//!   two processes at once; its shards are evaluated by any process, each under its own lock
//!   (`service::scans`). A coordinator that dies frees the attachment's lock at once, and
//!   another process adopts the scan and finishes it.
//!
//! Embedded mode (SQLite, journal bus) has no locks: the one process holds everything.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use palisade_bus::IngestBus;
use palisade_store::locks::{ClusterLocks, LockKey, LockPurpose, stable_hash32};
use tokio::sync::{Mutex, watch};

use crate::error::{ApiError, ApiResult};
use crate::state::AppState;

/// How often a process re-checks its share of partitions and its locks.
pub const REBALANCE: Duration = Duration::from_secs(1);
/// Member slots: the most processes that can share work.
const MEMBER_SLOTS: i32 = 1024;

/// A partition this process reads.
struct Owned {
    stop: watch::Sender<bool>,
    worker: tokio::task::JoinHandle<()>,
}

/// This process's place among the processes sharing the store.
#[derive(Default)]
pub struct Cluster {
    /// `None` in embedded mode (one process holds everything).
    locks: Option<Arc<ClusterLocks>>,
    /// Batches travel on a shared bus read by partition owners (not the embedded journal).
    scaled: bool,
    member_slot: Mutex<Option<i32>>,
    owned: Mutex<BTreeMap<u32, Owned>>,
    /// The lock connection's generation the member slot and partitions were taken under.
    owned_generation: AtomicU64,
    scheduler_leader: AtomicBool,
    /// The generation the scheduler lock was taken under.
    scheduler_generation: AtomicU64,
}

impl std::fmt::Debug for Cluster {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("Cluster")
            .field("locks", &self.locks.is_some())
            .finish_non_exhaustive()
    }
}

impl Cluster {
    /// A cluster over the store's locks (`None`: embedded, single process); `scaled` when
    /// ingest goes through a shared bus whose partitions the processes divide among them.
    pub fn new(locks: Option<ClusterLocks>, scaled: bool) -> Self {
        Self {
            locks: locks.map(Arc::new),
            scaled,
            ..Self::default()
        }
    }

    /// Whether other processes may share the store (locks are real).
    pub fn shared(&self) -> bool {
        self.locks.is_some()
    }

    /// Whether ingest goes through a shared bus (`serve --bus`).
    pub fn scaled(&self) -> bool {
        self.scaled
    }

    /// Whether this process may run the scheduler now: always in embedded mode; with a shared
    /// store only while it holds the scheduler lock (taken when free).
    pub async fn scheduler_turn(&self) -> bool {
        let Some(locks) = &self.locks else {
            return true;
        };
        let key = LockKey::new(LockPurpose::Scheduler, 0);
        // Still ours only if the connection that took it is alive.
        let held = self.scheduler_leader.load(Ordering::SeqCst)
            && locks.check().await.is_ok()
            && locks.generation() == self.scheduler_generation.load(Ordering::SeqCst);
        let leader = held
            || match locks.try_lock(key).await {
                Ok(true) => {
                    self.scheduler_generation
                        .store(locks.generation(), Ordering::SeqCst);
                    true
                }
                _ => false,
            };
        if leader != self.scheduler_leader.swap(leader, Ordering::SeqCst) {
            tracing::info!(leader, "scheduler leadership changed");
        }
        metrics::gauge!("palisade_scheduler_leader").set(if leader { 1.0 } else { 0.0 });
        leader
    }

    /// Claims an attachment's scan across processes; the claim ends when the guard drops.
    /// `Conflict` when another process is scanning it.
    pub async fn lock_scan(&self, instance_id: &str, attachment_id: &str) -> ApiResult<Claim> {
        self.claim(LockPurpose::Scan, &format!("{instance_id}/{attachment_id}"))
            .await?
            .ok_or_else(|| {
                ApiError::new(
                    palisade_model::error::ErrorCode::Conflict,
                    format!("attachment `{attachment_id}` is being scanned already"),
                )
            })
    }

    /// Claims work named `name` across processes (always granted in embedded mode); `None`
    /// when another process holds it. The claim ends when the guard drops.
    pub async fn claim(&self, purpose: LockPurpose, name: &str) -> ApiResult<Option<Claim>> {
        let Some(locks) = &self.locks else {
            return Ok(Some(Claim { held: None }));
        };
        let key = LockKey::new(purpose, stable_hash32(name));
        Ok(locks.try_lock(key).await?.then(|| Claim {
            held: Some((locks.clone(), key)),
        }))
    }

    /// Partitions this process reads now.
    pub async fn owned_partitions(&self) -> Vec<u32> {
        self.owned.lock().await.keys().copied().collect()
    }
}

/// A claim on shared work (see [`Cluster::claim`]): released when dropped.
pub struct Claim {
    held: Option<(Arc<ClusterLocks>, LockKey)>,
}

impl Drop for Claim {
    fn drop(&mut self) {
        if let Some((locks, key)) = self.held.take()
            && let Ok(runtime) = tokio::runtime::Handle::try_current()
        {
            runtime.spawn(async move {
                if let Err(error) = locks.unlock(key).await {
                    // The connection is gone, and the lock with it.
                    tracing::warn!(error = %error, "claim release failed");
                }
            });
        }
    }
}

/// Runs the partition owner loop until `shutdown`: keeps this process's fair share of the bus's
/// partitions, each read by a worker task. Returns once every worker stopped and the locks are
/// released.
pub async fn run_partitions(state: AppState, mut shutdown: watch::Receiver<bool>) {
    let cluster = state.cluster.clone();
    let bus = state.bus.clone();
    loop {
        if *shutdown.borrow() {
            break;
        }
        if let Err(error) = rebalance(&state, &cluster, bus.as_ref()).await {
            tracing::warn!(error = %error, "partition ownership lost; stopping this process's partition workers");
            release_everything(&state, &cluster, false).await;
        }
        crate::service::insights::network::close_idle_windows(&state, chrono::Utc::now()).await;
        tokio::select! {
            changed = shutdown.changed() => {
                if changed.is_err() {
                    break;
                }
            }
            () = tokio::time::sleep(REBALANCE) => {}
        }
    }
    release_everything(&state, &cluster, true).await;
}

async fn rebalance(
    state: &AppState,
    cluster: &Cluster,
    bus: &dyn IngestBus,
) -> Result<(), palisade_store::StoreError> {
    let partitions = bus.partitions();
    let Some(locks) = &cluster.locks else {
        // One process: it reads every partition.
        let mut owned = cluster.owned.lock().await;
        for partition in 0..partitions {
            if let std::collections::btree_map::Entry::Vacant(entry) = owned.entry(partition) {
                entry.insert(start_worker(state, partition));
            }
        }
        return Ok(());
    };
    locks.check().await?;
    if locks.generation() != cluster.owned_generation.load(Ordering::SeqCst) {
        // A new connection: whatever was held on the old one is gone.
        if !cluster.owned.lock().await.is_empty() || cluster.member_slot.lock().await.is_some() {
            return Err(sqlx_lost());
        }
        cluster
            .owned_generation
            .store(locks.generation(), Ordering::SeqCst);
    }
    {
        let mut slot = cluster.member_slot.lock().await;
        if slot.is_none() {
            for candidate in 0..MEMBER_SLOTS {
                if locks
                    .try_lock(LockKey::new(LockPurpose::Member, candidate))
                    .await?
                {
                    tracing::info!(slot = candidate, "joined the cluster");
                    *slot = Some(candidate);
                    break;
                }
            }
        }
    }
    let slots = locks.held_numbers(LockPurpose::Member).await?;
    let own_slot = *cluster.member_slot.lock().await;
    let members = slots.len().max(1);
    let share = fair_share(partitions as usize, &slots, own_slot);
    let mut owned = cluster.owned.lock().await;
    // Above the fair share (a process joined): give the highest partitions back.
    while owned.len() > share {
        let Some((&partition, _)) = owned.iter().next_back() else {
            break;
        };
        if let Some(entry) = owned.remove(&partition) {
            stop_worker(state, partition, entry).await;
            locks
                .unlock(LockKey::new(
                    LockPurpose::Partition,
                    partition_number(partition),
                ))
                .await?;
            tracing::info!(partition, members, "partition released to rebalance");
        }
    }
    // Below it (a process died or left): take free partitions.
    for partition in 0..partitions {
        if owned.len() >= share {
            break;
        }
        if owned.contains_key(&partition) {
            continue;
        }
        if locks
            .try_lock(LockKey::new(
                LockPurpose::Partition,
                partition_number(partition),
            ))
            .await?
        {
            tracing::info!(partition, members, "partition taken");
            owned.insert(partition, start_worker(state, partition));
        }
    }
    for partition in 0..partitions {
        metrics::gauge!("palisade_bus_partition_owned", "partition" => partition.to_string()).set(
            if owned.contains_key(&partition) {
                1.0
            } else {
                0.0
            },
        );
    }
    metrics::gauge!("palisade_cluster_members").set(members as f64);
    Ok(())
}

/// This process's number of partitions: an equal share each, the remainder going one each to
/// the members with the lowest slots — so the shares add up to the partitions exactly and every
/// process computes the same split from the same member list.
fn fair_share(partitions: usize, slots: &[i32], own_slot: Option<i32>) -> usize {
    let Some(own_slot) = own_slot else {
        return 0;
    };
    let members = slots.len().max(1);
    let rank = slots
        .iter()
        .position(|slot| *slot == own_slot)
        .unwrap_or(members);
    partitions / members + usize::from(rank < partitions % members)
}

fn sqlx_lost() -> palisade_store::StoreError {
    palisade_store::StoreError::Corrupt(
        "the lock connection was replaced; its locks are gone".into(),
    )
}

fn partition_number(partition: u32) -> i32 {
    i32::try_from(partition).unwrap_or(i32::MAX)
}

fn start_worker(state: &AppState, partition: u32) -> Owned {
    let (stop, stopped) = watch::channel(false);
    let worker = tokio::spawn(crate::service::insights::partition_worker(
        state.clone(),
        partition,
        stopped,
    ));
    Owned { stop, worker }
}

/// Stops a partition's worker after the batch in hand and forgets the partition's in-memory
/// detector state (a later owner may have moved it on).
async fn stop_worker(state: &AppState, partition: u32, owned: Owned) {
    let _ = owned.stop.send(true);
    let abort = owned.worker.abort_handle();
    if tokio::time::timeout(Duration::from_secs(30), owned.worker)
        .await
        .is_err()
    {
        // Its batch is not acknowledged: the bus delivers it again to the next owner.
        abort.abort();
    }
    let partitions = state.bus.partitions();
    crate::service::insights::network::forget(state, |instance_id| {
        palisade_bus::partition_of(instance_id, partitions) == partition
    })
    .await;
}

/// Stops every worker; on shutdown also releases the locks (a lost connection released them).
async fn release_everything(state: &AppState, cluster: &Cluster, shutting_down: bool) {
    let owned = std::mem::take(&mut *cluster.owned.lock().await);
    for (partition, entry) in owned {
        stop_worker(state, partition, entry).await;
    }
    *cluster.member_slot.lock().await = None;
    cluster.scheduler_leader.store(false, Ordering::SeqCst);
    if shutting_down && let Some(locks) = &cluster.locks {
        locks.release_all().await;
    }
}

#[cfg(test)]
mod tests {
    use super::fair_share;

    #[test]
    fn shares_add_up_to_the_partitions() {
        for members in 1..=9_i32 {
            let slots: Vec<i32> = (0..members).map(|slot| slot * 3).collect();
            for partitions in [1, 4, 8, 16] {
                let total: usize = slots
                    .iter()
                    .map(|slot| fair_share(partitions, &slots, Some(*slot)))
                    .sum();
                assert_eq!(
                    total, partitions,
                    "{members} members, {partitions} partitions"
                );
                for slot in &slots {
                    let share = fair_share(partitions, &slots, Some(*slot));
                    assert!(
                        share == partitions / slots.len() || share == partitions / slots.len() + 1
                    );
                }
            }
        }
        // Three processes, four partitions: 2, 1, 1 — every process gets work.
        let slots = [0, 1, 2];
        assert_eq!(fair_share(4, &slots, Some(0)), 2);
        assert_eq!(fair_share(4, &slots, Some(1)), 1);
        assert_eq!(fair_share(4, &slots, Some(2)), 1);
        // Without a member slot (not joined yet) a process takes nothing.
        assert_eq!(fair_share(4, &slots, None), 0);
    }
}
