//! Record-level decoding: JSON text to [`AuditEvent`], recognising the format from the record's
//! own fields and extracting the envelope (time, account, initiator, target, action).

use chrono::{DateTime, NaiveDateTime, Utc};
use palisade_model::event::{AuditEvent, AuditSourceFormat};
use serde_json::{Map, Value};

/// How to decide a record's format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FormatHint {
    /// Recognise each record from its fields (the default; a file may mix formats).
    #[default]
    Detect,
    /// Every record is in this format (the caller knows, e.g. a CloudTrail S3 object).
    Fixed(AuditSourceFormat),
}

/// Why one record could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecordError {
    /// The record is not valid JSON.
    #[error("invalid JSON at column {column}: {message}")]
    Json {
        /// One-based column within the record's first line where parsing failed.
        column: usize,
        /// The parser's message.
        message: String,
    },
    /// The record is JSON but not an object.
    #[error("a record must be a JSON object, found {found}")]
    NotAnObject {
        /// The JSON type found instead.
        found: &'static str,
    },
}

/// Parses one record and normalises it.
///
/// # Errors
/// [`RecordError`] when the bytes are not a JSON object.
pub fn decode_record(bytes: &[u8], hint: FormatHint) -> Result<AuditEvent, RecordError> {
    let raw: Value = serde_json::from_slice(bytes).map_err(|error| RecordError::Json {
        column: error.column(),
        message: error.to_string(),
    })?;
    normalise(raw, hint)
}

/// Normalises an already parsed record.
///
/// # Errors
/// [`RecordError::NotAnObject`] when `raw` is not an object.
pub fn normalise(raw: Value, hint: FormatHint) -> Result<AuditEvent, RecordError> {
    let Value::Object(object) = &raw else {
        return Err(RecordError::NotAnObject {
            found: json_type_name(&raw),
        });
    };
    let format = match hint {
        FormatHint::Fixed(format) => format,
        FormatHint::Detect => detect_format(object),
    };
    let envelope = match format {
        AuditSourceFormat::AwsCloudTrail => cloudtrail_envelope(object),
        AuditSourceFormat::IbmActivityTracker => cadf_envelope(object),
        AuditSourceFormat::KubernetesAudit => kubernetes_envelope(object),
        AuditSourceFormat::GenericJson => generic_envelope(object),
    };
    Ok(AuditEvent {
        format,
        time: envelope.time,
        account: envelope.account,
        initiator: envelope.initiator,
        target: envelope.target,
        action: envelope.action,
        raw,
    })
}

/// Recognises a record's format from fields only that format has.
pub fn detect_format(object: &Map<String, Value>) -> AuditSourceFormat {
    // `eventVersion` + `eventName` is enough: CloudTrail always writes both, and exports that
    // trim records (and hand-written test events) often drop `eventSource`.
    if object.contains_key("eventVersion") && object.contains_key("eventName") {
        return AuditSourceFormat::AwsCloudTrail;
    }
    let api_version = object
        .get("apiVersion")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if api_version.starts_with("audit.k8s.io/")
        && object.get("kind").and_then(Value::as_str) == Some("Event")
    {
        return AuditSourceFormat::KubernetesAudit;
    }
    let is_cadf_shaped = object.get("initiator").is_some_and(Value::is_object)
        && object.get("action").is_some_and(Value::is_string)
        && object.contains_key("eventTime");
    let observed_by_activity_tracker = str_at(object, &["observer", "name"])
        == Some("ActivityTracker")
        || object.contains_key("logSourceCRN")
        || object.get("typeURI").is_some();
    if is_cadf_shaped && observed_by_activity_tracker {
        return AuditSourceFormat::IbmActivityTracker;
    }
    AuditSourceFormat::GenericJson
}

#[derive(Default)]
struct Envelope {
    time: Option<DateTime<Utc>>,
    account: Option<String>,
    initiator: Option<String>,
    target: Option<String>,
    action: Option<String>,
}

fn cloudtrail_envelope(object: &Map<String, Value>) -> Envelope {
    let target = object
        .get("resources")
        .and_then(Value::as_array)
        .and_then(|resources| resources.first())
        .and_then(|resource| resource.get("ARN"))
        .and_then(Value::as_str)
        .or_else(|| {
            [
                "bucketName",
                "userName",
                "roleName",
                "keyId",
                "name",
                "trailName",
                "groupName",
                "policyArn",
            ]
            .iter()
            .find_map(|key| str_at(object, &["requestParameters", key]))
        });
    let action = match (
        str_at(object, &["eventSource"]),
        str_at(object, &["eventName"]),
    ) {
        (Some(source), Some(name)) => Some(format!("{source}:{name}")),
        (None, Some(name)) => Some(name.to_owned()),
        _ => None,
    };
    Envelope {
        time: str_at(object, &["eventTime"]).and_then(parse_time),
        account: str_at(object, &["recipientAccountId"])
            .or_else(|| str_at(object, &["userIdentity", "accountId"]))
            .map(str::to_owned),
        initiator: str_at(object, &["userIdentity", "arn"])
            .or_else(|| str_at(object, &["userIdentity", "principalId"]))
            .or_else(|| str_at(object, &["userIdentity", "invokedBy"]))
            .or_else(|| str_at(object, &["userIdentity", "type"]))
            .map(str::to_owned),
        target: target.map(str::to_owned),
        action,
    }
}

fn cadf_envelope(object: &Map<String, Value>) -> Envelope {
    // The account is the `a/<id>` scope segment of the target's (or the log source's) CRN:
    // crn:v1:bluemix:public:<service>:<region>:a/<account>:<instance>:<type>:<resource>.
    let account = [
        str_at(object, &["target", "id"]),
        str_at(object, &["logSourceCRN"]),
    ]
    .into_iter()
    .flatten()
    .find_map(crn_account);
    Envelope {
        time: str_at(object, &["eventTime"]).and_then(parse_time),
        account,
        initiator: str_at(object, &["initiator", "name"])
            .or_else(|| str_at(object, &["initiator", "id"]))
            .map(str::to_owned),
        target: str_at(object, &["target", "id"])
            .or_else(|| str_at(object, &["target", "name"]))
            .map(str::to_owned),
        action: str_at(object, &["action"]).map(str::to_owned),
    }
}

fn crn_account(crn: &str) -> Option<String> {
    let scope = crn.split(':').nth(6)?;
    scope
        .strip_prefix("a/")
        .filter(|account| !account.is_empty())
        .map(str::to_owned)
}

fn kubernetes_envelope(object: &Map<String, Value>) -> Envelope {
    let target = str_at(object, &["objectRef", "resource"]).map(|resource| {
        let namespace = str_at(object, &["objectRef", "namespace"]);
        let name = str_at(object, &["objectRef", "name"]);
        [namespace, Some(resource), name]
            .into_iter()
            .flatten()
            .collect::<Vec<_>>()
            .join("/")
    });
    let action = match (
        str_at(object, &["verb"]),
        str_at(object, &["objectRef", "resource"]),
    ) {
        (Some(verb), Some(resource)) => Some(format!("{verb} {resource}")),
        (Some(verb), None) => Some(verb.to_owned()),
        _ => None,
    };
    Envelope {
        time: str_at(object, &["requestReceivedTimestamp"])
            .or_else(|| str_at(object, &["stageTimestamp"]))
            .and_then(parse_time),
        account: None,
        initiator: str_at(object, &["user", "username"]).map(str::to_owned),
        target: target.or_else(|| str_at(object, &["requestURI"]).map(str::to_owned)),
        action,
    }
}

fn generic_envelope(object: &Map<String, Value>) -> Envelope {
    Envelope {
        time: ["@timestamp", "timestamp", "time", "eventTime", "ts"]
            .iter()
            .find_map(|key| str_at(object, &[key]))
            .and_then(parse_time),
        ..Envelope::default()
    }
}

fn str_at<'value>(object: &'value Map<String, Value>, path: &[&str]) -> Option<&'value str> {
    let (first, rest) = path.split_first()?;
    let mut current = object.get(*first)?;
    for key in rest {
        current = current.get(*key)?;
    }
    current.as_str()
}

fn json_type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Parses the timestamps audit logs use: RFC 3339 (`2023-07-10T12:00:00Z`), CADF's offset
/// without a colon (`2024-01-02T03:04:05.67+0000`), and a zone-less form taken as UTC.
pub fn parse_time(text: &str) -> Option<DateTime<Utc>> {
    if let Ok(time) = DateTime::parse_from_rfc3339(text) {
        return Some(time.with_timezone(&Utc));
    }
    if let Ok(time) = DateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S%.f%z") {
        return Some(time.with_timezone(&Utc));
    }
    NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S%.f")
        .ok()
        .map(|naive| naive.and_utc())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn cloudtrail_record_envelope_is_extracted() {
        let record = json!({
            "eventVersion": "1.08", "eventTime": "2023-07-10T12:20:01Z",
            "eventSource": "s3.amazonaws.com", "eventName": "DeleteBucket",
            "recipientAccountId": "218007301253",
            "userIdentity": {"type": "IAMUser", "arn": "arn:aws:iam::218007301253:user/alice"},
            "requestParameters": {"bucketName": "logs"}
        });
        let event = normalise(record, FormatHint::Detect).expect("object");
        assert_eq!(event.format, AuditSourceFormat::AwsCloudTrail);
        assert_eq!(
            event.action.as_deref(),
            Some("s3.amazonaws.com:DeleteBucket")
        );
        assert_eq!(event.account.as_deref(), Some("218007301253"));
        assert_eq!(
            event.initiator.as_deref(),
            Some("arn:aws:iam::218007301253:user/alice")
        );
        assert_eq!(event.target.as_deref(), Some("logs"));
        assert_eq!(
            event.time.map(|time| time.to_rfc3339()).as_deref(),
            Some("2023-07-10T12:20:01+00:00")
        );
    }

    #[test]
    fn cadf_record_envelope_is_extracted() {
        let record = json!({
            "action": "iam-identity.apikey.delete", "eventTime": "2024-01-02T03:04:05.67+0000",
            "observer": {"name": "ActivityTracker"}, "outcome": "success",
            "initiator": {"id": "IBMid-123", "name": "bob@example.com"},
            "target": {"id": "crn:v1:bluemix:public:iam-identity::a/abc123::apikey:ApiKey-1"}
        });
        let event = normalise(record, FormatHint::Detect).expect("object");
        assert_eq!(event.format, AuditSourceFormat::IbmActivityTracker);
        assert_eq!(event.account.as_deref(), Some("abc123"));
        assert_eq!(event.initiator.as_deref(), Some("bob@example.com"));
        assert!(event.time.is_some());
    }

    #[test]
    fn kubernetes_record_envelope_is_extracted() {
        let record = json!({
            "kind": "Event", "apiVersion": "audit.k8s.io/v1", "verb": "delete",
            "user": {"username": "system:admin"},
            "objectRef": {"resource": "secrets", "namespace": "prod", "name": "db"},
            "requestReceivedTimestamp": "2024-05-01T10:00:00.123456Z"
        });
        let event = normalise(record, FormatHint::Detect).expect("object");
        assert_eq!(event.format, AuditSourceFormat::KubernetesAudit);
        assert_eq!(event.target.as_deref(), Some("prod/secrets/db"));
        assert_eq!(event.action.as_deref(), Some("delete secrets"));
    }

    #[test]
    fn unknown_objects_are_generic_and_non_objects_are_errors() {
        let event = normalise(
            json!({"msg": "x", "@timestamp": "2024-05-01T10:00:00"}),
            FormatHint::Detect,
        )
        .expect("object");
        assert_eq!(event.format, AuditSourceFormat::GenericJson);
        assert!(event.time.is_some());
        assert_eq!(
            normalise(json!([1]), FormatHint::Detect),
            Err(RecordError::NotAnObject { found: "an array" })
        );
        assert!(matches!(
            decode_record(b"{\"a\":", FormatHint::Detect),
            Err(RecordError::Json { .. })
        ));
    }
}
