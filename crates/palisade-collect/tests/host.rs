//! The host collector over a fixture tree (golden output) and over this machine (structure).

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use palisade_collect::host::{HostConfig, collect_host};
use serde_json::Value;

use crate::support::{check_golden, tests_dir, uncatalogued};

/// Copies `from` into `to` recursively.
fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for entry in std::fs::read_dir(from)
        .expect("read fixture dir")
        .filter_map(Result::ok)
    {
        let target = to.join(entry.file_name());
        if entry.file_type().expect("file type").is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).expect("copy");
        }
    }
}

/// The fixture tree, with the modes git cannot keep and the `/proc/<pid>/fd` socket links.
fn fixture_root(directory: &Path) -> std::path::PathBuf {
    let root = directory.join("root");
    copy_tree(&tests_dir().join("host/tree"), &root);
    for (path, mode) in [
        ("etc/shadow", 0o640),
        ("etc/gshadow", 0o640),
        ("etc/passwd", 0o644),
        ("etc/group", 0o644),
        ("etc/ssh/sshd_config", 0o644),
        ("etc/crontab", 0o644),
        ("etc/login.defs", 0o644),
    ] {
        std::fs::set_permissions(root.join(path), std::fs::Permissions::from_mode(mode))
            .expect("chmod");
    }
    for (pid, fd, inode) in [(4242, 3, 31337), (4242, 4, 31340), (777, 5, 31341)] {
        let fd_dir = root.join(format!("proc/{pid}/fd"));
        std::fs::create_dir_all(&fd_dir).expect("mkdir fd");
        std::os::unix::fs::symlink(format!("socket:[{inode}]"), fd_dir.join(fd.to_string()))
            .expect("symlink");
    }
    root
}

#[test]
fn fixture_host_matches_its_golden() {
    let directory = tempfile::tempdir().expect("tempdir");
    let root = fixture_root(directory.path());
    let config = HostConfig {
        root: root.clone(),
        run_commands: false,
        account_id: "dc1".into(),
    };
    let mut output = collect_host(&config, "2026-01-01T00:00:00Z".parse().expect("time"));
    // Owners are whoever runs the test; the mode check is what the fixture pins.
    if let Some(Value::Object(files)) = output.resources[0].config.get_mut("files") {
        for file in files.values_mut() {
            file["owner"] = Value::from("<owner>");
            file["group"] = Value::from("<group>");
        }
    }
    assert!(uncatalogued(&output).is_empty());
    check_golden(&tests_dir().join("host/tree"), &output).unwrap_or_else(|error| panic!("{error}"));
    let host = &output.resources[0].config;
    assert_eq!(
        host["sshd"]["permit_root_login"], "no",
        "the Include comes first"
    );
    assert_eq!(
        host["users"]["uid0_accounts"],
        serde_json::json!(["root", "toor"])
    );
    assert_eq!(host["listening"][0]["process"], "sshd");
}

/// The built-in Linux rules find the fixture host's weaknesses.
#[test]
fn builtin_rules_flag_the_fixture_host() {
    let directory = tempfile::tempdir().expect("tempdir");
    let root = fixture_root(directory.path());
    let config = HostConfig {
        root,
        run_commands: false,
        account_id: String::new(),
    };
    let now = "2026-01-01T00:00:00Z".parse().expect("time");
    let output = collect_host(&config, now);
    let failing = crate::aws_moto::failing_rules(&output.resources, now);
    for rule in [
        "linux-sshd-no-x11-forwarding",
        "linux-sshd-strong-ciphers",
        "linux-sshd-strong-macs",
        "linux-sysctl-no-ip-forward",
        "linux-sysctl-dmesg-restrict",
        "linux-password-max-days",
        "linux-default-umask",
        "linux-no-empty-passwords",
        "linux-only-root-uid0",
        "linux-no-telnet-server",
        "linux-tmp-mount-options",
    ] {
        assert!(
            failing.iter().any(|(id, _)| id == rule),
            "{rule} should fail; failing: {failing:?}"
        );
    }
    for rule in [
        "linux-sshd-no-root-login",
        "linux-sshd-max-auth-tries",
        "linux-auditd-active",
    ] {
        assert!(
            !failing.iter().any(|(id, _)| id == rule),
            "{rule} should pass; failing: {failing:?}"
        );
    }
}

/// On the real machine: one host resource with the expected sections, whatever their values.
#[test]
fn this_machine_has_a_sane_structure() {
    let output = collect_host(&HostConfig::default(), chrono::Utc::now());
    assert_eq!(output.resources.len(), 1);
    let host = &output.resources[0];
    assert_eq!(
        (host.service_name.as_str(), host.resource_kind.as_str()),
        ("linux", "host")
    );
    assert!(!host.id.is_empty());
    for section in [
        "os",
        "kernel",
        "sysctl",
        "users",
        "files",
        "listening",
        "services",
        "time_sync",
    ] {
        assert!(
            host.config.get(section).is_some(),
            "missing {section}: {}",
            host.config
        );
    }
    assert!(
        host.config["kernel"]["release"].is_string(),
        "/proc/sys/kernel/osrelease"
    );
    assert!(host.config["sysctl"]["kernel"]["randomize_va_space"].is_number());
    let uid0 = host.config["users"]["uid0_accounts"]
        .as_array()
        .expect("list");
    assert!(uid0.iter().any(|name| name == "root"), "{uid0:?}");
    assert!(host.config["listening"].is_array());
    eprintln!("errors on this machine: {:?}", output.errors);
}
