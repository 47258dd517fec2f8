//! Azure network security group flow logs, versions 1 and 2: `{"records":[…]}` blobs (or bare
//! records), each record holding `properties.flows[].flows[].flowTuples[]` strings.
//!
//! A version 1 tuple is `time,src,dst,sport,dport,protocol(T|U),direction(I|O),decision(A|D)`;
//! version 2 appends `state(B|C|E),packets s→d,bytes s→d,packets d→s,bytes d→s` (empty on `B`
//! begin tuples). The tuple time is both start and end. The interface is the MAC of the inner
//! `flows[]` entry (or the record's `macAddress`), the account the subscription in `resourceId`.

use palisade_model::flow::{FlowAction, FlowDirection, FlowRecord, FlowSourceFormat};
use serde_json::{Map, Value};

use super::json::JsonContext;

/// Decodes one NSG flow-log record (one rule set of one NSG for one minute).
pub(crate) fn decode_record<F: FnMut(&FlowRecord)>(
    object: &Map<String, Value>,
    pointer: &str,
    context: &mut JsonContext<'_>,
    record: &mut FlowRecord,
    on_record: &mut F,
) {
    let properties = object.get("properties").and_then(Value::as_object);
    let declared_version = properties
        .and_then(|properties| properties.get("Version"))
        .and_then(Value::as_u64);
    let Some(rule_groups) = properties
        .and_then(|properties| properties.get("flows"))
        .and_then(Value::as_array)
    else {
        context.error(
            &format!("{pointer}/properties/flows"),
            "field `properties.flows`: expected an array".into(),
        );
        return;
    };
    let subscription = object
        .get("resourceId")
        .and_then(Value::as_str)
        .and_then(subscription_from_resource_id);
    let record_mac = object.get("macAddress").and_then(Value::as_str);
    for (group_index, group) in rule_groups.iter().enumerate() {
        let Some(mac_groups) = group.get("flows").and_then(Value::as_array) else {
            context.error(
                &format!("{pointer}/properties/flows/{group_index}/flows"),
                "field `flows`: expected an array".into(),
            );
            continue;
        };
        for (mac_index, mac_group) in mac_groups.iter().enumerate() {
            let mac = mac_group.get("mac").and_then(Value::as_str).or(record_mac);
            let tuples_pointer =
                format!("{pointer}/properties/flows/{group_index}/flows/{mac_index}/flowTuples");
            let Some(tuples) = mac_group.get("flowTuples").and_then(Value::as_array) else {
                context.error(
                    &tuples_pointer,
                    "field `flowTuples`: expected an array".into(),
                );
                continue;
            };
            for (tuple_index, tuple) in tuples.iter().enumerate() {
                let outcome = match tuple.as_str() {
                    Some(tuple) => parse_tuple(tuple, declared_version, record),
                    None => Err("expected a flow tuple string".to_owned()),
                };
                match outcome {
                    Ok(()) => {
                        FlowRecord::set_text(&mut record.account_id, subscription);
                        FlowRecord::set_text(&mut record.interface_id, mac);
                        record.instance_id = None;
                        context.summary.records += 1;
                        on_record(record);
                    }
                    Err(message) => {
                        context.error(&format!("{tuples_pointer}/{tuple_index}"), message)
                    }
                }
            }
        }
    }
}

const TUPLE_FIELDS: [&str; 13] = [
    "timestamp",
    "source address",
    "destination address",
    "source port",
    "destination port",
    "protocol",
    "direction",
    "decision",
    "flow state",
    "packets source to destination",
    "bytes source to destination",
    "packets destination to source",
    "bytes destination to source",
];

fn parse_tuple(
    tuple: &str,
    declared_version: Option<u64>,
    record: &mut FlowRecord,
) -> Result<(), String> {
    let fields: Vec<&str> = tuple.split(',').collect();
    let version = match (fields.len(), declared_version) {
        (8, None | Some(1)) => 1,
        (13, None | Some(2)) => 2,
        (count, Some(version)) => {
            return Err(format!(
                "version {version} flow tuple must have {} fields, found {count}",
                if version == 1 { 8 } else { 13 }
            ));
        }
        (count, None) => {
            return Err(format!(
                "flow tuple must have 8 (version 1) or 13 (version 2) fields, found {count}"
            ));
        }
    };
    let field_error = |index: usize| {
        format!(
            "tuple field {} ({}): invalid value `{}`",
            index + 1,
            TUPLE_FIELDS[index],
            fields[index]
        )
    };
    let seconds: i64 = fields[0].parse().map_err(|_| field_error(0))?;
    record.start = chrono::DateTime::from_timestamp(seconds, 0).ok_or_else(|| field_error(0))?;
    record.end = record.start;
    record.src_addr = fields[1].parse().map_err(|_| field_error(1))?;
    record.dst_addr = fields[2].parse().map_err(|_| field_error(2))?;
    record.src_port = fields[3].parse().map_err(|_| field_error(3))?;
    record.dst_port = fields[4].parse().map_err(|_| field_error(4))?;
    record.protocol = match fields[5] {
        "T" => 6,
        "U" => 17,
        other => other.parse().map_err(|_| field_error(5))?,
    };
    record.direction = match fields[6] {
        "I" => FlowDirection::Inbound,
        "O" => FlowDirection::Outbound,
        _ => return Err(field_error(6)),
    };
    record.action = match fields[7] {
        "A" => FlowAction::Accept,
        "D" => FlowAction::Reject,
        _ => return Err(field_error(7)),
    };
    if version == 1 {
        record.source_format = FlowSourceFormat::AzureNsgV1;
        record.packets = 0;
        record.bytes = 0;
        record.reverse_packets = None;
        record.reverse_bytes = None;
        return Ok(());
    }
    record.source_format = FlowSourceFormat::AzureNsgV2;
    if !matches!(fields[8], "B" | "C" | "E") {
        return Err(field_error(8));
    }
    let count = |index: usize| -> Result<u64, String> {
        if fields[index].is_empty() {
            Ok(0)
        } else {
            fields[index].parse().map_err(|_| field_error(index))
        }
    };
    record.packets = count(9)?;
    record.bytes = count(10)?;
    record.reverse_packets = Some(count(11)?);
    record.reverse_bytes = Some(count(12)?);
    Ok(())
}

/// Extracts the subscription from `/SUBSCRIPTIONS/<id>/RESOURCEGROUPS/…`.
fn subscription_from_resource_id(resource_id: &str) -> Option<&str> {
    let mut segments = resource_id.split('/');
    segments.find(|segment| segment.eq_ignore_ascii_case("subscriptions"))?;
    segments
        .next()
        .filter(|subscription| !subscription.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_one_and_two_tuples() {
        let mut record = FlowRecord::default();
        parse_tuple(
            "1542110379,10.0.0.4,13.67.143.118,44931,443,T,O,A",
            Some(1),
            &mut record,
        )
        .expect("valid v1");
        assert_eq!(
            (record.dst_port, record.protocol, record.source_format),
            (443, 6, FlowSourceFormat::AzureNsgV1)
        );
        parse_tuple(
            "1542110379,10.0.0.4,13.67.143.118,44931,443,U,I,D,B,,,,",
            None,
            &mut record,
        )
        .expect("valid v2");
        assert_eq!(
            (record.protocol, record.action, record.reverse_bytes),
            (17, FlowAction::Reject, Some(0))
        );
        let error = parse_tuple(
            "1542110379,10.0.0.4,13.67.143.118,44931,443,T,X,A",
            None,
            &mut record,
        )
        .expect_err("bad");
        assert!(error.contains("direction"), "{error}");
        assert!(
            parse_tuple("1,2,3", Some(2), &mut record)
                .expect_err("short")
                .contains("13 fields")
        );
    }

    #[test]
    fn subscription_is_read_case_insensitively() {
        assert_eq!(
            subscription_from_resource_id("/SUBSCRIPTIONS/abc/RESOURCEGROUPS/x"),
            Some("abc")
        );
        assert_eq!(subscription_from_resource_id("/subscriptions//x"), None);
    }
}
