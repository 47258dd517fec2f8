//! The JSON side of flow decoding: splits the input into top-level values (one document, or JSON
//! Lines) and hands each to the decoder of the format it looks like.
//!
//! Formats are recognised per value rather than per file because exports mix: an S3 prefix can
//! hold IBM objects next to each other, a Cloud Logging export is JSON Lines of GCP entries, an
//! Azure blob is one `{"records":[…]}` document.

use std::io::BufRead;
use std::net::IpAddr;

use chrono::{DateTime, Utc};
use palisade_model::flow::FlowRecord;
use serde_json::{Map, Value};

use super::{FlowDecodeError, FlowDecodeSummary, azure, gcp, ibm};

/// Where the value being decoded sits, for error messages, and the summary errors go to.
pub(crate) struct JsonContext<'summary> {
    pub(crate) source_name: &'summary str,
    pub(crate) line: u64,
    pub(crate) summary: &'summary mut FlowDecodeSummary,
}

impl JsonContext<'_> {
    /// Records a bad entry at `pointer` (a JSON pointer inside the value on `line`).
    pub(crate) fn error(&mut self, pointer: &str, message: String) {
        self.summary.push_error(FlowDecodeError {
            source_name: self.source_name.to_owned(),
            line: self.line,
            pointer: (!pointer.is_empty()).then(|| pointer.to_owned()),
            message,
        });
    }
}

/// Decodes JSON flow logs of any supported kind.
pub(crate) fn decode_json_flows<R, F>(
    mut reader: R,
    source_name: &str,
    mut on_record: F,
) -> FlowDecodeSummary
where
    R: BufRead,
    F: FnMut(&FlowRecord),
{
    let mut summary = FlowDecodeSummary::new();
    let mut input = Vec::new();
    if let Err(error) = reader.read_to_end(&mut input) {
        summary.push_io_error(source_name, 1, &error);
        return summary;
    }
    let mut record = FlowRecord::default();
    let first_line_end = memchr::memchr(b'\n', &input).unwrap_or(input.len());
    let first_line_is_a_value = serde_json::from_slice::<Value>(&input[..first_line_end]).is_ok();
    if first_line_is_a_value {
        // JSON Lines (or a single-line document): a bad line is skipped, the next one is read.
        for (index, line) in input.split(|byte| *byte == b'\n').enumerate() {
            if line.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            let mut context = JsonContext {
                source_name,
                line: index as u64 + 1,
                summary: &mut summary,
            };
            match serde_json::from_slice::<Value>(line) {
                Ok(value) => decode_value(&value, "", &mut context, &mut record, &mut on_record),
                Err(error) => context.error("", format!("invalid JSON: {error}")),
            }
        }
    } else {
        // One pretty-printed document (or several back to back): a syntax error ends the source,
        // since there is no line boundary to resume from.
        let mut stream = serde_json::Deserializer::from_slice(&input).into_iter::<Value>();
        loop {
            let value_start = stream.byte_offset();
            let next = stream.next();
            let Some(result) = next else { break };
            match result {
                Ok(value) => {
                    let skipped = input[value_start..]
                        .iter()
                        .take_while(|byte| byte.is_ascii_whitespace());
                    let start = value_start + skipped.count();
                    let line = 1 + memchr::memchr_iter(b'\n', &input[..start]).count() as u64;
                    let mut context = JsonContext {
                        source_name,
                        line,
                        summary: &mut summary,
                    };
                    decode_value(&value, "", &mut context, &mut record, &mut on_record);
                }
                Err(error) => {
                    let mut context = JsonContext {
                        source_name,
                        line: error.line() as u64,
                        summary: &mut summary,
                    };
                    context.error("", format!("invalid JSON: {error}"));
                    break;
                }
            }
        }
    }
    summary
}

/// Dispatches one top-level (or array element) value by its shape.
fn decode_value<F: FnMut(&FlowRecord)>(
    value: &Value,
    pointer: &str,
    context: &mut JsonContext<'_>,
    record: &mut FlowRecord,
    on_record: &mut F,
) {
    match value {
        Value::Array(elements) => {
            for (index, element) in elements.iter().enumerate() {
                decode_value(element, &format!("{pointer}/{index}"), context, record, on_record);
            }
        }
        Value::Object(object) if object.contains_key("flow_logs") => {
            ibm::decode_object(object, pointer, context, record, on_record);
        }
        Value::Object(object) if object.get("records").is_some_and(Value::is_array) => {
            if let Some(Value::Array(records)) = object.get("records") {
                for (index, element) in records.iter().enumerate() {
                    let element_pointer = format!("{pointer}/records/{index}");
                    match element.as_object() {
                        Some(azure_record) => {
                            azure::decode_record(azure_record, &element_pointer, context, record, on_record);
                        }
                        None => context.error(&element_pointer, "expected an Azure NSG record object".into()),
                    }
                }
            }
        }
        Value::Object(object) if object.get("properties").and_then(|properties| properties.get("flows")).is_some() => {
            azure::decode_record(object, pointer, context, record, on_record);
        }
        Value::Object(object) if object.contains_key("jsonPayload") || object.contains_key("connection") => {
            gcp::decode_entry(object, pointer, context, record, on_record);
        }
        _ => context.error(
            pointer,
            "unrecognised flow-log JSON: expected an IBM object (`flow_logs`), Azure NSG `records`, \
             or a GCP entry (`jsonPayload.connection`)"
                .into(),
        ),
    }
}

/// Returns `object[key]` as text, or an error naming the field.
pub(crate) fn required_str<'value>(
    object: &'value Map<String, Value>,
    key: &str,
) -> Result<&'value str, String> {
    match object.get(key) {
        Some(Value::String(text)) => Ok(text),
        Some(other) => Err(format!("field `{key}`: expected a string, found {other}")),
        None => Err(format!("field `{key}` is missing")),
    }
}

/// Returns `object[key]` as an unsigned number; accepts numbers and decimal strings (protobuf
/// JSON writes 64-bit integers as strings, as GCP does). `None` when absent or null.
pub(crate) fn optional_u64(object: &Map<String, Value>, key: &str) -> Result<Option<u64>, String> {
    match object.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(number)) => number.as_u64().map(Some).ok_or_else(|| {
            format!("field `{key}`: expected a non-negative integer, found {number}")
        }),
        Some(Value::String(text)) => text.parse().map(Some).map_err(|_| {
            format!("field `{key}`: expected a non-negative integer, found \"{text}\"")
        }),
        Some(other) => Err(format!("field `{key}`: expected a number, found {other}")),
    }
}

/// Returns `object[key]` as a number that must be present.
pub(crate) fn required_u64(object: &Map<String, Value>, key: &str) -> Result<u64, String> {
    optional_u64(object, key)?.ok_or_else(|| format!("field `{key}` is missing"))
}

/// Narrows a number to a port or protocol, naming the field when it does not fit.
pub(crate) fn narrow<T: TryFrom<u64>>(value: u64, key: &str) -> Result<T, String> {
    T::try_from(value).map_err(|_| format!("field `{key}`: {value} is out of range"))
}

/// Parses `text` as an IP address, naming the field when it is not one.
pub(crate) fn address(text: &str, key: &str) -> Result<IpAddr, String> {
    text.parse()
        .map_err(|_| format!("field `{key}`: `{text}` is not an IP address"))
}

/// Parses an RFC 3339 time, naming the field when it is not one.
pub(crate) fn rfc3339(text: &str, key: &str) -> Result<DateTime<Utc>, String> {
    DateTime::parse_from_rfc3339(text)
        .map(|time| time.with_timezone(&Utc))
        .map_err(|error| format!("field `{key}`: `{text}` is not an RFC 3339 time ({error})"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode(text: &str) -> (usize, FlowDecodeSummary) {
        let mut count = 0;
        let summary = decode_json_flows(text.as_bytes(), "t.json", |_| count += 1);
        (count, summary)
    }

    #[test]
    fn unknown_shapes_and_broken_lines_are_reported_per_line() {
        let (count, summary) = decode("{\"a\":1}\n{broken\n[{\"b\":2}]\n");
        assert_eq!(count, 0);
        let places: Vec<(u64, Option<&str>)> = summary
            .errors
            .iter()
            .map(|error| (error.line, error.pointer.as_deref()))
            .collect();
        assert_eq!(places, [(1, None), (2, None), (3, Some("/0"))]);
    }

    #[test]
    fn pretty_document_syntax_error_names_its_line() {
        let (_, summary) = decode("{\n  \"records\": [\n    oops\n  ]\n}\n");
        assert_eq!(summary.bad_records, 1);
        assert_eq!(summary.errors[0].line, 3);
    }

    #[test]
    fn numbers_accept_strings_and_reject_negatives() {
        let object: Map<String, Value> =
            serde_json::from_str(r#"{"a":"12","b":-1,"c":null,"d":true}"#).expect("valid");
        assert_eq!(optional_u64(&object, "a"), Ok(Some(12)));
        assert!(optional_u64(&object, "b").is_err());
        assert_eq!(optional_u64(&object, "c"), Ok(None));
        assert!(optional_u64(&object, "d").is_err());
        assert!(
            required_u64(&object, "zz")
                .expect_err("missing")
                .contains("zz")
        );
        assert!(narrow::<u16>(70_000, "port").is_err());
    }
}
