//! Notification channels, the signing key of each instance, and the durable delivery queue.
//!
//! A delivery row is both the queue entry and its log line: it is created `pending`, claimed by a
//! worker (the claim moves `next_attempt_at` forward, a lease, so two workers never send the same
//! delivery at once), and ends `delivered` or `failed`, keeping its attempt count and last error.
//! The `(instance, channel, dedup_key)` unique key makes enqueueing idempotent, so a crash between
//! queueing and clearing an occurrence's pending mark cannot send an alert twice.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::StoreResult;

/// A stored channel: identity plus the API's JSON body.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredChannel {
    pub account_id: String,
    pub id: String,
    pub body: serde_json::Value,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// The RS256 key pair of an instance, PEM encoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SigningKey {
    /// PKCS#8 PEM.
    pub private_key_pem: String,
    /// SubjectPublicKeyInfo PEM (`-----BEGIN PUBLIC KEY-----`).
    pub public_key_pem: String,
    pub created_at: DateTime<Utc>,
}

/// Where a delivery stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryState {
    /// Waiting for its first or next attempt.
    Pending,
    /// The endpoint accepted it.
    Delivered,
    /// Gave up: attempts exhausted, or the channel is gone or refuses permanently.
    Failed,
}

impl DeliveryState {
    /// Returns the state's wire and column name.
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryState::Pending => "pending",
            DeliveryState::Delivered => "delivered",
            DeliveryState::Failed => "failed",
        }
    }
}

impl std::str::FromStr for DeliveryState {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        [
            DeliveryState::Pending,
            DeliveryState::Delivered,
            DeliveryState::Failed,
        ]
        .into_iter()
        .find(|state| state.as_str() == text)
        .ok_or_else(|| {
            format!("unknown delivery state `{text}`; expected pending, delivered or failed")
        })
    }
}

/// A delivery to queue.
#[derive(Debug, Clone, PartialEq)]
pub struct NewDelivery {
    pub id: String,
    pub instance_id: String,
    pub account_id: String,
    pub channel_id: String,
    /// What makes two deliveries to the same channel the same alert.
    pub dedup_key: String,
    /// What to send (the finding or test message); rendered per channel type at send time.
    pub payload: serde_json::Value,
}

/// A queued or finished delivery.
#[derive(Debug, Clone, PartialEq)]
pub struct Delivery {
    pub id: String,
    pub instance_id: String,
    pub account_id: String,
    pub channel_id: String,
    pub dedup_key: String,
    pub payload: serde_json::Value,
    pub state: DeliveryState,
    pub attempts: i64,
    pub next_attempt_at: DateTime<Utc>,
    pub last_attempt_at: Option<DateTime<Utc>>,
    pub last_error: Option<String>,
    pub delivered_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
}

/// How one attempt ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AttemptOutcome {
    Delivered,
    /// Try again at `next_attempt_at`.
    Retry {
        error: String,
        next_attempt_at: DateTime<Utc>,
    },
    /// Give up.
    Failed {
        error: String,
    },
}

/// Filters of the delivery log.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeliveryFilter {
    pub account_id: Option<String>,
    pub channel_id: Option<String>,
    pub state: Option<DeliveryState>,
}

/// Channels, signing keys and deliveries.
#[async_trait]
pub trait NotificationStore {
    /// Stores a new channel; `Conflict` if the id is taken.
    async fn insert_channel(
        &self,
        instance_id: &str,
        account_id: &str,
        channel_id: &str,
        body: &serde_json::Value,
        at: DateTime<Utc>,
    ) -> StoreResult<StoredChannel>;
    /// Replaces a channel's body; `NotFound` if absent.
    async fn update_channel(
        &self,
        instance_id: &str,
        account_id: &str,
        channel_id: &str,
        body: &serde_json::Value,
        at: DateTime<Utc>,
    ) -> StoreResult<StoredChannel>;
    /// Returns one channel.
    async fn get_channel(
        &self,
        instance_id: &str,
        account_id: &str,
        channel_id: &str,
    ) -> StoreResult<Option<StoredChannel>>;
    /// Lists an account's channels, oldest first.
    async fn list_channels(
        &self,
        instance_id: &str,
        account_id: &str,
    ) -> StoreResult<Vec<StoredChannel>>;
    /// Deletes channels by id; returns the ids that existed.
    async fn delete_channels(
        &self,
        instance_id: &str,
        account_id: &str,
        channel_ids: &[String],
    ) -> StoreResult<Vec<String>>;

    /// Returns the instance's signing key, if made yet.
    async fn get_signing_key(&self, instance_id: &str) -> StoreResult<Option<SigningKey>>;
    /// Stores the instance's signing key; `Conflict` if it has one (the caller then reads it).
    async fn insert_signing_key(&self, instance_id: &str, key: &SigningKey) -> StoreResult<()>;

    /// Queues a delivery created at `at` and first due at `due_at`; false (and nothing stored)
    /// if its dedup key is taken.
    async fn enqueue_delivery(
        &self,
        delivery: &NewDelivery,
        at: DateTime<Utc>,
        due_at: DateTime<Utc>,
    ) -> StoreResult<bool>;
    /// Claims up to `limit` pending deliveries due by `now`, leasing each until `lease_until`.
    async fn claim_due_deliveries(
        &self,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        limit: u32,
    ) -> StoreResult<Vec<Delivery>>;
    /// Records one attempt's outcome.
    async fn record_delivery_attempt(
        &self,
        delivery_id: &str,
        outcome: &AttemptOutcome,
        at: DateTime<Utc>,
    ) -> StoreResult<()>;
    /// Returns one delivery of an instance.
    async fn get_delivery(
        &self,
        instance_id: &str,
        delivery_id: &str,
    ) -> StoreResult<Option<Delivery>>;
    /// Lists an instance's deliveries, newest first, after `(created_at, id)` of the last row seen.
    async fn list_deliveries(
        &self,
        instance_id: &str,
        filter: &DeliveryFilter,
        before: Option<(DateTime<Utc>, String)>,
        limit: u32,
    ) -> StoreResult<Vec<Delivery>>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delivery_states_round_trip_through_their_names() {
        for state in [
            DeliveryState::Pending,
            DeliveryState::Delivered,
            DeliveryState::Failed,
        ] {
            assert_eq!(state.as_str().parse::<DeliveryState>(), Ok(state));
        }
        assert!("sent".parse::<DeliveryState>().is_err());
    }
}
