//! Scopes of rule and template attachments (IBM's `RuleScope`: `{note, scope_id, scope_type}`)
//! and which provisioning requests they cover.
//!
//! A request's scope is its resource's account and resource group, plus the enterprise and
//! account group when the request names them (Palisade does not know an enterprise's hierarchy,
//! so the caller says where the account sits). An attachment covers a request when its
//! `included_scope` covers it and none of its `excluded_scopes` does:
//!
//! | `scope_type`               | covers a request whose …      |
//! |----------------------------|-------------------------------|
//! | `enterprise`               | `enterprise_id` is `scope_id` |
//! | `enterprise.account_group` | `account_group_id` is it      |
//! | `enterprise.account`       | account is it                 |
//! | `account`                  | account is it                 |
//! | `account.resource_group`   | resource group is it          |
//!
//! Templates: "a property may be defaulted by one template per scope". Two template attachments
//! clash when they include the same scope (same type and id, not excluded by the other), their
//! templates target the same service and resource kind, and both default one property — that is
//! refused when the second is attached. Templates attached at different levels (an account and
//! one of its resource groups) do not clash: at decision time the most specific scope's
//! template wins (resource group, then account, then account group, then enterprise).

use palisade_model::error::ErrorCode;
use serde_json::{Map, Value};

use crate::service::documents::BodyErrors;

/// The scope types IBM's API knows.
pub const SCOPE_TYPES: &[&str] = &[
    "enterprise",
    "enterprise.account_group",
    "enterprise.account",
    "account",
    "account.resource_group",
];

/// Where a provisioning request sits.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RequestScope {
    pub account_id: String,
    pub resource_group: Option<String>,
    pub enterprise_id: Option<String>,
    pub account_group_id: Option<String>,
}

/// Whether one scope object (`{scope_id, scope_type}`) covers the request.
pub fn covers(scope: &Value, request: &RequestScope) -> bool {
    let Some(scope_id) = scope.get("scope_id").and_then(Value::as_str) else {
        return false;
    };
    let equals = |value: Option<&str>| value == Some(scope_id);
    match scope.get("scope_type").and_then(Value::as_str) {
        Some("enterprise") => equals(request.enterprise_id.as_deref()),
        Some("enterprise.account_group") => equals(request.account_group_id.as_deref()),
        Some("enterprise.account" | "account") => request.account_id == scope_id,
        Some("account.resource_group") => equals(request.resource_group.as_deref()),
        _ => false,
    }
}

/// Whether an attachment body covers the request: included, and not excluded.
pub fn attachment_covers(attachment: &Value, request: &RequestScope) -> bool {
    covers(&attachment["included_scope"], request)
        && !attachment["excluded_scopes"]
            .as_array()
            .is_some_and(|excluded| excluded.iter().any(|scope| covers(scope, request)))
}

/// How specific a scope type is: higher wins when templates at two levels default one property.
pub fn specificity(scope: &Value) -> u8 {
    match scope.get("scope_type").and_then(Value::as_str) {
        Some("account.resource_group") => 4,
        Some("account" | "enterprise.account") => 3,
        Some("enterprise.account_group") => 2,
        _ => 1,
    }
}

/// Checks one scope object at `pointer`.
pub fn check_scope(errors: &mut BodyErrors, scope: &Map<String, Value>, pointer: &str) {
    errors.check_keys(scope, pointer, &["scope_id", "scope_type"], &["note"]);
    errors.check_string(scope, pointer, "scope_id", true);
    errors.check_string(scope, pointer, "note", false);
    errors.check_enum(scope, pointer, "scope_type", SCOPE_TYPES);
}

/// Validates an attachment request body (`account_id`, `included_scope`, `excluded_scopes`) at
/// `pointer` and returns the stored fields. `ignored` are server fields a client may send back.
pub fn check_attachment(
    errors: &mut BodyErrors,
    request: &Map<String, Value>,
    pointer: &str,
    ignored: &[&str],
) -> Map<String, Value> {
    let mut allowed = vec!["excluded_scopes"];
    allowed.extend_from_slice(ignored);
    errors.check_keys(
        request,
        pointer,
        &["account_id", "included_scope"],
        &allowed,
    );
    errors.check_string(request, pointer, "account_id", true);
    match request.get("included_scope") {
        Some(Value::Object(scope)) => {
            check_scope(errors, scope, &format!("{pointer}/included_scope"));
        }
        None | Some(Value::Null) => {}
        Some(_) => errors.push(
            ErrorCode::InvalidField,
            &format!("{pointer}/included_scope"),
            "must be an object",
        ),
    }
    for (scope_pointer, scope) in errors.objects(request, pointer, "excluded_scopes") {
        check_scope(errors, scope, &scope_pointer);
    }
    let mut stored = Map::new();
    for key in ["account_id", "included_scope"] {
        if let Some(value) = request.get(key) {
            stored.insert(key.into(), value.clone());
        }
    }
    stored.insert(
        "excluded_scopes".into(),
        request
            .get("excluded_scopes")
            .filter(|value| !value.is_null())
            .cloned()
            .unwrap_or(Value::Array(Vec::new())),
    );
    stored
}

/// Whether two scope objects are the same scope.
fn same_scope(left: &Value, right: &Value) -> bool {
    left.get("scope_id") == right.get("scope_id")
        && left.get("scope_type") == right.get("scope_type")
}

/// Whether two template attachments include the same scope, neither excluding it.
pub fn attachments_clash(left: &Value, right: &Value) -> bool {
    let excluded_by = |attachment: &Value, scope: &Value| {
        attachment["excluded_scopes"]
            .as_array()
            .is_some_and(|excluded| excluded.iter().any(|other| same_scope(other, scope)))
    };
    let (left_scope, right_scope) = (&left["included_scope"], &right["included_scope"]);
    same_scope(left_scope, right_scope)
        && !excluded_by(left, right_scope)
        && !excluded_by(right, left_scope)
}

/// The properties both templates default, when they target the same service and resource kind.
pub fn shared_defaults(left: &Value, right: &Value) -> Vec<String> {
    let target = |template: &Value| {
        (
            template["target"]["service_name"].clone(),
            template["target"]["resource_kind"].clone(),
        )
    };
    if target(left) != target(right) {
        return Vec::new();
    }
    let properties = |template: &Value| -> Vec<String> {
        template["customized_defaults"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|default| default["property"].as_str().map(str::to_owned))
            .collect()
    };
    let right_properties = properties(right);
    properties(left)
        .into_iter()
        .filter(|property| right_properties.contains(property))
        .collect()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn request() -> RequestScope {
        RequestScope {
            account_id: "acct".into(),
            resource_group: Some("rg".into()),
            enterprise_id: None,
            account_group_id: Some("group".into()),
        }
    }

    #[test]
    fn scopes_cover_by_type_and_exclusions_win() {
        let account = json!({"scope_id": "acct", "scope_type": "account"});
        assert!(covers(&account, &request()));
        assert!(covers(
            &json!({"scope_id": "rg", "scope_type": "account.resource_group"}),
            &request()
        ));
        assert!(covers(
            &json!({"scope_id": "group", "scope_type": "enterprise.account_group"}),
            &request()
        ));
        assert!(!covers(
            &json!({"scope_id": "e", "scope_type": "enterprise"}),
            &request()
        ));
        assert!(!covers(
            &json!({"scope_id": "other", "scope_type": "account"}),
            &request()
        ));
        let excluded = json!({"included_scope": account, "excluded_scopes": [
            {"scope_id": "rg", "scope_type": "account.resource_group"}]});
        assert!(!attachment_covers(&excluded, &request()));
        let elsewhere = RequestScope {
            resource_group: Some("rg2".into()),
            ..request()
        };
        assert!(attachment_covers(&excluded, &elsewhere));
    }

    #[test]
    fn template_clashes_need_the_same_scope_target_and_property() {
        let at_account = json!({"included_scope": {"scope_id": "a", "scope_type": "account"}});
        let at_group =
            json!({"included_scope": {"scope_id": "rg", "scope_type": "account.resource_group"}});
        assert!(attachments_clash(&at_account, &at_account));
        assert!(!attachments_clash(&at_account, &at_group));
        let excluding = json!({"included_scope": {"scope_id": "a", "scope_type": "account"},
            "excluded_scopes": [{"scope_id": "a", "scope_type": "account"}]});
        assert!(!attachments_clash(&at_account, &excluding));

        let template = |kind: &str, property: &str| {
            json!({"target": {"service_name": "s3", "resource_kind": kind},
                   "customized_defaults": [{"property": property, "value": 1}, {"property": "x", "value": 2}]})
        };
        assert_eq!(
            shared_defaults(&template("bucket", "a"), &template("bucket", "b")),
            ["x"]
        );
        assert!(shared_defaults(&template("bucket", "a"), &template("object", "a")).is_empty());
    }
}
