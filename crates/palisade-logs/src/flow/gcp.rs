//! Google Cloud VPC flow logs as exported from Cloud Logging: JSON Lines (or an array) of log
//! entries whose `jsonPayload` holds `connection{src_ip,dest_ip,src_port,dest_port,protocol}`,
//! `bytes_sent`, `packets_sent`, `start_time`, `end_time` and `reporter`. A bare payload (the
//! `jsonPayload` object alone, as BigQuery exports flatten it) is accepted too.
//!
//! `reporter` `SRC` means the sending VM reported the flow (outbound), `DEST` the receiving one
//! (inbound). VPC flow logs record delivered traffic, not firewall decisions, so the action is
//! `unknown`. The project comes from the reporter's instance, its VPC, or the entry's resource
//! labels; the instance is the reporter's `vm_name`.

use palisade_model::flow::{FlowAction, FlowDirection, FlowRecord, FlowSourceFormat};
use serde_json::{Map, Value};

use super::json::{JsonContext, address, narrow, optional_u64, required_str, rfc3339};

/// Decodes one log entry (or bare payload).
pub(crate) fn decode_entry<F: FnMut(&FlowRecord)>(
    entry: &Map<String, Value>,
    pointer: &str,
    context: &mut JsonContext<'_>,
    record: &mut FlowRecord,
    on_record: &mut F,
) {
    let (payload, payload_pointer) = match entry.get("jsonPayload") {
        Some(Value::Object(payload)) => (payload, format!("{pointer}/jsonPayload")),
        Some(_) => {
            context.error(
                &format!("{pointer}/jsonPayload"),
                "field `jsonPayload`: expected an object".into(),
            );
            return;
        }
        None => (entry, pointer.to_owned()),
    };
    match fill_record(entry, payload, record) {
        Ok(()) => {
            context.summary.records += 1;
            on_record(record);
        }
        Err(message) => context.error(&payload_pointer, message),
    }
}

fn fill_record(
    entry: &Map<String, Value>,
    payload: &Map<String, Value>,
    record: &mut FlowRecord,
) -> Result<(), String> {
    let connection = payload
        .get("connection")
        .and_then(Value::as_object)
        .ok_or_else(|| "field `connection` is missing or not an object".to_owned())?;
    record.src_addr = address(required_str(connection, "src_ip")?, "connection.src_ip")?;
    record.dst_addr = address(required_str(connection, "dest_ip")?, "connection.dest_ip")?;
    record.src_port = narrow(
        optional_u64(connection, "src_port")?.unwrap_or(0),
        "connection.src_port",
    )?;
    record.dst_port = narrow(
        optional_u64(connection, "dest_port")?.unwrap_or(0),
        "connection.dest_port",
    )?;
    record.protocol = narrow(
        optional_u64(connection, "protocol")?.unwrap_or(0),
        "connection.protocol",
    )?;
    let start_text = match payload.get("start_time").and_then(Value::as_str) {
        Some(text) => text,
        None => required_str(entry, "timestamp")
            .map_err(|_| "field `start_time` is missing".to_owned())?,
    };
    record.start = rfc3339(start_text, "start_time")?;
    record.end = match payload.get("end_time").and_then(Value::as_str) {
        Some(text) => rfc3339(text, "end_time")?,
        None => record.start,
    };
    record.packets = optional_u64(payload, "packets_sent")?.unwrap_or(0);
    record.bytes = optional_u64(payload, "bytes_sent")?.unwrap_or(0);
    record.reverse_packets = None;
    record.reverse_bytes = None;
    record.action = FlowAction::Unknown;
    let (direction, reporter_side) = match payload.get("reporter").and_then(Value::as_str) {
        Some("SRC") => (FlowDirection::Outbound, Some("src")),
        Some("DEST") => (FlowDirection::Inbound, Some("dest")),
        None => (FlowDirection::Unknown, None),
        Some(other) => {
            return Err(format!(
                "field `reporter`: expected SRC or DEST, found `{other}`"
            ));
        }
    };
    record.direction = direction;
    record.source_format = FlowSourceFormat::GcpVpc;
    let reporter_instance = reporter_side
        .and_then(|side| payload.get(&format!("{side}_instance")))
        .and_then(Value::as_object);
    let reporter_vpc = reporter_side
        .and_then(|side| payload.get(&format!("{side}_vpc")))
        .and_then(Value::as_object);
    let project = reporter_instance
        .and_then(|instance| instance.get("project_id"))
        .or_else(|| reporter_vpc.and_then(|vpc| vpc.get("project_id")))
        .or_else(|| {
            entry
                .get("resource")
                .and_then(|resource| resource.get("labels"))
                .and_then(|labels| labels.get("project_id"))
        })
        .and_then(Value::as_str);
    let instance = reporter_instance
        .and_then(|instance| instance.get("vm_name"))
        .and_then(Value::as_str);
    FlowRecord::set_text(&mut record.account_id, project);
    FlowRecord::set_text(&mut record.instance_id, instance);
    record.interface_id = None;
    Ok(())
}
