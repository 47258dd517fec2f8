//! Instances (tenants), API keys and the role matrix.
//!
//! Every object belongs to one instance. A key belongs to one instance and carries one [`Role`];
//! what a role may do is the [`Role::allows`] table, the only place that decides it.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// A tenant: every stored object belongs to exactly one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Instance {
    pub id: String,
    pub name: String,
    pub created_at: DateTime<Utc>,
}

/// What a key may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Everything in its instance, including key management.
    Admin,
    /// Reads and writes configuration (profiles, scopes, rules, channels …).
    Editor,
    /// Reads.
    Viewer,
    /// A collector agent: pushes inventory and pulls its own jobs.
    Collector,
    /// A log shipper: pushes events, flows and findings.
    Ingest,
}

impl Role {
    /// Every role, for tables and tests.
    pub const ALL: [Role; 5] = [
        Role::Admin,
        Role::Editor,
        Role::Viewer,
        Role::Collector,
        Role::Ingest,
    ];

    /// Returns the role's wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Editor => "editor",
            Role::Viewer => "viewer",
            Role::Collector => "collector",
            Role::Ingest => "ingest",
        }
    }

    /// Decides whether this role may perform `action`: the whole role matrix.
    pub fn allows(self, action: Action) -> bool {
        match action {
            Action::Read => matches!(self, Role::Admin | Role::Editor | Role::Viewer),
            Action::WriteConfig => matches!(self, Role::Admin | Role::Editor),
            Action::ManageKeys => self == Role::Admin,
            Action::PushData => matches!(
                self,
                Role::Admin | Role::Editor | Role::Collector | Role::Ingest
            ),
            Action::RunCollector => matches!(self, Role::Admin | Role::Collector),
        }
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str(self.as_str())
    }
}

impl std::str::FromStr for Role {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Role::ALL
            .into_iter()
            .find(|role| role.as_str() == text)
            .ok_or_else(|| format!("unknown role `{text}`; expected one of admin, editor, viewer, collector, ingest"))
    }
}

/// The kinds of things a request does, as far as access control is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    /// Read objects of the instance.
    Read,
    /// Create, change or delete configuration.
    WriteConfig,
    /// Create, list and revoke API keys.
    ManageKeys,
    /// Push data: inventory, events, flows, occurrences.
    PushData,
    /// Act as a collector agent: heartbeat, pull jobs.
    RunCollector,
}

/// An API key as the API shows it: never its secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ApiKey {
    pub id: String,
    pub instance_id: String,
    pub name: String,
    pub role: Role,
    /// Whether this key may also manage instances (only the key printed at first start).
    pub operator: bool,
    pub created_at: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revoked_at: Option<DateTime<Utc>>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn role_matrix_matches_the_contract() {
        use Action::*;
        let table = [
            (Role::Admin, [true, true, true, true, true]),
            (Role::Editor, [true, true, false, true, false]),
            (Role::Viewer, [true, false, false, false, false]),
            (Role::Collector, [false, false, false, true, true]),
            (Role::Ingest, [false, false, false, true, false]),
        ];
        for (role, expected) in table {
            let actual = [Read, WriteConfig, ManageKeys, PushData, RunCollector]
                .map(|action| role.allows(action));
            assert_eq!(actual, expected, "{role}");
        }
    }

    #[test]
    fn roles_round_trip_through_their_names() {
        for role in Role::ALL {
            assert_eq!(role.as_str().parse::<Role>(), Ok(role));
        }
        assert!("root".parse::<Role>().is_err());
    }
}
