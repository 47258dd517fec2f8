//! CloudTrail and KMS (JSON 1.1 protocol) and RDS (query protocol), per region.

use serde_json::{Map, Value, json};

use super::{ApiError, Context, Part, epoch_to_rfc3339, numbers, policy, snake_keys, tags_of};
use crate::CollectionError;

/// Trails whose home is this region (a multi-region trail is listed once, in its home region),
/// with their status and event selectors.
pub(crate) async fn trails(context: Context, region: String) -> Result<Part, ApiError> {
    let client = &context.client;
    let target = "com.amazonaws.cloudtrail.v20131101.CloudTrail_20131101";
    let answer = client
        .json(
            "cloudtrail",
            &region,
            &format!("{target}.DescribeTrails"),
            &json!({"includeShadowTrails": false}),
        )
        .await?;
    let mut part = Part::default();
    for trail in answer
        .get("trailList")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let Some(arn) = trail.get("TrailARN").and_then(Value::as_str) else {
            continue;
        };
        let mut config = snake_keys(trail.clone());
        let mut note = |what: &str, error: ApiError| {
            part.errors.push(CollectionError::new(
                "aws cloudtrail/trail",
                Some(arn.to_owned()),
                format!("{what} not read: {error}"),
            ));
        };
        let status = client
            .json(
                "cloudtrail",
                &region,
                &format!("{target}.GetTrailStatus"),
                &json!({"Name": arn}),
            )
            .await;
        let selectors = client
            .json(
                "cloudtrail",
                &region,
                &format!("{target}.GetEventSelectors"),
                &json!({"TrailName": arn}),
            )
            .await;
        if let Value::Object(map) = &mut config {
            match status {
                Ok(status) => {
                    map.insert("is_logging".into(), json!(status.get("IsLogging")));
                }
                Err(error) => note("status", error),
            }
            match selectors {
                Ok(selectors) => {
                    let selectors = snake_keys(selectors);
                    map.insert(
                        "event_selectors".into(),
                        selectors
                            .get("event_selectors")
                            .cloned()
                            .unwrap_or(json!([])),
                    );
                    map.insert(
                        "advanced_event_selectors".into(),
                        selectors
                            .get("advanced_event_selectors")
                            .cloned()
                            .unwrap_or(Value::Null),
                    );
                }
                Err(error) => note("event selectors", error),
            }
            for key in ["kms_key_id", "cloud_watch_logs_log_group_arn"] {
                map.entry(key).or_insert(Value::Null);
            }
        }
        let name = trail.get("Name").and_then(Value::as_str).map(str::to_owned);
        part.resources.push(context.resource(
            arn.to_owned(),
            "cloudtrail",
            "trail",
            Some(&region),
            name,
            Map::new(),
            config,
        ));
    }
    Ok(part)
}

/// KMS keys with their metadata, rotation status and policy analysis.
pub(crate) async fn keys(context: Context, region: String) -> Result<Part, ApiError> {
    let client = &context.client;
    let target = |operation: &str| format!("TrentService.{operation}");
    let mut key_ids = Vec::new();
    let mut marker: Option<String> = None;
    loop {
        let mut body = json!({"Limit": 1000});
        if let Some(marker) = &marker {
            body["Marker"] = json!(marker);
        }
        let page = client
            .json("kms", &region, &target("ListKeys"), &body)
            .await?;
        for key in page
            .get("Keys")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            if let Some(id) = key.get("KeyId").and_then(Value::as_str) {
                key_ids.push(id.to_owned());
            }
        }
        marker = page
            .get("NextMarker")
            .and_then(Value::as_str)
            .filter(|_| page.get("Truncated") == Some(&Value::Bool(true)))
            .map(str::to_owned);
        if marker.is_none() {
            break;
        }
    }
    let mut part = Part::default();
    for key_id in key_ids {
        let metadata = match client
            .json(
                "kms",
                &region,
                &target("DescribeKey"),
                &json!({"KeyId": key_id}),
            )
            .await
        {
            Ok(answer) => answer.get("KeyMetadata").cloned().unwrap_or(Value::Null),
            Err(error) => {
                part.errors.push(CollectionError::new(
                    "aws kms/key",
                    Some(key_id.clone()),
                    format!("not described: {error}"),
                ));
                continue;
            }
        };
        let arn = metadata
            .get("Arn")
            .and_then(Value::as_str)
            .map(str::to_owned)
            .unwrap_or_else(|| format!("arn:aws:kms:{region}:{}:key/{key_id}", context.account_id));
        let creation = metadata.get("CreationDate").and_then(epoch_to_rfc3339);
        let mut config = snake_keys(metadata.clone());
        let key_manager = config
            .get("key_manager")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        let key_spec = config
            .get("key_spec")
            .or_else(|| config.get("customer_master_key_spec"))
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        let key_state = config
            .get("key_state")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        // Rotation exists for customer-managed symmetric keys only; a key pending deletion
        // answers with an error, so its rotation stays unknown.
        let rotation = if key_manager == "CUSTOMER"
            && key_spec == "SYMMETRIC_DEFAULT"
            && key_state != "PendingDeletion"
        {
            match client
                .json(
                    "kms",
                    &region,
                    &target("GetKeyRotationStatus"),
                    &json!({"KeyId": key_id}),
                )
                .await
            {
                Ok(answer) => answer.get("KeyRotationEnabled").and_then(Value::as_bool),
                Err(error) => {
                    part.errors.push(CollectionError::new(
                        "aws kms/key",
                        Some(arn.clone()),
                        format!("rotation status not read: {error}"),
                    ));
                    None
                }
            }
        } else {
            None
        };
        let key_policy = match client
            .json(
                "kms",
                &region,
                &target("GetKeyPolicy"),
                &json!({"KeyId": key_id, "PolicyName": "default"}),
            )
            .await
        {
            Ok(answer) => answer
                .get("Policy")
                .and_then(Value::as_str)
                .and_then(policy::decode_document),
            Err(error) => {
                part.errors.push(CollectionError::new(
                    "aws kms/key",
                    Some(arn.clone()),
                    format!("policy not read: {error}"),
                ));
                None
            }
        };
        if let Value::Object(map) = &mut config {
            map.insert("creation_date".into(), json!(creation));
            map.insert("key_spec".into(), json!(key_spec));
            map.insert("key_rotation_enabled".into(), json!(rotation));
            map.insert(
                "policy_allows_public".into(),
                json!(key_policy.as_ref().map(policy::allows_public)),
            );
            map.insert("policy".into(), key_policy.unwrap_or(Value::Null));
            map.remove("deletion_date");
            if let Some(deletion) = metadata.get("DeletionDate").and_then(epoch_to_rfc3339) {
                map.insert("deletion_date".into(), json!(deletion));
            }
        }
        part.resources.push(context.resource(
            arn,
            "kms",
            "key",
            Some(&region),
            Some(key_id),
            Map::new(),
            config,
        ));
    }
    Ok(part)
}

/// RDS DB instances (all pages).
pub(crate) async fn db_instances(context: Context, region: String) -> Result<Part, ApiError> {
    let mut part = Part::default();
    let mut marker: Option<String> = None;
    loop {
        let mut parameters = vec![("MaxRecords".to_owned(), "100".to_owned())];
        if let Some(marker) = &marker {
            parameters.push(("Marker".into(), marker.clone()));
        }
        let answer = context
            .client
            .query(
                "rds",
                &region,
                "2014-10-31",
                "DescribeDBInstances",
                &parameters,
            )
            .await?;
        let result = answer
            .child("DescribeDBInstancesResult")
            .cloned()
            .unwrap_or(answer);
        for instance in result.items(&["DBInstances"]) {
            let Some(identifier) = instance.text_at(&["DBInstanceIdentifier"]) else {
                continue;
            };
            let mut config = instance.to_json();
            numbers(
                &mut config,
                &[
                    "backup_retention_period",
                    "allocated_storage",
                    "iops",
                    "max_allocated_storage",
                ],
            );
            let tags = tags_of(Some(&Value::Array(
                instance
                    .items(&["TagList"])
                    .into_iter()
                    .map(|tag| tag.to_json())
                    .collect(),
            )));
            if let Value::Object(map) = &mut config {
                map.remove("tag_list");
                // A single export is one element, not a list, in the XML tree.
                let exports = match map.get("enabled_cloudwatch_logs_exports") {
                    Some(Value::Array(items)) => json!(items),
                    Some(Value::String(one)) => json!([one]),
                    _ => json!([]),
                };
                map.insert("enabled_cloudwatch_logs_exports".into(), exports);
                for key in [
                    "storage_encrypted",
                    "publicly_accessible",
                    "auto_minor_version_upgrade",
                    "multi_az",
                    "deletion_protection",
                    "iam_database_authentication_enabled",
                ] {
                    map.entry(key).or_insert(Value::Null);
                }
            }
            let arn = instance.text_at(&["DBInstanceArn"]).unwrap_or_else(|| {
                format!(
                    "arn:aws:rds:{region}:{}:db:{identifier}",
                    context.account_id
                )
            });
            part.resources.push(context.resource(
                arn,
                "rds",
                "db-instance",
                Some(&region),
                Some(identifier),
                tags,
                config,
            ));
        }
        marker = result.text_at(&["Marker"]);
        if marker.is_none() {
            return Ok(part);
        }
    }
}
