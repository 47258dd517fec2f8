//! Pure parsers of the host facts: text in, JSON values out. Tested on fixture files; the
//! reading happens in [`super`].

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};

use crate::snake_case;

/// sshd keywords in their documented spelling, so the lower-case keywords of `sshd -T` can be
/// split into words (`permitrootlogin` → `permit_root_login`).
const SSHD_KEYWORDS: &[&str] = &[
    "AcceptEnv",
    "AddressFamily",
    "AllowAgentForwarding",
    "AllowGroups",
    "AllowStreamLocalForwarding",
    "AllowTcpForwarding",
    "AllowUsers",
    "AuthenticationMethods",
    "AuthorizedKeysCommand",
    "AuthorizedKeysCommandUser",
    "AuthorizedKeysFile",
    "AuthorizedPrincipalsCommand",
    "AuthorizedPrincipalsCommandUser",
    "AuthorizedPrincipalsFile",
    "Banner",
    "CASignatureAlgorithms",
    "ChallengeResponseAuthentication",
    "ChannelTimeout",
    "ChrootDirectory",
    "Ciphers",
    "ClientAliveCountMax",
    "ClientAliveInterval",
    "Compression",
    "DenyGroups",
    "DenyUsers",
    "DisableForwarding",
    "ExposeAuthInfo",
    "FingerprintHash",
    "ForceCommand",
    "GatewayPorts",
    "GSSAPIAuthentication",
    "GSSAPICleanupCredentials",
    "GSSAPIKexAlgorithms",
    "GSSAPIKeyExchange",
    "GSSAPIStoreCredentialsOnRekey",
    "GSSAPIStrictAcceptorCheck",
    "HostbasedAcceptedAlgorithms",
    "HostbasedAcceptedKeyTypes",
    "HostbasedAuthentication",
    "HostbasedUsesNameFromPacketOnly",
    "HostCertificate",
    "HostKey",
    "HostKeyAgent",
    "HostKeyAlgorithms",
    "IgnoreRhosts",
    "IgnoreUserKnownHosts",
    "Include",
    "KbdInteractiveAuthentication",
    "KerberosAuthentication",
    "KerberosGetAFSToken",
    "KerberosOrLocalPasswd",
    "KerberosTicketCleanup",
    "KexAlgorithms",
    "ListenAddress",
    "LoginGraceTime",
    "LogLevel",
    "LogVerbose",
    "MaxAuthTries",
    "MaxSessions",
    "MaxStartups",
    "ModuliFile",
    "PasswordAuthentication",
    "PermitEmptyPasswords",
    "PermitListen",
    "PermitOpen",
    "PermitRootLogin",
    "PermitTTY",
    "PermitTunnel",
    "PermitUserEnvironment",
    "PermitUserRC",
    "PerSourceMaxStartups",
    "PerSourceNetBlockSize",
    "PerSourcePenalties",
    "PerSourcePenaltyExemptList",
    "PidFile",
    "Port",
    "PrintLastLog",
    "PrintMotd",
    "PubkeyAcceptedAlgorithms",
    "PubkeyAcceptedKeyTypes",
    "PubkeyAuthOptions",
    "PubkeyAuthentication",
    "RekeyLimit",
    "RequiredRSASize",
    "RevokedKeys",
    "SecurityKeyProvider",
    "SetEnv",
    "StreamLocalBindMask",
    "StreamLocalBindUnlink",
    "StrictModes",
    "Subsystem",
    "SyslogFacility",
    "TCPKeepAlive",
    "TrustedUserCAKeys",
    "UnusedConnectionTimeout",
    "UseDNS",
    "UsePAM",
    "UsePrivilegeSeparation",
    "VersionAddendum",
    "X11DisplayOffset",
    "X11Forwarding",
    "X11UseLocalhost",
    "XAuthLocation",
];

/// Keywords whose value is a comma-separated list of algorithms.
const SSHD_LIST_KEYWORDS: &[&str] = &[
    "ciphers",
    "macs",
    "kexalgorithms",
    "hostkeyalgorithms",
    "pubkeyacceptedalgorithms",
    "pubkeyacceptedkeytypes",
    "casignaturealgorithms",
    "hostbasedacceptedalgorithms",
    "hostbasedacceptedkeytypes",
    "gssapikexalgorithms",
];

/// Keywords whose value is a number (times in seconds).
const SSHD_NUMBER_KEYWORDS: &[&str] = &[
    "maxauthtries",
    "maxsessions",
    "clientaliveinterval",
    "clientalivecountmax",
    "logingracetime",
    "x11displayoffset",
    "requiredrsasize",
];

/// Keywords that may appear several times; their values are collected into a list.
const SSHD_REPEATED_KEYWORDS: &[&str] = &[
    "port",
    "listenaddress",
    "hostkey",
    "hostcertificate",
    "subsystem",
    "acceptenv",
    "setenv",
    "include",
    "allowusers",
    "allowgroups",
    "denyusers",
    "denygroups",
];

/// OpenSSH's defaults of the settings the built-in rules read, for hosts where `sshd -T`
/// cannot run and the config file leaves them unset (OpenSSH 9.x, `man sshd_config`).
const SSHD_DEFAULTS: &[(&str, &str)] = &[
    ("permitrootlogin", "prohibit-password"),
    ("passwordauthentication", "yes"),
    ("permitemptypasswords", "no"),
    ("x11forwarding", "no"),
    ("maxauthtries", "6"),
    ("clientaliveinterval", "0"),
    ("clientalivecountmax", "3"),
    ("logingracetime", "120"),
    ("ignorerhosts", "yes"),
    ("hostbasedauthentication", "no"),
    ("pubkeyauthentication", "yes"),
    ("kbdinteractiveauthentication", "yes"),
    ("usepam", "no"),
    ("port", "22"),
];

/// The snake_case property name of an sshd keyword (any case).
pub fn sshd_property(keyword: &str) -> String {
    let lower = keyword.to_ascii_lowercase();
    match lower.as_str() {
        "macs" => return "macs".into(),
        "ipqos" => return "ipqos".into(),
        _ => {}
    }
    SSHD_KEYWORDS
        .iter()
        .find(|known| known.eq_ignore_ascii_case(&lower))
        .map(|known| snake_case(known))
        .unwrap_or(lower)
}

/// Converts an sshd time (`120`, `2m`, `1h30m`) to seconds; `None` when it is not one.
fn sshd_seconds(value: &str) -> Option<u64> {
    let mut total = 0_u64;
    let mut digits = String::new();
    for character in value.chars() {
        if character.is_ascii_digit() {
            digits.push(character);
            continue;
        }
        let unit = match character.to_ascii_lowercase() {
            's' => 1,
            'm' => 60,
            'h' => 3_600,
            'd' => 86_400,
            'w' => 604_800,
            _ => return None,
        };
        total = total.checked_add(digits.parse::<u64>().ok()?.checked_mul(unit)?)?;
        digits.clear();
    }
    if !digits.is_empty() {
        total = total.checked_add(digits.parse::<u64>().ok()?)?;
    }
    Some(total)
}

/// Adds one `keyword value` pair to the settings; the first value of a keyword wins (as sshd
/// reads its configuration), repeated keywords collect.
fn add_sshd_setting(settings: &mut Map<String, Value>, keyword: &str, value: &str) {
    let lower = keyword.to_ascii_lowercase();
    let property = sshd_property(&lower);
    let value = value.trim().trim_matches('"');
    let parsed = if SSHD_LIST_KEYWORDS.contains(&lower.as_str()) {
        json!(
            value
                .split(',')
                .map(str::trim)
                .filter(|item| !item.is_empty())
                .collect::<Vec<_>>()
        )
    } else if SSHD_NUMBER_KEYWORDS.contains(&lower.as_str()) {
        sshd_seconds(value).map_or_else(|| json!(value), |seconds| json!(seconds))
    } else if lower == "port" {
        value
            .parse::<u64>()
            .map_or_else(|_| json!(value), |port| json!(port))
    } else {
        json!(value)
    };
    if SSHD_REPEATED_KEYWORDS.contains(&lower.as_str()) {
        let entry = settings
            .entry(property)
            .or_insert_with(|| Value::Array(Vec::new()));
        if let Value::Array(items) = entry {
            items.push(parsed);
        }
        return;
    }
    settings.entry(property).or_insert(parsed);
}

/// Parses `sshd -T` output: one lower-case `keyword value` per line.
pub fn parse_sshd_effective(text: &str) -> Map<String, Value> {
    let mut settings = Map::new();
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let (keyword, value) = line.split_once(' ').unwrap_or((line, ""));
        add_sshd_setting(&mut settings, keyword, value);
    }
    settings
}

/// Parses `sshd_config` text (with its included files already inlined by the caller, in
/// order), stopping at the first `Match` block (its settings apply to some connections only),
/// then fills OpenSSH's defaults for what is unset.
pub fn parse_sshd_config(text: &str) -> Map<String, Value> {
    let mut settings = Map::new();
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (keyword, value) = match line.find(|c: char| c.is_whitespace() || c == '=') {
            Some(index) => (
                &line[..index],
                line[index..].trim_start_matches(|c: char| c.is_whitespace() || c == '='),
            ),
            None => (line, ""),
        };
        if keyword.eq_ignore_ascii_case("match") {
            break;
        }
        if keyword.eq_ignore_ascii_case("include") {
            continue;
        }
        add_sshd_setting(&mut settings, keyword, value);
    }
    for (keyword, value) in SSHD_DEFAULTS {
        if !settings.contains_key(&sshd_property(keyword)) {
            add_sshd_setting(&mut settings, keyword, value);
        }
    }
    settings
}

/// The `Include` patterns of an sshd_config, in order.
pub fn sshd_includes(text: &str) -> Vec<String> {
    text.lines()
        .filter_map(|line| {
            let line = line.trim();
            let (keyword, rest) = line.split_once(char::is_whitespace)?;
            keyword.eq_ignore_ascii_case("include").then(|| {
                rest.split_whitespace()
                    .map(str::to_owned)
                    .collect::<Vec<_>>()
            })
        })
        .flatten()
        .collect()
}

/// Parses `/etc/login.defs`: `NAME VALUE` pairs; numbers as numbers, except `UMASK`, which
/// stays an octal string.
pub fn parse_login_defs(text: &str) -> Map<String, Value> {
    let mut settings = Map::new();
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let Some((name, value)) = line.split_once(char::is_whitespace) else {
            continue;
        };
        let value = value.trim().trim_matches('"');
        let parsed = match value.parse::<i64>() {
            Ok(number) if name != "UMASK" => json!(number),
            _ => json!(value),
        };
        settings.insert(name.to_owned(), parsed);
    }
    settings
}

/// One line of `/etc/passwd`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PasswdEntry {
    pub name: String,
    pub uid: u32,
    pub gid: u32,
    pub home: String,
    pub shell: String,
}

/// Parses `/etc/passwd`; malformed lines are returned as 1-based line numbers.
pub fn parse_passwd(text: &str) -> (Vec<PasswdEntry>, Vec<usize>) {
    let mut entries = Vec::new();
    let mut bad = Vec::new();
    for (index, line) in text.lines().enumerate() {
        if line.trim().is_empty() || line.starts_with('#') {
            continue;
        }
        let fields: Vec<&str> = line.split(':').collect();
        let parsed = (fields.len() == 7)
            .then(|| Some((fields[2].parse().ok()?, fields[3].parse().ok()?)))
            .flatten();
        match parsed {
            Some((uid, gid)) => entries.push(PasswdEntry {
                name: fields[0].to_owned(),
                uid,
                gid,
                home: fields[5].to_owned(),
                shell: fields[6].to_owned(),
            }),
            None => bad.push(index + 1),
        }
    }
    (entries, bad)
}

/// Parses `/etc/group` into gid → name.
pub fn parse_group(text: &str) -> BTreeMap<u32, String> {
    text.lines()
        .filter_map(|line| {
            let fields: Vec<&str> = line.split(':').collect();
            Some((fields.get(2)?.parse().ok()?, (*fields.first()?).to_owned()))
        })
        .collect()
}

/// The accounts of `/etc/shadow` whose password field is empty (anyone may log in as them
/// without a password).
pub fn accounts_with_empty_password(shadow: &str) -> Vec<String> {
    shadow
        .lines()
        .filter_map(|line| {
            let mut fields = line.split(':');
            let name = fields.next()?;
            let password = fields.next()?;
            (!name.is_empty() && password.is_empty()).then(|| name.to_owned())
        })
        .collect()
}

/// Parses a kernel parameter's file: an integer as a number, several integers (tab-separated,
/// like `ip_local_port_range`) as a list, anything else as a string.
pub fn sysctl_value(text: &str) -> Value {
    let text = text.trim();
    let parts: Vec<&str> = text.split_whitespace().collect();
    let numbers: Option<Vec<i64>> = parts.iter().map(|part| part.parse().ok()).collect();
    match numbers {
        Some(numbers) if numbers.len() == 1 => json!(numbers[0]),
        Some(numbers) if numbers.len() > 1 => json!(numbers),
        _ => json!(text),
    }
}

/// Inserts `value` at a dotted path (`net.ipv4.ip_forward`), creating the objects between.
pub fn insert_nested(target: &mut Map<String, Value>, dotted: &str, value: Value) {
    let mut parts = dotted.split('.').peekable();
    let mut current = target;
    while let Some(part) = parts.next() {
        if parts.peek().is_none() {
            current.insert(part.to_owned(), value);
            return;
        }
        let entry = current
            .entry(part.to_owned())
            .or_insert_with(|| Value::Object(Map::new()));
        if !entry.is_object() {
            *entry = Value::Object(Map::new());
        }
        match entry {
            Value::Object(next) => current = next,
            _ => return,
        }
    }
}

/// The key of a path in `files` and `mounts`: no leading slash, `/` and `.` replaced by `_`
/// (`/etc/ssh/sshd_config` → `etc_ssh_sshd_config`; `/` → `root`).
pub fn path_key(path: &str) -> String {
    let trimmed = path.trim_start_matches('/');
    if trimmed.is_empty() {
        return "root".into();
    }
    trimmed.replace(['/', '.'], "_")
}

/// A file mode as the 4-digit octal string of its permission bits (`0640`).
pub fn format_mode(mode: u32) -> String {
    format!("{:04o}", mode & 0o7777)
}

/// Parses `/proc/mounts` into `{key: {device, type, options: [...]}}` (see [`path_key`]).
pub fn parse_mounts(text: &str) -> Map<String, Value> {
    let mut mounts = Map::new();
    for line in text.lines() {
        let fields: Vec<&str> = line.split_whitespace().collect();
        if fields.len() < 4 {
            continue;
        }
        // /proc/mounts escapes spaces in paths as \040.
        let path = fields[1].replace("\\040", " ");
        mounts.insert(
            path_key(&path),
            json!({"path": path, "device": fields[0], "type": fields[2],
                   "options": fields[3].split(',').collect::<Vec<_>>()}),
        );
    }
    mounts
}

/// A socket of `/proc/net/{tcp,tcp6,udp,udp6}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Socket {
    pub address: String,
    pub port: u16,
    /// The kernel's state number (0x0A = TCP LISTEN, 0x07 = UDP unconnected).
    pub state: u8,
    pub uid: u32,
    pub inode: u64,
}

/// Parses one `/proc/net/tcp`-style table (IPv4 or IPv6 by the address width).
pub fn parse_proc_net(text: &str) -> Vec<Socket> {
    text.lines()
        .skip(1)
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let (address, port) = fields.get(1)?.split_once(':')?;
            Some(Socket {
                address: decode_address(address)?,
                port: u16::from_str_radix(port, 16).ok()?,
                state: u8::from_str_radix(fields.get(3)?, 16).ok()?,
                uid: fields.get(7)?.parse().ok()?,
                inode: fields.get(9)?.parse().ok()?,
            })
        })
        .collect()
}

/// Decodes the kernel's hex address: 4 bytes (IPv4) or 16 bytes (IPv6), each 32-bit word in
/// host (little-endian) order.
fn decode_address(hex: &str) -> Option<String> {
    let words: Vec<u32> = (0..hex.len() / 8)
        .map(|index| u32::from_str_radix(hex.get(index * 8..index * 8 + 8)?, 16).ok())
        .collect::<Option<_>>()?;
    let bytes: Vec<u8> = words.iter().flat_map(|word| word.to_le_bytes()).collect();
    match bytes.len() {
        4 => Some(std::net::Ipv4Addr::new(bytes[0], bytes[1], bytes[2], bytes[3]).to_string()),
        16 => {
            let array: [u8; 16] = bytes.try_into().ok()?;
            Some(std::net::Ipv6Addr::from(array).to_string())
        }
        _ => None,
    }
}

/// The inode of a `/proc/<pid>/fd/<n>` link target `socket:[12345]`.
pub fn socket_inode(link: &str) -> Option<u64> {
    link.strip_prefix("socket:[")?
        .strip_suffix(']')?
        .parse()
        .ok()
}

/// Parses dpkg's status file into installed package name → version.
pub fn parse_dpkg_status(text: &str) -> Map<String, Value> {
    let mut packages = Map::new();
    for stanza in text.split("\n\n") {
        let mut name = None;
        let mut version = None;
        let mut installed = false;
        for line in stanza.lines() {
            if let Some(value) = line.strip_prefix("Package: ") {
                name = Some(value.trim());
            } else if let Some(value) = line.strip_prefix("Version: ") {
                version = Some(value.trim());
            } else if let Some(value) = line.strip_prefix("Status: ") {
                installed = value.trim().ends_with(" installed");
            }
        }
        if let (Some(name), Some(version), true) = (name, version, installed) {
            packages.insert(name.to_owned(), json!(version));
        }
    }
    packages
}

/// Parses `rpm -qa --queryformat '%{NAME} %{VERSION}-%{RELEASE}\n'`.
pub fn parse_rpm_list(text: &str) -> Map<String, Value> {
    text.lines()
        .filter_map(|line| {
            let (name, version) = line.trim().split_once(' ')?;
            Some((name.to_owned(), json!(version)))
        })
        .collect()
}

/// Parses `/etc/os-release` (`KEY=value`, values maybe quoted) into lower-case keys.
pub fn parse_os_release(text: &str) -> Map<String, Value> {
    text.lines()
        .filter_map(|line| {
            let (key, value) = line.trim().split_once('=')?;
            let value = value.trim().trim_matches('"').trim_matches('\'');
            Some((key.to_ascii_lowercase(), json!(value)))
        })
        .collect()
}

/// The policy of the filter table's input hook in `nft list ruleset` output; `None` when
/// no input chain exists. Also whether any rule or chain is loaded at all.
pub fn parse_nft_ruleset(text: &str) -> (bool, Option<String>) {
    let loaded = text
        .lines()
        .any(|line| line.trim_start().starts_with("chain "));
    let mut in_input_chain = false;
    for line in text.lines() {
        let line = line.trim();
        if line.starts_with("chain ") {
            in_input_chain = false;
        }
        if line.contains("hook input") {
            in_input_chain = true;
        }
        if in_input_chain && let Some(index) = line.find("policy ") {
            let policy = line[index + 7..]
                .trim_end_matches(';')
                .split(|c: char| c == ';' || c.is_whitespace())
                .next()
                .unwrap_or_default()
                .to_ascii_uppercase();
            return (loaded, Some(policy));
        }
    }
    (loaded, None)
}

/// The INPUT policy of `iptables -S` output, and whether any rule besides the built-in chain
/// policies is loaded.
pub fn parse_iptables_rules(text: &str) -> (bool, Option<String>) {
    let mut policy = None;
    let mut rules = false;
    for line in text.lines() {
        let fields: Vec<&str> = line.split_whitespace().collect();
        match fields.as_slice() {
            ["-P", "INPUT", value, ..] => policy = Some((*value).to_owned()),
            ["-A", ..] => rules = true,
            _ => {}
        }
    }
    let enabled = rules || policy.as_deref().is_some_and(|policy| policy != "ACCEPT");
    (enabled, policy)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sshd_keywords_split_into_words() {
        assert_eq!(sshd_property("permitrootlogin"), "permit_root_login");
        assert_eq!(sshd_property("x11forwarding"), "x11_forwarding");
        assert_eq!(sshd_property("macs"), "macs");
        assert_eq!(
            sshd_property("GSSAPIAuthentication"),
            "gssapi_authentication"
        );
        assert_eq!(sshd_property("unknownthing"), "unknownthing");
    }

    #[test]
    fn sshd_times_convert_to_seconds() {
        assert_eq!(sshd_seconds("120"), Some(120));
        assert_eq!(sshd_seconds("2m"), Some(120));
        assert_eq!(sshd_seconds("1h30m"), Some(5_400));
        assert_eq!(sshd_seconds("soon"), None);
    }

    #[test]
    fn first_sshd_value_wins_and_match_blocks_are_ignored() {
        let settings = parse_sshd_config(
            "PermitRootLogin no\nPermitRootLogin yes\nLoginGraceTime 1m\nMatch User bob\n  PasswordAuthentication no\n",
        );
        assert_eq!(settings["permit_root_login"], "no");
        assert_eq!(settings["login_grace_time"], 60);
        // The Match block does not count; the default does.
        assert_eq!(settings["password_authentication"], "yes");
    }

    #[test]
    fn proc_net_addresses_decode() {
        let table = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n   0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 4242 1 0 100 0 0 10 0\n";
        let sockets = parse_proc_net(table);
        assert_eq!(sockets[0].address, "127.0.0.1");
        assert_eq!(sockets[0].port, 8080);
        assert_eq!(sockets[0].state, 0x0A);
        assert_eq!(sockets[0].inode, 4242);
        assert_eq!(
            decode_address("00000000000000000000000001000000").as_deref(),
            Some("::1")
        );
    }

    #[test]
    fn nested_insert_and_path_keys() {
        let mut map = Map::new();
        insert_nested(&mut map, "net.ipv4.ip_forward", json!(0));
        insert_nested(&mut map, "net.ipv4.conf.all.rp_filter", json!(1));
        assert_eq!(map["net"]["ipv4"]["ip_forward"], 0);
        assert_eq!(map["net"]["ipv4"]["conf"]["all"]["rp_filter"], 1);
        assert_eq!(path_key("/etc/ssh/sshd_config"), "etc_ssh_sshd_config");
        assert_eq!(path_key("/"), "root");
        assert_eq!(format_mode(0o100640), "0640");
    }

    #[test]
    fn firewall_policies_are_read() {
        let (enabled, policy) = parse_nft_ruleset(
            "table inet filter {\n\tchain input {\n\t\ttype filter hook input priority filter; policy drop;\n\t}\n}\n",
        );
        assert!(enabled);
        assert_eq!(policy.as_deref(), Some("DROP"));
        let (enabled, policy) = parse_iptables_rules("-P INPUT ACCEPT\n-P FORWARD ACCEPT\n");
        assert!(!enabled);
        assert_eq!(policy.as_deref(), Some("ACCEPT"));
    }
}
