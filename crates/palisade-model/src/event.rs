//! The normalised audit event: what the audit-log decoders produce and Sigma rules read.
//!
//! Sigma rules address the provider's own field names (`eventName`, `userIdentity.arn`), so the
//! event keeps the record exactly as it was read in [`AuditEvent::raw`]; rules are dot paths into
//! it. The envelope fields next to it (time, account, initiator, target, action) are extracted
//! once by the decoder so that findings, time filters and correlation windows do not need to know
//! each provider's spelling.

use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Which audit-log format a record was decoded as.
///
/// Each format maps to one Sigma `logsource` (`product` / `service`), which decides which rules
/// see its events.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuditSourceFormat {
    /// AWS CloudTrail records (`eventVersion`, `eventSource`, `eventName`, …).
    AwsCloudTrail,
    /// IBM Cloud Activity Tracker events in CADF (`initiator`, `target`, `action`, `outcome`).
    IbmActivityTracker,
    /// Kubernetes API-server audit events (`audit.k8s.io` `Event` objects).
    KubernetesAudit,
    /// Any other JSON object, one per line; only rules without a product or service see it.
    GenericJson,
}

impl AuditSourceFormat {
    /// Every format, in declaration order.
    pub const ALL: [AuditSourceFormat; 4] = [
        Self::AwsCloudTrail,
        Self::IbmActivityTracker,
        Self::KubernetesAudit,
        Self::GenericJson,
    ];

    /// Returns the Sigma `logsource.product` of events in this format, if any.
    pub fn logsource_product(self) -> Option<&'static str> {
        match self {
            Self::AwsCloudTrail => Some("aws"),
            Self::IbmActivityTracker => Some("ibm"),
            Self::KubernetesAudit => Some("kubernetes"),
            Self::GenericJson => None,
        }
    }

    /// Returns the Sigma `logsource.service` of events in this format, if any.
    pub fn logsource_service(self) -> Option<&'static str> {
        match self {
            Self::AwsCloudTrail => Some("cloudtrail"),
            Self::IbmActivityTracker => Some("activity_tracker"),
            Self::KubernetesAudit => Some("audit"),
            Self::GenericJson => None,
        }
    }

    /// Returns the format's stable snake_case name (as serialised).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::AwsCloudTrail => "aws_cloud_trail",
            Self::IbmActivityTracker => "ibm_activity_tracker",
            Self::KubernetesAudit => "kubernetes_audit",
            Self::GenericJson => "generic_json",
        }
    }
}

impl fmt::Display for AuditSourceFormat {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(self.as_str())
    }
}

/// One audit record, normalised.
///
/// Every envelope field is optional because real logs omit them (a CloudTrail `AwsServiceEvent`
/// has no caller, a CADF event may lack a target); `raw` is always the whole record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditEvent {
    /// The format the record was decoded as; decides the Sigma logsource.
    pub format: AuditSourceFormat,
    /// When the audited action happened (`eventTime`, `eventTime` of CADF,
    /// `requestReceivedTimestamp` of Kubernetes), in UTC.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time: Option<DateTime<Utc>>,
    /// Account, subscription or cluster the action happened in (`recipientAccountId`, CADF
    /// `target.host.address`-less account id, …).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account: Option<String>,
    /// Who performed the action: an ARN, an IAM id, a user name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub initiator: Option<String>,
    /// What the action was performed on, when the format says (a CRN, a bucket, an object ref).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// The action itself: `s3.amazonaws.com:DeleteBucket`, `iam-identity.apikey.delete`, `delete`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action: Option<String>,
    /// The record exactly as read (parsed JSON); Sigma field names are dot paths into it.
    pub raw: Value,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn logsources_follow_sigmahq_taxonomy() {
        assert_eq!(
            AuditSourceFormat::AwsCloudTrail.logsource_product(),
            Some("aws")
        );
        assert_eq!(
            AuditSourceFormat::AwsCloudTrail.logsource_service(),
            Some("cloudtrail")
        );
        assert_eq!(
            AuditSourceFormat::KubernetesAudit.logsource_product(),
            Some("kubernetes")
        );
        assert_eq!(
            AuditSourceFormat::KubernetesAudit.logsource_service(),
            Some("audit")
        );
        assert_eq!(AuditSourceFormat::GenericJson.logsource_product(), None);
    }

    #[test]
    fn format_names_match_their_serde_spelling() {
        for format in AuditSourceFormat::ALL {
            let wire = serde_json::to_string(&format).expect("serialises");
            assert_eq!(wire, format!("\"{format}\""));
        }
    }

    #[test]
    fn event_round_trips_through_json_without_empty_envelope_fields() {
        let event = AuditEvent {
            format: AuditSourceFormat::AwsCloudTrail,
            time: None,
            account: Some("123456789012".into()),
            initiator: None,
            target: None,
            action: Some("s3.amazonaws.com:DeleteBucket".into()),
            raw: serde_json::json!({"eventName": "DeleteBucket"}),
        };
        let wire = serde_json::to_value(&event).expect("serialises");
        assert!(wire.get("time").is_none());
        let back: AuditEvent = serde_json::from_value(wire).expect("parses");
        assert_eq!(back, event);
    }
}
