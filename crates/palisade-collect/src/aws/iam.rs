//! IAM and STS (query protocol): the caller's account, users with their keys, MFA devices,
//! policies and groups; roles; customer-managed policies; the account's password policy,
//! summary, root user facts (credential report) and support role.

use base64::Engine as _;
use chrono::{DateTime, Utc};
use serde_json::{Map, Value, json};

use super::xml::XmlNode;
use super::{ApiError, AwsClient, Context, Part, numbers, policy};
use crate::CollectionError;

const VERSION: &str = "2010-05-08";

/// How recent a root sign-in or key use counts as "recently used" (CIS AWS 1.7).
const ROOT_RECENT_DAYS: i64 = 90;

/// The account id of the credentials (STS GetCallerIdentity).
pub(crate) async fn caller_account(client: &AwsClient, region: &str) -> Result<String, ApiError> {
    let answer = client
        .query("sts", region, "2011-06-15", "GetCallerIdentity", &[])
        .await?;
    answer
        .text_at(&["GetCallerIdentityResult", "Account"])
        .ok_or_else(|| ApiError {
            status: 200,
            code: "BadResponse".into(),
            message: "GetCallerIdentity named no account".into(),
        })
}

/// Assumes a role (STS AssumeRole) with the client's credentials; returns the role's temporary
/// credentials (one hour).
pub(crate) async fn assume_role(
    client: &AwsClient,
    region: &str,
    role: &super::config::AssumeRole,
) -> Result<super::AwsCredentials, ApiError> {
    let mut parameters = vec![
        ("RoleArn".to_owned(), role.role_arn.clone()),
        ("RoleSessionName".to_owned(), role.session_name.clone()),
        ("DurationSeconds".to_owned(), "3600".to_owned()),
    ];
    if let Some(external_id) = &role.external_id {
        parameters.push(("ExternalId".to_owned(), external_id.clone()));
    }
    let answer = client
        .query("sts", region, "2011-06-15", "AssumeRole", &parameters)
        .await?;
    let field = |name: &str| answer.text_at(&["AssumeRoleResult", "Credentials", name]);
    match (
        field("AccessKeyId"),
        field("SecretAccessKey"),
        field("SessionToken"),
    ) {
        (Some(access_key_id), Some(secret_access_key), session_token) => {
            Ok(super::AwsCredentials {
                access_key_id,
                secret_access_key,
                session_token,
            })
        }
        _ => Err(ApiError {
            status: 200,
            code: "BadResponse".into(),
            message: "AssumeRole answered no credentials".into(),
        }),
    }
}

/// One IAM call; returns the `<ActionResult>` element.
async fn call(
    context: &Context,
    region: &str,
    action: &str,
    parameters: &[(&str, &str)],
) -> Result<XmlNode, ApiError> {
    let parameters: Vec<(String, String)> = parameters
        .iter()
        .map(|(name, value)| ((*name).to_owned(), (*value).to_owned()))
        .collect();
    let answer = context
        .client
        .query("iam", region, VERSION, action, &parameters)
        .await?;
    let result = format!("{action}Result");
    Ok(answer.child(&result).cloned().unwrap_or(answer))
}

/// A paginated IAM list (`Marker` / `IsTruncated`): the members of `list` from every page.
async fn list_all(
    context: &Context,
    region: &str,
    action: &str,
    list: &str,
    parameters: &[(&str, &str)],
) -> Result<Vec<XmlNode>, ApiError> {
    let mut members = Vec::new();
    let mut marker: Option<String> = None;
    loop {
        let mut page: Vec<(&str, &str)> = parameters.to_vec();
        if let Some(marker) = &marker {
            page.push(("Marker", marker));
        }
        let result = call(context, region, action, &page).await?;
        members.extend(result.items(&[list]).into_iter().cloned());
        marker = result
            .text_at(&["Marker"])
            .filter(|_| result.bool_at(&["IsTruncated"]) == Some(true));
        if marker.is_none() {
            return Ok(members);
        }
    }
}

/// Whole days from `then` (RFC 3339) to `now`.
fn age_days(then: Option<&str>, now: DateTime<Utc>) -> Option<i64> {
    let then = DateTime::parse_from_rfc3339(then?).ok()?;
    Some((now - then.with_timezone(&Utc)).num_days())
}

pub(crate) async fn users(context: Context, region: String) -> Result<Part, ApiError> {
    let users = list_all(&context, &region, "ListUsers", "Users", &[]).await?;
    let mut part = Part::default();
    for user in users {
        let Some(user_name) = user.text_at(&["UserName"]) else {
            continue;
        };
        let mut errors = Vec::new();
        let mut note = |what: &str, error: ApiError| {
            errors.push(CollectionError::new(
                "aws iam/user",
                Some(user_name.clone()),
                format!("{what} not read: {error}"),
            ));
        };
        let name = user_name.as_str();
        let password_enabled =
            match call(&context, &region, "GetLoginProfile", &[("UserName", name)]).await {
                Ok(_) => Some(true),
                Err(error) if error.is_not_found() => Some(false),
                Err(error) => {
                    note("login profile", error);
                    None
                }
            };
        let mut access_keys = Vec::new();
        match list_all(
            &context,
            &region,
            "ListAccessKeys",
            "AccessKeyMetadata",
            &[("UserName", name)],
        )
        .await
        {
            Ok(keys) => {
                for key in keys {
                    let key_id = key.text_at(&["AccessKeyId"]).unwrap_or_default();
                    let created = key.text_at(&["CreateDate"]);
                    let last_used = match call(
                        &context,
                        &region,
                        "GetAccessKeyLastUsed",
                        &[("AccessKeyId", &key_id)],
                    )
                    .await
                    {
                        Ok(result) => result.text_at(&["AccessKeyLastUsed", "LastUsedDate"]),
                        Err(error) => {
                            note("access key last use", error);
                            None
                        }
                    };
                    access_keys.push(json!({
                        "access_key_id": key_id,
                        "status": key.text_at(&["Status"]),
                        "create_date": created,
                        "last_rotated": created,
                        "age_days": age_days(created.as_deref(), context.now),
                        "last_used_date": last_used,
                    }));
                }
            }
            Err(error) => note("access keys", error),
        }
        let active_keys = access_keys
            .iter()
            .filter(|key| key["status"] == "Active")
            .count();
        let mfa_devices: Option<Vec<Value>> = match list_all(
            &context,
            &region,
            "ListMFADevices",
            "MFADevices",
            &[("UserName", name)],
        )
        .await
        {
            Ok(devices) => Some(
                devices
                    .iter()
                    .map(|device| {
                        json!({"serial_number": device.text_at(&["SerialNumber"]),
                                             "enable_date": device.text_at(&["EnableDate"])})
                    })
                    .collect(),
            ),
            Err(error) => {
                note("MFA devices", error);
                None
            }
        };
        let attached = match list_all(&context, &region, "ListAttachedUserPolicies", "AttachedPolicies", &[("UserName", name)]).await {
            Ok(policies) => json!(policies.iter().map(|policy| json!({
                "policy_name": policy.text_at(&["PolicyName"]), "policy_arn": policy.text_at(&["PolicyArn"])
            })).collect::<Vec<_>>()),
            Err(error) => {
                note("attached policies", error);
                Value::Null
            }
        };
        let inline = match list_all(
            &context,
            &region,
            "ListUserPolicies",
            "PolicyNames",
            &[("UserName", name)],
        )
        .await
        {
            Ok(names) => json!(
                names
                    .iter()
                    .map(|policy| policy.text.trim().to_owned())
                    .collect::<Vec<_>>()
            ),
            Err(error) => {
                note("inline policies", error);
                Value::Null
            }
        };
        let groups = match list_all(
            &context,
            &region,
            "ListGroupsForUser",
            "Groups",
            &[("UserName", name)],
        )
        .await
        {
            Ok(groups) => json!(
                groups
                    .iter()
                    .filter_map(|group| group.text_at(&["GroupName"]))
                    .collect::<Vec<_>>()
            ),
            Err(error) => {
                note("groups", error);
                Value::Null
            }
        };
        let arn = user
            .text_at(&["Arn"])
            .unwrap_or_else(|| format!("arn:aws:iam::{}:user/{user_name}", context.account_id));
        let config = json!({
            "user_name": user_name,
            "user_id": user.text_at(&["UserId"]),
            "arn": arn,
            "create_date": user.text_at(&["CreateDate"]),
            "password_enabled": password_enabled,
            "password_last_used": user.text_at(&["PasswordLastUsed"]),
            "mfa_active": mfa_devices.as_ref().map(|devices| !devices.is_empty()),
            "mfa_devices": mfa_devices,
            "active_access_key_count": active_keys,
            "access_keys": access_keys,
            "attached_policies": attached,
            "inline_policies": inline,
            "groups": groups,
        });
        part.errors.extend(errors);
        part.resources.push(context.resource(
            arn,
            "iam",
            "user",
            None,
            Some(user_name.clone()),
            Map::new(),
            config,
        ));
    }
    Ok(part)
}

pub(crate) async fn roles(context: Context, region: String) -> Result<Part, ApiError> {
    let roles = list_all(&context, &region, "ListRoles", "Roles", &[]).await?;
    let mut part = Part::default();
    for role in roles {
        let Some(role_name) = role.text_at(&["RoleName"]) else {
            continue;
        };
        let attached = match list_all(&context, &region, "ListAttachedRolePolicies", "AttachedPolicies", &[("RoleName", &role_name)]).await {
            Ok(policies) => json!(policies.iter().map(|policy| json!({
                "policy_name": policy.text_at(&["PolicyName"]), "policy_arn": policy.text_at(&["PolicyArn"])
            })).collect::<Vec<_>>()),
            Err(error) => {
                part.errors.push(CollectionError::new(
                    "aws iam/role",
                    Some(role_name.clone()),
                    format!("attached policies not read: {error}"),
                ));
                Value::Null
            }
        };
        let trust = role
            .text_at(&["AssumeRolePolicyDocument"])
            .and_then(|text| policy::decode_document(&text));
        let trusts_everyone = trust.as_ref().is_some_and(policy::allows_public);
        let arn = role.text_at(&["Arn"]).unwrap_or_default();
        let mut config = json!({
            "role_name": role_name,
            "role_id": role.text_at(&["RoleId"]),
            "arn": arn,
            "path": role.text_at(&["Path"]),
            "create_date": role.text_at(&["CreateDate"]),
            "max_session_duration": role.text_at(&["MaxSessionDuration"]),
            "assume_role_policy_document": trust,
            "trusts_everyone": trusts_everyone,
            "attached_policies": attached,
        });
        numbers(&mut config, &["max_session_duration"]);
        part.resources.push(context.resource(
            arn,
            "iam",
            "role",
            None,
            Some(role_name),
            Map::new(),
            config,
        ));
    }
    Ok(part)
}

pub(crate) async fn policies(context: Context, region: String) -> Result<Part, ApiError> {
    let policies = list_all(
        &context,
        &region,
        "ListPolicies",
        "Policies",
        &[("Scope", "Local")],
    )
    .await?;
    let mut part = Part::default();
    for policy_node in policies {
        let Some(arn) = policy_node.text_at(&["Arn"]) else {
            continue;
        };
        let version = policy_node
            .text_at(&["DefaultVersionId"])
            .unwrap_or_else(|| "v1".into());
        let document = match call(
            &context,
            &region,
            "GetPolicyVersion",
            &[("PolicyArn", &arn), ("VersionId", &version)],
        )
        .await
        {
            Ok(result) => result
                .text_at(&["PolicyVersion", "Document"])
                .and_then(|text| policy::decode_document(&text)),
            Err(error) => {
                part.errors.push(CollectionError::new(
                    "aws iam/policy",
                    Some(arn.clone()),
                    format!("document not read: {error}"),
                ));
                None
            }
        };
        let name = policy_node.text_at(&["PolicyName"]);
        let mut config = json!({
            "policy_name": name,
            "arn": arn,
            "default_version_id": version,
            "attachment_count": policy_node.text_at(&["AttachmentCount"]),
            "allows_full_admin": document.as_ref().map(policy::allows_full_admin),
            "document": document,
        });
        numbers(&mut config, &["attachment_count"]);
        part.resources
            .push(context.resource(arn, "iam", "policy", None, name, Map::new(), config));
    }
    Ok(part)
}

pub(crate) async fn account(context: Context, region: String) -> Result<Part, ApiError> {
    let mut part = Part::default();
    let mut note = |what: &str, error: ApiError| {
        part.errors.push(CollectionError::new(
            "aws iam/account",
            None,
            format!("{what} not read: {error}"),
        ));
    };
    let mut config = Map::new();

    match call(&context, &region, "GetAccountPasswordPolicy", &[]).await {
        Ok(result) => {
            let mut password_policy = result
                .at(&["PasswordPolicy"])
                .map_or(Value::Null, XmlNode::to_json);
            numbers(
                &mut password_policy,
                &[
                    "minimum_password_length",
                    "max_password_age",
                    "password_reuse_prevention",
                ],
            );
            config.insert("password_policy".into(), password_policy);
        }
        Err(error) if error.is_not_found() => {
            config.insert("password_policy".into(), Value::Null);
        }
        Err(error) => note("password policy", error),
    }

    let mut root = Map::new();
    match call(&context, &region, "GetAccountSummary", &[]).await {
        Ok(result) => {
            let mut summary = Map::new();
            for entry in result.items(&["SummaryMap"]) {
                if let (Some(key), Some(value)) =
                    (entry.text_at(&["key"]), entry.int_at(&["value"]))
                {
                    summary.insert(crate::snake_case(&key), json!(value));
                }
            }
            root.insert(
                "mfa_active".into(),
                json!(
                    summary
                        .get("account_mfa_enabled")
                        .and_then(Value::as_i64)
                        .map(|value| value == 1)
                ),
            );
            root.insert(
                "access_keys_present".into(),
                json!(
                    summary
                        .get("account_access_keys_present")
                        .and_then(Value::as_i64)
                        .map(|value| value == 1)
                ),
            );
            config.insert("account_summary".into(), Value::Object(summary));
        }
        Err(error) => note("account summary", error),
    }

    // A root MFA device listed among the virtual ones is not a hardware device.
    match list_all(
        &context,
        &region,
        "ListVirtualMFADevices",
        "VirtualMFADevices",
        &[("AssignmentStatus", "Assigned")],
    )
    .await
    {
        Ok(devices) => {
            let root_virtual = devices.iter().any(|device| {
                device
                    .text_at(&["User", "Arn"])
                    .is_some_and(|arn| arn.ends_with(":root"))
                    || device
                        .text_at(&["SerialNumber"])
                        .is_some_and(|serial| serial.ends_with("root-account-mfa-device"))
            });
            let mfa = root.get("mfa_active").and_then(Value::as_bool);
            root.insert(
                "hardware_mfa".into(),
                json!(mfa.map(|mfa| mfa && !root_virtual)),
            );
        }
        Err(error) => note("virtual MFA devices", error),
    }

    match credential_report(&context, &region).await {
        Ok(report) => {
            if let Some(line) = report
                .iter()
                .find(|line| line.get("user").map(String::as_str) == Some("<root_account>"))
            {
                let date = |key: &str| line.get(key).filter(|value| value.contains('T')).cloned();
                let used = [
                    "password_last_used",
                    "access_key_1_last_used_date",
                    "access_key_2_last_used_date",
                ]
                .iter()
                .filter_map(|key| age_days(date(key).as_deref(), context.now))
                .any(|days| days < ROOT_RECENT_DAYS);
                root.insert(
                    "password_last_used".into(),
                    json!(date("password_last_used")),
                );
                root.insert("recently_used".into(), json!(used));
            }
        }
        Err(error) => note("credential report", error),
    }
    config.insert("root".into(), Value::Object(root));

    match list_all(
        &context,
        &region,
        "ListEntitiesForPolicy",
        "PolicyRoles",
        &[
            ("PolicyArn", "arn:aws:iam::aws:policy/AWSSupportAccess"),
            ("EntityFilter", "Role"),
        ],
    )
    .await
    {
        Ok(roles) => {
            config.insert("support_role_attached".into(), json!(!roles.is_empty()));
        }
        Err(error) if error.is_not_found() => {
            config.insert("support_role_attached".into(), json!(false));
        }
        Err(error) => note("AWSSupportAccess attachments", error),
    }
    let id = format!("arn:aws:iam::{}:root", context.account_id);
    let name = Some(format!("account {}", context.account_id));
    part.resources.push(context.resource(
        id,
        "iam",
        "account",
        None,
        name,
        Map::new(),
        Value::Object(config),
    ));
    Ok(part)
}

/// Generates (if needed) and reads the credential report: one map per CSV line.
async fn credential_report(
    context: &Context,
    region: &str,
) -> Result<Vec<std::collections::BTreeMap<String, String>>, ApiError> {
    // Generation is asynchronous on AWS: ask until it is COMPLETE (a few seconds at most).
    for _ in 0..10 {
        let state = call(context, region, "GenerateCredentialReport", &[]).await?;
        if state.text_at(&["State"]).as_deref() == Some("COMPLETE") {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    }
    let result = call(context, region, "GetCredentialReport", &[]).await?;
    let content = result.text_at(&["Content"]).unwrap_or_default();
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(content.trim())
        .map_err(|error| ApiError {
            status: 200,
            code: "BadResponse".into(),
            message: format!("credential report is not base64: {error}"),
        })?;
    let text = String::from_utf8_lossy(&bytes);
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap_or_default().split(',').collect();
    Ok(lines
        .map(|line| {
            header
                .iter()
                .zip(line.split(','))
                .map(|(key, value)| ((*key).to_owned(), value.to_owned()))
                .collect()
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ages_are_whole_days() {
        let now = "2026-01-31T00:00:00Z".parse().expect("time");
        assert_eq!(age_days(Some("2026-01-01T00:00:00Z"), now), Some(30));
        assert_eq!(age_days(Some("N/A"), now), None);
    }
}
