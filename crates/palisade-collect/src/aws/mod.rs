//! The AWS collector: S3, IAM, EC2 (security groups, instances, EBS volumes, VPCs with their
//! flow logs, the region's EBS settings), CloudTrail, KMS and RDS, through AWS's own APIs at any
//! endpoint URL.
//!
//! # Why `aws-sigv4` and not the AWS SDK
//!
//! The official SDK would need one crate per service (`aws-sdk-s3`, `-iam`, `-ec2`, `-kms`,
//! `-rds`, `-cloudtrail`, `-sts`): `aws-sdk-ec2` alone is among the largest crates on
//! crates.io and takes minutes to compile on the 2-core machines we build on, and the SDK's
//! default HTTP stack brings rustls with aws-lc, while the binary uses ring only (CRATES.md).
//! The collector reads a few dozen read-only operations, so it uses the SDK's own signer
//! (`aws-sigv4`, RustCrypto hashes), the workspace's reqwest, and a small XML tree over
//! quick-xml. What that costs: the request and response shapes are written here, so each
//! operation is covered by the moto test; credentials come from static keys (environment or
//! profile files), optionally assuming a role with STS `AssumeRole` first — no SSO or IMDS; see
//! [`config`].
//!
//! # Shape
//!
//! [`collect_aws`] runs the global services (IAM, the S3 bucket list) beside the regions, which
//! run [`AwsConfig::concurrency`] at a time; inside a region the services run concurrently too.
//! Every list is paginated. A failed call costs only what depends on it: a failed list is one
//! [`CollectionError`] for its resource type and region; a failed detail call (a bucket's
//! policy) is an error naming the resource, which is still produced without that property.
//! Then cross-service facts are joined: a bucket's `object_logging` from the trails' event
//! selectors, a trail's `s3_bucket_logging_enabled` from its bucket.
//!
//! Resources are in the layout of content/README.md: AWS's member names in the snake_case of
//! the SDK models, ids are ARNs.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use futures_util::StreamExt;
use futures_util::future::BoxFuture;
use palisade_model::resource::Resource;
use serde_json::{Map, Value};

use crate::{CollectionError, CollectionOutput, Progress};

pub mod client;
pub mod config;
mod ec2;
mod iam;
pub mod policy;
mod regional;
mod s3;
pub mod xml;

pub use client::{ApiError, AwsClient};
pub use config::{
    AssumeRole, AwsConfig, AwsConfigError, AwsCredentials, AwsEnvironment, AwsOverrides,
};

/// What every service collector shares.
#[derive(Clone)]
pub(crate) struct Context {
    pub client: AwsClient,
    pub account_id: String,
    pub now: DateTime<Utc>,
}

impl Context {
    /// A resource of this account.
    #[allow(clippy::too_many_arguments)]
    pub fn resource(
        &self,
        id: String,
        service: &str,
        kind: &str,
        region: Option<&str>,
        name: Option<String>,
        tags: Map<String, Value>,
        config: Value,
    ) -> Resource {
        Resource {
            id,
            environment: "aws".into(),
            account_id: self.account_id.clone(),
            service_name: service.into(),
            resource_kind: kind.into(),
            region: region.map(str::to_owned),
            resource_group: None,
            name,
            tags,
            config,
            collected_at: self.now,
        }
    }
}

/// What one resource type in one region produced.
#[derive(Debug, Default)]
pub(crate) struct Part {
    pub resources: Vec<Resource>,
    /// Problems with single resources (`location` = the resource).
    pub errors: Vec<CollectionError>,
}

type Task = BoxFuture<'static, Result<Part, ApiError>>;

/// One unit of work: a resource type (`s3/bucket`) in a region (`None` for global ones).
struct Job {
    resource_type: &'static str,
    region: Option<String>,
    task: Task,
}

/// Collects everything `config` allows; never fails as a whole — what could not be read is in
/// [`CollectionOutput::errors`].
pub async fn collect_aws(
    config: &AwsConfig,
    progress: &dyn Progress,
    now: DateTime<Utc>,
) -> CollectionOutput {
    let mut output = CollectionOutput::default();
    let mut client = match AwsClient::new(config.clone()) {
        Ok(client) => client,
        Err(error) => {
            output
                .errors
                .push(CollectionError::new("aws", None, error.to_string()));
            return output;
        }
    };
    let home = config.home_region.clone();
    if let Some(role) = &config.assume_role {
        // Everything below runs as the role; without it there is nothing to collect as asked.
        let assumed = match iam::assume_role(&client, &home, role).await {
            Ok(credentials) => AwsClient::new(AwsConfig {
                credentials,
                assume_role: None,
                ..config.clone()
            }),
            Err(error) => Err(error),
        };
        match assumed {
            Ok(assumed) => client = assumed,
            Err(error) => {
                output.errors.push(CollectionError::new(
                    "aws sts/assume-role",
                    Some(role.role_arn.clone()),
                    error.to_string(),
                ));
                return output;
            }
        }
    }
    let account_id = match iam::caller_account(&client, &home).await {
        Ok(account) => account,
        Err(error) => {
            output.errors.push(CollectionError::new(
                "aws sts/caller-identity",
                None,
                error.to_string(),
            ));
            String::new()
        }
    };
    let context = Context {
        client: client.clone(),
        account_id,
        now,
    };
    let regions = if config.regions.is_empty() {
        match ec2::enabled_regions(&client, &home).await {
            Ok(regions) => regions,
            Err(error) => {
                output.errors.push(CollectionError::new(
                    "aws ec2/regions",
                    None,
                    format!("{error}; collecting {home} only"),
                ));
                vec![home.clone()]
            }
        }
    } else {
        config.regions.clone()
    };

    let mut jobs: Vec<Job> = Vec::new();
    let global = |resource_type: &'static str, task: Task| Job {
        resource_type,
        region: None,
        task,
    };
    jobs.push(global(
        "s3/bucket",
        Box::pin(s3::buckets(context.clone(), home.clone())),
    ));
    jobs.push(global(
        "iam/user",
        Box::pin(iam::users(context.clone(), home.clone())),
    ));
    jobs.push(global(
        "iam/role",
        Box::pin(iam::roles(context.clone(), home.clone())),
    ));
    jobs.push(global(
        "iam/policy",
        Box::pin(iam::policies(context.clone(), home.clone())),
    ));
    jobs.push(global(
        "iam/account",
        Box::pin(iam::account(context.clone(), home.clone())),
    ));
    for region in &regions {
        let regional = |resource_type: &'static str, task: Task| Job {
            resource_type,
            region: Some(region.clone()),
            task,
        };
        let region = region.clone();
        jobs.push(regional(
            "ec2/security-group",
            Box::pin(ec2::security_groups(context.clone(), region.clone())),
        ));
        jobs.push(regional(
            "ec2/instance",
            Box::pin(ec2::instances(context.clone(), region.clone())),
        ));
        jobs.push(regional(
            "ec2/volume",
            Box::pin(ec2::volumes(context.clone(), region.clone())),
        ));
        jobs.push(regional(
            "ec2/vpc",
            Box::pin(ec2::vpcs(context.clone(), region.clone())),
        ));
        jobs.push(regional(
            "ec2/account-settings",
            Box::pin(ec2::account_settings(context.clone(), region.clone())),
        ));
        jobs.push(regional(
            "cloudtrail/trail",
            Box::pin(regional::trails(context.clone(), region.clone())),
        ));
        jobs.push(regional(
            "kms/key",
            Box::pin(regional::keys(context.clone(), region.clone())),
        ));
        jobs.push(regional(
            "rds/db-instance",
            Box::pin(regional::db_instances(context.clone(), region.clone())),
        ));
    }

    // The concurrency limit bounds calls in flight to about `concurrency` regions' worth:
    // each region has 8 resource types, the global ones count as one region.
    let limit = config.concurrency.max(1) * 8;
    let results: Vec<(&'static str, Option<String>, Result<Part, ApiError>)> =
        futures_util::stream::iter(jobs.into_iter().map(|job| async move {
            progress.started(job.resource_type);
            let result = job.task.await;
            let (count, errors) = match &result {
                Ok(part) => (part.resources.len(), part.errors.len()),
                Err(_) => (0, 1),
            };
            progress.finished(job.resource_type, count, errors);
            (job.resource_type, job.region, result)
        }))
        .buffer_unordered(limit)
        .collect()
        .await;

    for (resource_type, region, result) in results {
        match result {
            Ok(part) => {
                output.resources.extend(part.resources);
                output.errors.extend(part.errors);
            }
            Err(error) => output.errors.push(CollectionError::new(
                format!("aws {resource_type}"),
                region,
                error.to_string(),
            )),
        }
    }
    join_cross_service_facts(&mut output.resources);
    output.resources.sort_by(|left, right| {
        (&left.service_name, &left.resource_kind, &left.id).cmp(&(
            &right.service_name,
            &right.resource_kind,
            &right.id,
        ))
    });
    output.errors.sort_by(|left, right| {
        (&left.source, &left.location).cmp(&(&right.source, &right.location))
    });
    output
}

/// Fills the properties that need two services: `object_logging` of buckets (from trails'
/// S3 data event selectors) and `s3_bucket_logging_enabled` of trails (from their bucket).
fn join_cross_service_facts(resources: &mut [Resource]) {
    let mut selectors: Vec<(String, bool, bool)> = Vec::new(); // (arn prefix, read, write)
    let mut bucket_logging: BTreeMap<String, bool> = BTreeMap::new();
    for resource in resources.iter() {
        match (
            resource.service_name.as_str(),
            resource.resource_kind.as_str(),
        ) {
            ("cloudtrail", "trail") => {
                if resource.config.get("is_logging") == Some(&Value::Bool(false)) {
                    continue;
                }
                for selector in resource
                    .config
                    .get("event_selectors")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                {
                    let read_write = selector
                        .get("read_write_type")
                        .and_then(Value::as_str)
                        .unwrap_or("All");
                    let read = read_write == "All" || read_write == "ReadOnly";
                    let write = read_write == "All" || read_write == "WriteOnly";
                    for data in selector
                        .get("data_resources")
                        .and_then(Value::as_array)
                        .into_iter()
                        .flatten()
                    {
                        if data.get("type").and_then(Value::as_str) != Some("AWS::S3::Object") {
                            continue;
                        }
                        for value in data
                            .get("values")
                            .and_then(Value::as_array)
                            .into_iter()
                            .flatten()
                            .filter_map(Value::as_str)
                        {
                            selectors.push((value.to_owned(), read, write));
                        }
                    }
                }
            }
            ("s3", "bucket") => {
                let logging = resource
                    .config
                    .pointer("/logging/target_bucket")
                    .and_then(Value::as_str)
                    .is_some_and(|target| !target.is_empty());
                if let Some(name) = resource.config.get("name").and_then(Value::as_str) {
                    bucket_logging.insert(name.to_owned(), logging);
                }
            }
            _ => {}
        }
    }
    for resource in resources.iter_mut() {
        match (
            resource.service_name.as_str(),
            resource.resource_kind.as_str(),
        ) {
            ("s3", "bucket") => {
                let Some(name) = resource.config.get("name").and_then(Value::as_str) else {
                    continue;
                };
                // `arn:aws:s3` (every bucket), `arn:aws:s3:::bucket/` or `arn:aws:s3:::bucket/prefix`.
                let arn = format!("arn:aws:s3:::{name}/");
                let matching = selectors.iter().filter(|(value, _, _)| {
                    value == "arn:aws:s3"
                        || value == "arn:aws:s3:::"
                        || arn.starts_with(value.as_str())
                        || value.starts_with(&arn)
                });
                let (read, write) = matching.fold((false, false), |(read, write), selector| {
                    (read || selector.1, write || selector.2)
                });
                if let Value::Object(config) = &mut resource.config {
                    config.insert(
                        "object_logging".into(),
                        serde_json::json!({"read": read, "write": write}),
                    );
                }
            }
            ("cloudtrail", "trail") => {
                let bucket = resource
                    .config
                    .get("s3_bucket_name")
                    .and_then(Value::as_str)
                    .map(str::to_owned);
                if let (Some(bucket), Value::Object(config)) = (bucket, &mut resource.config) {
                    // Unknown (null) when the bucket is in another account or was not read.
                    let logging = bucket_logging.get(&bucket).copied();
                    config.insert(
                        "s3_bucket_logging_enabled".into(),
                        serde_json::json!(logging),
                    );
                }
            }
            _ => {}
        }
    }
}

/// Converts AWS tags (`[{key|Key, value|Value}]`) to a map.
pub(crate) fn tags_of(tags: Option<&Value>) -> Map<String, Value> {
    let mut map = Map::new();
    for tag in tags.and_then(Value::as_array).into_iter().flatten() {
        let key = tag
            .get("key")
            .or_else(|| tag.get("Key"))
            .and_then(Value::as_str);
        let value = tag.get("value").or_else(|| tag.get("Value")).cloned();
        if let Some(key) = key {
            map.insert(key.to_owned(), value.unwrap_or(Value::Null));
        }
    }
    map
}

/// Turns the string values of `keys` (numbers in XML answers) into JSON numbers.
pub(crate) fn numbers(config: &mut Value, keys: &[&str]) {
    let Value::Object(map) = config else {
        return;
    };
    for key in keys {
        if let Some(value) = map.get_mut(*key)
            && let Some(number) = value.as_str().and_then(|text| text.parse::<i64>().ok())
        {
            *value = Value::from(number);
        }
    }
}

/// Recursively renames the keys of a JSON answer (CloudTrail, KMS: PascalCase) to snake_case.
pub(crate) fn snake_keys(value: Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.into_iter()
                .map(|(key, value)| (crate::snake_case(&key), snake_keys(value)))
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.into_iter().map(snake_keys).collect()),
        other => other,
    }
}

/// Converts epoch seconds (JSON protocol timestamps) to RFC 3339.
pub(crate) fn epoch_to_rfc3339(value: &Value) -> Option<String> {
    let seconds = value.as_f64()?;
    DateTime::<Utc>::from_timestamp(seconds.trunc() as i64, 0)
        .map(|time| time.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
}
