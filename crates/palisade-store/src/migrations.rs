//! Versioned schema migrations, one SQL file per backend and version under `migrations/`.
//!
//! A migration is applied once, in a transaction, and recorded in `schema_migrations` with a
//! checksum: a migration file edited after it was applied is refused loudly instead of leaving
//! two databases with different schemas under the same version. On PostgreSQL an advisory lock
//! serialises processes that start at the same time.

/// One schema version.
#[derive(Debug, Clone, Copy)]
pub struct Migration {
    pub version: i64,
    pub name: &'static str,
    pub sqlite: &'static str,
    pub postgres: &'static str,
}

/// Every migration, in ascending version order. Append only; never edit an applied one.
///
/// Reserved numbers: 2 findings and notifications, 3 posture (inventory, scans, reports),
/// 5 insights ingest, 6 configuration governance (the admission decision log), 7 collector
/// agents and idempotent inventory batches, 8 the dashboard (sessions, report summary columns).
pub const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "foundation",
        sqlite: include_str!("../migrations/sqlite/0001_foundation.sql"),
        postgres: include_str!("../migrations/postgres/0001_foundation.sql"),
    },
    Migration {
        version: 2,
        name: "findings",
        sqlite: include_str!("../migrations/sqlite/0002_findings.sql"),
        postgres: include_str!("../migrations/postgres/0002_findings.sql"),
    },
    Migration {
        version: 3,
        name: "inventory",
        sqlite: include_str!("../migrations/sqlite/0003_inventory.sql"),
        postgres: include_str!("../migrations/postgres/0003_inventory.sql"),
    },
    Migration {
        version: 4,
        name: "reports",
        sqlite: include_str!("../migrations/sqlite/0004_reports.sql"),
        postgres: include_str!("../migrations/postgres/0004_reports.sql"),
    },
    Migration {
        version: 5,
        name: "insights",
        sqlite: include_str!("../migrations/sqlite/0005_insights.sql"),
        postgres: include_str!("../migrations/postgres/0005_insights.sql"),
    },
    Migration {
        version: 6,
        name: "config_governance",
        sqlite: include_str!("../migrations/sqlite/0006_config_governance.sql"),
        postgres: include_str!("../migrations/postgres/0006_config_governance.sql"),
    },
    Migration {
        version: 7,
        name: "collectors",
        sqlite: include_str!("../migrations/sqlite/0007_collectors.sql"),
        postgres: include_str!("../migrations/postgres/0007_collectors.sql"),
    },
    Migration {
        version: 8,
        name: "dashboard",
        sqlite: include_str!("../migrations/sqlite/0008_dashboard.sql"),
        postgres: include_str!("../migrations/postgres/0008_dashboard.sql"),
    },
    Migration {
        version: 9,
        name: "scan_shards",
        sqlite: include_str!("../migrations/sqlite/0009_scan_shards.sql"),
        postgres: include_str!("../migrations/postgres/0009_scan_shards.sql"),
    },
];

/// A stable checksum of a migration's text (FNV-1a, 64 bits): it only has to notice edits, not
/// resist attackers, and must not change between Rust versions as `DefaultHasher` may.
pub fn checksum(sql: &str) -> String {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in sql.bytes() {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{hash:016x}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_strictly_ascend() {
        // Not necessarily consecutive: features developed in parallel reserve their numbers,
        // and each pending migration is applied whatever lower versions exist.
        for pair in MIGRATIONS.windows(2) {
            assert!(
                pair[0].version < pair[1].version,
                "{} must come before {}",
                pair[0].name,
                pair[1].name
            );
        }
    }

    #[test]
    fn checksum_notices_an_edit() {
        assert_ne!(
            checksum("CREATE TABLE a (x TEXT);"),
            checksum("CREATE TABLE a (x TEXT );")
        );
        assert_eq!(checksum("same"), checksum("same"));
    }
}
