//! The Linux host collector: one `linux/host` resource describing the machine it runs on.
//!
//! Facts and where they come from (all paths under [`HostConfig::root`]):
//!
//! | property | source |
//! |---|---|
//! | `sshd` | `sshd -T` (effective settings) when it runs, else `/etc/ssh/sshd_config` plus its `Include`s, with OpenSSH's defaults for what is unset |
//! | `sysctl` | `/proc/sys` (the network and kernel hardening parameters of [`SYSCTL_KEYS`]) |
//! | `login_defs` | `/etc/login.defs` |
//! | `users` | `/etc/passwd` (UID 0 accounts), `/etc/shadow` when readable (empty passwords) |
//! | `files` | mode, owner and group of [`SENSITIVE_FILES`] |
//! | `listening` | `/proc/net/{tcp,tcp6,udp,udp6}`, with the owning process from `/proc/<pid>/fd` |
//! | `packages` | dpkg's status file, else `rpm -qa` |
//! | `kernel`, `hostname`, `os` | `/proc/sys/kernel/{osrelease,version,hostname}`, `/etc/os-release` |
//! | `services`, `time_sync` | running processes (`/proc/<pid>/comm`) and systemd's `*.wants` links |
//! | `firewall` | `nft list ruleset`, else `iptables -S` |
//! | `mounts` | `/proc/mounts` |
//!
//! The parsing is pure ([`parse`]); this module only reads. With a root other than `/` no
//! command runs (they would describe the real machine), so a fixture tree collects exactly
//! like a host. A fact that cannot be read is left out and reported as a [`CollectionError`];
//! the rest of the resource is still produced. [`ssh`] collects another machine the same way,
//! from a snapshot its script takes over one SSH connection.

use std::collections::{BTreeMap, BTreeSet};
use std::io::ErrorKind;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use chrono::{DateTime, Utc};
use palisade_model::resource::Resource;
use serde_json::{Map, Value, json};

use crate::{CollectionError, CollectionOutput};

pub mod parse;
pub mod ssh;

/// Kernel parameters collected (the CIS network and kernel hardening set).
pub const SYSCTL_KEYS: &[&str] = &[
    "net.ipv4.ip_forward",
    "net.ipv4.tcp_syncookies",
    "net.ipv4.icmp_echo_ignore_broadcasts",
    "net.ipv4.icmp_ignore_bogus_error_responses",
    "net.ipv4.conf.all.accept_redirects",
    "net.ipv4.conf.default.accept_redirects",
    "net.ipv4.conf.all.secure_redirects",
    "net.ipv4.conf.default.secure_redirects",
    "net.ipv4.conf.all.send_redirects",
    "net.ipv4.conf.default.send_redirects",
    "net.ipv4.conf.all.accept_source_route",
    "net.ipv4.conf.default.accept_source_route",
    "net.ipv4.conf.all.rp_filter",
    "net.ipv4.conf.default.rp_filter",
    "net.ipv4.conf.all.log_martians",
    "net.ipv4.conf.default.log_martians",
    "net.ipv6.conf.all.forwarding",
    "net.ipv6.conf.all.accept_ra",
    "net.ipv6.conf.default.accept_ra",
    "net.ipv6.conf.all.accept_redirects",
    "net.ipv6.conf.default.accept_redirects",
    "net.ipv6.conf.all.accept_source_route",
    "kernel.randomize_va_space",
    "kernel.dmesg_restrict",
    "kernel.kptr_restrict",
    "kernel.yama.ptrace_scope",
    "kernel.sysrq",
    "kernel.unprivileged_bpf_disabled",
    "fs.suid_dumpable",
    "fs.protected_hardlinks",
    "fs.protected_symlinks",
];

/// Files whose mode and owner are collected.
pub const SENSITIVE_FILES: &[&str] = &[
    "/etc/passwd",
    "/etc/shadow",
    "/etc/group",
    "/etc/gshadow",
    "/etc/ssh/sshd_config",
    "/etc/crontab",
    "/etc/sudoers",
    "/etc/login.defs",
];

/// The commands the collector may run (on the machine itself, or in the SSH snapshot script).
pub(crate) const COMMANDS: &[(&str, &[&str])] = &[
    ("sshd", &["-T"]),
    ("/usr/sbin/sshd", &["-T"]),
    ("nft", &["list", "ruleset"]),
    ("iptables", &["-S"]),
    (
        "rpm",
        &["-qa", "--queryformat", "%{NAME} %{VERSION}-%{RELEASE}\\n"],
    ),
];

/// What an SSH snapshot holds besides files: the remote's file metadata (mode, uid, gid by
/// path) and the output of the commands that succeeded there (by [`ssh::command_key`]).
#[derive(Debug, Clone, Default)]
pub(crate) struct Snapshot {
    pub stats: BTreeMap<String, (u32, u32, u32)>,
    pub commands: BTreeMap<String, String>,
}

/// Services reported in `services` (by process name and systemd unit).
const SERVICES: &[(&str, &[&str])] = &[
    ("auditd", &["auditd"]),
    ("chronyd", &["chronyd"]),
    ("chrony", &["chronyd"]),
    (
        "systemd-timesyncd",
        &["systemd-timesyncd", "systemd-timesyn"],
    ),
    ("ntpd", &["ntpd"]),
    ("ntp", &["ntpd"]),
    ("firewalld", &["firewalld"]),
    ("ufw", &[]),
    ("nftables", &[]),
    ("sshd", &["sshd"]),
    ("ssh", &["sshd"]),
];

/// Where and how to collect.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostConfig {
    /// The file-system root the facts are read under (`/` for the machine itself).
    pub root: PathBuf,
    /// Whether `sshd -T`, `nft`, `iptables` and `rpm` may run (only when `root` is `/`).
    pub run_commands: bool,
    /// The resource's `account_id` (a data centre, a site); empty when not given.
    pub account_id: String,
}

impl Default for HostConfig {
    fn default() -> Self {
        Self {
            root: PathBuf::from("/"),
            run_commands: true,
            account_id: String::new(),
        }
    }
}

/// Collects the host under `config.root` as one `linux/host` resource.
pub fn collect_host(config: &HostConfig, collected_at: DateTime<Utc>) -> CollectionOutput {
    collect_with(config, collected_at, None)
}

/// Collects from `config.root`, with a snapshot's metadata and command output when given.
pub(crate) fn collect_with(
    config: &HostConfig,
    collected_at: DateTime<Utc>,
    snapshot: Option<Snapshot>,
) -> CollectionOutput {
    let mut reader = Reader {
        root: &config.root,
        commands: snapshot.is_some() || (config.run_commands && config.root == Path::new("/")),
        errors: Vec::new(),
        snapshot,
    };
    let mut host = Map::new();

    let os = reader
        .read("/etc/os-release")
        .or_else(|| reader.read("/usr/lib/os-release"))
        .map(|text| parse::parse_os_release(&text))
        .unwrap_or_default();
    host.insert(
        "os".into(),
        json!({"id": os.get("id"), "version_id": os.get("version_id"),
               "pretty_name": os.get("pretty_name")}),
    );
    let hostname = reader
        .read("/proc/sys/kernel/hostname")
        .or_else(|| reader.read("/etc/hostname"))
        .map(|text| text.trim().to_owned())
        .filter(|name| !name.is_empty());
    host.insert("hostname".into(), json!(hostname));
    host.insert(
        "kernel".into(),
        json!({
            "release": reader.read("/proc/sys/kernel/osrelease").map(|text| text.trim().to_owned()),
            "version": reader.read("/proc/sys/kernel/version").map(|text| text.trim().to_owned()),
        }),
    );

    if let Some(sshd) = reader.sshd() {
        host.insert("sshd".into(), Value::Object(sshd));
    }
    host.insert("sysctl".into(), Value::Object(reader.sysctl()));
    if let Some(text) = reader.read("/etc/login.defs") {
        host.insert(
            "login_defs".into(),
            Value::Object(parse::parse_login_defs(&text)),
        );
    }

    let passwd = reader.read("/etc/passwd").unwrap_or_default();
    let (accounts, bad_lines) = parse::parse_passwd(&passwd);
    for line in bad_lines {
        reader.error(
            "/etc/passwd",
            Some(format!("line {line}")),
            "not a 7-field passwd line",
        );
    }
    let groups = parse::parse_group(&reader.read("/etc/group").unwrap_or_default());
    let mut users = Map::new();
    users.insert(
        "uid0_accounts".into(),
        json!(
            accounts
                .iter()
                .filter(|account| account.uid == 0)
                .map(|account| account.name.as_str())
                .collect::<Vec<_>>()
        ),
    );
    // Left out (not empty) when /etc/shadow is unreadable: "no empty passwords" must not pass
    // because the collector was not allowed to look.
    if let Some(shadow) = reader.read("/etc/shadow") {
        users.insert(
            "accounts_with_empty_password".into(),
            json!(parse::accounts_with_empty_password(&shadow)),
        );
    }
    users.insert("count".into(), json!(accounts.len()));
    host.insert("users".into(), Value::Object(users));

    // The first account of a uid names it (root, not a later uid-0 alias), as getpwuid does.
    let mut user_names: BTreeMap<u32, String> = BTreeMap::new();
    for account in &accounts {
        user_names
            .entry(account.uid)
            .or_insert_with(|| account.name.clone());
    }
    host.insert(
        "files".into(),
        Value::Object(reader.files(&user_names, &groups)),
    );

    let processes = reader.processes();
    host.insert(
        "listening".into(),
        json!(reader.listening(&processes, &user_names)),
    );
    let running: BTreeSet<&str> = processes.values().map(String::as_str).collect();
    let services = reader.services(&running);
    let time_sync = ["chronyd", "systemd-timesyncd", "ntpd"]
        .into_iter()
        .find(|service| {
            services
                .get(*service)
                .and_then(|state| state.get("active"))
                .and_then(Value::as_bool)
                .unwrap_or(false)
        });
    host.insert(
        "time_sync".into(),
        json!({"active": time_sync.is_some(), "service": time_sync}),
    );
    host.insert("services".into(), Value::Object(services));
    if let Some(firewall) = reader.firewall(&running) {
        host.insert("firewall".into(), firewall);
    }
    if let Some(packages) = reader.packages() {
        host.insert("packages".into(), Value::Object(packages));
    }
    if let Some(text) = reader.read("/proc/mounts") {
        host.insert("mounts".into(), Value::Object(parse::parse_mounts(&text)));
    }

    let machine_id = reader
        .read("/etc/machine-id")
        .map(|text| text.trim().to_owned())
        .filter(|id| !id.is_empty());
    let id = machine_id
        .or_else(|| hostname.clone())
        .unwrap_or_else(|| "localhost".into());
    let resource = Resource {
        id,
        environment: "on-prem".into(),
        account_id: config.account_id.clone(),
        service_name: "linux".into(),
        resource_kind: "host".into(),
        region: None,
        resource_group: None,
        name: hostname,
        tags: Map::new(),
        config: Value::Object(host),
        collected_at,
    };
    CollectionOutput {
        resources: vec![resource],
        errors: reader.errors,
    }
}

/// Reads files under the root and runs commands when allowed, remembering what failed.
struct Reader<'a> {
    root: &'a Path,
    commands: bool,
    errors: Vec<CollectionError>,
    /// Set when `root` is an SSH snapshot: commands and metadata come from it.
    snapshot: Option<Snapshot>,
}

impl Reader<'_> {
    fn path(&self, path: &str) -> PathBuf {
        self.root.join(path.trim_start_matches('/'))
    }

    fn error(&mut self, source: &str, location: Option<String>, message: impl Into<String>) {
        self.errors
            .push(CollectionError::new(source, location, message));
    }

    /// A file's text; `None` when missing (silently) or unreadable (reported).
    fn read(&mut self, path: &str) -> Option<String> {
        match std::fs::read(self.path(path)) {
            Ok(bytes) => Some(String::from_utf8_lossy(&bytes).into_owned()),
            Err(error) if error.kind() == ErrorKind::NotFound => None,
            Err(error) => {
                self.error(path, None, format!("cannot read: {error}"));
                None
            }
        }
    }

    /// A command's standard output when it ran and succeeded.
    fn run(&self, program: &str, arguments: &[&str]) -> Option<String> {
        if !self.commands {
            return None;
        }
        if let Some(snapshot) = &self.snapshot {
            return snapshot
                .commands
                .get(&ssh::command_key(program, arguments))
                .cloned();
        }
        let output = Command::new(program).args(arguments).output().ok()?;
        output
            .status
            .success()
            .then(|| String::from_utf8_lossy(&output.stdout).into_owned())
    }

    fn sshd(&mut self) -> Option<Map<String, Value>> {
        // `sshd -T` prints the settings sshd would use, includes and defaults resolved; it
        // needs root and the host keys, so a plain user falls back to the files.
        for program in ["sshd", "/usr/sbin/sshd"] {
            if let Some(text) = self.run(program, &["-T"]) {
                let mut settings = parse::parse_sshd_effective(&text);
                settings.insert("source".into(), json!("sshd -T"));
                return Some(settings);
            }
        }
        let main = self.read("/etc/ssh/sshd_config")?;
        let mut text = String::new();
        // sshd reads an Include where it stands and keeps the first value of each keyword, so
        // included files go before the rest of the main file that follows them.
        for line in main.lines() {
            if let [pattern] = parse::sshd_includes(line).as_slice() {
                for path in self.glob(pattern, "/etc/ssh") {
                    if let Some(included) = self.read(&path) {
                        text.push_str(&included);
                        text.push('\n');
                    }
                }
            } else {
                text.push_str(line);
                text.push('\n');
            }
        }
        let mut settings = parse::parse_sshd_config(&text);
        settings.insert("source".into(), json!("sshd_config"));
        Some(settings)
    }

    /// Expands an sshd `Include` pattern with at most one `*` in its file name, relative to
    /// `base`; files in lexical order, as sshd's glob(3).
    fn glob(&self, pattern: &str, base: &str) -> Vec<String> {
        let pattern = if pattern.starts_with('/') {
            pattern.to_owned()
        } else {
            format!("{base}/{pattern}")
        };
        let Some((directory, file_pattern)) = pattern.rsplit_once('/') else {
            return Vec::new();
        };
        let Some((prefix, suffix)) = file_pattern.split_once('*') else {
            return vec![pattern.clone()];
        };
        let Ok(entries) = std::fs::read_dir(self.path(directory)) else {
            return Vec::new();
        };
        let mut names: Vec<String> = entries
            .filter_map(Result::ok)
            .filter_map(|entry| entry.file_name().into_string().ok())
            .filter(|name| {
                name.starts_with(prefix) && name.ends_with(suffix) && name.len() >= prefix.len()
            })
            .collect();
        names.sort();
        names
            .into_iter()
            .map(|name| format!("{directory}/{name}"))
            .collect()
    }

    fn sysctl(&mut self) -> Map<String, Value> {
        let mut sysctl = Map::new();
        for key in SYSCTL_KEYS {
            let path = format!("/proc/sys/{}", key.replace('.', "/"));
            if let Some(text) = self.read(&path) {
                parse::insert_nested(&mut sysctl, key, parse::sysctl_value(&text));
            }
        }
        sysctl
    }

    fn files(
        &mut self,
        users: &BTreeMap<u32, String>,
        groups: &BTreeMap<u32, String>,
    ) -> Map<String, Value> {
        let mut files = Map::new();
        for path in SENSITIVE_FILES {
            let stat = match &self.snapshot {
                Some(snapshot) => snapshot.stats.get(*path).copied(),
                None => match std::fs::metadata(self.path(path)) {
                    Ok(metadata) => Some((metadata.mode(), metadata.uid(), metadata.gid())),
                    Err(error) if error.kind() == ErrorKind::NotFound => None,
                    Err(error) => {
                        self.error(path, None, format!("cannot stat: {error}"));
                        None
                    }
                },
            };
            if let Some((mode, uid, gid)) = stat {
                let owner = users.get(&uid).cloned().unwrap_or_else(|| uid.to_string());
                let group = groups.get(&gid).cloned().unwrap_or_else(|| gid.to_string());
                files.insert(
                    parse::path_key(path),
                    json!({"path": path, "mode": parse::format_mode(mode),
                           "owner": owner, "group": group}),
                );
            }
        }
        files
    }

    /// pid → process name, from `/proc/<pid>/comm`.
    fn processes(&mut self) -> BTreeMap<u32, String> {
        let Ok(entries) = std::fs::read_dir(self.path("/proc")) else {
            return BTreeMap::new();
        };
        entries
            .filter_map(Result::ok)
            .filter_map(|entry| entry.file_name().to_str()?.parse::<u32>().ok())
            .filter_map(|pid| {
                // Processes come and go while we read: a vanished one is simply skipped.
                let comm = std::fs::read_to_string(self.path(&format!("/proc/{pid}/comm"))).ok()?;
                Some((pid, comm.trim().to_owned()))
            })
            .collect()
    }

    fn listening(
        &mut self,
        processes: &BTreeMap<u32, String>,
        users: &BTreeMap<u32, String>,
    ) -> Vec<Value> {
        // Socket inode → pid, from the fd links of every process we may read.
        let mut owners: BTreeMap<u64, u32> = BTreeMap::new();
        for pid in processes.keys() {
            let Ok(entries) = std::fs::read_dir(self.path(&format!("/proc/{pid}/fd"))) else {
                continue;
            };
            for entry in entries.filter_map(Result::ok) {
                if let Ok(target) = std::fs::read_link(entry.path())
                    && let Some(inode) = target.to_str().and_then(parse::socket_inode)
                {
                    owners.entry(inode).or_insert(*pid);
                }
            }
        }
        let mut listening = Vec::new();
        for (file, protocol, listen_state) in [
            ("/proc/net/tcp", "tcp", 0x0A),
            ("/proc/net/tcp6", "tcp6", 0x0A),
            ("/proc/net/udp", "udp", 0x07),
            ("/proc/net/udp6", "udp6", 0x07),
        ] {
            let Some(text) = self.read(file) else {
                continue;
            };
            for socket in parse::parse_proc_net(&text) {
                if socket.state != listen_state {
                    continue;
                }
                let pid = owners.get(&socket.inode).copied();
                listening.push(json!({
                    "protocol": protocol,
                    "address": socket.address,
                    "port": socket.port,
                    "user": users.get(&socket.uid).cloned().unwrap_or_else(|| socket.uid.to_string()),
                    "pid": pid,
                    "process": pid.and_then(|pid| processes.get(&pid)),
                }));
            }
        }
        listening.sort_by_key(|entry| {
            (
                entry["protocol"].as_str().unwrap_or_default().to_owned(),
                entry["port"].as_u64(),
                entry["address"].as_str().unwrap_or_default().to_owned(),
            )
        });
        listening.dedup();
        listening
    }

    /// `{unit: {enabled, active}}` for the services that exist here: active when a process of
    /// the service runs, enabled when systemd would start it at boot.
    fn services(&mut self, running: &BTreeSet<&str>) -> Map<String, Value> {
        let mut services = Map::new();
        for (unit, process_names) in SERVICES {
            let active = process_names.iter().any(|name| running.contains(name));
            let enabled = [
                "multi-user.target.wants",
                "sysinit.target.wants",
                "basic.target.wants",
            ]
            .iter()
            .any(|target| {
                self.path(&format!("/etc/systemd/system/{target}/{unit}.service"))
                    .exists()
            });
            if active || enabled {
                services.insert(
                    (*unit).to_owned(),
                    json!({"enabled": enabled, "active": active}),
                );
            }
        }
        services
    }

    fn firewall(&mut self, running: &BTreeSet<&str>) -> Option<Value> {
        let (enabled, policy, tool) = if let Some(text) = self.run("nft", &["list", "ruleset"]) {
            let (loaded, policy) = parse::parse_nft_ruleset(&text);
            (loaded, policy, "nftables")
        } else if let Some(text) = self.run("iptables", &["-S"]) {
            let (loaded, policy) = parse::parse_iptables_rules(&text);
            (loaded, policy, "iptables")
        } else if running.contains("firewalld") {
            (true, None, "firewalld")
        } else if !self.commands {
            return None;
        } else {
            (false, None, "none")
        };
        Some(json!({"enabled": enabled, "default_input_policy": policy, "tool": tool}))
    }

    fn packages(&mut self) -> Option<Map<String, Value>> {
        if let Some(text) = self.read("/var/lib/dpkg/status") {
            return Some(parse::parse_dpkg_status(&text));
        }
        let (program, arguments) = COMMANDS
            .iter()
            .find(|(program, _)| *program == "rpm")
            .copied()?;
        self.run(program, arguments)
            .map(|text| parse::parse_rpm_list(&text))
    }
}
