//! The host collector over SSH against a real `sshd` started on a free port with its own host
//! key and an authorized key made for the test (issue 5). What it collects must describe this
//! same machine exactly as the local collector does.
//!
//! Needs OpenSSH's server (`/usr/sbin/sshd`, installed by `scripts/test`) and root (sshd's
//! privilege separation). Without them the test skips, saying so, unless
//! `PALISADE_REQUIRE_SDK=1`, which makes the skip a failure.

use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use palisade_collect::host::ssh::{SshTarget, collect_host_over_ssh};
use palisade_collect::host::{HostConfig, collect_host};

const SSHD: &str = "/usr/sbin/sshd";

struct Sshd(Child);

impl Drop for Sshd {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn skip(reason: &str) -> bool {
    let required = std::env::var("PALISADE_REQUIRE_SDK").is_ok_and(|value| value == "1");
    assert!(
        !required,
        "PALISADE_REQUIRE_SDK=1 but {reason}: run the tests through scripts/test"
    );
    eprintln!("SKIPPED ssh_host_collection_matches_the_local_one_issue_5: {reason}");
    true
}

fn keygen(path: &Path) {
    let status = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(path)
        .status()
        .expect("ssh-keygen");
    assert!(status.success());
}

fn command_output(program: &str, arguments: &[&str]) -> String {
    let output = Command::new(program)
        .args(arguments)
        .output()
        .expect(program);
    String::from_utf8_lossy(&output.stdout).trim().to_owned()
}

#[test]
fn ssh_host_collection_matches_the_local_one_issue_5() {
    if !Path::new(SSHD).exists() && skip("OpenSSH's server is not installed") {
        return;
    }
    if command_output("id", &["-u"]) != "0" && skip("sshd needs root here") {
        return;
    }
    let directory = tempfile::tempdir().expect("tempdir");
    let dir = directory.path();
    keygen(&dir.join("host_key"));
    keygen(&dir.join("client_key"));
    std::fs::copy(dir.join("client_key.pub"), dir.join("authorized_keys")).expect("authorize");
    let port = TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("free port")
        .port();
    let config = format!(
        "Port {port}\nListenAddress 127.0.0.1\nHostKey {dir}/host_key\nPidFile {dir}/sshd.pid\n\
         AuthorizedKeysFile {dir}/authorized_keys\nStrictModes no\nPasswordAuthentication no\n\
         KbdInteractiveAuthentication no\nUsePAM no\nPermitRootLogin prohibit-password\n",
        dir = dir.display()
    );
    std::fs::write(dir.join("sshd_config"), config).expect("config");
    // Privilege separation needs this directory (systemd makes it on a booted system).
    std::fs::create_dir_all("/run/sshd").expect("/run/sshd");
    let sshd = Sshd(
        Command::new(SSHD)
            .args(["-D", "-e", "-f"])
            .arg(dir.join("sshd_config"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start sshd"),
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "sshd did not listen within 30 s");
        std::thread::sleep(Duration::from_millis(100));
    }

    let target = SshTarget {
        host: "127.0.0.1".into(),
        port,
        user: command_output("id", &["-un"]),
        private_key: std::fs::read_to_string(dir.join("client_key")).expect("key"),
        known_hosts: dir.join("known_hosts"),
    };
    let now = chrono::Utc::now();
    let remote = collect_host_over_ssh(&target, "dc-1", now);
    assert!(
        !remote.errors.iter().any(|error| error.location.is_none()
            && error.source.starts_with("ssh ")
            && error.message.contains("ssh")),
        "{:#?}",
        remote.errors
    );
    assert_eq!(remote.resources.len(), 1, "{:#?}", remote.errors);
    let local = collect_host(&HostConfig::default(), now);
    let (remote_host, local_host) = (&remote.resources[0], &local.resources[0]);
    assert_eq!(remote_host.id, local_host.id);
    assert_eq!(remote_host.account_id, "dc-1");
    for property in [
        "hostname",
        "kernel",
        "os",
        "users",
        "files",
        "sysctl",
        "login_defs",
        "packages",
        "mounts",
    ] {
        assert_eq!(
            remote_host.config.get(property),
            local_host.config.get(property),
            "{property} differs between SSH and local collection"
        );
    }
    // The test's own sshd is among the listening sockets, with its process.
    let listening = remote_host.config["listening"]
        .as_array()
        .expect("listening");
    assert!(
        listening
            .iter()
            .any(|socket| socket["port"] == port && socket["process"] == "sshd"),
        "{listening:#?}"
    );
    assert!(
        remote_host.config["sshd"].is_object(),
        "sshd settings collected"
    );
    assert!(
        std::fs::read_to_string(dir.join("known_hosts")).is_ok_and(|text| !text.is_empty()),
        "the host key is pinned"
    );

    // A key the server does not accept: one error naming the connection, no resource.
    keygen(&dir.join("stranger"));
    let refused = collect_host_over_ssh(
        &SshTarget {
            private_key: std::fs::read_to_string(dir.join("stranger")).expect("key"),
            ..target
        },
        "",
        now,
    );
    assert!(refused.resources.is_empty());
    assert!(
        refused.errors[0].source.starts_with("ssh ")
            && refused.errors[0].message.contains("ssh exited"),
        "{:#?}",
        refused.errors
    );
    drop(sshd);
}
