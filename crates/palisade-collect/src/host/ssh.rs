//! The host collector over SSH: another Linux machine, through the system `ssh` client with a
//! `user_name_pem` credential.
//!
//! One connection runs a POSIX `sh` script on the remote machine ([`snapshot_script`]) that
//! copies the files the collector reads into a temporary tree, records the mode and owner of
//! the sensitive files (`.palisade/stat`), recreates `/proc/<pid>/fd` socket links, captures the
//! commands' output (`.palisade/commands/`), and writes the tree to stdout as a tar stream. The
//! stream is unpacked locally (system `tar`) and collected like a mounted image, with the
//! remote's metadata and command output in place of local ones. So the remote needs only `sh`,
//! `cat`, `stat`, `readlink` and `tar`, and nothing is installed there.
//!
//! The host key is checked against a known-hosts file (`StrictHostKeyChecking=accept-new`:
//! trusted on first use, refused if it changes later). Keys with a passphrase are not supported
//! (`ssh` runs in batch mode and cannot ask).

use std::collections::BTreeMap;
use std::io::Write as _;
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use chrono::{DateTime, Utc};

use super::{COMMANDS, SENSITIVE_FILES, SYSCTL_KEYS, Snapshot, collect_with};
use crate::{CollectionError, CollectionOutput};

/// Where and as whom to connect.
#[derive(Clone, PartialEq, Eq)]
pub struct SshTarget {
    pub host: String,
    pub port: u16,
    pub user: String,
    /// The private key, PEM or OpenSSH format, without a passphrase.
    pub private_key: String,
    /// The known-hosts file that pins the host's key.
    pub known_hosts: PathBuf,
}

impl std::fmt::Debug for SshTarget {
    // The key never reaches logs.
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(formatter, "{}@{}:{}", self.user, self.host, self.port)
    }
}

/// Files copied as they are.
const FILES: &[&str] = &[
    "/etc/os-release",
    "/usr/lib/os-release",
    "/etc/hostname",
    "/etc/machine-id",
    "/etc/login.defs",
    "/etc/passwd",
    "/etc/shadow",
    "/etc/group",
    "/etc/ssh/sshd_config",
    "/etc/ssh/sshd_config.d/*",
    "/var/lib/dpkg/status",
    "/proc/mounts",
    "/proc/net/tcp",
    "/proc/net/tcp6",
    "/proc/net/udp",
    "/proc/net/udp6",
    "/proc/sys/kernel/hostname",
    "/proc/sys/kernel/osrelease",
    "/proc/sys/kernel/version",
];

/// Quotes a word for `sh` (single quotes; a quote inside becomes `'\''`).
fn quote(word: &str) -> String {
    format!("'{}'", word.replace('\'', r"'\''"))
}

/// The script run on the remote machine; its stdout is a tar stream of the snapshot tree.
pub fn snapshot_script() -> String {
    let mut files: Vec<String> = FILES.iter().map(|path| (*path).to_owned()).collect();
    files.extend(
        SYSCTL_KEYS
            .iter()
            .map(|key| format!("/proc/sys/{}", key.replace('.', "/"))),
    );
    let mut script = String::from(
        r#"set -u
T=$(mktemp -d) || exit 70
trap 'rm -rf "$T"' EXIT
mkdir -p "$T/.palisade/commands"
for f in "#,
    );
    // Globs stay unquoted so the remote shell expands them; plain paths have no spaces.
    script.push_str(&files.join(" "));
    script.push_str(
        r#"; do
  [ -f "$f" ] && [ -r "$f" ] || continue
  mkdir -p "$T$(dirname "$f")" && cat "$f" > "$T$f" 2>/dev/null
done
for f in "#,
    );
    script.push_str(&SENSITIVE_FILES.join(" "));
    script.push_str(
        r#"; do
  [ -e "$f" ] && stat -c "%a %u %g $f" "$f" >> "$T/.palisade/stat" 2>/dev/null
done
for d in /proc/[0-9]*; do
  [ -r "$d/comm" ] || continue
  mkdir -p "$T$d/fd" && cat "$d/comm" > "$T$d/comm" 2>/dev/null
  for fd in "$d"/fd/*; do
    l=$(readlink "$fd" 2>/dev/null) || continue
    case "$l" in socket:*) ln -s "$l" "$T$fd" 2>/dev/null ;; esac
  done
done
for f in /etc/systemd/system/*.target.wants/*; do
  [ -e "$f" ] || [ -L "$f" ] || continue
  mkdir -p "$T$(dirname "$f")" && : > "$T$f"
done
"#,
    );
    for (program, arguments) in COMMANDS {
        let command: Vec<String> = std::iter::once(*program)
            .chain(arguments.iter().copied())
            .map(quote)
            .collect();
        let output = format!(
            "\"$T/.palisade/commands/{}\"",
            command_key(program, arguments)
        );
        script.push_str(&format!(
            "[ -e {output} ] || {{ {} > {output} 2>/dev/null || rm -f {output}; }}\n",
            command.join(" ")
        ));
    }
    script.push_str("tar -C \"$T\" -cf - .\n");
    script
}

/// The file name a command's captured output has (`sshd -T` → `sshd_-T`).
pub fn command_key(program: &str, arguments: &[&str]) -> String {
    let program = program.rsplit('/').next().unwrap_or(program);
    std::iter::once(program)
        .chain(arguments.iter().copied())
        .collect::<Vec<_>>()
        .join("_")
        .chars()
        .map(|character| {
            if character.is_ascii_alphanumeric() || character == '-' || character == '_' {
                character
            } else {
                '.'
            }
        })
        .collect()
}

/// A private temporary directory, removed on drop.
struct TemporaryDirectory(PathBuf);

impl TemporaryDirectory {
    fn new() -> std::io::Result<Self> {
        use std::os::unix::fs::DirBuilderExt as _;
        let nanos = Utc::now().timestamp_nanos_opt().unwrap_or_default();
        let path =
            std::env::temp_dir().join(format!("palisade-ssh-{}-{nanos}", std::process::id()));
        std::fs::DirBuilder::new().mode(0o700).create(&path)?;
        Ok(Self(path))
    }
}

impl Drop for TemporaryDirectory {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Reads the snapshot's metadata and captured commands.
fn read_snapshot(root: &Path) -> Snapshot {
    let mut stats = BTreeMap::new();
    let text = std::fs::read_to_string(root.join(".palisade/stat")).unwrap_or_default();
    for line in text.lines() {
        let mut fields = line.splitn(4, ' ');
        if let (Some(mode), Some(uid), Some(gid), Some(path)) =
            (fields.next(), fields.next(), fields.next(), fields.next())
            && let (Ok(mode), Ok(uid), Ok(gid)) = (
                u32::from_str_radix(mode, 8),
                uid.parse::<u32>(),
                gid.parse::<u32>(),
            )
        {
            stats.insert(path.to_owned(), (mode, uid, gid));
        }
    }
    let mut commands = BTreeMap::new();
    if let Ok(entries) = std::fs::read_dir(root.join(".palisade/commands")) {
        for entry in entries.filter_map(Result::ok) {
            if let (Some(name), Ok(output)) = (
                entry.file_name().to_str().map(str::to_owned),
                std::fs::read(entry.path()),
            ) {
                commands.insert(name, String::from_utf8_lossy(&output).into_owned());
            }
        }
    }
    Snapshot { stats, commands }
}

/// Collects the machine `target` names as one `linux/host` resource; a failed connection is one
/// error (and no resource).
pub fn collect_host_over_ssh(
    target: &SshTarget,
    account_id: &str,
    collected_at: DateTime<Utc>,
) -> CollectionOutput {
    let source = format!("ssh {}@{}:{}", target.user, target.host, target.port);
    let fail = |message: String| CollectionOutput {
        resources: Vec::new(),
        errors: vec![CollectionError::new(source.clone(), None, message)],
    };
    let directory = match TemporaryDirectory::new() {
        Ok(directory) => directory,
        Err(error) => return fail(format!("cannot make a temporary directory: {error}")),
    };
    let key_path = directory.0.join("key");
    let written = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&key_path)
        .and_then(|mut file| {
            file.write_all(target.private_key.trim().as_bytes())?;
            file.write_all(b"\n")
        });
    if let Err(error) = written {
        return fail(format!("cannot write the key file: {error}"));
    }
    let child = Command::new("ssh")
        .arg("-i")
        .arg(&key_path)
        .args(["-p", &target.port.to_string()])
        .args([
            "-o",
            "BatchMode=yes",
            "-o",
            "IdentitiesOnly=yes",
            "-o",
            "StrictHostKeyChecking=accept-new",
            "-o",
            "ConnectTimeout=30",
            "-o",
            "LogLevel=ERROR",
        ])
        .arg("-o")
        .arg(format!(
            "UserKnownHostsFile={}",
            target.known_hosts.display()
        ))
        .arg(format!("{}@{}", target.user, target.host))
        .arg("sh -s")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn();
    let mut child = match child {
        Ok(child) => child,
        Err(error) => return fail(format!("cannot run ssh: {error}")),
    };
    if let Some(mut stdin) = child.stdin.take()
        && let Err(error) = stdin.write_all(snapshot_script().as_bytes())
    {
        let _ = child.kill();
        let _ = child.wait();
        return fail(format!("cannot send the script: {error}"));
    }
    let output = match child.wait_with_output() {
        Ok(output) => output,
        Err(error) => return fail(format!("ssh failed: {error}")),
    };
    if !output.status.success() {
        return fail(format!(
            "ssh exited with {}: {}",
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        ));
    }
    let root = directory.0.join("root");
    if let Err(error) = std::fs::create_dir(&root) {
        return fail(format!("cannot make the snapshot directory: {error}"));
    }
    let unpacked = Command::new("tar")
        .args(["-x", "--no-same-owner", "-f", "-", "-C"])
        .arg(&root)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .and_then(|mut tar| {
            if let Some(mut stdin) = tar.stdin.take() {
                stdin.write_all(&output.stdout)?;
            }
            tar.wait_with_output()
        });
    match unpacked {
        Ok(result) if result.status.success() => {}
        Ok(result) => {
            return fail(format!(
                "the snapshot does not unpack: {}",
                String::from_utf8_lossy(&result.stderr).trim()
            ));
        }
        Err(error) => return fail(format!("cannot run tar: {error}")),
    }
    let snapshot = read_snapshot(&root);
    let config = super::HostConfig {
        root,
        run_commands: false,
        account_id: account_id.to_owned(),
    };
    let mut collected = collect_with(&config, collected_at, Some(snapshot));
    for error in &mut collected.errors {
        error.source = format!("{source} {}", error.source);
    }
    collected
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_keys_are_file_names() {
        assert_eq!(command_key("/usr/sbin/sshd", &["-T"]), "sshd_-T");
        assert_eq!(command_key("nft", &["list", "ruleset"]), "nft_list_ruleset");
        assert!(
            command_key(
                "rpm",
                &["-qa", "--queryformat", "%{NAME} %{VERSION}-%{RELEASE}\\n"]
            )
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
        );
    }

    #[test]
    fn the_script_quotes_arguments_and_is_valid_sh() {
        let script = snapshot_script();
        assert!(script.contains("'%{NAME} %{VERSION}-%{RELEASE}\\n'"));
        assert_eq!(quote("it's"), r"'it'\''s'");
        // `sh -n` parses without running.
        let checked = Command::new("sh")
            .args(["-n", "-c", &script])
            .status()
            .expect("sh");
        assert!(checked.success(), "{script}");
    }
}
