//! The SCC v3 posture API, under `/instances/{instance_id}/v3`, compatible with IBM's
//! `ibm-scc` 5.0.0 SDK: same paths, bodies, field names, enums and pagination (`limit`, `start`,
//! `first`/`next`). Configuration objects are documents (see [`crate::service::documents`]).
//!
//! Server-managed fields (`id`, `account_id`, `instance_id`, `created_on/by`, `updated_on/by`)
//! are set here; clients may send them back in replace bodies (IBM's SDK does) and they are
//! ignored. An object's `account_id` is its instance id unless the request names another account
//! of the instance.

use palisade_model::tenancy::ApiKey;
use serde_json::{Map, Value, json};

use crate::service::documents::{Kind, timestamp};

pub mod attachments;
pub mod libraries;
pub mod profiles;
pub mod providers;
pub mod reports;
pub mod rules;
pub mod scopes;
pub mod services;
pub mod settings;
pub mod targets;

pub const CONTROL_LIBRARY: Kind = Kind {
    store_kind: "v3.control_library",
    label: "control library",
};
pub const PROFILE: Kind = Kind {
    store_kind: "v3.profile",
    label: "profile",
};
pub const ATTACHMENT: Kind = Kind {
    store_kind: "v3.attachment",
    label: "attachment",
};
pub const SCOPE: Kind = Kind {
    store_kind: "v3.scope",
    label: "scope",
};
pub const SUBSCOPE: Kind = Kind {
    store_kind: "v3.subscope",
    label: "subscope",
};
pub const TARGET: Kind = Kind {
    store_kind: "v3.target",
    label: "target",
};
pub const PROVIDER_TYPE_INSTANCE: Kind = Kind {
    store_kind: "v3.provider_type_instance",
    label: "provider type instance",
};
pub const RULE: Kind = Kind {
    store_kind: "v3.rule",
    label: "rule",
};
pub const SETTINGS: Kind = Kind {
    store_kind: "v3.settings",
    label: "settings",
};

/// Fields the server sets; accepted (and ignored) in replace bodies.
pub const SERVER_FIELDS: &[&str] = &[
    "id",
    "account_id",
    "instance_id",
    "created_on",
    "created_by",
    "updated_on",
    "updated_by",
];

/// Sets the audit fields of a new object.
pub fn stamp_created(object: &mut Map<String, Value>, key: &ApiKey) {
    let now = timestamp(chrono::Utc::now());
    object.insert("created_on".into(), json!(now));
    object.insert("created_by".into(), json!(key.id));
    object.insert("updated_on".into(), json!(now));
    object.insert("updated_by".into(), json!(key.id));
}

/// Carries the creation fields of `previous` over and stamps the update.
pub fn stamp_updated(object: &mut Map<String, Value>, previous: &Value, key: &ApiKey) {
    for field in [
        "id",
        "account_id",
        "instance_id",
        "created_on",
        "created_by",
    ] {
        if let Some(value) = previous.get(field) {
            object.insert(field.into(), value.clone());
        }
    }
    object.insert("updated_on".into(), json!(timestamp(chrono::Utc::now())));
    object.insert("updated_by".into(), json!(key.id));
}

/// Removes the server-managed fields a client sent back.
pub fn strip_server_fields(object: &mut Map<String, Value>) {
    for field in SERVER_FIELDS {
        object.remove(*field);
    }
}

/// The account an object belongs to: the one the request names, else the instance's own.
pub fn account_of(requested: Option<&str>, instance_id: &str) -> String {
    requested
        .filter(|account| !account.is_empty())
        .unwrap_or(instance_id)
        .to_owned()
}

/// Query parameter `account_id`, which several v3 calls accept.
#[derive(Debug, Default, serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AccountParam {
    pub account_id: Option<String>,
}
