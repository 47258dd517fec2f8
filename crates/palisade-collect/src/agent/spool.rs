//! The spool: batches written to disk before they are pushed, deleted only once the server
//! acknowledged them.
//!
//! One file per batch, `<state dir>/spool/<batch id>.json`, written to a temporary name, synced
//! and renamed, so a crash leaves either the whole batch or nothing (a leftover temporary file
//! is removed at the next start). Batch ids sort in creation order, so the oldest batch is
//! pushed first. A batch the server refuses for good (a 4xx other than 408/429) is moved to
//! `spool/rejected/` for a human to look at, instead of blocking those behind it.

use std::fs::{self, File, OpenOptions};
use std::io::Write as _;
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use palisade_model::resource::Resource;
use serde::{Deserialize, Serialize};

/// One spooled batch.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SpooledBatch {
    pub batch_id: String,
    /// The target whose job produced it.
    pub target_id: String,
    pub resources: Vec<Resource>,
}

/// The spool directory.
#[derive(Debug, Clone)]
pub struct Spool {
    directory: PathBuf,
}

/// Makes batch ids unique within a process even when two are made in the same millisecond.
static SEQUENCE: AtomicU64 = AtomicU64::new(0);

impl Spool {
    /// Opens (creating) the spool under `state_dir`, removing half-written files.
    pub fn open(state_dir: &Path) -> std::io::Result<Self> {
        let directory = state_dir.join("spool");
        fs::create_dir_all(directory.join("rejected"))?;
        for entry in fs::read_dir(&directory)? {
            let path = entry?.path();
            if path.extension().is_some_and(|extension| extension == "tmp") {
                fs::remove_file(&path)?;
            }
        }
        Ok(Self { directory })
    }

    /// A new batch id: the collector, the time in milliseconds and a sequence number, so ids
    /// are unique in the instance and sort in creation order.
    pub fn new_batch_id(collector_id: &str) -> String {
        let millis = chrono::Utc::now().timestamp_millis().max(0);
        let sequence = SEQUENCE.fetch_add(1, Ordering::Relaxed) % 1_000_000;
        format!("{collector_id}.{millis:013}.{sequence:06}")
    }

    /// Writes a batch durably.
    pub fn write(&self, batch: &SpooledBatch) -> std::io::Result<()> {
        let final_path = self.path_of(&batch.batch_id);
        let temporary = self.directory.join(format!("{}.tmp", batch.batch_id));
        {
            let mut file = OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .mode(0o600)
                .open(&temporary)?;
            serde_json::to_writer(&mut file, batch)?;
            file.flush()?;
            file.sync_all()?;
        }
        fs::rename(&temporary, &final_path)?;
        File::open(&self.directory)?.sync_all()
    }

    /// The ids of spooled batches, oldest first.
    pub fn pending(&self) -> std::io::Result<Vec<String>> {
        let mut ids: Vec<String> = fs::read_dir(&self.directory)?
            .filter_map(Result::ok)
            .map(|entry| entry.path())
            .filter(|path| {
                path.extension()
                    .is_some_and(|extension| extension == "json")
            })
            .filter_map(|path| path.file_stem()?.to_str().map(str::to_owned))
            .collect();
        ids.sort();
        Ok(ids)
    }

    /// Reads a spooled batch.
    pub fn read(&self, batch_id: &str) -> std::io::Result<SpooledBatch> {
        let text = fs::read(self.path_of(batch_id))?;
        serde_json::from_slice(&text).map_err(std::io::Error::other)
    }

    /// Forgets an acknowledged batch.
    pub fn remove(&self, batch_id: &str) -> std::io::Result<()> {
        fs::remove_file(self.path_of(batch_id))
    }

    /// Moves a batch the server refused for good out of the queue.
    pub fn reject(&self, batch_id: &str) -> std::io::Result<PathBuf> {
        let target = self
            .directory
            .join("rejected")
            .join(format!("{batch_id}.json"));
        fs::rename(self.path_of(batch_id), &target)?;
        Ok(target)
    }

    fn path_of(&self, batch_id: &str) -> PathBuf {
        self.directory.join(format!("{batch_id}.json"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_survive_reopening_in_creation_order_until_removed() {
        let directory = tempfile::tempdir().expect("tempdir");
        let spool = Spool::open(directory.path()).expect("open");
        let first = Spool::new_batch_id("c");
        let second = Spool::new_batch_id("c");
        assert!(first < second, "{first} sorts before {second}");
        for id in [&second, &first] {
            spool
                .write(&SpooledBatch {
                    batch_id: id.clone(),
                    target_id: "t".into(),
                    resources: Vec::new(),
                })
                .expect("write");
        }
        std::fs::write(directory.path().join("spool/half.tmp"), b"{").expect("tmp");
        let reopened = Spool::open(directory.path()).expect("reopen");
        assert!(!directory.path().join("spool/half.tmp").exists());
        assert_eq!(
            reopened.pending().expect("pending"),
            [first.clone(), second.clone()]
        );
        assert_eq!(reopened.read(&first).expect("read").target_id, "t");
        reopened.remove(&first).expect("remove");
        reopened.reject(&second).expect("reject");
        assert!(reopened.pending().expect("pending").is_empty());
        assert!(
            directory
                .path()
                .join(format!("spool/rejected/{second}.json"))
                .exists()
        );
    }
}
