//! Configuration governance: rules, templates and their scope attachments (IBM's Configuration
//! Governance v1 shapes, stored as documents), and the admission decisions made from them.
//!
//! - [`scope`]: which attachments cover a provisioning request, and which template attachments
//!   would clash.
//! - [`policy`]: the compiled rules and templates of one request scope, cached per scope and
//!   dropped when the instance's governance configuration changes.
//! - [`admission`]: one decision — templates fill unset properties, attached enabled rules
//!   evaluate the result, `disallow` failures deny, `audit_log` failures are recorded — and the
//!   decision log.
//!
//! Every change to a rule, template or attachment bumps the instance's *generation* (the version
//! of one small document); a decision reads it first (one point read) and rebuilds its cached
//! policy when it moved. That keeps replicas sharing one database coherent without any
//! messaging between them.

pub mod admission;
pub mod policy;
pub mod scope;

use chrono::Utc;
use palisade_store::StoreError;
use serde_json::json;

use crate::error::ApiResult;
use crate::service::documents::Kind;
use crate::state::AppState;

pub use policy::Governance;

/// A configuration governance rule (`rule_id` is the document id).
pub const RULE: Kind = Kind {
    store_kind: "config.rule",
    label: "rule",
};
/// A rule's scope attachment.
pub const RULE_ATTACHMENT: Kind = Kind {
    store_kind: "config.rule_attachment",
    label: "rule attachment",
};
/// A template (`template_id` is the document id).
pub const TEMPLATE: Kind = Kind {
    store_kind: "config.template",
    label: "template",
};
/// A template's scope attachment.
pub const TEMPLATE_ATTACHMENT: Kind = Kind {
    store_kind: "config.template_attachment",
    label: "template attachment",
};
/// The one document whose version is the instance's governance generation.
const GENERATION: Kind = Kind {
    store_kind: "config.generation",
    label: "governance generation",
};
const GENERATION_ID: &str = "current";

/// Returns the instance's governance generation (0 before the first change).
pub async fn generation(state: &AppState, instance_id: &str) -> ApiResult<i64> {
    Ok(state
        .store
        .get_document(instance_id, GENERATION.store_kind, GENERATION_ID)
        .await?
        .map_or(0, |document| document.version))
}

/// Records that the instance's rules, templates or attachments changed, so every cached policy
/// of the instance — in this process and in any other sharing the store — is rebuilt.
pub async fn changed(state: &AppState, instance_id: &str) -> ApiResult<()> {
    let now = Utc::now();
    let body = json!({});
    let store = &state.store;
    match store
        .update_document(
            instance_id,
            GENERATION.store_kind,
            GENERATION_ID,
            &body,
            None,
            now,
        )
        .await
    {
        Ok(_) => {}
        Err(StoreError::NotFound(_)) => {
            match store
                .insert_document(
                    instance_id,
                    GENERATION.store_kind,
                    GENERATION_ID,
                    &body,
                    now,
                )
                .await
            {
                // Another request created it meanwhile: bump it instead.
                Err(StoreError::Conflict(_)) => {
                    store
                        .update_document(
                            instance_id,
                            GENERATION.store_kind,
                            GENERATION_ID,
                            &body,
                            None,
                            now,
                        )
                        .await?;
                }
                other => {
                    other?;
                }
            }
        }
        Err(error) => return Err(error.into()),
    }
    state.governance.forget(instance_id);
    Ok(())
}
