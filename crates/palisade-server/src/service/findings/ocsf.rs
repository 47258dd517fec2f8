//! Findings as OCSF 1.1 events, for SIEMs and data lakes: posture results become Compliance
//! Findings (class 2003), everything else Detection Findings (class 2004).
//!
//! Written by hand over `serde_json` rather than with a typed OCSF crate: only two classes are
//! produced and the mapping is the interesting part, not the schema types.

use chrono::{DateTime, Utc};
use palisade_store::findings::{FindingStatus, StoredOccurrence};
use serde_json::{Map, Value, json};

use super::POSTURE_PROVIDER;

/// OCSF class of compliance results.
pub const COMPLIANCE_FINDING: i64 = 2003;
/// OCSF class of detections.
pub const DETECTION_FINDING: i64 = 2004;
/// The OCSF schema version the events follow.
pub const OCSF_VERSION: &str = "1.1.0";

fn severity_id(severity: Option<&str>) -> (i64, &'static str) {
    match severity {
        Some("LOW") => (2, "Low"),
        Some("MEDIUM") => (3, "Medium"),
        Some("HIGH") => (4, "High"),
        Some("CRITICAL") => (5, "Critical"),
        _ => (1, "Informational"),
    }
}

fn status_id(status: FindingStatus) -> (i64, &'static str) {
    match status {
        FindingStatus::Open => (1, "New"),
        FindingStatus::Acknowledged => (2, "In Progress"),
        FindingStatus::Suppressed => (3, "Suppressed"),
        FindingStatus::Resolved => (4, "Resolved"),
    }
}

fn confidence_id(certainty: Option<&str>) -> Option<(i64, &'static str)> {
    match certainty? {
        "LOW" => Some((1, "Low")),
        "MEDIUM" => Some((2, "Medium")),
        "HIGH" => Some((3, "High")),
        _ => None,
    }
}

fn millis(at: DateTime<Utc>) -> i64 {
    at.timestamp_millis()
}

fn text_at<'a>(body: &'a Value, pointer: &str) -> Option<&'a str> {
    body.pointer(pointer).and_then(Value::as_str)
}

fn insert_some(object: &mut Map<String, Value>, key: &str, value: Option<Value>) {
    if let Some(value) = value {
        object.insert(key.to_owned(), value);
    }
}

/// Returns the OCSF class an occurrence of `provider_id` exports as.
pub fn class_of(provider_id: &str) -> i64 {
    if provider_id == POSTURE_PROVIDER {
        COMPLIANCE_FINDING
    } else {
        DETECTION_FINDING
    }
}

/// Maps one stored occurrence to an OCSF event. `note_title` is the note's short description,
/// when known (the finding's title).
pub fn to_ocsf(
    instance_id: &str,
    occurrence: &StoredOccurrence,
    note_title: Option<&str>,
    now: DateTime<Utc>,
) -> Value {
    let record = &occurrence.record;
    let body = &record.body;
    let class_uid = class_of(&record.provider_id);
    let (class_name, activity_id) = if class_uid == COMPLIANCE_FINDING {
        ("Compliance Finding", 1)
    } else {
        ("Detection Finding", 1)
    };
    let (severity_id, severity) = severity_id(record.severity.as_deref());
    let status = occurrence.effective_status(now);
    let (status_id, status_name) = status_id(status);
    let title = text_at(body, "/short_description")
        .or(note_title)
        .unwrap_or(&record.note_id)
        .to_owned();

    let mut finding_info = Map::new();
    finding_info.insert(
        "uid".into(),
        json!(format!(
            "{instance_id}/{}/providers/{}/occurrences/{}",
            record.account_id, record.provider_id, record.id
        )),
    );
    finding_info.insert("title".into(), json!(title));
    insert_some(
        &mut finding_info,
        "desc",
        text_at(body, "/long_description").map(|text| json!(text)),
    );
    finding_info.insert("types".into(), json!([record.note_id]));
    finding_info.insert("created_time".into(), json!(millis(occurrence.created_at)));
    finding_info.insert("modified_time".into(), json!(millis(occurrence.updated_at)));
    finding_info.insert(
        "first_seen_time".into(),
        json!(millis(occurrence.first_seen)),
    );
    finding_info.insert("last_seen_time".into(), json!(millis(occurrence.last_seen)));
    finding_info.insert(
        "product_uid".into(),
        json!(format!(
            "{}/providers/{}/notes/{}",
            record.account_id, record.note_provider_id, record.note_id
        )),
    );

    let mut resource = Map::new();
    insert_some(
        &mut resource,
        "uid",
        record.resource.clone().map(Value::from),
    );
    insert_some(
        &mut resource,
        "name",
        text_at(body, "/context/resource_name").map(|text| json!(text)),
    );
    insert_some(
        &mut resource,
        "type",
        text_at(body, "/context/resource_type").map(|text| json!(text)),
    );
    insert_some(
        &mut resource,
        "region",
        text_at(body, "/context/region").map(|text| json!(text)),
    );
    resource.insert(
        "owner".into(),
        json!({"account": {"uid": record.account_id}}),
    );

    let mut event = Map::new();
    event.insert("class_uid".into(), json!(class_uid));
    event.insert("class_name".into(), json!(class_name));
    event.insert("category_uid".into(), json!(2));
    event.insert("category_name".into(), json!("Findings"));
    event.insert("activity_id".into(), json!(activity_id));
    event.insert("activity_name".into(), json!("Create"));
    event.insert("type_uid".into(), json!(class_uid * 100 + activity_id));
    event.insert("severity_id".into(), json!(severity_id));
    event.insert("severity".into(), json!(severity));
    event.insert("status_id".into(), json!(status_id));
    event.insert("status".into(), json!(status_name));
    insert_some(
        &mut event,
        "status_detail",
        occurrence.status_reason.clone().map(Value::from),
    );
    event.insert("time".into(), json!(millis(occurrence.last_seen)));
    event.insert("count".into(), json!(occurrence.occurrence_count));
    event.insert("message".into(), json!(title));
    event.insert(
        "metadata".into(),
        json!({
            "version": OCSF_VERSION,
            "uid": record.id,
            "product": {"name": "Palisade", "vendor_name": "Palisade", "feature": {"name": record.provider_id}},
            "tenant_uid": instance_id,
        }),
    );
    event.insert("finding_info".into(), Value::Object(finding_info));
    event.insert("resources".into(), json!([Value::Object(resource)]));
    event.insert("cloud".into(), cloud(body));
    if let Some(remediation) = remediation(body) {
        event.insert("remediation".into(), remediation);
    }
    if let Some((confidence_id, confidence)) = confidence_id(record.certainty.as_deref()) {
        event.insert("confidence_id".into(), json!(confidence_id));
        event.insert("confidence".into(), json!(confidence));
    }
    if class_uid == COMPLIANCE_FINDING {
        event.insert(
            "compliance".into(),
            json!({
                "control": record.note_id,
                "status_id": if status == FindingStatus::Resolved { 1 } else { 3 },
                "status": if status == FindingStatus::Resolved { "Pass" } else { "Fail" },
            }),
        );
    } else if let Some(evidence) = network_evidence(body) {
        event.insert("evidences".into(), json!([evidence]));
    }
    event.insert(
        "unmapped".into(),
        json!({"palisade": {"provider_id": record.provider_id, "kind": record.kind}}),
    );
    Value::Object(event)
}

fn cloud(body: &Value) -> Value {
    let mut cloud = Map::new();
    let provider = text_at(body, "/context/environment_name").unwrap_or("unknown");
    cloud.insert("provider".into(), json!(provider));
    insert_some(
        &mut cloud,
        "region",
        text_at(body, "/context/region").map(|text| json!(text)),
    );
    Value::Object(cloud)
}

fn remediation(body: &Value) -> Option<Value> {
    let desc = text_at(body, "/remediation");
    let references: Vec<String> = body
        .pointer("/finding/next_steps")
        .and_then(Value::as_array)
        .map(|steps| {
            steps
                .iter()
                .filter_map(|step| step.get("url").and_then(Value::as_str).map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    let step_titles: Vec<&str> = body
        .pointer("/finding/next_steps")
        .and_then(Value::as_array)
        .map(|steps| {
            steps
                .iter()
                .filter_map(|step| step.get("title").and_then(Value::as_str))
                .collect()
        })
        .unwrap_or_default();
    let desc = desc
        .map(str::to_owned)
        .or_else(|| (!step_titles.is_empty()).then(|| step_titles.join("; ")))?;
    let mut remediation = Map::new();
    remediation.insert("desc".into(), json!(desc));
    if !references.is_empty() {
        remediation.insert("references".into(), json!(references));
    }
    Some(Value::Object(remediation))
}

fn network_evidence(body: &Value) -> Option<Value> {
    let connection = body.pointer("/finding/network_connection")?;
    let endpoint = |side: &str| -> Option<Value> {
        let address = connection.pointer(&format!("/{side}/address"))?.as_str()?;
        let mut endpoint = Map::new();
        endpoint.insert("ip".into(), json!(address));
        insert_some(
            &mut endpoint,
            "port",
            connection.pointer(&format!("/{side}/port")).cloned(),
        );
        Some(Value::Object(endpoint))
    };
    let mut evidence = Map::new();
    insert_some(&mut evidence, "src_endpoint", endpoint("client"));
    insert_some(&mut evidence, "dst_endpoint", endpoint("server"));
    let mut connection_info = Map::new();
    insert_some(
        &mut connection_info,
        "direction",
        connection.get("direction").cloned(),
    );
    insert_some(
        &mut connection_info,
        "protocol_name",
        connection.get("protocol").cloned(),
    );
    if !connection_info.is_empty() {
        evidence.insert("connection_info".into(), Value::Object(connection_info));
    }
    if let Some(transferred) = body.pointer("/finding/data_transferred") {
        evidence.insert(
            "traffic".into(),
            json!({
                "bytes_out": transferred.get("client_bytes"),
                "bytes_in": transferred.get("server_bytes"),
                "packets_out": transferred.get("client_packets"),
                "packets_in": transferred.get("server_packets"),
            }),
        );
    }
    (!evidence.is_empty()).then_some(Value::Object(evidence))
}

#[cfg(test)]
mod tests {
    use palisade_store::findings::OccurrenceRecord;

    use super::*;

    fn stored(provider: &str, body: Value) -> StoredOccurrence {
        let at = DateTime::parse_from_rfc3339("2026-03-01T10:00:00Z")
            .expect("valid")
            .with_timezone(&Utc);
        StoredOccurrence {
            record: OccurrenceRecord {
                account_id: "acct".into(),
                provider_id: provider.into(),
                id: "o1".into(),
                note_provider_id: provider.into(),
                note_id: "n1".into(),
                kind: "FINDING".into(),
                severity: Some("HIGH".into()),
                certainty: Some("MEDIUM".into()),
                resource: Some("crn:v1:vm-1".into()),
                body,
            },
            seq: 1,
            status: FindingStatus::Open,
            status_reason: None,
            suppressed_until: None,
            occurrence_count: 4,
            first_seen: at,
            last_seen: at,
            opened_at: at,
            created_at: at,
            updated_at: at,
        }
    }

    #[test]
    fn posture_results_are_compliance_findings() {
        let event = to_ocsf(
            "inst",
            &stored(
                "posture",
                json!({"context": {"region": "us-south", "environment_name": "ibm-cloud"}, "remediation": "turn on MFA"}),
            ),
            Some("MFA is off"),
            Utc::now(),
        );
        assert_eq!(event["class_uid"], 2003);
        assert_eq!(event["type_uid"], 200301);
        assert_eq!(event["severity_id"], 4);
        assert_eq!(event["status"], "New");
        assert_eq!(event["count"], 4);
        assert_eq!(event["finding_info"]["title"], "MFA is off");
        assert_eq!(event["compliance"]["status"], "Fail");
        assert_eq!(event["cloud"]["provider"], "ibm-cloud");
        assert_eq!(event["remediation"]["desc"], "turn on MFA");
        assert_eq!(event["resources"][0]["uid"], "crn:v1:vm-1");
        assert_eq!(event["time"], 1_772_359_200_000_i64);
    }

    #[test]
    fn insights_are_detection_findings_with_network_evidence() {
        let event = to_ocsf(
            "inst",
            &stored(
                "network-insights",
                json!({"finding": {"network_connection": {"direction": "OUTBOUND", "protocol": "TCP",
                    "client": {"address": "10.0.0.5", "port": 51000}, "server": {"address": "203.0.113.9", "port": 443}},
                    "data_transferred": {"client_bytes": 900000}}}),
            ),
            None,
            Utc::now(),
        );
        assert_eq!(event["class_uid"], 2004);
        assert_eq!(event["type_uid"], 200401);
        assert_eq!(event["confidence_id"], 2);
        assert_eq!(event["finding_info"]["title"], "n1");
        let evidence = &event["evidences"][0];
        assert_eq!(evidence["dst_endpoint"]["ip"], "203.0.113.9");
        assert_eq!(evidence["src_endpoint"]["port"], 51000);
        assert_eq!(evidence["traffic"]["bytes_out"], 900000);
        assert!(event.get("compliance").is_none());
    }
}
