//! Activity insights: runs a compiled Sigma pack over audit events and turns hits into findings.
//!
//! Work is split in two stages so that the expensive part runs on every core:
//! - [`scan_records`] (stateless, one call per input, any number in parallel) streams an
//!   input's records, lets the pack's literal prefilter skip records no rule can match, parses
//!   and evaluates the rest, and emits detection findings plus the matches that feed
//!   correlations ([`CorrelationInput`]).
//! - [`correlate`] (stateful, sequential) feeds those inputs in time order to the caller's
//!   [`ActivityState`] and emits correlation findings.
//!
//! [`process_batch`] does both for events the caller has already decoded (the server's ingest
//! path). State is explicit: the caller creates an [`ActivityState`], passes it in, and can
//! [`snapshot`](ActivityState::snapshot) it (serde) between batches.

use std::io::BufRead;

use chrono::{DateTime, Utc};
use palisade_logs::audit::{
    AuditDecodeError, AuditDecodeErrorKind, FormatHint, RecordPosition, RecordSplitter,
    effective_hint, normalise, split_failure_to_error,
};
use palisade_model::event::{AuditEvent, AuditSourceFormat};
use palisade_model::finding::Severity;
use palisade_sigma::{
    CompiledPack, CorrelationSnapshot, CorrelationState, MatchScratch, RuleInfo, RuleLevel,
    RuleMatch, SnapshotVersionError,
};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// Where a finding's event was read from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventOrigin {
    /// The input's name (a file path, a batch id).
    pub source: String,
    /// The record's position in it.
    #[serde(flatten)]
    pub position: RecordPosition,
}

/// One hit of a rule, ready to store or print.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ActivityFinding {
    /// The Sigma rule's `id`.
    pub rule_id: String,
    /// The rule's title.
    pub title: String,
    /// The rule's `level`, as written.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub level: Option<RuleLevel>,
    /// Severity derived from the level.
    pub severity: Severity,
    /// When the (last) event happened.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time: Option<DateTime<Utc>>,
    /// Account of the (last) event.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account: Option<String>,
    /// Who acted, in the (last) event.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub initiator: Option<String>,
    /// What was acted on, in the (last) event.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// What to do about it.
    pub remediation: String,
    /// Detection findings: the matched event, as read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event: Option<Value>,
    /// Detection findings: where the event was read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub origin: Option<EventOrigin>,
    /// Correlation findings: the group-by fields and their values.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<Map<String, Value>>,
    /// Correlation findings: the events that made it, oldest first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub events: Vec<Value>,
}

/// Maps a Sigma level to a finding severity (`informational` counts as low; no level: medium).
pub fn severity_of(level: Option<RuleLevel>) -> Severity {
    match level {
        Some(RuleLevel::Informational | RuleLevel::Low) => Severity::Low,
        Some(RuleLevel::Medium) | None => Severity::Medium,
        Some(RuleLevel::High) => Severity::High,
        Some(RuleLevel::Critical) => Severity::Critical,
    }
}

/// The rule's own remediation, or advice built from its description and false positives.
pub fn remediation_of(rule: &RuleInfo) -> String {
    if let Some(remediation) = &rule.remediation {
        return remediation.clone();
    }
    let mut text = String::from("Confirm with the initiator whether this activity was expected");
    if let Some(description) = &rule.description {
        text.push_str(" (rule: ");
        text.push_str(description.trim());
        text.push(')');
    }
    text.push_str(". If it was not, revoke the credentials involved and revert the change.");
    if !rule.falsepositives.is_empty() {
        text.push_str(" Known false positives: ");
        text.push_str(&rule.falsepositives.join("; "));
        text.push('.');
    }
    text
}

/// A detection match that feeds correlation state, kept until [`correlate`] consumes it.
#[derive(Debug, Clone)]
pub struct CorrelationInput {
    /// The event, normalised.
    pub event: AuditEvent,
    /// The rules it matched.
    pub matches: Vec<RuleMatch>,
}

/// Limits on what a scan reports.
#[derive(Debug, Clone, Copy, Default)]
pub struct ScanOptions {
    /// Skip events before this time (and events without one, when set).
    pub from: Option<DateTime<Utc>>,
    /// Skip events at or after this time (and events without one, when set).
    pub to: Option<DateTime<Utc>>,
    /// How to recognise record formats.
    pub hint: FormatHint,
}

impl ScanOptions {
    fn admits(&self, time: Option<DateTime<Utc>>) -> bool {
        if self.from.is_none() && self.to.is_none() {
            return true;
        }
        let Some(time) = time else { return false };
        self.from.is_none_or(|from| time >= from) && self.to.is_none_or(|to| time < to)
    }
}

/// What a scan saw.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct ScanStats {
    /// Records read.
    pub records: u64,
    /// Records the prefilter could not rule out, which were parsed and evaluated.
    pub records_evaluated: u64,
    /// Records (or input tails) that could not be decoded.
    pub errors: u64,
}

/// What a scan hands to its caller, as it goes.
#[derive(Debug)]
pub enum ScanOutput {
    /// A detection finding (rule matched; its `generate` allows a finding of its own).
    Finding(Box<ActivityFinding>),
    /// Matches that feed correlations.
    CorrelationInput(Box<CorrelationInput>),
    /// A record that could not be decoded (skipped), or the end of a broken input.
    DecodeError(AuditDecodeError),
    /// Records read since the previous progress report (every 1,024 records).
    Progress(u64),
}

const PROGRESS_EVERY_RECORDS: u64 = 1024;

/// Streams one input through the pack: splits records, prefilters their raw text, parses and
/// evaluates the survivors, and hands findings and correlation inputs to `sink`.
///
/// Stateless; call it on many inputs in parallel and pass the correlation inputs to
/// [`correlate`]. Memory stays at one record plus one read chunk, whatever the input's size.
pub fn scan_records<R: BufRead>(
    pack: &CompiledPack,
    reader: R,
    source_name: &str,
    options: &ScanOptions,
    sink: &mut dyn FnMut(ScanOutput),
) -> ScanStats {
    let mut splitter = RecordSplitter::new(reader);
    let mut scratch = MatchScratch::default();
    let mut matches = Vec::new();
    let mut stats = ScanStats::default();
    let mut unreported = 0u64;
    while let Some(next) = splitter.next_record() {
        let record = match next {
            Ok(record) => record,
            Err(failure) => {
                stats.errors += 1;
                sink(ScanOutput::DecodeError(split_failure_to_error(
                    source_name,
                    failure,
                )));
                break;
            }
        };
        stats.records += 1;
        unreported += 1;
        if unreported == PROGRESS_EVERY_RECORDS {
            sink(ScanOutput::Progress(unreported));
            unreported = 0;
        }
        let hint = effective_hint(options.hint, Some(record.container));
        let known_format = match hint {
            FormatHint::Fixed(format) => Some(format),
            FormatHint::Detect => None,
        };
        if !pack.select_candidates(record.bytes, known_format, &mut scratch) {
            continue;
        }
        stats.records_evaluated += 1;
        let position = record.position;
        let event = match serde_json::from_slice::<Value>(record.bytes)
            .map_err(|error| palisade_logs::audit::RecordError::Json {
                column: error.column(),
                message: error.to_string(),
            })
            .and_then(|raw| normalise(raw, hint))
        {
            Ok(event) => event,
            Err(error) => {
                stats.errors += 1;
                sink(ScanOutput::DecodeError(AuditDecodeError {
                    source_name: source_name.to_owned(),
                    position,
                    kind: AuditDecodeErrorKind::Record(error),
                }));
                continue;
            }
        };
        if !options.admits(event.time) {
            continue;
        }
        matches.clear();
        pack.evaluate_candidates(&event.raw, event.format, &scratch, &mut matches);
        if matches.is_empty() {
            continue;
        }
        let origin = EventOrigin {
            source: source_name.to_owned(),
            position,
        };
        emit_matches(pack, event, &matches, Some(origin), sink);
    }
    if unreported > 0 {
        sink(ScanOutput::Progress(unreported));
    }
    stats
}

fn emit_matches(
    pack: &CompiledPack,
    event: AuditEvent,
    matches: &[RuleMatch],
    origin: Option<EventOrigin>,
    sink: &mut dyn FnMut(ScanOutput),
) {
    for found in matches {
        if pack.generates_findings(found.rule) {
            let rule = &pack.detection_rules()[found.rule as usize];
            sink(ScanOutput::Finding(Box::new(detection_finding(
                rule,
                &event,
                origin.clone(),
            ))));
        }
    }
    let feeding: Vec<RuleMatch> = matches
        .iter()
        .filter(|found| pack.feeds_correlation(found.rule))
        .cloned()
        .collect();
    if !feeding.is_empty() {
        sink(ScanOutput::CorrelationInput(Box::new(CorrelationInput {
            event,
            matches: feeding,
        })));
    }
}

fn detection_finding(
    rule: &RuleInfo,
    event: &AuditEvent,
    origin: Option<EventOrigin>,
) -> ActivityFinding {
    ActivityFinding {
        rule_id: rule.id.clone(),
        title: rule.title.clone(),
        level: rule.level,
        severity: severity_of(rule.level),
        time: event.time,
        account: event.account.clone(),
        initiator: event.initiator.clone(),
        target: event.target.clone(),
        remediation: remediation_of(rule),
        event: Some(event.raw.clone()),
        origin,
        group: None,
        events: Vec::new(),
    }
}

/// Correlation state of one pack, owned by the caller.
#[derive(Debug)]
pub struct ActivityState {
    correlation: CorrelationState,
}

/// A serialisable copy of an [`ActivityState`].
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ActivityStateSnapshot {
    /// Correlation windows per rule and group.
    pub correlation: CorrelationSnapshot,
}

impl ActivityState {
    /// Empty state for `pack`.
    pub fn new(pack: &CompiledPack) -> Self {
        Self {
            correlation: pack.new_correlation_state(),
        }
    }

    /// Restores state saved by [`Self::snapshot`] (for the same or an updated pack).
    ///
    /// # Errors
    /// [`SnapshotVersionError`] when the snapshot format is not understood.
    pub fn restore(
        pack: &CompiledPack,
        snapshot: ActivityStateSnapshot,
    ) -> Result<Self, SnapshotVersionError> {
        Ok(Self {
            correlation: pack.restore_correlation_state(snapshot.correlation)?,
        })
    }

    /// Returns a serialisable copy.
    pub fn snapshot(&self) -> ActivityStateSnapshot {
        ActivityStateSnapshot {
            correlation: self.correlation.snapshot(),
        }
    }

    /// Number of live correlation windows.
    pub fn entry_count(&self) -> usize {
        self.correlation.entry_count()
    }
}

/// Feeds correlation inputs, in event-time order, to the state; returns correlation findings.
pub fn correlate(
    pack: &CompiledPack,
    state: &mut ActivityState,
    mut inputs: Vec<CorrelationInput>,
) -> Vec<ActivityFinding> {
    inputs.sort_by_key(|input| input.event.time);
    let mut findings = Vec::new();
    let mut latest = None;
    for input in &inputs {
        let time = input.event.time.map_or(0, |time| time.timestamp());
        latest = latest.max(Some(time));
        for hit in pack.correlate(
            &mut state.correlation,
            &input.event.raw,
            &input.matches,
            time,
        ) {
            let rule = &pack.correlation_rules()[hit.rule as usize];
            let group: Map<String, Value> = hit
                .group
                .iter()
                .map(|(field, value)| (field.clone(), Value::String(value.clone())))
                .collect();
            let last = hit
                .events
                .last()
                .and_then(|raw| normalise(raw.clone(), FormatHint::Detect).ok());
            let envelope = last.as_ref().unwrap_or(&input.event);
            findings.push(ActivityFinding {
                rule_id: rule.id.clone(),
                title: rule.title.clone(),
                level: rule.level,
                severity: severity_of(rule.level),
                time: envelope.time.or(input.event.time),
                account: envelope.account.clone(),
                initiator: envelope.initiator.clone(),
                target: envelope.target.clone(),
                remediation: remediation_of(rule),
                event: None,
                origin: None,
                group: Some(group),
                events: hit.events,
            });
        }
    }
    if let Some(latest) = latest {
        // Windows that ended before the newest event can no longer fire: free them.
        state.correlation.evict_expired(latest);
    }
    findings
}

/// Runs a batch of already decoded events (the server's ingest path) through detection and
/// correlation; returns every finding, detections first.
pub fn process_batch(
    pack: &CompiledPack,
    state: &mut ActivityState,
    events: Vec<AuditEvent>,
) -> Vec<ActivityFinding> {
    let mut findings = Vec::new();
    let mut inputs = Vec::new();
    let mut matches = Vec::new();
    for event in events {
        matches.clear();
        pack.evaluate_all(&event.raw, event.format, &mut matches);
        if matches.is_empty() {
            continue;
        }
        emit_matches(pack, event, &matches, None, &mut |output| match output {
            ScanOutput::Finding(finding) => findings.push(*finding),
            ScanOutput::CorrelationInput(input) => inputs.push(*input),
            ScanOutput::DecodeError(_) | ScanOutput::Progress(_) => {}
        });
    }
    findings.extend(correlate(pack, state, inputs));
    findings
}

/// Says whether events of `format` can be seen by any rule of the pack (for warnings such as
/// "no rule reads Kubernetes audit events").
pub fn pack_reads(pack: &CompiledPack, format: AuditSourceFormat) -> bool {
    pack.detection_rules().iter().any(|rule| {
        let equal = |wanted: &Option<String>, actual: Option<&str>| {
            wanted
                .as_deref()
                .is_none_or(|wanted| Some(wanted) == actual)
        };
        rule.category.is_none()
            && equal(&rule.product, format.logsource_product())
            && equal(&rule.service, format.logsource_service())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use palisade_sigma::{PackParameters, RuleSource, load_pack};

    const PACK: &str = r#"
title: Bucket deleted
id: 10000000-0000-4000-8000-000000000001
name: bucket_deleted
logsource: {product: aws, service: cloudtrail}
detection:
    selection: {eventName: DeleteBucket}
    condition: selection
level: low
---
title: Trail stopped
id: 10000000-0000-4000-8000-000000000002
logsource: {product: aws, service: cloudtrail}
detection:
    selection: {eventName: StopLogging}
    condition: selection
level: high
remediation: Start the trail again.
---
title: Many buckets deleted
id: 10000000-0000-4000-8000-000000000003
correlation:
    type: event_count
    rules: [bucket_deleted]
    group-by: [userIdentity.arn]
    timespan: 10m
    condition: {gte: 3}
level: critical
"#;

    fn pack() -> CompiledPack {
        let (pack, errors) = load_pack(
            &[RuleSource {
                name: "pack.yml".into(),
                text: PACK.into(),
            }],
            &PackParameters::default(),
        );
        assert!(errors.is_empty(), "{errors:?}");
        pack
    }

    fn record(name: &str, minute: u32) -> String {
        format!(
            r#"{{"eventVersion":"1.08","eventTime":"2024-01-01T10:{minute:02}:00Z","eventSource":"s3.amazonaws.com","eventName":"{name}","recipientAccountId":"1","userIdentity":{{"arn":"arn:aws:iam::1:user/x"}}}}"#
        )
    }

    fn scan(
        pack: &CompiledPack,
        input: &str,
        options: &ScanOptions,
    ) -> (Vec<ActivityFinding>, Vec<CorrelationInput>, ScanStats, u64) {
        let mut findings = Vec::new();
        let mut inputs = Vec::new();
        let mut progress = 0;
        let stats = scan_records(
            pack,
            input.as_bytes(),
            "test.json",
            options,
            &mut |output| match output {
                ScanOutput::Finding(finding) => findings.push(*finding),
                ScanOutput::CorrelationInput(input) => inputs.push(*input),
                ScanOutput::DecodeError(error) => panic!("{error}"),
                ScanOutput::Progress(records) => progress += records,
            },
        );
        (findings, inputs, stats, progress)
    }

    #[test]
    fn detections_become_findings_and_correlations_fire_once_per_burst() {
        let pack = pack();
        let records: Vec<String> = [
            ("DeleteBucket", 1),
            ("StopLogging", 2),
            ("DeleteBucket", 3),
            ("ListBuckets", 4),
            ("DeleteBucket", 5),
        ]
        .iter()
        .map(|(name, minute)| record(name, *minute))
        .collect();
        let input = format!("{{\"Records\":[{}]}}", records.join(","));
        let (findings, inputs, stats, progress) = scan(&pack, &input, &ScanOptions::default());
        assert_eq!(stats.records, 5);
        assert_eq!(progress, 5);
        assert_eq!(
            stats.records_evaluated, 4,
            "ListBuckets is ruled out without parsing"
        );
        assert_eq!(
            findings.len(),
            1,
            "bucket deletions only feed the correlation"
        );
        let stop = &findings[0];
        assert_eq!(stop.title, "Trail stopped");
        assert_eq!(stop.severity, Severity::High);
        assert_eq!(stop.remediation, "Start the trail again.");
        assert_eq!(stop.account.as_deref(), Some("1"));
        assert_eq!(
            stop.origin.as_ref().map(|origin| origin.position.index),
            Some(1)
        );
        assert_eq!(inputs.len(), 3);

        let mut state = ActivityState::new(&pack);
        let correlated = correlate(&pack, &mut state, inputs);
        assert_eq!(correlated.len(), 1);
        let burst = &correlated[0];
        assert_eq!(burst.severity, Severity::Critical);
        assert_eq!(burst.events.len(), 3);
        assert_eq!(
            burst
                .group
                .as_ref()
                .and_then(|group| group.get("userIdentity.arn")),
            Some(&Value::String("arn:aws:iam::1:user/x".into()))
        );
    }

    #[test]
    fn state_survives_a_snapshot_between_batches() {
        let pack = pack();
        let decode = |minute| {
            normalise(
                serde_json::from_str(&record("DeleteBucket", minute)).expect("json"),
                FormatHint::Detect,
            )
            .expect("object")
        };
        let mut state = ActivityState::new(&pack);
        assert!(process_batch(&pack, &mut state, vec![decode(1), decode(2)]).is_empty());
        let saved = serde_json::to_string(&state.snapshot()).expect("serialises");
        let mut restored =
            ActivityState::restore(&pack, serde_json::from_str(&saved).expect("parses"))
                .expect("same version");
        let findings = process_batch(&pack, &mut restored, vec![decode(3)]);
        assert_eq!(
            findings.len(),
            1,
            "the third deletion, in a later batch, completes the burst"
        );
        assert_eq!(findings[0].events.len(), 3);
    }

    #[test]
    fn time_range_limits_findings() {
        let pack = pack();
        let input = format!(
            "{}\n{}\n",
            record("StopLogging", 1),
            record("StopLogging", 30)
        );
        let options = ScanOptions {
            from: "2024-01-01T10:10:00Z".parse().ok(),
            ..ScanOptions::default()
        };
        let (findings, _, _, _) = scan(&pack, &input, &options);
        assert_eq!(findings.len(), 1);
        assert_eq!(
            findings[0].time.map(|time| time.to_rfc3339()).as_deref(),
            Some("2024-01-01T10:30:00+00:00")
        );
    }

    #[test]
    fn severity_follows_level() {
        assert_eq!(severity_of(Some(RuleLevel::Informational)), Severity::Low);
        assert_eq!(severity_of(None), Severity::Medium);
        assert_eq!(severity_of(Some(RuleLevel::Critical)), Severity::Critical);
    }
}
