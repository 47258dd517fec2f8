//! [`DecisionStore`] for [`SqlStore`].

use std::collections::HashMap;

use async_trait::async_trait;
use sqlx::Row;
use sqlx::any::AnyRow;

use super::{SqlStore, classify, corrupt};
use crate::decisions::{DecisionFilter, DecisionStore, StoredDecision};
use crate::time::{format_timestamp, parse_timestamp};
use crate::{StoreError, StoreResult};

const DECISION_COLUMNS: &str = "id, decided_at, key_id, source, operation, allowed, account_id, \
     service_name, resource_kind, resource_id, body";

/// Decisions per multi-row INSERT: 12 binds each, well under both backends' bind limits.
const ROWS_PER_STATEMENT: usize = 80;

fn text(row: &AnyRow, column: &str) -> StoreResult<String> {
    row.try_get::<String, _>(column).map_err(corrupt)
}

fn decision_from_row(row: &AnyRow) -> StoreResult<StoredDecision> {
    Ok(StoredDecision {
        id: text(row, "id")?,
        decided_at: parse_timestamp(&text(row, "decided_at")?)?,
        key_id: text(row, "key_id")?,
        source: text(row, "source")?,
        operation: text(row, "operation")?,
        allowed: row.try_get::<i64, _>("allowed").map_err(corrupt)? != 0,
        account_id: text(row, "account_id")?,
        service_name: text(row, "service_name")?,
        resource_kind: text(row, "resource_kind")?,
        resource_id: text(row, "resource_id")?,
        violated_rule_ids: Vec::new(),
        body: serde_json::from_str(&text(row, "body")?)
            .map_err(|error| StoreError::Corrupt(format!("body: {error}")))?,
    })
}

/// A bind of a filter statement.
enum Bind {
    Text(String),
    Number(i64),
}

/// The filter's conditions after `instance_id = $1`, with their binds (numbered from $2).
fn filter_sql(filter: &DecisionFilter) -> (String, Vec<Bind>) {
    let mut conditions = String::new();
    let mut binds: Vec<Bind> = Vec::new();
    let mut push = |condition: &str, bind: Bind, binds: &mut Vec<Bind>| {
        binds.push(bind);
        conditions.push_str(&condition.replace("$?", &format!("${}", binds.len() + 1)));
    };
    for (column, value) in [
        ("operation", &filter.operation),
        ("source", &filter.source),
        ("key_id", &filter.key_id),
        ("account_id", &filter.account_id),
        ("service_name", &filter.service_name),
        ("resource_kind", &filter.resource_kind),
        ("resource_id", &filter.resource_id),
    ] {
        if let Some(value) = value {
            push(
                &format!(" AND {column} = $?"),
                Bind::Text(value.clone()),
                &mut binds,
            );
        }
    }
    if let Some(allowed) = filter.allowed {
        push(
            " AND allowed = $?",
            Bind::Number(i64::from(allowed)),
            &mut binds,
        );
    }
    if let Some(since) = filter.since {
        push(
            " AND decided_at >= $?",
            Bind::Text(format_timestamp(since)),
            &mut binds,
        );
    }
    if let Some(until) = filter.until {
        push(
            " AND decided_at < $?",
            Bind::Text(format_timestamp(until)),
            &mut binds,
        );
    }
    if let Some(before) = &filter.before {
        push(" AND id < $?", Bind::Text(before.clone()), &mut binds);
    }
    if let Some(rule_id) = &filter.rule_id {
        push(
            " AND id IN (SELECT decision_id FROM admission_decision_rules \
             WHERE instance_id = $1 AND rule_id = $?)",
            Bind::Text(rule_id.clone()),
            &mut binds,
        );
    }
    (conditions, binds)
}

#[async_trait]
impl DecisionStore for SqlStore {
    async fn record_decisions(
        &self,
        instance_id: &str,
        decisions: &[StoredDecision],
    ) -> StoreResult<()> {
        if decisions.is_empty() {
            return Ok(());
        }
        let mut transaction = self.pool().begin().await?;
        for chunk in decisions.chunks(ROWS_PER_STATEMENT) {
            let values: Vec<String> = (0..chunk.len())
                .map(|row| {
                    let base = row * 11 + 1;
                    let places: Vec<String> = (0..11)
                        .map(|offset| format!("${}", base + offset + 1))
                        .collect();
                    format!("($1, {})", places.join(", "))
                })
                .collect();
            let statement = format!(
                "INSERT INTO admission_decisions (instance_id, {DECISION_COLUMNS}) VALUES {}",
                values.join(", ")
            );
            let mut query = sqlx::query(self.sql(&statement)).bind(instance_id);
            for decision in chunk {
                query = query
                    .bind(decision.id.clone())
                    .bind(format_timestamp(decision.decided_at))
                    .bind(decision.key_id.clone())
                    .bind(decision.source.clone())
                    .bind(decision.operation.clone())
                    .bind(i64::from(decision.allowed))
                    .bind(decision.account_id.clone())
                    .bind(decision.service_name.clone())
                    .bind(decision.resource_kind.clone())
                    .bind(decision.resource_id.clone())
                    .bind(decision.body.to_string());
            }
            query
                .execute(&mut *transaction)
                .await
                .map_err(|error| classify(error, "decision"))?;
        }
        let rule_rows: Vec<(&str, &str)> = decisions
            .iter()
            .flat_map(|decision| {
                let mut rule_ids: Vec<&str> = decision
                    .violated_rule_ids
                    .iter()
                    .map(String::as_str)
                    .collect();
                rule_ids.sort_unstable();
                rule_ids.dedup();
                rule_ids
                    .into_iter()
                    .map(|rule_id| (rule_id, decision.id.as_str()))
            })
            .collect();
        for chunk in rule_rows.chunks(ROWS_PER_STATEMENT * 4) {
            let values: Vec<String> = (0..chunk.len())
                .map(|row| format!("($1, ${}, ${})", row * 2 + 2, row * 2 + 3))
                .collect();
            let statement = format!(
                "INSERT INTO admission_decision_rules (instance_id, rule_id, decision_id) VALUES {}",
                values.join(", ")
            );
            let mut query = sqlx::query(self.sql(&statement)).bind(instance_id);
            for (rule_id, decision_id) in chunk {
                query = query.bind(*rule_id).bind(*decision_id);
            }
            query
                .execute(&mut *transaction)
                .await
                .map_err(|error| classify(error, "decision rule"))?;
        }
        transaction.commit().await?;
        Ok(())
    }

    async fn list_decisions(
        &self,
        instance_id: &str,
        filter: &DecisionFilter,
    ) -> StoreResult<Vec<StoredDecision>> {
        let (conditions, binds) = filter_sql(filter);
        let limit_place = binds.len() + 2;
        let statement = format!(
            "SELECT {DECISION_COLUMNS} FROM admission_decisions WHERE instance_id = $1{conditions} \
             ORDER BY id DESC LIMIT ${limit_place}"
        );
        let mut query = sqlx::query(self.sql(&statement)).bind(instance_id);
        for bind in binds {
            query = match bind {
                Bind::Text(text) => query.bind(text),
                Bind::Number(number) => query.bind(number),
            };
        }
        let limit = i64::from(filter.limit.unwrap_or(100));
        let rows = query.bind(limit).fetch_all(self.pool()).await?;
        let mut decisions = rows
            .iter()
            .map(decision_from_row)
            .collect::<StoreResult<Vec<_>>>()?;
        self.attach_rule_ids(instance_id, &mut decisions).await?;
        Ok(decisions)
    }

    async fn get_decision(
        &self,
        instance_id: &str,
        decision_id: &str,
    ) -> StoreResult<Option<StoredDecision>> {
        let row = sqlx::query(self.sql(&format!(
            "SELECT {DECISION_COLUMNS} FROM admission_decisions WHERE instance_id = $1 AND id = $2"
        )))
        .bind(instance_id)
        .bind(decision_id)
        .fetch_optional(self.pool())
        .await?;
        let Some(row) = row else {
            return Ok(None);
        };
        let mut decisions = vec![decision_from_row(&row)?];
        self.attach_rule_ids(instance_id, &mut decisions).await?;
        Ok(decisions.pop())
    }
}

impl SqlStore {
    /// Fills each decision's violated rule ids from the side table (one query per page).
    async fn attach_rule_ids(
        &self,
        instance_id: &str,
        decisions: &mut [StoredDecision],
    ) -> StoreResult<()> {
        if decisions.is_empty() {
            return Ok(());
        }
        let places: Vec<String> = (0..decisions.len())
            .map(|index| format!("${}", index + 2))
            .collect();
        let statement = format!(
            "SELECT decision_id, rule_id FROM admission_decision_rules \
             WHERE instance_id = $1 AND decision_id IN ({}) ORDER BY rule_id",
            places.join(", ")
        );
        let mut query = sqlx::query(self.sql(&statement)).bind(instance_id);
        for decision in decisions.iter() {
            query = query.bind(decision.id.clone());
        }
        let rows = query.fetch_all(self.pool()).await?;
        let mut by_decision: HashMap<String, Vec<String>> = HashMap::new();
        for row in &rows {
            by_decision
                .entry(text(row, "decision_id")?)
                .or_default()
                .push(text(row, "rule_id")?);
        }
        for decision in decisions {
            decision.violated_rule_ids = by_decision.remove(&decision.id).unwrap_or_default();
        }
        Ok(())
    }
}
