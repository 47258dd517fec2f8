//! IBM Cloud VPC flow-log objects: one JSON object per COS key, a header (interface, instance,
//! collector CRN, capture window, `state`) and `flow_logs[]`.
//!
//! Field mapping: `initiator_ip:initiator_port → target_ip:target_port` is the flow's
//! `src → dst`; `*_from_initiator` are its packets and bytes, `*_from_target` the reverse ones;
//! `direction` `I`/`O` and `action` `accepted`/`rejected` map one to one; the account is the
//! `a/<account>` segment of `collector_crn`; the instance is `instance_crn`.

use palisade_model::flow::{FlowAction, FlowDirection, FlowRecord, FlowSourceFormat};
use serde_json::{Map, Value};

use super::json::{
    JsonContext, address, narrow, optional_u64, required_str, required_u64, rfc3339,
};

/// Decodes one IBM flow-log object.
pub(crate) fn decode_object<F: FnMut(&FlowRecord)>(
    object: &Map<String, Value>,
    pointer: &str,
    context: &mut JsonContext<'_>,
    record: &mut FlowRecord,
    on_record: &mut F,
) {
    let flows = match object.get("flow_logs") {
        Some(Value::Array(flows)) => flows,
        Some(Value::Null) | None => &Vec::new(),
        Some(_) => {
            context.error(
                &format!("{pointer}/flow_logs"),
                "field `flow_logs`: expected an array".into(),
            );
            return;
        }
    };
    if flows.is_empty() {
        // `state: "skip data"` objects (and empty captures) carry no flow by design.
        context.summary.skipped_without_data += 1;
        return;
    }
    let account = object
        .get("collector_crn")
        .and_then(Value::as_str)
        .and_then(account_from_crn);
    let interface = object.get("network_interface_id").and_then(Value::as_str);
    let instance = object.get("instance_crn").and_then(Value::as_str);
    for (index, flow) in flows.iter().enumerate() {
        let flow_pointer = format!("{pointer}/flow_logs/{index}");
        let outcome = match flow.as_object() {
            Some(flow) => fill_record(flow, record),
            None => Err("expected a flow object".to_owned()),
        };
        match outcome {
            Ok(()) => {
                record.source_format = FlowSourceFormat::IbmVpc;
                FlowRecord::set_text(&mut record.account_id, account);
                FlowRecord::set_text(&mut record.interface_id, interface);
                FlowRecord::set_text(&mut record.instance_id, instance);
                context.summary.records += 1;
                on_record(record);
            }
            Err(message) => context.error(&flow_pointer, message),
        }
    }
}

fn fill_record(flow: &Map<String, Value>, record: &mut FlowRecord) -> Result<(), String> {
    record.start = rfc3339(required_str(flow, "start_time")?, "start_time")?;
    record.end = match flow.get("end_time").and_then(Value::as_str) {
        Some(text) => rfc3339(text, "end_time")?,
        None => record.start,
    };
    record.src_addr = address(required_str(flow, "initiator_ip")?, "initiator_ip")?;
    record.dst_addr = address(required_str(flow, "target_ip")?, "target_ip")?;
    record.src_port = narrow(
        optional_u64(flow, "initiator_port")?.unwrap_or(0),
        "initiator_port",
    )?;
    record.dst_port = narrow(
        optional_u64(flow, "target_port")?.unwrap_or(0),
        "target_port",
    )?;
    record.protocol = narrow(
        required_u64(flow, "transport_protocol")?,
        "transport_protocol",
    )?;
    record.packets = optional_u64(flow, "packets_from_initiator")?.unwrap_or(0);
    record.bytes = optional_u64(flow, "bytes_from_initiator")?.unwrap_or(0);
    record.reverse_packets = optional_u64(flow, "packets_from_target")?;
    record.reverse_bytes = optional_u64(flow, "bytes_from_target")?;
    record.direction = match flow.get("direction").and_then(Value::as_str) {
        Some("I") => FlowDirection::Inbound,
        Some("O") => FlowDirection::Outbound,
        None => FlowDirection::Unknown,
        Some(other) => {
            return Err(format!(
                "field `direction`: expected I or O, found `{other}`"
            ));
        }
    };
    record.action = match flow.get("action").and_then(Value::as_str) {
        Some("accepted") => FlowAction::Accept,
        Some("rejected") => FlowAction::Reject,
        None => FlowAction::Unknown,
        Some(other) => {
            return Err(format!(
                "field `action`: expected accepted or rejected, found `{other}`"
            ));
        }
    };
    Ok(())
}

/// Extracts the account from a CRN (`crn:v1:bluemix:public:is:us-south:a/<account>::…`).
fn account_from_crn(crn: &str) -> Option<&str> {
    crn.split(':')
        .find_map(|segment| segment.strip_prefix("a/"))
        .filter(|account| !account.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crn_account_is_extracted() {
        assert_eq!(
            account_from_crn(
                "crn:v1:bluemix:public:is:us-south:a/2d1bace7b46e4815a81e52c6ffeba5cf::flow-log-collector:r006-1"
            ),
            Some("2d1bace7b46e4815a81e52c6ffeba5cf")
        );
        assert_eq!(
            account_from_crn("crn:v1:bluemix:public:is:us-south:::x"),
            None
        );
    }
}
