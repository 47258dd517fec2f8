//! S3 (REST-XML): every bucket with its region, ACL, policy, policy status, Block Public
//! Access, default encryption, versioning and server access logging.

use serde_json::{Map, Value, json};

use super::xml::XmlNode;
use super::{ApiError, Context, Part, policy};
use crate::CollectionError;

/// Grantee URIs that make a bucket public through its ACL.
const PUBLIC_GRANTEES: [&str; 2] = [
    "http://acs.amazonaws.com/groups/global/AllUsers",
    "http://acs.amazonaws.com/groups/global/AuthenticatedUsers",
];

pub(crate) async fn buckets(context: Context, home: String) -> Result<Part, ApiError> {
    let mut names: Vec<(String, Option<String>)> = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let query = match &token {
            Some(token) => format!(
                "continuation-token={}&max-buckets=1000",
                super::client::encode(token)
            ),
            None => "max-buckets=1000".to_owned(),
        };
        let text = context.client.s3_get(&home, None, &query).await?;
        let answer = XmlNode::parse(&text).map_err(|message| ApiError {
            status: 200,
            code: "BadResponse".into(),
            message,
        })?;
        for bucket in answer.items(&["Buckets"]) {
            if let Some(name) = bucket.text_at(&["Name"]) {
                names.push((name, bucket.text_at(&["CreationDate"])));
            }
        }
        token = answer.text_at(&["ContinuationToken"]);
        if token.is_none() {
            break;
        }
    }
    let mut part = Part::default();
    for (name, creation_date) in names {
        let (resource, errors) = bucket(&context, &home, &name, creation_date).await;
        part.resources.push(resource);
        part.errors.extend(errors);
    }
    Ok(part)
}

/// Reads one bucket's settings; a sub-resource that fails is reported and left out.
async fn bucket(
    context: &Context,
    home: &str,
    name: &str,
    creation_date: Option<String>,
) -> (palisade_model::resource::Resource, Vec<CollectionError>) {
    let mut errors = Vec::new();
    let mut report = |what: &str, error: &ApiError| {
        errors.push(CollectionError::new(
            "aws s3/bucket",
            Some(name.to_owned()),
            format!("{what} not read: {error}"),
        ));
    };
    let client = &context.client;
    // Sub-resources are signed for the bucket's own region.
    let region = match client.s3_get(home, Some(name), "location").await {
        Ok(text) => XmlNode::parse(&text)
            .ok()
            .map(|node| node.text.trim().to_owned())
            .map(|location| match location.as_str() {
                "" => "us-east-1".to_owned(),
                "EU" => "eu-west-1".to_owned(),
                _ => location,
            })
            .unwrap_or_else(|| home.to_owned()),
        Err(error) => {
            report("location", &error);
            home.to_owned()
        }
    };
    let mut config = Map::new();
    config.insert("name".into(), json!(name));
    config.insert("creation_date".into(), json!(creation_date));
    config.insert("region".into(), json!(region));

    let bucket_region: &str = &region;
    let fetch = move |query: &'static str| client.s3_get(bucket_region, Some(name), query);

    let mut acl_public = false;
    match fetch("acl").await.and_then(parse_xml) {
        Ok(acl) => {
            let grants: Vec<Value> = acl
                .items(&["AccessControlList"])
                .into_iter()
                .map(|grant| {
                    let uri = grant.text_at(&["Grantee", "URI"]);
                    if uri
                        .as_deref()
                        .is_some_and(|uri| PUBLIC_GRANTEES.contains(&uri))
                    {
                        acl_public = true;
                    }
                    json!({"grantee": {"id": grant.text_at(&["Grantee", "ID"]), "uri": uri},
                           "permission": grant.text_at(&["Permission"])})
                })
                .collect();
            config.insert(
                "acl".into(),
                json!({"owner_id": acl.text_at(&["Owner", "ID"]), "grants": grants}),
            );
        }
        Err(error) => report("acl", &error),
    }

    let mut policy_public = false;
    match fetch("policy").await {
        Ok(text) => {
            let document = policy::decode_document(&text);
            if let Some(document) = &document {
                policy_public = policy::allows_public(document);
                config.insert(
                    "secure_transport_required".into(),
                    json!(policy::denies_insecure_transport(document)),
                );
            }
            config.insert("policy".into(), document.unwrap_or(Value::Null));
        }
        Err(error) if error.is_not_found() => {
            config.insert("policy".into(), Value::Null);
            config.insert("secure_transport_required".into(), json!(false));
        }
        Err(error) => report("policy", &error),
    }

    match fetch("policyStatus").await.and_then(parse_xml) {
        Ok(status) => {
            config.insert(
                "policy_status".into(),
                json!({"is_public": status.bool_at(&["IsPublic"]).unwrap_or(false) || acl_public}),
            );
        }
        Err(error) if error.is_not_found() => {
            config.insert(
                "policy_status".into(),
                json!({"is_public": policy_public || acl_public}),
            );
        }
        // Emulators and older partitions lack GetBucketPolicyStatus: the collector then
        // decides from the policy and ACL it read, as the API would.
        Err(_) => {
            config.insert(
                "policy_status".into(),
                json!({"is_public": policy_public || acl_public, "derived": true}),
            );
        }
    }

    match fetch("publicAccessBlock").await.and_then(parse_xml) {
        Ok(block) => {
            config.insert(
                "public_access_block".into(),
                json!({
                    "block_public_acls": block.bool_at(&["BlockPublicAcls"]).unwrap_or(false),
                    "ignore_public_acls": block.bool_at(&["IgnorePublicAcls"]).unwrap_or(false),
                    "block_public_policy": block.bool_at(&["BlockPublicPolicy"]).unwrap_or(false),
                    "restrict_public_buckets": block.bool_at(&["RestrictPublicBuckets"]).unwrap_or(false),
                }),
            );
        }
        Err(error) if error.is_not_found() => {
            config.insert("public_access_block".into(), Value::Null);
        }
        Err(error) => report("public access block", &error),
    }

    match fetch("encryption").await.and_then(parse_xml) {
        Ok(encryption) => {
            let rules: Vec<Value> = encryption
                .children_named("Rule")
                .map(|rule| {
                    json!({
                        "apply_server_side_encryption_by_default": {
                            "sse_algorithm": rule.text_at(&["ApplyServerSideEncryptionByDefault", "SSEAlgorithm"]),
                            "kms_master_key_id": rule.text_at(&["ApplyServerSideEncryptionByDefault", "KMSMasterKeyID"]),
                        },
                        "bucket_key_enabled": rule.bool_at(&["BucketKeyEnabled"]).unwrap_or(false),
                    })
                })
                .collect();
            config.insert("encryption".into(), json!({"rules": rules}));
        }
        Err(error) if error.is_not_found() => {
            config.insert("encryption".into(), json!({"rules": []}));
        }
        Err(error) => report("encryption", &error),
    }

    match fetch("versioning").await.and_then(parse_xml) {
        Ok(versioning) => {
            config.insert(
                "versioning".into(),
                json!({"status": versioning.text_at(&["Status"]),
                       "mfa_delete": versioning.text_at(&["MfaDelete"])}),
            );
        }
        Err(error) => report("versioning", &error),
    }

    match fetch("logging").await.and_then(parse_xml) {
        Ok(logging) => {
            config.insert(
                "logging".into(),
                json!({"target_bucket": logging.text_at(&["LoggingEnabled", "TargetBucket"]),
                       "target_prefix": logging.text_at(&["LoggingEnabled", "TargetPrefix"])}),
            );
        }
        Err(error) => report("logging", &error),
    }

    let tags = match fetch("tagging").await.and_then(parse_xml) {
        Ok(tagging) => tagging
            .items(&["TagSet"])
            .into_iter()
            .filter_map(|tag| Some((tag.text_at(&["Key"])?, json!(tag.text_at(&["Value"])))))
            .collect(),
        Err(_) => Map::new(),
    };
    let resource = context.resource(
        format!("arn:aws:s3:::{name}"),
        "s3",
        "bucket",
        Some(&region),
        Some(name.to_owned()),
        tags,
        Value::Object(config),
    );
    (resource, errors)
}

fn parse_xml(text: String) -> Result<XmlNode, ApiError> {
    XmlNode::parse(&text).map_err(|message| ApiError {
        status: 200,
        code: "BadResponse".into(),
        message,
    })
}
