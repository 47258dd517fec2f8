//! Issue 11: the advisory locks processes share through PostgreSQL. A lock is held by one
//! connection at a time, counted across processes, released when its holder's connection ends
//! (a dead process), and never contended across schemas (test runs, deployments).

use palisade_store::locks::{ClusterLocks, LockKey, LockPurpose};
use palisade_store::testsuite::fresh_postgres_url;

#[tokio::test]
async fn advisory_locks_move_when_their_holder_goes_issue_11() {
    let Some(url) = fresh_postgres_url("advisory_locks_move_when_their_holder_goes_issue_11").await
    else {
        return;
    };
    let first = ClusterLocks::connect(&url)
        .await
        .expect("connect")
        .expect("postgres has locks");
    let second = ClusterLocks::connect(&url)
        .await
        .expect("connect")
        .expect("postgres has locks");
    let partition = LockKey::new(LockPurpose::Partition, 3);
    assert!(first.try_lock(partition).await.expect("lock"));
    assert!(!second.try_lock(partition).await.expect("lock"));
    // Other numbers and purposes are separate locks.
    assert!(
        second
            .try_lock(LockKey::new(LockPurpose::Partition, 4))
            .await
            .expect("lock")
    );
    assert!(
        second
            .try_lock(LockKey::new(LockPurpose::Scheduler, 3))
            .await
            .expect("lock")
    );
    assert_eq!(first.held(LockPurpose::Partition).await.expect("held"), 2);
    assert_eq!(first.held(LockPurpose::Member).await.expect("held"), 0);

    // Released explicitly…
    first.unlock(partition).await.expect("unlock");
    assert!(second.try_lock(partition).await.expect("lock"));
    second.unlock(partition).await.expect("unlock");
    // …or by the end of the holder's connection, as when its process dies.
    assert!(first.try_lock(partition).await.expect("lock"));
    let generation = first.generation();
    first.release_all().await;
    // The server ends the closed session's backend (and frees its locks) asynchronously, a
    // moment after the socket closes: poll, as the partition owners do every second.
    let mut taken_over = false;
    for _ in 0..50 {
        if second.try_lock(partition).await.expect("lock") {
            taken_over = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(
        taken_over,
        "the lock passes to another connection once its holder's is gone"
    );
    // The first process reconnects on its next call, holding nothing from before.
    assert!(!first.try_lock(partition).await.expect("lock"));
    assert!(first.generation() > generation);

    // Another schema of the same database is another namespace: no contention.
    let Some(other_url) =
        fresh_postgres_url("advisory_locks_move_when_their_holder_goes_issue_11").await
    else {
        return;
    };
    let other = ClusterLocks::connect(&other_url)
        .await
        .expect("connect")
        .expect("postgres has locks");
    assert!(other.try_lock(partition).await.expect("lock"));
    assert_eq!(other.held(LockPurpose::Partition).await.expect("held"), 1);

    // SQLite has no other processes: no lock connection at all.
    assert!(
        ClusterLocks::connect("sqlite://unused.db")
            .await
            .expect("sqlite")
            .is_none()
    );
}
