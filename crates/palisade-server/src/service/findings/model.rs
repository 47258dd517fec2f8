//! The wire model of IBM's Findings v1 (Grafeas): notes, occurrences and their parts, and the
//! validation that turns a request body into what the store keeps.
//!
//! Enumerations (`kind`, `severity` …) are plain strings here and checked by [`validate_note`] /
//! [`validate_occurrence`], so that one bad body yields every problem at once, each with the JSON
//! pointer of its field — serde's tagged enums would stop at the first and say less.

use palisade_model::error::{ErrorCode, ErrorItem, ErrorTarget};
use palisade_model::finding::Severity;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// The kinds a note can have.
pub const NOTE_KINDS: [&str; 5] = ["FINDING", "KPI", "CARD", "CARD_CONFIGURED", "SECTION"];
/// The kinds an occurrence can have: only findings and KPI values happen; cards and sections
/// are dashboard layout, which exists once as a note.
pub const OCCURRENCE_KINDS: [&str; 2] = ["FINDING", "KPI"];
/// Certainty levels of a finding occurrence.
pub const CERTAINTIES: [&str; 3] = ["LOW", "MEDIUM", "HIGH"];
/// Card element kinds.
pub const CARD_ELEMENT_KINDS: [&str; 3] = ["NUMERIC", "BREAKDOWN", "TIME_SERIES"];
/// Time ranges a card element may default to (IBM's dashboard offered one to four days).
pub const CARD_TIME_RANGES: [&str; 4] = ["1d", "2d", "3d", "4d"];
/// Longest id, name or short text accepted.
const MAX_ID_LENGTH: usize = 256;
const MAX_TEXT_LENGTH: usize = 64 * 1024;

/// Who reports a note.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Reporter {
    pub id: String,
    pub title: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
}

/// A link shown with a note.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RelatedUrl {
    pub label: String,
    pub url: String,
}

/// A remediation step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RemediationStep {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
}

/// The finding part of a FINDING note.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FindingType {
    pub severity: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_steps: Option<Vec<RemediationStep>>,
}

/// The KPI part of a KPI note.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct KpiType {
    /// Spelt `Severity` on the wire, as IBM's API and SDK do (`severity` is accepted too).
    #[serde(
        default,
        rename = "Severity",
        alias = "severity",
        skip_serializing_if = "Option::is_none"
    )]
    pub severity: Option<String>,
    /// Only `SUM`.
    pub aggregation_type: String,
}

/// A dashboard section.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Section {
    pub title: String,
    pub image: String,
}

/// Where a card element's number comes from: a KPI note, or a count of finding occurrences.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ValueType {
    /// `KPI` or `FINDING_COUNT`.
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kpi_note_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finding_note_names: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
}

/// One element of a card.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CardElement {
    /// `NUMERIC` (with `value_type`), `BREAKDOWN` or `TIME_SERIES` (with `value_types`).
    pub kind: String,
    pub text: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_time_range: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_interval: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value_type: Option<ValueType>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value_types: Option<Vec<ValueType>>,
}

/// A dashboard card.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Card {
    pub section: String,
    pub title: String,
    pub subtitle: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub order: Option<i64>,
    pub finding_note_names: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requires_configuration: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub badge_text: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub badge_image: Option<String>,
    pub elements: Vec<CardElement>,
}

/// A note: a kind of analysis, under a provider (IBM's `ApiNote`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ApiNote {
    pub short_description: String,
    pub long_description: String,
    /// `FINDING`, `KPI`, `CARD`, `CARD_CONFIGURED` or `SECTION`.
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub related_url: Option<Vec<RelatedUrl>>,
    /// Output only: set by the server.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub create_time: Option<String>,
    /// Output only: set by the server.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub update_time: Option<String>,
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shared: Option<bool>,
    pub reported_by: Reporter,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finding: Option<FindingType>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kpi: Option<KpiType>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub card: Option<Card>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub section: Option<Section>,
}

/// Where an occurrence happened.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Context {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource_crn: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_crn: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub environment_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub component_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub toolchain_id: Option<String>,
}

/// One end of a network connection.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SocketAddress {
    pub address: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<i64>,
}

/// The connection a network finding is about.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NetworkConnection {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub direction: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protocol: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client: Option<SocketAddress>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server: Option<SocketAddress>,
}

/// Volumes exchanged by a connection.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DataTransferred {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_bytes: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_bytes: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_packets: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_packets: Option<i64>,
}

/// The finding part of a FINDING occurrence.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Finding {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub severity: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub certainty: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_steps: Option<Vec<RemediationStep>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network_connection: Option<NetworkConnection>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data_transferred: Option<DataTransferred>,
}

/// The value of a KPI occurrence.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Kpi {
    pub value: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total: Option<f64>,
}

/// An occurrence: one instance of a note on a resource (IBM's `ApiOccurrence`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ApiOccurrence {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource_url: Option<String>,
    /// `{account_id}/providers/{provider_id}/notes/{note_id}`.
    pub note_name: String,
    /// `FINDING` or `KPI`; must be the note's kind.
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub short_description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub long_description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remediation: Option<String>,
    /// Output only: set by the server.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub create_time: Option<String>,
    /// Output only: set by the server.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub update_time: Option<String>,
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context: Option<Context>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finding: Option<Finding>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kpi: Option<Kpi>,
    /// Free-form data, such as the audit event a finding came from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Object)]
    pub reference_data: Option<serde_json::Value>,
}

/// A note name split into its parts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NoteName {
    pub account_id: String,
    pub provider_id: String,
    pub note_id: String,
}

impl NoteName {
    /// Parses `{account_id}/providers/{provider_id}/notes/{note_id}`.
    pub fn parse(text: &str) -> Option<Self> {
        let parts: Vec<&str> = text.split('/').collect();
        match parts.as_slice() {
            [account, "providers", provider, "notes", note]
                if [account, provider, note]
                    .iter()
                    .all(|part| is_valid_id(part)) =>
            {
                Some(Self {
                    account_id: (*account).to_owned(),
                    provider_id: (*provider).to_owned(),
                    note_id: (*note).to_owned(),
                })
            }
            _ => None,
        }
    }

    /// Formats the name back.
    pub fn format(account_id: &str, provider_id: &str, note_id: &str) -> String {
        format!("{account_id}/providers/{provider_id}/notes/{note_id}")
    }
}

/// Tells whether an id (account, provider, note, occurrence, channel) is acceptable: 1–256
/// characters, none of them `/`, whitespace or control characters, so that it survives a URL
/// path and a note name.
pub fn is_valid_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= MAX_ID_LENGTH
        && id
            .chars()
            .all(|c| !c.is_control() && !c.is_whitespace() && c != '/' && c != '?' && c != '#')
}

/// Collects validation problems with their JSON pointers.
#[derive(Debug, Default)]
pub struct Problems(pub Vec<ErrorItem>);

impl Problems {
    /// Records a problem with the field at `pointer`.
    pub fn add(&mut self, code: ErrorCode, pointer: &str, message: impl Into<String>) {
        let message = message.into();
        self.0.push(ErrorItem {
            code,
            message: format!("`{pointer}`: {message}"),
            target: Some(ErrorTarget::field(pointer)),
        });
    }

    /// Records an invalid value.
    pub fn invalid(&mut self, pointer: &str, message: impl Into<String>) {
        self.add(ErrorCode::InvalidField, pointer, message);
    }

    /// Records a field required by the note's or occurrence's kind that is absent.
    pub fn missing(&mut self, pointer: &str, message: impl Into<String>) {
        self.add(ErrorCode::MissingField, pointer, message);
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Checks a required, bounded text.
    pub fn text(&mut self, pointer: &str, value: &str) {
        if value.trim().is_empty() {
            self.invalid(pointer, "must not be empty");
        } else if value.len() > MAX_TEXT_LENGTH {
            self.invalid(pointer, format!("is longer than {MAX_TEXT_LENGTH} bytes"));
        }
    }

    /// Checks an id.
    pub fn id(&mut self, pointer: &str, value: &str) {
        if !is_valid_id(value) {
            self.invalid(
                pointer,
                "must be 1–256 characters without `/`, `?`, `#`, spaces or control characters",
            );
        }
    }

    /// Checks that a value is one of a fixed set.
    pub fn one_of(&mut self, pointer: &str, value: &str, allowed: &[&str]) {
        if !allowed.contains(&value) {
            self.invalid(
                pointer,
                format!("`{value}` is not one of {}", allowed.join(", ")),
            );
        }
    }

    /// Checks that a body part required by the kind is present and the others absent.
    fn kind_part<T>(&mut self, kind: &str, field: &str, part: &Option<T>, wanted: bool) {
        match (wanted, part.is_some()) {
            (true, false) => self.missing(
                &format!("/{field}"),
                format!("a {kind} must carry `{field}`"),
            ),
            (false, true) => self.invalid(
                &format!("/{field}"),
                format!("a {kind} must not carry `{field}`"),
            ),
            _ => {}
        }
    }
}

/// Returns the severity names, for messages and checks.
pub fn severity_names() -> Vec<&'static str> {
    Severity::ALL
        .iter()
        .map(|severity| severity.as_str())
        .collect()
}

/// Validates a note body; the caller checks path/body agreement.
pub fn validate_note(note: &ApiNote) -> Problems {
    let mut problems = Problems::default();
    problems.id("/id", &note.id);
    problems.text("/short_description", &note.short_description);
    problems.text("/long_description", &note.long_description);
    problems.text("/reported_by/id", &note.reported_by.id);
    problems.text("/reported_by/title", &note.reported_by.title);
    for (index, related) in note.related_url.iter().flatten().enumerate() {
        problems.text(&format!("/related_url/{index}/label"), &related.label);
        problems.text(&format!("/related_url/{index}/url"), &related.url);
    }
    problems.one_of("/kind", &note.kind, &NOTE_KINDS);
    let kind = note.kind.as_str();
    let is_card = matches!(kind, "CARD" | "CARD_CONFIGURED");
    if NOTE_KINDS.contains(&kind) {
        problems.kind_part(kind, "finding", &note.finding, kind == "FINDING");
        problems.kind_part(kind, "kpi", &note.kpi, kind == "KPI");
        problems.kind_part(kind, "card", &note.card, is_card);
        problems.kind_part(kind, "section", &note.section, kind == "SECTION");
    }
    if let Some(finding) = &note.finding {
        problems.one_of("/finding/severity", &finding.severity, &severity_names());
    }
    if let Some(kpi) = &note.kpi {
        problems.one_of("/kpi/aggregation_type", &kpi.aggregation_type, &["SUM"]);
        if let Some(severity) = &kpi.severity {
            problems.one_of("/kpi/Severity", severity, &severity_names());
        }
    }
    if let Some(section) = &note.section {
        problems.text("/section/title", &section.title);
        problems.text("/section/image", &section.image);
    }
    if let Some(card) = &note.card {
        validate_card(card, &mut problems);
    }
    problems
}

fn validate_card(card: &Card, problems: &mut Problems) {
    problems.text("/card/section", &card.section);
    problems.text("/card/title", &card.title);
    problems.text("/card/subtitle", &card.subtitle);
    if let Some(order) = card.order
        && !(1..=6).contains(&order)
    {
        problems.invalid(
            "/card/order",
            "must be between 1 and 6 (six cards per section)",
        );
    }
    for (index, name) in card.finding_note_names.iter().enumerate() {
        if NoteName::parse(name).is_none() {
            problems.invalid(
                &format!("/card/finding_note_names/{index}"),
                "must read `{account_id}/providers/{provider_id}/notes/{note_id}`",
            );
        }
    }
    if card.elements.is_empty() {
        problems.invalid("/card/elements", "a card needs at least one element");
    }
    for (index, element) in card.elements.iter().enumerate() {
        let pointer = format!("/card/elements/{index}");
        problems.text(&format!("{pointer}/text"), &element.text);
        problems.one_of(
            &format!("{pointer}/kind"),
            &element.kind,
            &CARD_ELEMENT_KINDS,
        );
        if let Some(range) = &element.default_time_range {
            problems.one_of(
                &format!("{pointer}/default_time_range"),
                range,
                &CARD_TIME_RANGES,
            );
        }
        match element.kind.as_str() {
            "NUMERIC" => match &element.value_type {
                Some(value_type) => {
                    validate_value_type(value_type, &format!("{pointer}/value_type"), problems);
                }
                None => problems.missing(
                    &format!("{pointer}/value_type"),
                    "a NUMERIC element needs `value_type`",
                ),
            },
            "BREAKDOWN" | "TIME_SERIES" => match &element.value_types {
                Some(value_types) if !value_types.is_empty() => {
                    for (value_index, value_type) in value_types.iter().enumerate() {
                        validate_value_type(
                            value_type,
                            &format!("{pointer}/value_types/{value_index}"),
                            problems,
                        );
                    }
                }
                _ => problems.missing(
                    &format!("{pointer}/value_types"),
                    format!("a {} element needs `value_types`", element.kind),
                ),
            },
            _ => {}
        }
    }
}

fn validate_value_type(value_type: &ValueType, pointer: &str, problems: &mut Problems) {
    match value_type.kind.as_str() {
        "KPI" => match &value_type.kpi_note_name {
            Some(name) if NoteName::parse(name).is_some() => {}
            Some(_) => problems.invalid(
                &format!("{pointer}/kpi_note_name"),
                "must read `{account_id}/providers/{provider_id}/notes/{note_id}`",
            ),
            None => problems.missing(
                &format!("{pointer}/kpi_note_name"),
                "a KPI value needs `kpi_note_name`",
            ),
        },
        "FINDING_COUNT" => match &value_type.finding_note_names {
            Some(names) if !names.is_empty() => {
                for (index, name) in names.iter().enumerate() {
                    if NoteName::parse(name).is_none() {
                        problems.invalid(
                            &format!("{pointer}/finding_note_names/{index}"),
                            "must read `{account_id}/providers/{provider_id}/notes/{note_id}`",
                        );
                    }
                }
            }
            _ => problems.missing(
                &format!("{pointer}/finding_note_names"),
                "a FINDING_COUNT value needs `finding_note_names`",
            ),
        },
        other => problems.invalid(
            &format!("{pointer}/kind"),
            format!("`{other}` is not one of KPI, FINDING_COUNT"),
        ),
    }
    match &value_type.text {
        Some(text) => problems.text(&format!("{pointer}/text"), text),
        None => problems.missing(&format!("{pointer}/text"), "a value needs `text`"),
    }
}

/// Validates an occurrence body on its own (kind parts, enumerations, note name); the caller
/// checks the note exists, agrees on kind, and that ids agree with the path.
pub fn validate_occurrence(occurrence: &ApiOccurrence) -> Problems {
    let mut problems = Problems::default();
    problems.id("/id", &occurrence.id);
    if NoteName::parse(&occurrence.note_name).is_none() {
        problems.invalid(
            "/note_name",
            "must read `{account_id}/providers/{provider_id}/notes/{note_id}`",
        );
    }
    problems.one_of("/kind", &occurrence.kind, &OCCURRENCE_KINDS);
    let kind = occurrence.kind.as_str();
    if kind == "KPI" {
        problems.kind_part(kind, "kpi", &occurrence.kpi, true);
        problems.kind_part(kind, "finding", &occurrence.finding, false);
    } else if kind == "FINDING" {
        problems.kind_part(kind, "kpi", &occurrence.kpi, false);
    }
    if let Some(kpi) = &occurrence.kpi
        && (!kpi.value.is_finite() || kpi.total.is_some_and(|total| !total.is_finite()))
    {
        problems.invalid("/kpi/value", "must be a finite number");
    }
    if let Some(finding) = &occurrence.finding {
        if let Some(severity) = &finding.severity {
            problems.one_of("/finding/severity", severity, &severity_names());
        }
        if let Some(certainty) = &finding.certainty {
            problems.one_of("/finding/certainty", certainty, &CERTAINTIES);
        }
        if let Some(connection) = &finding.network_connection {
            for (side, address) in [
                ("client", &connection.client),
                ("server", &connection.server),
            ] {
                if let Some(address) = address {
                    if address.address.parse::<std::net::IpAddr>().is_err() {
                        problems.invalid(
                            &format!("/finding/network_connection/{side}/address"),
                            format!("`{}` is not an IP address", address.address),
                        );
                    }
                    if address
                        .port
                        .is_some_and(|port| !(0..=65535).contains(&port))
                    {
                        problems.invalid(
                            &format!("/finding/network_connection/{side}/port"),
                            "must be between 0 and 65535",
                        );
                    }
                }
            }
        }
        if let Some(transferred) = &finding.data_transferred {
            for (field, value) in [
                ("client_bytes", transferred.client_bytes),
                ("server_bytes", transferred.server_bytes),
                ("client_packets", transferred.client_packets),
                ("server_packets", transferred.server_packets),
            ] {
                if value.is_some_and(|value| value < 0) {
                    problems.invalid(
                        &format!("/finding/data_transferred/{field}"),
                        "must not be negative",
                    );
                }
            }
        }
    }
    problems
}

/// The resource an occurrence is about, for the `resource` column and filter: the most specific
/// identifier the occurrence carries.
pub fn occurrence_resource(occurrence: &ApiOccurrence) -> Option<String> {
    let context = occurrence.context.as_ref();
    context
        .and_then(|context| context.resource_crn.clone())
        .or_else(|| context.and_then(|context| context.resource_id.clone()))
        .or_else(|| occurrence.resource_url.clone())
        .or_else(|| context.and_then(|context| context.resource_name.clone()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn note(kind: &str) -> ApiNote {
        ApiNote {
            short_description: "s".into(),
            long_description: "l".into(),
            kind: kind.into(),
            related_url: None,
            create_time: None,
            update_time: None,
            id: "n1".into(),
            shared: None,
            reported_by: Reporter {
                id: "r".into(),
                title: "R".into(),
                url: None,
            },
            finding: None,
            kpi: None,
            card: None,
            section: None,
        }
    }

    fn pointers(problems: &Problems) -> Vec<String> {
        problems
            .0
            .iter()
            .filter_map(|item| item.target.as_ref().map(|target| target.name.clone()))
            .collect()
    }

    #[test]
    fn each_note_kind_needs_its_own_part_and_no_other() {
        let mut finding = note("FINDING");
        assert_eq!(pointers(&validate_note(&finding)), ["/finding"]);
        finding.finding = Some(FindingType {
            severity: "HIGH".into(),
            next_steps: None,
        });
        assert!(validate_note(&finding).is_empty());
        finding.section = Some(Section {
            title: "t".into(),
            image: "i".into(),
        });
        assert_eq!(pointers(&validate_note(&finding)), ["/section"]);

        let mut kpi = note("KPI");
        kpi.kpi = Some(KpiType {
            severity: None,
            aggregation_type: "AVG".into(),
        });
        assert_eq!(pointers(&validate_note(&kpi)), ["/kpi/aggregation_type"]);

        let mut card = note("CARD");
        card.card = Some(Card {
            section: "s".into(),
            title: "t".into(),
            subtitle: "u".into(),
            order: Some(7),
            finding_note_names: vec!["a/providers/p/notes/n".into(), "bad".into()],
            requires_configuration: None,
            badge_text: None,
            badge_image: None,
            elements: vec![
                CardElement {
                    kind: "NUMERIC".into(),
                    text: "n".into(),
                    default_time_range: Some("9d".into()),
                    default_interval: None,
                    value_type: None,
                    value_types: None,
                },
                CardElement {
                    kind: "TIME_SERIES".into(),
                    text: "t".into(),
                    default_time_range: None,
                    default_interval: Some("d".into()),
                    value_type: None,
                    value_types: Some(vec![ValueType {
                        kind: "KPI".into(),
                        kpi_note_name: None,
                        finding_note_names: None,
                        text: Some("x".into()),
                    }]),
                },
            ],
        });
        assert_eq!(
            pointers(&validate_note(&card)),
            [
                "/card/order",
                "/card/finding_note_names/1",
                "/card/elements/0/default_time_range",
                "/card/elements/0/value_type",
                "/card/elements/1/value_types/0/kpi_note_name",
            ]
        );
        assert_eq!(pointers(&validate_note(&note("SECTION"))), ["/section"]);
        assert_eq!(pointers(&validate_note(&note("OTHER"))), ["/kind"]);
    }

    #[test]
    fn kpi_severity_travels_as_ibm_spells_it() {
        let kpi: KpiType =
            serde_json::from_str(r#"{"aggregation_type": "SUM", "severity": "LOW"}"#)
                .expect("parses");
        assert_eq!(kpi.severity.as_deref(), Some("LOW"));
        assert_eq!(
            serde_json::to_value(&kpi).expect("serialises"),
            serde_json::json!({"aggregation_type": "SUM", "Severity": "LOW"})
        );
    }

    #[test]
    fn note_names_parse_and_reject_extra_segments() {
        assert_eq!(
            NoteName::parse("acct/providers/p/notes/n"),
            Some(NoteName {
                account_id: "acct".into(),
                provider_id: "p".into(),
                note_id: "n".into()
            })
        );
        for bad in [
            "acct/providers/p/notes",
            "acct/provider/p/notes/n",
            "acct/providers/p/notes/n/x",
            "/providers/p/notes/n",
        ] {
            assert_eq!(NoteName::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn occurrences_are_checked_for_kind_and_values() {
        let occurrence = ApiOccurrence {
            resource_url: None,
            note_name: "a/providers/p/notes/n".into(),
            kind: "KPI".into(),
            short_description: None,
            long_description: None,
            remediation: None,
            create_time: None,
            update_time: None,
            id: "o 1".into(),
            context: None,
            finding: Some(Finding {
                severity: Some("SEVERE".into()),
                certainty: Some("HIGH".into()),
                network_connection: Some(NetworkConnection {
                    client: Some(SocketAddress {
                        address: "10.0.0.300".into(),
                        port: Some(70000),
                    }),
                    ..NetworkConnection::default()
                }),
                ..Finding::default()
            }),
            kpi: None,
            reference_data: None,
        };
        assert_eq!(
            pointers(&validate_occurrence(&occurrence)),
            [
                "/id",
                "/kpi",
                "/finding",
                "/finding/severity",
                "/finding/network_connection/client/address",
                "/finding/network_connection/client/port",
            ]
        );
    }
}
