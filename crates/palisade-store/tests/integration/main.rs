//! Store conformance: the same suite runs against SQLite and PostgreSQL.

mod collectors;
mod conformance;
mod decisions;
mod findings;
mod insights;
mod inventory;
mod locks;
mod scans;
mod sessions;

use std::sync::Arc;

use palisade_model::tenancy::Instance;
use palisade_store::Store;

/// Creates instances `a` and `b`: each case writes to one and checks the other never sees it.
pub async fn two_instances(store: &Arc<dyn Store>) {
    for id in ["a", "b"] {
        store
            .create_instance(&Instance {
                id: id.to_owned(),
                name: id.to_owned(),
                created_at: chrono::DateTime::UNIX_EPOCH,
            })
            .await
            .expect("instance");
    }
}
