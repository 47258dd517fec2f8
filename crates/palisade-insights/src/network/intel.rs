//! Threat intelligence: feeds of addresses and networks with a category and a confidence, and the
//! prefix index the detectors look every flow's addresses up in.
//!
//! # Feeds
//! [`parse_feed`] reads three formats ([`FeedFormat`]):
//! - **text**: one address or CIDR per line; `#` starts a comment; blank lines are skipped. The
//!   category and confidence are the feed's defaults ([`FeedSpec`]).
//! - **CSV**: `indicator[,category[,confidence[,…]]]`, with an optional header row naming the
//!   columns (`ip`/`address`/`indicator`/`cidr`/`network`, `category`/`type`/`label`,
//!   `confidence`/`score`), double-quoted fields allowed.
//! - **STIX 2.1**: a bundle (or a bare list) of `indicator` objects whose `pattern` compares
//!   `ipv4-addr:value` / `ipv6-addr:value` with `=` or `ISSUBSET`; every such comparison in a
//!   pattern becomes one entry. The category comes from `indicator_types`/`labels`
//!   (`anonymization` → `anonymizer`, `malicious-activity` → `malware`, `compromised` → `bot`,
//!   otherwise the first label), the confidence from `confidence`. Revoked indicators are skipped.
//!
//! Categories are lower-cased; `scanner`, `malware`, `bot`, `miner` and `anonymizer` are the
//! well-known ones (with aliases such as `botnet`, `tor`, `cryptominer`), any other label is kept
//! as written.
//!
//! # Index
//! [`ThreatIntel`] flattens all networks of all feeds into disjoint address ranges (where networks
//! nest, the most specific wins; the same network in two feeds keeps the more confident entry) and
//! stores the range starts as sorted `u32` (IPv4) and `u128` (IPv6) arrays. IPv4 lookups first jump
//! through a 65,536-slot table indexed by the top 16 address bits, so a lookup in a million-entry
//! feed is a handful of comparisons in one or two cache lines instead of a twenty-step binary
//! search. This is hand-written rather than taken from a trie crate because flat sorted arrays are
//! both smaller (12 bytes per range) and faster to probe than pointer-based tries, and building
//! them is a sort.
//!
//! # Replacing feeds while running
//! A built [`ThreatIntel`] is immutable; [`SharedThreatIntel`] holds the current one behind an
//! `Arc` that a server swaps atomically ([`SharedThreatIntel::replace`]) while detectors keep using
//! the snapshot they loaded. A `std::sync::RwLock` around the `Arc` is enough here: readers hold it
//! only to clone the `Arc` once per batch, so `arc-swap`'s lock-free reads would buy nothing.

use std::fmt;
use std::io::BufRead;
use std::net::IpAddr;
use std::sync::{Arc, PoisonError, RwLock};

use ipnet::IpNet;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// One indicator of one feed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IntelIndicator {
    /// The address (as a /32 or /128) or network.
    pub network: IpNet,
    /// Normalised category (`scanner`, `malware`, `bot`, `miner`, `anonymizer` or a user label).
    pub category: String,
    /// Confidence, 0 to 100.
    pub confidence: u8,
}

/// What a lookup found: the entry that covers the address.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IntelMatch {
    /// The listed network (a single address is a /32 or /128).
    pub indicator: IpNet,
    /// The entry's category.
    pub category: String,
    /// The entry's confidence, 0 to 100.
    pub confidence: u8,
    /// The feed the entry came from.
    pub feed: String,
}

/// The format of a feed file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FeedFormat {
    /// One address or CIDR per line.
    Text,
    /// Comma-separated `indicator,category,confidence`.
    Csv,
    /// A STIX 2.1 bundle of indicators.
    Stix,
}

impl FeedFormat {
    /// Guesses the format from a file name and the first bytes: JSON is STIX, a `.csv` name or a
    /// comma on the first data line is CSV, anything else is text.
    pub fn guess(file_name: &str, head: &[u8]) -> Self {
        let first = head.iter().find(|byte| !byte.is_ascii_whitespace());
        if matches!(first, Some(b'{' | b'[')) {
            return Self::Stix;
        }
        if file_name.to_ascii_lowercase().ends_with(".csv") {
            return Self::Csv;
        }
        let first_data_line = head
            .split(|byte| *byte == b'\n')
            .find(|line| !line.iter().all(u8::is_ascii_whitespace) && !line.starts_with(b"#"));
        if first_data_line.is_some_and(|line| line.contains(&b',')) {
            Self::Csv
        } else {
            Self::Text
        }
    }
}

/// How to read a feed: its name and the defaults for entries that do not say.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FeedSpec {
    /// The feed's name, shown in findings.
    pub name: String,
    /// The format.
    pub format: FeedFormat,
    /// Category of entries that name none (default `malware`).
    #[serde(default = "default_category")]
    pub default_category: String,
    /// Confidence of entries that give none (default 80).
    #[serde(default = "default_confidence")]
    pub default_confidence: u8,
}

fn default_category() -> String {
    "malware".to_owned()
}

fn default_confidence() -> u8 {
    80
}

/// One line or object of a feed that could not be read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, thiserror::Error)]
#[error("{feed}:{line}: {message}")]
pub struct FeedError {
    /// The feed's name.
    pub feed: String,
    /// 1-based line (text, CSV) or 1-based object position (STIX).
    pub line: u64,
    /// What is wrong.
    pub message: String,
}

/// A parsed feed: its good indicators and its bad lines.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ParsedFeed {
    /// The indicators, in input order.
    pub indicators: Vec<IntelIndicator>,
    /// Lines that could not be read (they are skipped).
    pub errors: Vec<FeedError>,
}

/// Reads a feed. Bad lines are reported and skipped; an unreadable input is reported once.
pub fn parse_feed<R: BufRead>(mut reader: R, spec: &FeedSpec) -> ParsedFeed {
    let mut parsed = ParsedFeed::default();
    let report = |parsed: &mut ParsedFeed, line: u64, message: String| {
        parsed.errors.push(FeedError {
            feed: spec.name.clone(),
            line,
            message,
        });
    };
    if spec.format == FeedFormat::Stix {
        let mut text = Vec::new();
        if let Err(error) = reader.read_to_end(&mut text) {
            report(&mut parsed, 1, format!("read failed: {error}"));
            return parsed;
        }
        match serde_json::from_slice::<Value>(&text) {
            Ok(document) => parse_stix(&document, spec, &mut parsed),
            Err(error) => report(
                &mut parsed,
                error.line() as u64,
                format!("invalid JSON: {error}"),
            ),
        }
        return parsed;
    }
    let mut columns = CsvColumns::default();
    let mut line = String::new();
    let mut line_number = 0u64;
    loop {
        line.clear();
        match reader.read_line(&mut line) {
            Ok(0) => break,
            Ok(_) => line_number += 1,
            Err(error) => {
                report(
                    &mut parsed,
                    line_number + 1,
                    format!("read failed: {error}"),
                );
                break;
            }
        }
        let content = line.split('#').next().unwrap_or_default().trim();
        if content.is_empty() {
            continue;
        }
        let outcome = match spec.format {
            FeedFormat::Csv => {
                let may_be_header = line_number == 1 || !columns.header_seen;
                parse_csv_line(content, spec, &mut columns, may_be_header)
            }
            FeedFormat::Text | FeedFormat::Stix => parse_network(content).map(|network| {
                Some(IntelIndicator {
                    network,
                    category: normalise_category(&spec.default_category),
                    confidence: spec.default_confidence.min(100),
                })
            }),
        };
        match outcome {
            Ok(Some(indicator)) => parsed.indicators.push(indicator),
            Ok(None) => {}
            Err(message) => report(&mut parsed, line_number, message),
        }
    }
    parsed
}

/// Parses `198.51.100.7`, `198.51.100.0/24` or an IPv6 equivalent; host bits are cleared.
pub fn parse_network(text: &str) -> Result<IpNet, String> {
    let text = text.trim();
    if let Ok(network) = text.parse::<IpNet>() {
        return Ok(network.trunc());
    }
    text.parse::<IpAddr>()
        .map(IpNet::from)
        .map_err(|_| format!("`{text}` is not an IP address or CIDR network"))
}

/// Lower-cases a category and folds the usual aliases onto the five well-known names.
pub fn normalise_category(category: &str) -> String {
    let lowered = category.trim().to_ascii_lowercase();
    match lowered.as_str() {
        "scanners" | "scanning" | "recon" | "reconnaissance" => "scanner".to_owned(),
        "malware_server" | "c2" | "c&c" | "cnc" | "command-and-control" | "malicious-activity" => {
            "malware".to_owned()
        }
        "bots" | "botnet" | "compromised" => "bot".to_owned(),
        "miners" | "cryptominer" | "mining" | "coinminer" => "miner".to_owned(),
        "anonymiser" | "anonym" | "anonymization" | "tor" | "proxy" | "vpn" => {
            "anonymizer".to_owned()
        }
        _ => lowered,
    }
}

#[derive(Debug, Default)]
struct CsvColumns {
    header_seen: bool,
    indicator: usize,
    category: Option<usize>,
    confidence: Option<usize>,
}

/// Parses one CSV line; `Ok(None)` for a header line (which sets the columns).
fn parse_csv_line(
    line: &str,
    spec: &FeedSpec,
    columns: &mut CsvColumns,
    may_be_header: bool,
) -> Result<Option<IntelIndicator>, String> {
    let fields = split_csv(line);
    if fields.is_empty() {
        return Ok(None);
    }
    if !columns.header_seen && may_be_header && parse_network(&fields[0]).is_err() {
        // A first row whose first field is no address is a header naming the columns.
        let position = |names: &[&str]| {
            fields
                .iter()
                .position(|field| names.contains(&field.trim().to_ascii_lowercase().as_str()))
        };
        columns.indicator = position(&["ip", "address", "indicator", "cidr", "network", "ip_address", "value"])
            .ok_or_else(|| format!("CSV header `{line}` names no address column (ip, address, indicator, cidr, network)"))?;
        columns.category = position(&["category", "type", "label", "threat", "tag"]);
        columns.confidence = position(&["confidence", "score", "reliability"]);
        columns.header_seen = true;
        return Ok(None);
    }
    if !columns.header_seen {
        columns.header_seen = true;
        *columns = CsvColumns {
            header_seen: true,
            indicator: 0,
            category: Some(1),
            confidence: Some(2),
        };
    }
    let field = |index: Option<usize>| {
        index
            .and_then(|index| fields.get(index))
            .map(|value| value.trim())
            .filter(|value| !value.is_empty())
    };
    let indicator_text = field(Some(columns.indicator))
        .ok_or_else(|| format!("column {} (address) is empty", columns.indicator + 1))?;
    let network = parse_network(indicator_text)?;
    let category = field(columns.category).map_or_else(
        || normalise_category(&spec.default_category),
        normalise_category,
    );
    let confidence = match field(columns.confidence) {
        None => spec.default_confidence.min(100),
        Some(text) => parse_confidence(text)
            .ok_or_else(|| format!("confidence `{text}` is not a number from 0 to 100"))?,
    };
    Ok(Some(IntelIndicator {
        network,
        category,
        confidence,
    }))
}

/// Accepts `0`–`100`, or a fraction `0.0`–`1.0` (some feeds publish probabilities).
fn parse_confidence(text: &str) -> Option<u8> {
    if let Ok(whole) = text.parse::<u8>() {
        return (whole <= 100).then_some(whole);
    }
    let fraction: f64 = text.parse().ok()?;
    ((0.0..=1.0).contains(&fraction)).then(|| (fraction * 100.0).round() as u8)
}

/// Splits one CSV line, honouring double quotes (`""` inside quotes is a quote).
fn split_csv(line: &str) -> Vec<String> {
    let mut fields = Vec::new();
    let mut current = String::new();
    let mut in_quotes = false;
    let mut characters = line.chars().peekable();
    while let Some(character) = characters.next() {
        match (character, in_quotes) {
            ('"', true) if characters.peek() == Some(&'"') => {
                current.push('"');
                characters.next();
            }
            ('"', _) => in_quotes = !in_quotes,
            (',', false) => fields.push(std::mem::take(&mut current)),
            (other, _) => current.push(other),
        }
    }
    fields.push(current);
    fields
}

fn parse_stix(document: &Value, spec: &FeedSpec, parsed: &mut ParsedFeed) {
    let objects: &[Value] = match document {
        Value::Object(bundle) => match bundle.get("objects") {
            Some(Value::Array(objects)) => objects,
            _ if bundle.get("type").and_then(Value::as_str) == Some("indicator") => {
                std::slice::from_ref(document)
            }
            _ => {
                parsed.errors.push(FeedError {
                    feed: spec.name.clone(),
                    line: 1,
                    message: "STIX bundle has no `objects` array".into(),
                });
                return;
            }
        },
        Value::Array(objects) => objects,
        _ => {
            parsed.errors.push(FeedError {
                feed: spec.name.clone(),
                line: 1,
                message: "expected a STIX bundle object".into(),
            });
            return;
        }
    };
    for (index, object) in objects.iter().enumerate() {
        if object.get("type").and_then(Value::as_str) != Some("indicator") {
            continue;
        }
        if object.get("revoked").and_then(Value::as_bool) == Some(true) {
            continue;
        }
        let position = index as u64 + 1;
        let Some(pattern) = object.get("pattern").and_then(Value::as_str) else {
            parsed.errors.push(FeedError {
                feed: spec.name.clone(),
                line: position,
                message: format!("indicator {position} has no `pattern`"),
            });
            continue;
        };
        let category =
            stix_category(object).unwrap_or_else(|| normalise_category(&spec.default_category));
        let confidence = object
            .get("confidence")
            .and_then(Value::as_u64)
            .map_or(spec.default_confidence, |confidence| {
                confidence.min(100) as u8
            });
        for value in stix_address_values(pattern) {
            match parse_network(value) {
                Ok(network) => parsed.indicators.push(IntelIndicator {
                    network,
                    category: category.clone(),
                    confidence,
                }),
                Err(message) => parsed.errors.push(FeedError {
                    feed: spec.name.clone(),
                    line: position,
                    message: format!("indicator {position}: {message}"),
                }),
            }
        }
    }
}

fn stix_category(indicator: &Value) -> Option<String> {
    let labels = ["indicator_types", "labels"]
        .iter()
        .filter_map(|key| indicator.get(*key).and_then(Value::as_array))
        .flatten()
        .filter_map(Value::as_str);
    let mut first = None;
    for label in labels {
        let normalised = normalise_category(label);
        if matches!(
            normalised.as_str(),
            "scanner" | "malware" | "bot" | "miner" | "anonymizer"
        ) {
            return Some(normalised);
        }
        if first.is_none()
            && !matches!(
                normalised.as_str(),
                "unknown" | "anomalous-activity" | "attribution" | "benign"
            )
        {
            first = Some(normalised);
        }
    }
    first
}

/// Returns the quoted values compared with `ipv4-addr:value` / `ipv6-addr:value` in a STIX pattern.
fn stix_address_values(pattern: &str) -> Vec<&str> {
    let mut values = Vec::new();
    let mut rest = pattern;
    while let Some(found) = rest.find("-addr:value") {
        let before = &rest[..found];
        let after = &rest[found + "-addr:value".len()..];
        let is_ip = before.ends_with("ipv4") || before.ends_with("ipv6");
        rest = after;
        if !is_ip {
            continue;
        }
        let operator_and_value = after.trim_start();
        let Some(value_part) = operator_and_value
            .strip_prefix('=')
            .or_else(|| operator_and_value.strip_prefix("ISSUBSET"))
        else {
            continue;
        };
        let value_part = value_part.trim_start();
        if let Some(quoted) = value_part.strip_prefix('\'')
            && let Some(end) = quoted.find('\'')
        {
            values.push(&quoted[..end]);
            rest = &quoted[end..];
        }
    }
    values
}

pub(crate) use palisade_model::flow::{address_key, key_address};

#[derive(Debug, Clone)]
struct IndexEntry {
    network: IpNet,
    category: u32,
    confidence: u8,
    feed: u32,
}

/// The built, immutable intel index. Build it with [`ThreatIntel::build`].
#[derive(Clone, Default)]
pub struct ThreatIntel {
    v4_starts: Vec<u32>,
    v4_ends: Vec<u32>,
    v4_entries: Vec<u32>,
    /// `v4_buckets[b]` = first range index whose start is ≥ `b << 16`; 65,537 slots.
    v4_buckets: Vec<u32>,
    /// One bit per IPv4 /16, set when a range overlaps it (1,024 words). Every flow looks up
    /// both its addresses, and most of them lie in no listed /16: this 8 KB table answers for
    /// them without touching the 256 KB bucket table (which then competes less with the
    /// detectors' state for the caches).
    v4_listed_16: Vec<u64>,
    v6_starts: Vec<u128>,
    v6_ends: Vec<u128>,
    v6_entries: Vec<u32>,
    entries: Vec<IndexEntry>,
    categories: Vec<Arc<str>>,
    feeds: Vec<Arc<str>>,
}

impl fmt::Debug for ThreatIntel {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter
            .debug_struct("ThreatIntel")
            .field("entries", &self.entries.len())
            .field("ipv4_ranges", &self.v4_starts.len())
            .field("ipv6_ranges", &self.v6_starts.len())
            .field("feeds", &self.feeds)
            .finish()
    }
}

impl ThreatIntel {
    /// Builds the index from feeds (name and indicators).
    pub fn build<'feed, I>(feeds: I) -> Self
    where
        I: IntoIterator<Item = (&'feed str, &'feed [IntelIndicator])>,
    {
        let mut intel = Self::default();
        let mut category_ids: std::collections::HashMap<String, u32> =
            std::collections::HashMap::new();
        let mut raw: Vec<IndexEntry> = Vec::new();
        for (feed_name, indicators) in feeds {
            let feed_id = intel.feeds.len() as u32;
            intel.feeds.push(Arc::from(feed_name));
            for indicator in indicators {
                let next_id = intel.categories.len() as u32;
                let category = *category_ids
                    .entry(indicator.category.clone())
                    .or_insert_with(|| {
                        intel
                            .categories
                            .push(Arc::from(indicator.category.as_str()));
                        next_id
                    });
                raw.push(IndexEntry {
                    network: indicator.network.trunc(),
                    category,
                    confidence: indicator.confidence,
                    feed: feed_id,
                });
            }
        }
        // Same network twice: keep the most confident (then the first) entry.
        raw.sort_by(|left, right| {
            network_bounds(&left.network)
                .0
                .cmp(&network_bounds(&right.network).0)
                .then(left.network.prefix_len().cmp(&right.network.prefix_len()))
                .then(right.confidence.cmp(&left.confidence))
        });
        raw.dedup_by(|later, kept| later.network == kept.network);
        intel.entries = raw;
        let ranges = flatten(&intel.entries);
        for (start, end, entry) in ranges {
            let both_v4 = start >> 32 == 0xffff && end >> 32 == 0xffff;
            if both_v4 {
                intel.v4_starts.push(start as u32);
                intel.v4_ends.push(end as u32);
                intel.v4_entries.push(entry);
            } else {
                intel.v6_starts.push(start);
                intel.v6_ends.push(end);
                intel.v6_entries.push(entry);
            }
        }
        intel.v4_buckets = Vec::with_capacity(65_537);
        let mut range_index = 0usize;
        for bucket in 0..=65_536u64 {
            while range_index < intel.v4_starts.len()
                && u64::from(intel.v4_starts[range_index]) < bucket << 16
            {
                range_index += 1;
            }
            intel.v4_buckets.push(range_index as u32);
        }
        // The ranges are disjoint, so marking their /16s is at most 65,536 steps plus one per
        // range.
        intel.v4_listed_16 = vec![0u64; 1024];
        for (start, end) in intel.v4_starts.iter().zip(&intel.v4_ends) {
            for slash16 in (start >> 16)..=(end >> 16) {
                intel.v4_listed_16[slash16 as usize / 64] |= 1 << (slash16 % 64);
            }
        }
        intel
    }

    /// Number of indicators after de-duplication.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// `true` when no feed has any indicator (lookups then cost one branch).
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Names of the feeds, in build order.
    pub fn feed_names(&self) -> impl Iterator<Item = &str> {
        self.feeds.iter().map(|feed| &**feed)
    }

    /// Returns the most specific entry covering `address`.
    pub fn lookup(&self, address: IpAddr) -> Option<IntelMatch> {
        self.lookup_index(address).map(|index| self.match_at(index))
    }

    /// Returns the index of the covering entry (cheap; no allocation).
    pub(crate) fn lookup_index(&self, address: IpAddr) -> Option<u32> {
        self.lookup_key(address_key(address))
    }

    /// As [`ThreatIntel::lookup_index`], for an address key (`palisade_model::flow::address_key`).
    #[inline]
    pub(crate) fn lookup_key(&self, key: u128) -> Option<u32> {
        if self.entries.is_empty() {
            return None;
        }
        if key >> 32 == 0xffff {
            // The low 32 bits are the IPv4 address.
            self.lookup_v4(key as u32)
        } else {
            let after = self.v6_starts.partition_point(|start| *start <= key);
            let candidate = after.checked_sub(1)?;
            (self.v6_ends[candidate] >= key).then(|| self.v6_entries[candidate])
        }
    }

    #[inline]
    fn lookup_v4(&self, address: u32) -> Option<u32> {
        if self.v4_starts.is_empty() {
            return None;
        }
        let bucket = (address >> 16) as usize;
        if self.v4_listed_16[bucket / 64] >> (bucket % 64) & 1 == 0 {
            return None;
        }
        let low = self.v4_buckets[bucket] as usize;
        let high = self.v4_buckets[bucket + 1] as usize;
        // Last range starting at or before the address: inside this bucket, or the last range of
        // an earlier bucket (a wide network reaching into this one).
        let within = self.v4_starts[low..high].partition_point(|start| *start <= address);
        let candidate = (low + within).checked_sub(1)?;
        (self.v4_ends[candidate] >= address).then(|| self.v4_entries[candidate])
    }

    pub(crate) fn match_at(&self, index: u32) -> IntelMatch {
        let entry = &self.entries[index as usize];
        IntelMatch {
            indicator: entry.network,
            category: self.categories[entry.category as usize].to_string(),
            confidence: entry.confidence,
            feed: self.feeds[entry.feed as usize].to_string(),
        }
    }

    pub(crate) fn confidence_at(&self, index: u32) -> u8 {
        self.entries[index as usize].confidence
    }
}

/// Inclusive key bounds of a network in the shared 128-bit key space.
fn network_bounds(network: &IpNet) -> (u128, u128) {
    (
        address_key(network.network()),
        address_key(network.broadcast()),
    )
}

/// Turns sorted, de-duplicated networks (by start, then wider first) into disjoint ranges where
/// the most specific network wins. Networks either nest or are disjoint, so a stack suffices.
fn flatten(entries: &[IndexEntry]) -> Vec<(u128, u128, u32)> {
    let mut ranges = Vec::with_capacity(entries.len());
    // Stack of (end, entry index) of open networks; `cursor` = first key not yet emitted.
    let mut stack: Vec<(u128, u32)> = Vec::new();
    let mut cursor: u128 = 0;
    let emit = |ranges: &mut Vec<(u128, u128, u32)>, from: u128, to: u128, entry: u32| {
        if from <= to {
            ranges.push((from, to, entry));
        }
    };
    for (index, entry) in entries.iter().enumerate() {
        let (start, end) = network_bounds(&entry.network);
        // Close networks that end before this one starts.
        while let Some(&(open_end, open_entry)) = stack.last() {
            if open_end >= start {
                break;
            }
            emit(&mut ranges, cursor, open_end, open_entry);
            cursor = open_end.saturating_add(1);
            stack.pop();
        }
        if let Some(&(_, parent)) = stack.last()
            && start > 0
        {
            emit(&mut ranges, cursor, start - 1, parent);
        }
        cursor = start;
        stack.push((end, index as u32));
    }
    while let Some((open_end, open_entry)) = stack.pop() {
        if cursor <= open_end {
            emit(&mut ranges, cursor, open_end, open_entry);
        }
        if open_end == u128::MAX {
            break;
        }
        cursor = open_end + 1;
    }
    ranges
}

/// The current [`ThreatIntel`], replaceable while detectors run.
#[derive(Debug, Default)]
pub struct SharedThreatIntel {
    current: RwLock<Arc<ThreatIntel>>,
}

impl SharedThreatIntel {
    /// Starts with `intel`.
    pub fn new(intel: Arc<ThreatIntel>) -> Self {
        Self {
            current: RwLock::new(intel),
        }
    }

    /// Returns the current snapshot (callers keep it for a batch).
    pub fn load(&self) -> Arc<ThreatIntel> {
        // A poisoned lock cannot hold a half-written value: the only write is an `Arc` store.
        Arc::clone(&self.current.read().unwrap_or_else(PoisonError::into_inner))
    }

    /// Makes `intel` current; batches already running finish with the old snapshot.
    pub fn replace(&self, intel: Arc<ThreatIntel>) -> Arc<ThreatIntel> {
        let mut guard = self.current.write().unwrap_or_else(PoisonError::into_inner);
        std::mem::replace(&mut *guard, intel)
    }
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use super::*;

    fn indicator(network: &str, category: &str, confidence: u8) -> IntelIndicator {
        IntelIndicator {
            network: parse_network(network).expect("valid"),
            category: category.into(),
            confidence,
        }
    }

    fn spec(format: FeedFormat) -> FeedSpec {
        FeedSpec {
            name: "test".into(),
            format,
            default_category: "scanner".into(),
            default_confidence: 70,
        }
    }

    #[test]
    fn most_specific_network_wins_and_gaps_stay_clean() {
        let feed = [
            indicator("10.0.0.0/8", "bot", 50),
            indicator("10.1.0.0/16", "malware", 60),
            indicator("10.1.2.3", "miner", 90),
            indicator("11.0.0.0/8", "scanner", 40),
            indicator("2001:db8::/32", "anonymizer", 30),
            indicator("2001:db8::1", "malware", 99),
        ];
        let intel = ThreatIntel::build([("f", &feed[..])]);
        let category = |text: &str| {
            intel
                .lookup(text.parse().expect("valid"))
                .map(|found| found.category.to_string())
        };
        assert_eq!(category("10.1.2.3").as_deref(), Some("miner"));
        assert_eq!(category("10.1.2.4").as_deref(), Some("malware"));
        assert_eq!(category("10.1.255.255").as_deref(), Some("malware"));
        assert_eq!(category("10.2.0.0").as_deref(), Some("bot"));
        assert_eq!(category("10.0.0.0").as_deref(), Some("bot"));
        assert_eq!(category("10.255.255.255").as_deref(), Some("bot"));
        assert_eq!(category("11.200.0.1").as_deref(), Some("scanner"));
        assert_eq!(category("9.255.255.255"), None);
        assert_eq!(category("12.0.0.0"), None);
        assert_eq!(category("2001:db8::1").as_deref(), Some("malware"));
        assert_eq!(category("2001:db8::2").as_deref(), Some("anonymizer"));
        assert_eq!(category("2001:db9::"), None);
        assert_eq!(category("::ffff:10.1.2.3").as_deref(), Some("miner"));
    }

    #[test]
    fn index_agrees_with_a_linear_scan_on_random_feeds() {
        use rand::{Rng, SeedableRng};
        let mut random = rand::rngs::StdRng::seed_from_u64(7);
        let mut feed = Vec::new();
        for _ in 0..2000 {
            let prefix = random.gen_range(8..=32u8);
            let address = Ipv4Addr::from(random.gen_range(0x0a00_0000u32..0x0c00_0000));
            let network = IpNet::new(IpAddr::V4(address), prefix)
                .expect("valid prefix")
                .trunc();
            feed.push(IntelIndicator {
                network,
                category: format!("c{prefix}"),
                confidence: random.gen_range(0..=100),
            });
        }
        let intel = ThreatIntel::build([("random", &feed[..])]);
        for _ in 0..20_000 {
            let address = IpAddr::V4(Ipv4Addr::from(
                random.gen_range(0x09f0_0000u32..0x0c10_0000),
            ));
            let expected = feed
                .iter()
                .filter(|entry| entry.network.contains(&address))
                .max_by_key(|entry| (entry.network.prefix_len(), entry.confidence))
                .map(|entry| entry.network);
            assert_eq!(
                intel.lookup(address).map(|found| found.indicator),
                expected,
                "{address}"
            );
        }
    }

    #[test]
    fn duplicate_networks_keep_the_most_confident_entry_across_feeds() {
        let low = [indicator("198.51.100.7", "scanner", 20)];
        let high = [indicator("198.51.100.7", "bot", 90)];
        let intel = ThreatIntel::build([("low", &low[..]), ("high", &high[..])]);
        let found = intel
            .lookup("198.51.100.7".parse().expect("valid"))
            .expect("listed");
        assert_eq!(
            (
                found.category.as_str(),
                found.confidence,
                found.feed.as_str()
            ),
            ("bot", 90, "high")
        );
        assert_eq!(intel.len(), 1);
    }

    #[test]
    fn whole_address_space_networks_do_not_overflow() {
        let feed = [
            indicator("::/0", "malware", 10),
            indicator("0.0.0.0/0", "bot", 10),
            indicator("255.255.255.255", "miner", 10),
        ];
        let intel = ThreatIntel::build([("all", &feed[..])]);
        assert_eq!(
            intel
                .lookup("ffff::1".parse().expect("valid"))
                .map(|found| found.category.to_string())
                .as_deref(),
            Some("malware")
        );
        assert_eq!(
            intel
                .lookup("1.2.3.4".parse().expect("valid"))
                .map(|found| found.category.to_string())
                .as_deref(),
            Some("bot")
        );
        assert_eq!(
            intel
                .lookup("255.255.255.255".parse().expect("valid"))
                .map(|found| found.category.to_string())
                .as_deref(),
            Some("miner")
        );
    }

    #[test]
    fn text_feed_with_comments_and_a_bad_line() {
        let text = "# scanners\n198.51.100.7\n203.0.113.0/24 # a net\n\nnot-an-ip\n2001:db8::5\n";
        let parsed = parse_feed(text.as_bytes(), &spec(FeedFormat::Text));
        assert_eq!(parsed.indicators.len(), 3);
        assert_eq!(parsed.indicators[0].category, "scanner");
        assert_eq!(parsed.indicators[0].confidence, 70);
        assert_eq!(parsed.errors.len(), 1);
        assert_eq!(parsed.errors[0].line, 5);
    }

    #[test]
    fn csv_feed_with_header_quotes_and_fractions() {
        let text = "confidence,ip,category\n90,198.51.100.7,Botnet\n\"0.5\",\"203.0.113.0/24\",tor\n200,192.0.2.1,bot\n";
        let parsed = parse_feed(text.as_bytes(), &spec(FeedFormat::Csv));
        assert_eq!(parsed.indicators.len(), 2, "{:?}", parsed.errors);
        assert_eq!(
            (
                parsed.indicators[0].category.as_str(),
                parsed.indicators[0].confidence
            ),
            ("bot", 90)
        );
        assert_eq!(
            (
                parsed.indicators[1].category.as_str(),
                parsed.indicators[1].confidence
            ),
            ("anonymizer", 50)
        );
        assert_eq!(parsed.errors[0].line, 4);
        let headerless = parse_feed("198.51.100.9,miner\n".as_bytes(), &spec(FeedFormat::Csv));
        assert_eq!(headerless.indicators[0].category, "miner");
        assert_eq!(headerless.indicators[0].confidence, 70);
    }

    #[test]
    fn stix_bundle_patterns_categories_and_revocation() {
        let bundle = r#"{"type":"bundle","id":"bundle--1","objects":[
          {"type":"indicator","spec_version":"2.1","id":"indicator--1","pattern_type":"stix",
           "pattern":"[ipv4-addr:value = '198.51.100.1'] OR [ipv4-addr:value ISSUBSET '203.0.113.0/24']",
           "indicator_types":["malicious-activity"],"confidence":85},
          {"type":"indicator","id":"indicator--2","pattern":"[ipv6-addr:value = '2001:db8::7']","labels":["tor"]},
          {"type":"indicator","id":"indicator--3","pattern":"[ipv4-addr:value = '192.0.2.9']","revoked":true},
          {"type":"indicator","id":"indicator--4","pattern":"[domain-name:value = 'evil.example']"},
          {"type":"indicator","id":"indicator--5","pattern":"[ipv4-addr:value = '300.1.1.1']"},
          {"type":"malware","id":"malware--1"}]}"#;
        let parsed = parse_feed(bundle.as_bytes(), &spec(FeedFormat::Stix));
        let summary: Vec<(String, &str, u8)> = parsed
            .indicators
            .iter()
            .map(|entry| {
                (
                    entry.network.to_string(),
                    entry.category.as_str(),
                    entry.confidence,
                )
            })
            .collect();
        assert_eq!(
            summary,
            [
                ("198.51.100.1/32".to_owned(), "malware", 85),
                ("203.0.113.0/24".to_owned(), "malware", 85),
                ("2001:db8::7/128".to_owned(), "anonymizer", 70),
            ]
        );
        assert_eq!(parsed.errors.len(), 1);
        assert_eq!(parsed.errors[0].line, 5);
    }

    #[test]
    fn format_guess() {
        assert_eq!(
            FeedFormat::guess("x.json", b"  {\"type\""),
            FeedFormat::Stix
        );
        assert_eq!(FeedFormat::guess("x.csv", b"1.2.3.4"), FeedFormat::Csv);
        assert_eq!(
            FeedFormat::guess("x.txt", b"# c\n1.2.3.4,bot\n"),
            FeedFormat::Csv
        );
        assert_eq!(FeedFormat::guess("x.txt", b"1.2.3.4\n"), FeedFormat::Text);
    }

    #[test]
    fn shared_intel_swaps_while_old_snapshots_live_on() {
        let first = Arc::new(ThreatIntel::build([(
            "a",
            &[indicator("198.51.100.1", "bot", 1)][..],
        )]));
        let shared = SharedThreatIntel::new(Arc::clone(&first));
        let snapshot = shared.load();
        shared.replace(Arc::new(ThreatIntel::default()));
        assert_eq!(snapshot.len(), 1);
        assert!(shared.load().is_empty());
    }

    #[test]
    fn address_keys_round_trip() {
        for text in ["10.0.0.1", "2001:db8::1", "0.0.0.0", "::"] {
            let address: IpAddr = text.parse().expect("valid");
            let back = key_address(address_key(address));
            assert_eq!(back.to_string(), address.to_string());
        }
    }
}
