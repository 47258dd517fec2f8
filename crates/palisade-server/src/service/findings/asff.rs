//! Import of AWS Security Hub findings (ASFF, the `BatchImportFindings` shape) as occurrences.
//!
//! Each ASFF finding becomes an occurrence of provider [`ASFF_PROVIDER`] whose note is its
//! `GeneratorId` (created as a FINDING note on first sight); the occurrence id is derived from the
//! ASFF `Id`, so importing the same export twice counts instead of duplicating. A bad finding is
//! rejected with JSON pointers into the request (`/Findings/3/Severity`); the others go through.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use palisade_model::error::{ErrorCode, ErrorItem, ErrorTarget};
use palisade_store::Store;
use palisade_store::findings::{FindingStatus, OccurrenceKey, StatusChange};
use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;

use super::model::{
    ApiNote, ApiOccurrence, Context, Finding, FindingType, NetworkConnection, RemediationStep,
    Reporter, SocketAddress,
};
use super::{SourceOccurrence, derived_occurrence_id, ensure_note, record_occurrences};
use crate::error::ApiResult;

/// The provider imported Security Hub findings report under.
pub const ASFF_PROVIDER: &str = "aws-security-hub";

/// Outcome of an import.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ImportReport {
    /// Findings recorded (new or counted again).
    pub imported: usize,
    /// Of which new.
    pub created: usize,
    /// Findings rejected, with their problems.
    pub rejected: Vec<RejectedFinding>,
}

/// A finding the import refused.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct RejectedFinding {
    /// Index in `Findings`.
    pub index: usize,
    pub errors: Vec<ErrorItem>,
}

/// One ASFF finding, mapped.
struct Mapped {
    account_id: String,
    note: ApiNote,
    occurrence: ApiOccurrence,
    workflow_status: Option<FindingStatus>,
}

fn problem(errors: &mut Vec<ErrorItem>, index: usize, field: &str, message: &str) {
    let pointer = format!("/Findings/{index}/{field}");
    errors.push(ErrorItem {
        code: ErrorCode::InvalidField,
        message: format!("`{pointer}`: {message}"),
        target: Some(ErrorTarget::field(pointer)),
    });
}

fn string<'a>(finding: &'a Value, field: &str) -> Option<&'a str> {
    finding
        .get(field)
        .and_then(Value::as_str)
        .filter(|text| !text.trim().is_empty())
}

/// ASFF severity label (or normalized 0–100 score) to Palisade's four levels; INFORMATIONAL
/// becomes LOW, since the Findings API has no lower level.
fn severity(finding: &Value) -> Option<&'static str> {
    let severity = finding.get("Severity")?;
    if let Some(label) = severity.get("Label").and_then(Value::as_str) {
        return match label {
            "INFORMATIONAL" | "LOW" => Some("LOW"),
            "MEDIUM" => Some("MEDIUM"),
            "HIGH" => Some("HIGH"),
            "CRITICAL" => Some("CRITICAL"),
            _ => None,
        };
    }
    let score = severity
        .get("Normalized")
        .or_else(|| severity.get("Product"))
        .and_then(Value::as_f64)?;
    match score {
        score if !(0.0..=100.0).contains(&score) => None,
        score if score < 40.0 => Some("LOW"),
        score if score < 70.0 => Some("MEDIUM"),
        score if score < 90.0 => Some("HIGH"),
        _ => Some("CRITICAL"),
    }
}

fn certainty(finding: &Value) -> Option<String> {
    let confidence = finding.get("Confidence")?.as_f64()?;
    Some(
        match confidence {
            confidence if confidence < 40.0 => "LOW",
            confidence if confidence < 70.0 => "MEDIUM",
            _ => "HIGH",
        }
        .to_owned(),
    )
}

/// A note id from a generator id: ASFF generator ids contain `/`, which note ids cannot.
fn note_id_of(generator_id: &str) -> String {
    let cleaned: String = generator_id
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "-_.:".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    if cleaned.len() <= 200 {
        cleaned
    } else {
        derived_occurrence_id("generator", &[generator_id])
    }
}

fn truncate(text: &str, limit: usize) -> String {
    match text.char_indices().nth(limit) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_owned(),
    }
}

fn network(finding: &Value) -> Option<NetworkConnection> {
    let network = finding.get("Network")?;
    let address = |ip_field: &str, port_field: &str| -> Option<SocketAddress> {
        let address = network
            .get(ip_field)
            .or_else(|| network.get(ip_field.replace("V4", "V6")))
            .and_then(Value::as_str)?;
        address.parse::<std::net::IpAddr>().ok()?;
        Some(SocketAddress {
            address: address.to_owned(),
            port: network.get(port_field).and_then(Value::as_i64),
        })
    };
    Some(NetworkConnection {
        direction: network.get("Direction").and_then(Value::as_str).map(
            |direction| match direction {
                "IN" => "INBOUND".to_owned(),
                "OUT" => "OUTBOUND".to_owned(),
                other => other.to_owned(),
            },
        ),
        protocol: network
            .get("Protocol")
            .and_then(Value::as_str)
            .map(str::to_owned),
        client: address("SourceIpV4", "SourcePort"),
        server: address("DestinationIpV4", "DestinationPort"),
    })
}

fn map_finding(
    index: usize,
    finding: &Value,
    account_override: Option<&str>,
    errors: &mut Vec<ErrorItem>,
) -> Option<Mapped> {
    if !finding.is_object() {
        problem(errors, index, "", "a finding must be an object");
        return None;
    }
    let id = string(finding, "Id");
    let generator_id = string(finding, "GeneratorId");
    let title = string(finding, "Title");
    let description = string(finding, "Description");
    let account = account_override.or_else(|| string(finding, "AwsAccountId"));
    let severity = severity(finding);
    let resource = finding
        .get("Resources")
        .and_then(Value::as_array)
        .and_then(|resources| resources.first());
    let resource_id = resource.and_then(|resource| string(resource, "Id"));
    for (value, field, message) in [
        (id.is_some(), "Id", "required"),
        (generator_id.is_some(), "GeneratorId", "required"),
        (title.is_some(), "Title", "required"),
        (description.is_some(), "Description", "required"),
        (
            account.is_some(),
            "AwsAccountId",
            "required (or pass `account_id`)",
        ),
        (
            severity.is_some(),
            "Severity",
            "needs a Label (INFORMATIONAL, LOW, MEDIUM, HIGH, CRITICAL) or a Normalized score 0–100",
        ),
        (
            resource_id.is_some(),
            "Resources",
            "needs at least one resource with an Id",
        ),
    ] {
        if !value {
            problem(errors, index, field, message);
        }
    }
    let (
        Some(id),
        Some(generator_id),
        Some(title),
        Some(description),
        Some(account),
        Some(severity),
        Some(resource_id),
    ) = (
        id,
        generator_id,
        title,
        description,
        account,
        severity,
        resource_id,
    )
    else {
        return None;
    };
    if !super::model::is_valid_id(account) {
        problem(errors, index, "AwsAccountId", "not a valid account id");
        return None;
    }
    let note_id = note_id_of(generator_id);
    let recommendation = finding.pointer("/Remediation/Recommendation");
    let next_steps = recommendation.map(|recommendation| {
        vec![RemediationStep {
            title: recommendation
                .get("Text")
                .and_then(Value::as_str)
                .map(str::to_owned),
            url: recommendation
                .get("Url")
                .and_then(Value::as_str)
                .map(str::to_owned),
        }]
    });
    let region = string(finding, "Region")
        .or_else(|| resource.and_then(|resource| string(resource, "Region")))
        .map(str::to_owned);
    let note = ApiNote {
        short_description: truncate(title, 200),
        long_description: description.to_owned(),
        kind: "FINDING".into(),
        related_url: None,
        create_time: None,
        update_time: None,
        id: note_id.clone(),
        shared: None,
        reported_by: Reporter {
            id: ASFF_PROVIDER.into(),
            title: string(finding, "ProductName")
                .unwrap_or("AWS Security Hub")
                .to_owned(),
            url: None,
        },
        finding: Some(FindingType {
            severity: severity.to_owned(),
            next_steps: next_steps.clone(),
        }),
        kpi: None,
        card: None,
        section: None,
    };
    let occurrence = ApiOccurrence {
        resource_url: None,
        note_name: note_id,
        kind: "FINDING".into(),
        short_description: Some(title.to_owned()),
        long_description: Some(description.to_owned()),
        remediation: recommendation
            .and_then(|recommendation| recommendation.get("Text"))
            .and_then(Value::as_str)
            .map(str::to_owned),
        create_time: None,
        update_time: None,
        id: derived_occurrence_id("asff", &[id]),
        context: Some(Context {
            region,
            resource_crn: Some(resource_id.to_owned()),
            resource_type: resource
                .and_then(|resource| string(resource, "Type"))
                .map(str::to_owned),
            environment_name: Some("aws".into()),
            service_name: string(finding, "ProductName").map(str::to_owned),
            ..Context::default()
        }),
        finding: Some(Finding {
            severity: Some(severity.to_owned()),
            certainty: certainty(finding),
            next_steps,
            network_connection: network(finding),
            data_transferred: None,
        }),
        kpi: None,
        reference_data: Some(finding.clone()),
    };
    let workflow_status = finding
        .pointer("/Workflow/Status")
        .and_then(Value::as_str)
        .and_then(|status| match status {
            "NOTIFIED" => Some(FindingStatus::Acknowledged),
            "RESOLVED" => Some(FindingStatus::Resolved),
            "SUPPRESSED" => Some(FindingStatus::Suppressed),
            _ => None,
        });
    Some(Mapped {
        account_id: account.to_owned(),
        note,
        occurrence,
        workflow_status,
    })
}

/// Imports an ASFF document: `{"Findings": [...]}` or a bare array of findings.
pub async fn import(
    store: &Arc<dyn Store>,
    instance_id: &str,
    document: &Value,
    account_override: Option<&str>,
    at: DateTime<Utc>,
) -> ApiResult<ImportReport> {
    let findings = match document {
        Value::Array(findings) => findings.as_slice(),
        Value::Object(object) => match object.get("Findings").and_then(Value::as_array) {
            Some(findings) => findings.as_slice(),
            None => {
                return Err(crate::error::ApiError::new(
                    ErrorCode::MissingField,
                    "`/Findings`: an ASFF import is {\"Findings\": [...]} or an array of findings",
                )
                .with_target(ErrorTarget::field("/Findings")));
            }
        },
        _ => {
            return Err(crate::error::ApiError::new(
                ErrorCode::InvalidField,
                "the body must be {\"Findings\": [...]} or an array of findings",
            )
            .with_target(ErrorTarget::field("")));
        }
    };
    let mut rejected = Vec::new();
    let mut sources = Vec::new();
    let mut source_indexes = Vec::new();
    let mut workflow = Vec::new();
    for (index, finding) in findings.iter().enumerate() {
        let mut errors = Vec::new();
        match map_finding(index, finding, account_override, &mut errors) {
            Some(mapped) => {
                ensure_note(
                    store,
                    instance_id,
                    &mapped.account_id,
                    ASFF_PROVIDER,
                    &mapped.note,
                    at,
                )
                .await?;
                workflow.push((
                    OccurrenceKey {
                        account_id: mapped.account_id.clone(),
                        provider_id: ASFF_PROVIDER.to_owned(),
                        id: mapped.occurrence.id.clone(),
                    },
                    mapped.workflow_status,
                ));
                source_indexes.push(index);
                sources.push(SourceOccurrence {
                    account_id: mapped.account_id,
                    note_id: String::new(),
                    fingerprint: String::new(),
                    body: mapped.occurrence,
                });
            }
            None => rejected.push(RejectedFinding { index, errors }),
        }
    }
    let report = record_occurrences(store, instance_id, ASFF_PROVIDER, sources, at).await?;
    for (source_index, errors) in report.rejected {
        rejected.push(RejectedFinding {
            index: source_indexes
                .get(source_index)
                .copied()
                .unwrap_or(source_index),
            errors,
        });
    }
    rejected.sort_by_key(|rejection| rejection.index);
    // Security Hub's own workflow state carries over: a finding already resolved or suppressed
    // there should not alert here as new.
    for status in [
        FindingStatus::Acknowledged,
        FindingStatus::Resolved,
        FindingStatus::Suppressed,
    ] {
        let keys: Vec<OccurrenceKey> = workflow
            .iter()
            .filter(|(_, workflow_status)| *workflow_status == Some(status))
            .map(|(key, _)| key.clone())
            .collect();
        if keys.is_empty() {
            continue;
        }
        let change = StatusChange {
            status,
            reason: (status == FindingStatus::Suppressed)
                .then(|| "suppressed in AWS Security Hub".to_owned()),
            suppressed_until: None,
        };
        store
            .set_occurrence_status(instance_id, &keys, &change, at)
            .await?;
    }
    Ok(ImportReport {
        imported: report.outcomes.len(),
        created: report
            .outcomes
            .iter()
            .filter(|outcome| outcome.created)
            .count(),
        rejected,
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn sample() -> Value {
        json!({
            "SchemaVersion": "2018-10-08",
            "Id": "arn:aws:securityhub:us-east-1:123456789012:subscription/cis/1.4/finding/abc",
            "ProductArn": "arn:aws:securityhub:us-east-1::product/aws/securityhub",
            "GeneratorId": "arn:aws:securityhub:::ruleset/cis-aws-foundations-benchmark/v/1.2.0/rule/1.1",
            "AwsAccountId": "123456789012",
            "Title": "Avoid the use of the root account",
            "Description": "The root account has unrestricted access.",
            "Severity": {"Label": "INFORMATIONAL"},
            "Confidence": 80,
            "Resources": [{"Type": "AwsAccount", "Id": "AWS::::Account:123456789012", "Region": "us-east-1"}],
            "Remediation": {"Recommendation": {"Text": "Stop using root", "Url": "https://docs.aws.amazon.com/x"}},
            "Network": {"Direction": "IN", "Protocol": "TCP", "SourceIpV4": "198.51.100.7", "SourcePort": 4444, "DestinationIpV4": "10.0.0.1", "DestinationPort": 22},
            "Workflow": {"Status": "NOTIFIED"}
        })
    }

    #[test]
    fn a_security_hub_finding_maps_to_a_note_and_an_occurrence() {
        let mut errors = Vec::new();
        let mapped = map_finding(0, &sample(), None, &mut errors).expect("maps");
        assert!(errors.is_empty());
        assert_eq!(mapped.account_id, "123456789012");
        assert_eq!(
            mapped.note.id,
            "arn:aws:securityhub:::ruleset_cis-aws-foundations-benchmark_v_1.2.0_rule_1.1"
        );
        let finding = mapped.occurrence.finding.as_ref().expect("finding");
        assert_eq!(finding.severity.as_deref(), Some("LOW"));
        assert_eq!(finding.certainty.as_deref(), Some("HIGH"));
        let connection = finding.network_connection.as_ref().expect("network");
        assert_eq!(connection.direction.as_deref(), Some("INBOUND"));
        assert_eq!(
            connection.client.as_ref().map(|c| c.address.as_str()),
            Some("198.51.100.7")
        );
        let context = mapped.occurrence.context.as_ref().expect("context");
        assert_eq!(context.region.as_deref(), Some("us-east-1"));
        assert_eq!(mapped.workflow_status, Some(FindingStatus::Acknowledged));
        assert_eq!(
            mapped.occurrence.id,
            map_finding(0, &sample(), None, &mut Vec::new())
                .expect("maps")
                .occurrence
                .id,
            "the same ASFF id gives the same occurrence id"
        );
    }

    #[test]
    fn a_bad_finding_names_every_problem_by_pointer() {
        let mut errors = Vec::new();
        let bad = json!({"Id": "x", "Severity": {"Label": "SEVERE"}, "Resources": []});
        assert!(map_finding(3, &bad, None, &mut errors).is_none());
        let pointers: Vec<String> = errors
            .iter()
            .filter_map(|error| error.target.as_ref().map(|target| target.name.clone()))
            .collect();
        assert_eq!(
            pointers,
            [
                "/Findings/3/GeneratorId",
                "/Findings/3/Title",
                "/Findings/3/Description",
                "/Findings/3/AwsAccountId",
                "/Findings/3/Severity",
                "/Findings/3/Resources",
            ]
        );
    }

    #[test]
    fn normalized_scores_map_to_levels() {
        for (score, expected) in [
            (0, "LOW"),
            (39, "LOW"),
            (40, "MEDIUM"),
            (75, "HIGH"),
            (95, "CRITICAL"),
        ] {
            assert_eq!(
                severity(&json!({"Severity": {"Normalized": score}})),
                Some(expected),
                "{score}"
            );
        }
        assert_eq!(severity(&json!({"Severity": {"Normalized": 101}})), None);
    }
}
