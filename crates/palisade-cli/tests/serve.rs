//! `palisade serve` and `palisade keys`, end to end through the real binary and a real socket.

use std::process::{Command, Output};

use crate::support::ServerProcess;

fn palisade(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_palisade"))
        .args(args)
        .output()
        .expect("run palisade")
}

fn field<'a>(stdout: &'a str, name: &str) -> &'a str {
    stdout
        .lines()
        .find_map(|line| line.strip_prefix(&format!("{name}: ")))
        .unwrap_or_else(|| panic!("no `{name}:` line in {stdout}"))
}

#[test]
fn serve_bootstraps_once_manages_keys_and_keeps_them_across_restarts() {
    let data_dir = tempfile::tempdir().expect("tempdir");
    let server = ServerProcess::start(data_dir.path());

    // First start: exactly two lines on stdout, the same two in bootstrap.txt, mode 0600.
    assert_eq!(server.stdout_lines.len(), 2, "{:?}", server.stdout_lines);
    let printed = format!("{}\n", server.stdout_lines.join("\n"));
    let instance_id = field(&printed, "instance_id").to_owned();
    let admin_key = field(&printed, "admin_key").to_owned();
    let bootstrap_path = data_dir.path().join("bootstrap.txt");
    assert_eq!(
        std::fs::read_to_string(&bootstrap_path).expect("bootstrap.txt"),
        printed
    );
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&bootstrap_path)
            .expect("metadata")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    assert!(!instance_id.is_empty() && admin_key.starts_with("pal_"));

    // keys create / list through the CLI.
    let created = palisade(&[
        "keys",
        "create",
        "--server",
        &server.url,
        "--key",
        &admin_key,
        "--name",
        "ci",
        "--role",
        "viewer",
    ]);
    assert!(
        created.status.success(),
        "{}",
        String::from_utf8_lossy(&created.stderr)
    );
    let created_stdout = String::from_utf8_lossy(&created.stdout).into_owned();
    let viewer_id = field(&created_stdout, "key_id").to_owned();
    let viewer_key = field(&created_stdout, "key").to_owned();
    let listed = palisade(&[
        "keys",
        "list",
        "--server",
        &server.url,
        "--key",
        &admin_key,
        "--json",
    ]);
    assert!(listed.status.success());
    let keys: serde_json::Value = serde_json::from_slice(&listed.stdout).expect("json list");
    assert_eq!(keys.as_array().map(Vec::len), Some(2));
    assert!(
        !String::from_utf8_lossy(&listed.stdout).contains(&viewer_key),
        "secrets are never listed"
    );

    // A viewer may not manage keys: a clear error and a non-zero exit.
    let denied = palisade(&[
        "keys",
        "list",
        "--server",
        &server.url,
        "--key",
        &viewer_key,
    ]);
    assert!(!denied.status.success());
    assert!(
        String::from_utf8_lossy(&denied.stderr).contains("forbidden"),
        "{}",
        String::from_utf8_lossy(&denied.stderr)
    );

    assert!(
        server.terminate(),
        "SIGTERM shuts down gracefully with exit code 0"
    );

    // Restart on the same data directory: no second bootstrap, every key still there.
    let restarted = ServerProcess::start(data_dir.path());
    assert!(
        restarted.stdout_lines.is_empty(),
        "bootstrap printed twice: {:?}",
        restarted.stdout_lines
    );
    let listed = palisade(&[
        "keys",
        "list",
        "--server",
        &restarted.url,
        "--key",
        &admin_key,
        "--json",
    ]);
    assert!(
        listed.status.success(),
        "{}",
        String::from_utf8_lossy(&listed.stderr)
    );
    let keys: serde_json::Value = serde_json::from_slice(&listed.stdout).expect("json list");
    assert_eq!(keys.as_array().map(Vec::len), Some(2));
    let whoami = palisade(&[
        "keys",
        "list",
        "--server",
        &restarted.url,
        "--key",
        &viewer_key,
    ]);
    assert!(
        String::from_utf8_lossy(&whoami.stderr).contains("forbidden"),
        "the viewer key survived the restart"
    );

    // Revocation through the CLI takes effect at once.
    let revoked = palisade(&[
        "keys",
        "revoke",
        "--server",
        &restarted.url,
        "--key",
        &admin_key,
        &viewer_id,
    ]);
    assert!(
        revoked.status.success(),
        "{}",
        String::from_utf8_lossy(&revoked.stderr)
    );
    let after = palisade(&[
        "keys",
        "list",
        "--server",
        &restarted.url,
        "--key",
        &viewer_key,
    ]);
    assert!(
        String::from_utf8_lossy(&after.stderr).contains("unauthorized"),
        "{}",
        String::from_utf8_lossy(&after.stderr)
    );
    assert!(restarted.terminate());
    let _ = instance_id;
}
