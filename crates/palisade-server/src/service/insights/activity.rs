//! Activity insights: Sigma packs over audit events, per instance.
//!
//! An instance's engine is compiled from the enabled packs — the built-in ones
//! (`palisade_insights::packs`) and those its users upload — with the instance's pack
//! parameters; per-rule settings disable a rule's findings or override their severity. Disabled
//! rules stay compiled, so correlations that count their matches keep working.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::BufRead;
use std::sync::Arc;

use chrono::Utc;
use palisade_insights::activity::{ActivityFinding, ActivityState, ActivityStateSnapshot};
use palisade_insights::packs::BUILTIN_PACKS;
use palisade_logs::audit::{AuditDecodeErrorKind, AuditReader, FormatHint, decompress_if_gzip};
use palisade_model::event::{AuditEvent, AuditSourceFormat};
use palisade_model::finding::Severity;
use palisade_sigma::{
    CompiledPack, PackParameters, RuleInfo, RuleLoadError, RuleSource, load_pack,
};
use palisade_store::insights::{BatchCompletion, IngestBatch};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use utoipa::ToSchema;

use super::{ACTIVITY, Failure, MAX_REPORTED_REJECTIONS, RejectedRecord, account_of, epoch};
use crate::error::{ApiError, ApiResult};
use crate::service::documents::{self, Kind};
use crate::service::findings::model::{
    ApiNote, ApiOccurrence, Context, Finding, FindingType, RemediationStep, Reporter,
};
use crate::service::findings::{
    ACTIVITY_INSIGHTS_PROVIDER, SourceOccurrence, ensure_note, prepare_occurrences,
};
use crate::state::AppState;

/// The instance's activity settings document (one per instance).
pub const SETTINGS: Kind = Kind {
    store_kind: "activity_settings",
    label: "activity settings",
};
/// Packs uploaded by users.
pub const PACK: Kind = Kind {
    store_kind: "activity_pack",
    label: "rule pack",
};
const SETTINGS_ID: &str = "settings";

/// Whether a built-in pack is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PackSetting {
    pub enabled: bool,
}

/// A user's changes to one rule.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RuleSetting {
    /// `false` stops the rule's findings (it still feeds correlations).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    /// Replaces the severity derived from the rule's level.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    pub severity: Option<Severity>,
}

/// An instance's activity settings: built-in pack switches, rule settings, pack parameters.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ActivitySettings {
    /// Built-in packs by id; absent means enabled.
    #[serde(default)]
    pub packs: BTreeMap<String, PackSetting>,
    /// Rules by id.
    #[serde(default)]
    pub rules: BTreeMap<String, RuleSetting>,
    /// Values of `${name}` placeholders in pack files (`change_window_hours`, …).
    #[serde(default)]
    pub parameters: BTreeMap<String, String>,
}

/// One file of an uploaded pack.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct PackFile {
    pub name: String,
    /// The YAML text (one or more `---`-separated Sigma documents).
    pub text: String,
}

/// An uploaded pack as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct CustomPack {
    pub id: String,
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    pub enabled: bool,
    pub files: Vec<PackFile>,
}

/// The compiled engine of one instance.
pub struct ActivityEngine {
    /// Versions of the settings and packs it was built from.
    pub(super) cache_key: String,
    pub pack: CompiledPack,
    pub settings: ActivitySettings,
    /// Documents of enabled packs that did not load.
    pub load_errors: Vec<RuleLoadError>,
    /// Pack id of each rule source name.
    pub pack_of_source: HashMap<String, String>,
}

impl ActivityEngine {
    /// The pack a rule came from.
    pub fn pack_of(&self, rule: &RuleInfo) -> &str {
        self.pack_of_source
            .get(&rule.source_name)
            .map_or("", String::as_str)
    }

    /// Whether a rule's findings are reported.
    pub fn rule_enabled(&self, rule_id: &str) -> bool {
        self.settings
            .rules
            .get(rule_id)
            .and_then(|setting| setting.enabled)
            .unwrap_or(true)
    }
}

/// Reads the settings document (defaults when there is none) and its version.
pub async fn settings(state: &AppState, instance_id: &str) -> ApiResult<(ActivitySettings, i64)> {
    match state
        .store
        .get_document(instance_id, SETTINGS.store_kind, SETTINGS_ID)
        .await?
    {
        Some(document) => Ok((
            serde_json::from_value(document.body)
                .map_err(|error| ApiError::internal(format!("activity settings: {error}")))?,
            document.version,
        )),
        None => Ok((ActivitySettings::default(), 0)),
    }
}

/// Stores the settings document.
pub async fn save_settings(
    state: &AppState,
    instance_id: &str,
    settings: &ActivitySettings,
) -> ApiResult<()> {
    let body = serde_json::to_value(settings)
        .map_err(|error| ApiError::internal(format!("activity settings: {error}")))?;
    documents::upsert(state, instance_id, SETTINGS, SETTINGS_ID, &body).await?;
    Ok(())
}

/// Every uploaded pack of an instance with its document version.
pub async fn custom_packs(
    state: &AppState,
    instance_id: &str,
) -> ApiResult<Vec<(CustomPack, i64)>> {
    documents::all(state, instance_id, PACK)
        .await?
        .into_iter()
        .map(|document| {
            serde_json::from_value(document.body)
                .map(|pack| (pack, document.version))
                .map_err(|error| ApiError::internal(format!("rule pack {}: {error}", document.id)))
        })
        .collect()
}

/// Source name of an uploaded pack's file, so findings and errors say where a rule came from.
pub fn custom_source_name(pack_id: &str, file: &str) -> String {
    format!("packs/{pack_id}/{file}")
}

/// Returns the instance's compiled engine, compiling it when its settings or packs changed.
pub async fn engine(state: &AppState, instance_id: &str) -> ApiResult<Arc<ActivityEngine>> {
    let (settings, settings_version) = settings(state, instance_id).await?;
    let packs = custom_packs(state, instance_id).await?;
    let mut cache_key = format!("settings:{settings_version}");
    for (pack, version) in &packs {
        cache_key.push_str(&format!(";{}:{version}", pack.id));
    }
    if let Some(engine) = state
        .insights
        .cached_activity_engine(instance_id, &cache_key)
    {
        return Ok(engine);
    }
    // Compiling 200+ rules takes a while: off the async threads.
    let engine = tokio::task::spawn_blocking(move || compile(settings, &packs, cache_key))
        .await
        .map_err(|error| ApiError::internal(format!("compiling rule packs: {error}")))?;
    let engine = Arc::new(engine);
    state
        .insights
        .cache_activity_engine(instance_id, engine.clone());
    Ok(engine)
}

fn compile(
    settings: ActivitySettings,
    packs: &[(CustomPack, i64)],
    cache_key: String,
) -> ActivityEngine {
    let mut sources: Vec<RuleSource> = Vec::new();
    let mut pack_of_source = HashMap::new();
    for builtin in &BUILTIN_PACKS {
        let enabled = settings
            .packs
            .get(builtin.id)
            .is_none_or(|setting| setting.enabled);
        if enabled {
            for source in builtin.sources() {
                pack_of_source.insert(source.name.clone(), builtin.id.to_owned());
                sources.push(source);
            }
        }
    }
    for (pack, _) in packs.iter().filter(|(pack, _)| pack.enabled) {
        for file in &pack.files {
            let name = custom_source_name(&pack.id, &file.name);
            pack_of_source.insert(name.clone(), pack.id.clone());
            sources.push(RuleSource {
                name,
                text: file.text.clone(),
            });
        }
    }
    let parameters = PackParameters(settings.parameters.clone());
    let (pack, load_errors) = load_pack(&sources, &parameters);
    ActivityEngine {
        cache_key,
        pack,
        settings,
        load_errors,
        pack_of_source,
    }
}

/// What decoding an uploaded body gave.
pub struct DecodedEvents {
    pub events: Vec<AuditEvent>,
    pub rejected: u64,
    pub rejections: Vec<RejectedRecord>,
}

/// Decodes a posted body of audit events in any supported layout (CloudTrail `{"Records":[…]}`,
/// a JSON array, JSON Lines; gzipped or not). Bad records are reported and skipped.
pub fn decode_events(
    body: &[u8],
    source: &str,
    format: Option<AuditSourceFormat>,
) -> ApiResult<DecodedEvents> {
    let hint = format.map_or(FormatHint::Detect, FormatHint::Fixed);
    let reader: Box<dyn BufRead + Send + '_> = decompress_if_gzip(body).map_err(|error| {
        ApiError::new(
            palisade_model::error::ErrorCode::InvalidField,
            format!("the body cannot be read: {error}"),
        )
    })?;
    let mut decoded = DecodedEvents {
        events: Vec::new(),
        rejected: 0,
        rejections: Vec::new(),
    };
    for item in AuditReader::new(reader, source, hint) {
        match item {
            Ok(event) => decoded.events.push(event),
            Err(error) => {
                decoded.rejected += 1;
                if decoded.rejections.len() < MAX_REPORTED_REJECTIONS {
                    let message = match &error.kind {
                        AuditDecodeErrorKind::Record(record) => record.to_string(),
                        AuditDecodeErrorKind::Structure(message) => message.clone(),
                        AuditDecodeErrorKind::Io(io) => format!("read failed: {io}"),
                    };
                    decoded.rejections.push(RejectedRecord {
                        line: error.position.line,
                        pointer: None,
                        message: format!("record {}: {message}", error.position.index),
                    });
                }
            }
        }
    }
    Ok(decoded)
}

/// Runs one pending batch through the instance's engine and completes it.
pub(super) async fn process_batch(
    state: &AppState,
    batch: &IngestBatch,
    payload: &str,
) -> Result<(), Failure> {
    let events: Vec<AuditEvent> = super::parse_json_lines(payload)?;
    let instance_id = batch.instance_id.as_str();
    let engine = engine(state, instance_id).await?;
    let snapshot = state.store.stream_state(instance_id, ACTIVITY).await?;
    let worker_engine = engine.clone();
    let (findings, snapshot) = tokio::task::spawn_blocking(move || {
        let pack = &worker_engine.pack;
        let restored = snapshot
            .and_then(|text| serde_json::from_str::<ActivityStateSnapshot>(&text).ok())
            .and_then(|saved| ActivityState::restore(pack, saved).ok());
        let mut activity_state = restored.unwrap_or_else(|| ActivityState::new(pack));
        let findings =
            palisade_insights::activity::process_batch(pack, &mut activity_state, events);
        (findings, serde_json::to_string(&activity_state.snapshot()))
    })
    .await
    .map_err(|error| ApiError::internal(format!("activity detection: {error}")))?;
    let snapshot =
        snapshot.map_err(|error| ApiError::internal(format!("activity state: {error}")))?;

    let findings: Vec<ActivityFinding> = findings
        .into_iter()
        .filter(|finding| engine.rule_enabled(&finding.rule_id))
        .map(|mut finding| {
            if let Some(severity) = engine
                .settings
                .rules
                .get(&finding.rule_id)
                .and_then(|setting| setting.severity)
            {
                finding.severity = severity;
            }
            finding
        })
        .collect();
    let now = Utc::now();
    let mut noted = HashSet::new();
    for finding in &findings {
        let account = account_of(finding.account.as_deref());
        let note = note_of(finding);
        if noted.insert((account.clone(), note.id.clone())) {
            ensure_note(
                &state.store,
                instance_id,
                &account,
                ACTIVITY_INSIGHTS_PROVIDER,
                &note,
                now,
            )
            .await?;
        }
    }
    let count = i64::try_from(findings.len()).unwrap_or(i64::MAX);
    let sources = findings.iter().map(occurrence_of).collect();
    let (records, report) = prepare_occurrences(
        &state.store,
        instance_id,
        ACTIVITY_INSIGHTS_PROVIDER,
        sources,
    )
    .await?;
    for (index, problems) in &report.rejected {
        tracing::warn!(batch = %batch.id, index, problems = ?problems, "activity finding not recorded");
    }
    state
        .store
        .complete_batch(
            batch,
            BatchCompletion {
                occurrences: &records,
                state_snapshot: Some(&snapshot),
                findings: count,
            },
            now,
        )
        .await?;
    Ok(())
}

/// A note id for a rule id (Sigma ids are UUIDs; a rule without one is named by its title,
/// whose spaces a note id cannot hold).
pub fn note_id_of(rule_id: &str) -> String {
    let cleaned: String = rule_id
        .chars()
        .map(|c| {
            if c.is_whitespace() || c.is_control() || c == '/' {
                '-'
            } else {
                c
            }
        })
        .take(200)
        .collect();
    if cleaned.is_empty() {
        "sigma-rule".to_owned()
    } else {
        cleaned
    }
}

fn note_of(finding: &ActivityFinding) -> ApiNote {
    ApiNote {
        short_description: finding.title.chars().take(200).collect(),
        long_description: format!(
            "Sigma rule {} ({}) matched audit events.",
            finding.rule_id,
            finding.level.map_or("no level", |level| level.as_str())
        ),
        kind: "FINDING".into(),
        related_url: None,
        create_time: None,
        update_time: None,
        id: note_id_of(&finding.rule_id),
        shared: None,
        reported_by: Reporter {
            id: ACTIVITY_INSIGHTS_PROVIDER.into(),
            title: "Palisade activity insights".into(),
            url: None,
        },
        finding: Some(FindingType {
            severity: finding.severity.as_str().to_owned(),
            next_steps: Some(vec![RemediationStep {
                title: Some(finding.remediation.clone()),
                url: None,
            }]),
        }),
        kpi: None,
        card: None,
        section: None,
    }
}

fn digest(value: &Value) -> String {
    let mut hasher = Sha256::new();
    hasher.update(value.to_string().as_bytes());
    hex::encode(&hasher.finalize()[..16])
}

/// The finding as an occurrence. Repeats merge into one finding with a count: a detection is
/// the same finding for the same rule, initiator and target; a correlation for the same group.
fn occurrence_of(finding: &ActivityFinding) -> SourceOccurrence {
    let account = account_of(finding.account.as_deref());
    let fingerprint = match &finding.group {
        Some(group) => format!("group:{}", digest(&Value::Object(group.clone()))),
        None => format!(
            "actor:{}|target:{}",
            finding.initiator.as_deref().unwrap_or_default(),
            finding.target.as_deref().unwrap_or_default()
        ),
    };
    let mut description = finding.title.clone();
    if let Some(initiator) = &finding.initiator {
        description.push_str(&format!(" — by {initiator}"));
    }
    if let Some(target) = &finding.target {
        description.push_str(&format!(" on {target}"));
    }
    if let Some(time) = finding.time {
        description.push_str(&format!(" at {}", time.to_rfc3339()));
    }
    let mut reference = json!({
        "rule_id": finding.rule_id,
        "title": finding.title,
        "level": finding.level,
        "time": finding.time,
        "account": finding.account,
        "initiator": finding.initiator,
        "target": finding.target,
        "time_epoch": epoch(finding.time),
    });
    if let Some(event) = &finding.event {
        reference["event"] = event.clone();
    }
    if let Some(origin) = &finding.origin {
        reference["origin"] = json!(origin);
    }
    if let Some(group) = &finding.group {
        reference["group"] = Value::Object(group.clone());
        reference["events"] = Value::Array(finding.events.clone());
    }
    SourceOccurrence {
        account_id: account,
        note_id: note_id_of(&finding.rule_id),
        fingerprint,
        body: ApiOccurrence {
            resource_url: None,
            note_name: String::new(),
            kind: "FINDING".into(),
            short_description: Some(finding.title.chars().take(200).collect()),
            long_description: Some(description),
            remediation: Some(finding.remediation.clone()),
            create_time: None,
            update_time: None,
            id: String::new(),
            context: Some(Context {
                resource_name: finding.target.clone(),
                resource_id: finding.target.clone(),
                ..Context::default()
            }),
            finding: Some(Finding {
                severity: Some(finding.severity.as_str().to_owned()),
                certainty: Some(
                    if finding.group.is_some() {
                        "HIGH"
                    } else {
                        "MEDIUM"
                    }
                    .into(),
                ),
                next_steps: Some(vec![RemediationStep {
                    title: Some(finding.remediation.clone()),
                    url: None,
                }]),
                network_connection: None,
                data_transferred: None,
            }),
            kpi: None,
            reference_data: Some(reference),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn note_ids_survive_rule_titles() {
        assert_eq!(
            note_id_of("10000000-0000-4000-8000-000000000001"),
            "10000000-0000-4000-8000-000000000001"
        );
        assert_eq!(note_id_of("Bucket deleted/x"), "Bucket-deleted-x");
        assert_eq!(note_id_of(""), "sigma-rule");
    }

    #[test]
    fn bad_records_are_reported_with_their_line_and_the_rest_kept() {
        let body = b"{\"eventVersion\":\"1.08\",\"eventSource\":\"s3.amazonaws.com\",\"eventName\":\"DeleteBucket\",\"eventTime\":\"2026-01-01T00:00:00Z\"}\nnot json\n[1]\n";
        let decoded = decode_events(body, "upload.jsonl", None).expect("decodes");
        assert_eq!(decoded.events.len(), 1);
        assert_eq!(decoded.rejected, 2);
        assert_eq!(decoded.rejections[0].line, 2);
    }
}
