//! EC2 (query protocol, API version 2016-11-15): regions, security groups, instances, EBS
//! volumes, VPCs with their flow logs, and the region's EBS account settings.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::xml::XmlNode;
use super::{ApiError, AwsClient, Context, Part, numbers, tags_of};

const VERSION: &str = "2016-11-15";

/// The regions enabled for the account.
pub(crate) async fn enabled_regions(
    client: &AwsClient,
    region: &str,
) -> Result<Vec<String>, ApiError> {
    let answer = client
        .query("ec2", region, VERSION, "DescribeRegions", &[])
        .await?;
    let mut regions: Vec<String> = answer
        .items(&["regionInfo"])
        .into_iter()
        .filter_map(|item| item.text_at(&["regionName"]))
        .collect();
    regions.sort();
    Ok(regions)
}

/// Calls a paginated `Describe*` action and returns the items of `list` from every page.
async fn describe_all(
    context: &Context,
    region: &str,
    action: &str,
    list: &[&str],
    parameters: &[(String, String)],
) -> Result<Vec<XmlNode>, ApiError> {
    let mut items = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let mut page_parameters = parameters.to_vec();
        if let Some(token) = &token {
            page_parameters.push(("NextToken".into(), token.clone()));
        }
        let answer = context
            .client
            .query("ec2", region, VERSION, action, &page_parameters)
            .await?;
        items.extend(answer.items(list).into_iter().cloned());
        token = answer.text_at(&["nextToken"]);
        if token.is_none() {
            return Ok(items);
        }
    }
}

/// Normalises a security group rule: numbers as numbers, protocol `-1` covering every port,
/// missing range lists as empty lists.
fn permission(item: &XmlNode) -> Value {
    let protocol = item.text_at(&["ipProtocol"]).unwrap_or_else(|| "-1".into());
    let (from_port, to_port) = if protocol == "-1" {
        (Some(0), Some(65_535))
    } else {
        (item.int_at(&["fromPort"]), item.int_at(&["toPort"]))
    };
    let ranges = |list: &str, key: &str, out_key: &str| -> Value {
        Value::Array(
            item.items(&[list])
                .into_iter()
                .map(|range| {
                    json!({out_key: range.text_at(&[key]), "description": range.text_at(&["description"])})
                })
                .collect(),
        )
    };
    json!({
        "ip_protocol": protocol,
        "from_port": from_port,
        "to_port": to_port,
        "ip_ranges": ranges("ipRanges", "cidrIp", "cidr_ip"),
        "ipv6_ranges": ranges("ipv6Ranges", "cidrIpv6", "cidr_ipv6"),
        "user_id_group_pairs": item.items(&["groups"]).into_iter().map(|pair| json!({
            "group_id": pair.text_at(&["groupId"]), "user_id": pair.text_at(&["userId"])
        })).collect::<Vec<_>>(),
        "prefix_list_ids": item.items(&["prefixListIds"]).into_iter().map(|prefix| json!({
            "prefix_list_id": prefix.text_at(&["prefixListId"])
        })).collect::<Vec<_>>(),
    })
}

pub(crate) async fn security_groups(context: Context, region: String) -> Result<Part, ApiError> {
    let items = describe_all(
        &context,
        &region,
        "DescribeSecurityGroups",
        &["securityGroupInfo"],
        &[],
    )
    .await?;
    let mut part = Part::default();
    for item in items {
        let Some(group_id) = item.text_at(&["groupId"]) else {
            continue;
        };
        let group_name = item.text_at(&["groupName"]);
        let tags = tags_of(Some(
            &item.at(&["tagSet"]).map_or(Value::Null, XmlNode::to_json),
        ));
        let config = json!({
            "group_id": group_id,
            "group_name": group_name,
            "description": item.text_at(&["groupDescription"]),
            "vpc_id": item.text_at(&["vpcId"]),
            "owner_id": item.text_at(&["ownerId"]),
            "is_default": group_name.as_deref() == Some("default"),
            "ip_permissions": item.items(&["ipPermissions"]).into_iter().map(permission).collect::<Vec<_>>(),
            "ip_permissions_egress": item.items(&["ipPermissionsEgress"]).into_iter().map(permission).collect::<Vec<_>>(),
        });
        part.resources.push(context.resource(
            format!(
                "arn:aws:ec2:{region}:{}:security-group/{group_id}",
                context.account_id
            ),
            "ec2",
            "security-group",
            Some(&region),
            group_name,
            tags,
            config,
        ));
    }
    Ok(part)
}

pub(crate) async fn instances(context: Context, region: String) -> Result<Part, ApiError> {
    let reservations = describe_all(
        &context,
        &region,
        "DescribeInstances",
        &["reservationSet"],
        &[],
    )
    .await?;
    let mut part = Part::default();
    for reservation in reservations {
        for item in reservation.items(&["instancesSet"]) {
            let Some(instance_id) = item.text_at(&["instanceId"]) else {
                continue;
            };
            let mut config = item.to_json();
            let tags = tags_of(config.get("tag_set"));
            if let Value::Object(map) = &mut config {
                // The SDK's names for what the EC2 XML calls ipAddress / instanceState.
                map.insert(
                    "public_ip_address".into(),
                    json!(item.text_at(&["ipAddress"])),
                );
                map.insert(
                    "state".into(),
                    json!(item.text_at(&["instanceState", "name"])),
                );
                map.remove("tag_set");
                if !map.contains_key("iam_instance_profile") {
                    map.insert("iam_instance_profile".into(), Value::Null);
                }
            }
            let name = tags.get("Name").and_then(Value::as_str).map(str::to_owned);
            part.resources.push(context.resource(
                format!(
                    "arn:aws:ec2:{region}:{}:instance/{instance_id}",
                    context.account_id
                ),
                "ec2",
                "instance",
                Some(&region),
                name.or(Some(instance_id)),
                tags,
                config,
            ));
        }
    }
    Ok(part)
}

pub(crate) async fn volumes(context: Context, region: String) -> Result<Part, ApiError> {
    let items = describe_all(&context, &region, "DescribeVolumes", &["volumeSet"], &[]).await?;
    let mut part = Part::default();
    for item in items {
        let Some(volume_id) = item.text_at(&["volumeId"]) else {
            continue;
        };
        let mut config = item.to_json();
        let tags = tags_of(config.get("tag_set"));
        numbers(&mut config, &["size", "iops", "throughput"]);
        if let Value::Object(map) = &mut config {
            map.remove("tag_set");
            // The XML says `status`; the SDK model and the catalogue say `state`.
            map.insert("state".into(), json!(item.text_at(&["status"])));
            map.insert(
                "encrypted".into(),
                json!(item.bool_at(&["encrypted"]).unwrap_or(false)),
            );
            map.entry("kms_key_id").or_insert(Value::Null);
        }
        part.resources.push(context.resource(
            format!(
                "arn:aws:ec2:{region}:{}:volume/{volume_id}",
                context.account_id
            ),
            "ec2",
            "volume",
            Some(&region),
            Some(volume_id),
            tags,
            config,
        ));
    }
    Ok(part)
}

pub(crate) async fn vpcs(context: Context, region: String) -> Result<Part, ApiError> {
    let items = describe_all(&context, &region, "DescribeVpcs", &["vpcSet"], &[]).await?;
    let mut part = Part::default();
    // One listing of the region's flow logs, grouped by the resource they watch.
    let mut flow_logs: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    match describe_all(&context, &region, "DescribeFlowLogs", &["flowLogSet"], &[]).await {
        Ok(logs) => {
            for log in logs {
                if let Some(resource_id) = log.text_at(&["resourceId"]) {
                    flow_logs.entry(resource_id).or_default().push(json!({
                        "flow_log_id": log.text_at(&["flowLogId"]),
                        "flow_log_status": log.text_at(&["flowLogStatus"]),
                        "traffic_type": log.text_at(&["trafficType"]),
                        "log_destination_type": log.text_at(&["logDestinationType"]),
                        "log_destination": log.text_at(&["logDestination"]),
                        "deliver_logs_status": log.text_at(&["deliverLogsStatus"]),
                    }));
                }
            }
        }
        Err(error) => part.errors.push(crate::CollectionError::new(
            "aws ec2/vpc",
            Some(region.clone()),
            format!("flow logs not read: {error}"),
        )),
    }
    let flow_logs_read = part.errors.is_empty();
    for item in items {
        let Some(vpc_id) = item.text_at(&["vpcId"]) else {
            continue;
        };
        let tags = tags_of(Some(
            &item.at(&["tagSet"]).map_or(Value::Null, XmlNode::to_json),
        ));
        let logs = flow_logs.remove(&vpc_id).unwrap_or_default();
        let config = json!({
            "vpc_id": vpc_id,
            "cidr_block": item.text_at(&["cidrBlock"]),
            "state": item.text_at(&["state"]),
            "is_default": item.bool_at(&["isDefault"]).unwrap_or(false),
            // Unknown (absent) rather than "no flow logs" when they could not be read.
            "flow_logs": if flow_logs_read { json!(logs) } else { Value::Null },
        });
        let name = tags.get("Name").and_then(Value::as_str).map(str::to_owned);
        part.resources.push(context.resource(
            format!("arn:aws:ec2:{region}:{}:vpc/{vpc_id}", context.account_id),
            "ec2",
            "vpc",
            Some(&region),
            name.or(Some(vpc_id)),
            tags,
            config,
        ));
    }
    Ok(part)
}

pub(crate) async fn account_settings(context: Context, region: String) -> Result<Part, ApiError> {
    let encryption = context
        .client
        .query("ec2", &region, VERSION, "GetEbsEncryptionByDefault", &[])
        .await?;
    let mut part = Part::default();
    let snapshot_state = match context
        .client
        .query(
            "ec2",
            &region,
            VERSION,
            "GetSnapshotBlockPublicAccessState",
            &[],
        )
        .await
    {
        Ok(answer) => answer.text_at(&["state"]),
        Err(error) => {
            part.errors.push(crate::CollectionError::new(
                "aws ec2/account-settings",
                Some(region.clone()),
                format!("snapshot block public access not read: {error}"),
            ));
            None
        }
    };
    let config = json!({
        "ebs_encryption_by_default": encryption.bool_at(&["ebsEncryptionByDefault"]),
        "snapshot_block_public_access_state": snapshot_state,
    });
    part.resources.push(context.resource(
        format!(
            "arn:aws:ec2:{region}:{}:account-settings",
            context.account_id
        ),
        "ec2",
        "account-settings",
        Some(&region),
        Some(format!("EC2 settings {region}")),
        serde_json::Map::new(),
        config,
    ));
    Ok(part)
}
