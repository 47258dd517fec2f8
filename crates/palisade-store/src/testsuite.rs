//! Test support for crates whose tests need a real store (feature `testsuite`).
//!
//! PostgreSQL tests read the server's URL from `PALISADE_TEST_POSTGRES_URL` and each get a fresh
//! schema, so test binaries can share one database and run in parallel. When the variable is
//! unset they skip — loudly — unless `PALISADE_REQUIRE_POSTGRES=1`, which CI sets so that a
//! missing database fails the run instead of passing silently.

use std::str::FromStr;

use sqlx::Connection;
use sqlx::any::AnyConnectOptions;

/// Returns the URL of a fresh, empty PostgreSQL schema, or `None` (after saying so on stderr)
/// when no test database is configured.
///
/// # Panics
/// When `PALISADE_REQUIRE_POSTGRES=1` and no database is configured or reachable: in CI a
/// skipped PostgreSQL test is a failed one.
pub async fn fresh_postgres_url(test_name: &str) -> Option<String> {
    let required = std::env::var("PALISADE_REQUIRE_POSTGRES").is_ok_and(|value| value == "1");
    let Ok(base_url) = std::env::var("PALISADE_TEST_POSTGRES_URL") else {
        assert!(
            !required,
            "PALISADE_REQUIRE_POSTGRES=1 but PALISADE_TEST_POSTGRES_URL is unset"
        );
        eprintln!(
            "SKIPPED {test_name}: set PALISADE_TEST_POSTGRES_URL to run it against PostgreSQL"
        );
        return None;
    };
    sqlx::any::install_default_drivers();
    let schema = format!("t_{}", uuid::Uuid::new_v4().simple());
    let options =
        AnyConnectOptions::from_str(&base_url).expect("PALISADE_TEST_POSTGRES_URL is a valid URL");
    let mut connection = match sqlx::AnyConnection::connect_with(&options).await {
        Ok(connection) => connection,
        Err(error) => {
            assert!(!required, "cannot reach PostgreSQL at {base_url}: {error}");
            eprintln!("SKIPPED {test_name}: cannot reach PostgreSQL at {base_url}: {error}");
            return None;
        }
    };
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE SCHEMA {schema}")))
        .execute(&mut connection)
        .await
        .expect("create test schema");
    let separator = if base_url.contains('?') { '&' } else { '?' };
    Some(format!(
        "{base_url}{separator}options=-c%20search_path%3D{schema}"
    ))
}

/// Returns a `sqlite://` URL of a new database file in `directory`.
pub fn fresh_sqlite_url(directory: &std::path::Path) -> String {
    format!(
        "sqlite://{}",
        directory
            .join(format!("{}.db", uuid::Uuid::new_v4().simple()))
            .display()
    )
}
