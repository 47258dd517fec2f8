//! The read-only GraphQL subset of IBM's `POST /v1/{account_id}/graph`.
//!
//! IBM documented the route only as "query findings with GraphQL"; its SDK tests sent queries such
//! as `{notes{id}}`. Palisade answers queries over three root fields:
//!
//! ```text
//! document   := ["query" [name]] selection
//! selection  := "{" field+ "}"
//! field      := [alias ":"] name ["(" (name ":" value)* ")"] [selection]
//! value      := "string" | integer | name
//! roots      := providers(limit) | notes(providerId, kind, limit)
//!             | occurrences(providerId, noteId, kind, severity, status, resource, limit)
//! ```
//!
//! Field names may be camelCase or snake_case; an unknown field reads as null. A full GraphQL
//! engine (juniper, async-graphql) would bring a schema language and resolvers for three lists,
//! so this small parser is hand-written; it refuses anything beyond the subset with a clear error.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use palisade_model::error::{ErrorCode, ErrorTarget};
use palisade_store::Store;
use palisade_store::findings::{OccurrenceFilter, ProviderQuery};
use serde_json::{Map, Value};

use super::{note_view, occurrence_view};
use crate::error::{ApiError, ApiResult};

/// Deepest selection nesting accepted (bounds recursion on hostile input).
const MAX_DEPTH: usize = 16;
/// Default and largest number of items a root field returns.
const DEFAULT_LIMIT: i64 = 100;
const MAX_LIMIT: i64 = 1000;

/// A parsed field.
#[derive(Debug, Clone, PartialEq)]
pub struct Field {
    pub alias: Option<String>,
    pub name: String,
    pub arguments: Vec<(String, ArgumentValue)>,
    pub selection: Vec<Field>,
}

/// An argument value.
#[derive(Debug, Clone, PartialEq)]
pub enum ArgumentValue {
    Text(String),
    Integer(i64),
}

fn graph_error(message: impl Into<String>) -> ApiError {
    ApiError::new(ErrorCode::BadRequest, message).with_target(ErrorTarget::field("/query"))
}

struct Parser<'a> {
    text: &'a [u8],
    position: usize,
}

impl Parser<'_> {
    fn skip_ignored(&mut self) {
        while let Some(&byte) = self.text.get(self.position) {
            if byte == b'#' {
                while self.text.get(self.position).is_some_and(|&b| b != b'\n') {
                    self.position += 1;
                }
            } else if byte.is_ascii_whitespace() || byte == b',' {
                self.position += 1;
            } else {
                break;
            }
        }
    }

    fn peek(&mut self) -> Option<u8> {
        self.skip_ignored();
        self.text.get(self.position).copied()
    }

    fn expect(&mut self, wanted: u8) -> ApiResult<()> {
        match self.peek() {
            Some(byte) if byte == wanted => {
                self.position += 1;
                Ok(())
            }
            other => Err(graph_error(format!(
                "expected `{}` at offset {}, found {}",
                wanted as char,
                self.position,
                other.map_or("the end".to_owned(), |b| format!("`{}`", b as char))
            ))),
        }
    }

    fn name(&mut self) -> ApiResult<String> {
        self.skip_ignored();
        let start = self.position;
        while self
            .text
            .get(self.position)
            .is_some_and(|b| b.is_ascii_alphanumeric() || *b == b'_')
        {
            self.position += 1;
        }
        if start == self.position {
            return Err(graph_error(format!("expected a name at offset {start}")));
        }
        Ok(String::from_utf8_lossy(&self.text[start..self.position]).into_owned())
    }

    fn value(&mut self) -> ApiResult<ArgumentValue> {
        match self.peek() {
            Some(b'"') => {
                self.position += 1;
                let mut value = Vec::new();
                loop {
                    match self.text.get(self.position) {
                        None => return Err(graph_error("unterminated string")),
                        Some(b'"') => {
                            self.position += 1;
                            break;
                        }
                        Some(b'\\') => {
                            let escaped = self
                                .text
                                .get(self.position + 1)
                                .ok_or_else(|| graph_error("unterminated string"))?;
                            value.push(*escaped);
                            self.position += 2;
                        }
                        Some(&byte) => {
                            value.push(byte);
                            self.position += 1;
                        }
                    }
                }
                Ok(ArgumentValue::Text(
                    String::from_utf8_lossy(&value).into_owned(),
                ))
            }
            Some(byte) if byte == b'-' || byte.is_ascii_digit() => {
                let start = self.position;
                self.position += 1;
                while self.text.get(self.position).is_some_and(u8::is_ascii_digit) {
                    self.position += 1;
                }
                let text = String::from_utf8_lossy(&self.text[start..self.position]);
                text.parse()
                    .map(ArgumentValue::Integer)
                    .map_err(|_| graph_error(format!("`{text}` is not an integer")))
            }
            _ => self.name().map(ArgumentValue::Text),
        }
    }

    fn selection(&mut self, depth: usize) -> ApiResult<Vec<Field>> {
        if depth > MAX_DEPTH {
            return Err(graph_error(format!(
                "selections nest deeper than {MAX_DEPTH}"
            )));
        }
        self.expect(b'{')?;
        let mut fields = Vec::new();
        while self.peek() != Some(b'}') {
            if self.peek().is_none() {
                return Err(graph_error("unterminated selection: missing `}`"));
            }
            fields.push(self.field(depth)?);
        }
        self.expect(b'}')?;
        if fields.is_empty() {
            return Err(graph_error("an empty selection selects nothing"));
        }
        Ok(fields)
    }

    fn field(&mut self, depth: usize) -> ApiResult<Field> {
        let first = self.name()?;
        let (alias, name) = if self.peek() == Some(b':') {
            self.position += 1;
            (Some(first), self.name()?)
        } else {
            (None, first)
        };
        let mut arguments = Vec::new();
        if self.peek() == Some(b'(') {
            self.position += 1;
            while self.peek() != Some(b')') {
                if self.peek().is_none() {
                    return Err(graph_error("unterminated arguments: missing `)`"));
                }
                let argument = self.name()?;
                self.expect(b':')?;
                arguments.push((argument, self.value()?));
            }
            self.position += 1;
        }
        let selection = if self.peek() == Some(b'{') {
            self.selection(depth + 1)?
        } else {
            Vec::new()
        };
        Ok(Field {
            alias,
            name,
            arguments,
            selection,
        })
    }
}

/// Parses a query document into its root fields.
pub fn parse(query: &str) -> ApiResult<Vec<Field>> {
    let mut parser = Parser {
        text: query.as_bytes(),
        position: 0,
    };
    if parser.peek().is_some_and(|b| b.is_ascii_alphabetic()) {
        let keyword = parser.name()?;
        if keyword != "query" {
            return Err(graph_error(format!(
                "only queries are supported, not `{keyword}`"
            )));
        }
        if parser.peek().is_some_and(|b| b.is_ascii_alphabetic()) {
            parser.name()?;
        }
    }
    let fields = parser.selection(0)?;
    if parser.peek().is_some() {
        return Err(graph_error(format!(
            "unexpected text after the query at offset {}",
            parser.position
        )));
    }
    Ok(fields)
}

/// `providerId` → `provider_id`.
fn snake_case(name: &str) -> String {
    let mut snake = String::with_capacity(name.len() + 4);
    for character in name.chars() {
        if character.is_ascii_uppercase() {
            snake.push('_');
            snake.push(character.to_ascii_lowercase());
        } else {
            snake.push(character);
        }
    }
    snake
}

/// Keeps only the selected fields of a JSON value, recursively.
fn select(value: &Value, selection: &[Field]) -> Value {
    if selection.is_empty() {
        return value.clone();
    }
    match value {
        Value::Array(items) => {
            Value::Array(items.iter().map(|item| select(item, selection)).collect())
        }
        Value::Object(object) => {
            let mut selected = Map::new();
            for field in selection {
                let key = field.alias.clone().unwrap_or_else(|| field.name.clone());
                let found = object
                    .get(&field.name)
                    .or_else(|| object.get(&snake_case(&field.name)));
                selected.insert(
                    key,
                    found.map_or(Value::Null, |found| select(found, &field.selection)),
                );
            }
            Value::Object(selected)
        }
        other => other.clone(),
    }
}

fn argument<'a>(field: &'a Field, names: &[&str]) -> Option<&'a ArgumentValue> {
    field
        .arguments
        .iter()
        .find(|(name, _)| names.contains(&name.as_str()))
        .map(|(_, value)| value)
}

fn text_argument(field: &Field, names: &[&str]) -> Option<String> {
    match argument(field, names)? {
        ArgumentValue::Text(text) => Some(text.clone()),
        ArgumentValue::Integer(number) => Some(number.to_string()),
    }
}

fn limit(field: &Field) -> ApiResult<u32> {
    match argument(field, &["limit", "first", "pageSize", "page_size"]) {
        None => Ok(DEFAULT_LIMIT as u32),
        Some(ArgumentValue::Integer(number)) if (1..=MAX_LIMIT).contains(number) => {
            Ok(*number as u32)
        }
        Some(_) => Err(graph_error(format!(
            "`limit` of `{}` must be an integer from 1 to {MAX_LIMIT}",
            field.name
        ))),
    }
}

/// Runs a query for an account and returns `{"data": …}`.
pub async fn execute(
    store: &Arc<dyn Store>,
    instance_id: &str,
    account_id: &str,
    query: &str,
    now: DateTime<Utc>,
) -> ApiResult<Value> {
    let mut data = Map::new();
    for field in parse(query)? {
        let key = field.alias.clone().unwrap_or_else(|| field.name.clone());
        let limit = limit(&field)?;
        let provider_ids: Vec<String> = match text_argument(&field, &["providerId", "provider_id"])
        {
            Some(provider_id) => vec![provider_id],
            None => {
                let (providers, _) = store
                    .list_providers(
                        instance_id,
                        account_id,
                        &ProviderQuery {
                            limit: MAX_LIMIT as u32,
                            ..ProviderQuery::default()
                        },
                    )
                    .await?;
                providers.into_iter().map(|provider| provider.id).collect()
            }
        };
        let items: Vec<Value> = match field.name.as_str() {
            "providers" => provider_ids
                .iter()
                .take(limit as usize)
                .map(|id| {
                    serde_json::json!({"id": id, "name": format!("{account_id}/providers/{id}")})
                })
                .collect(),
            "notes" => {
                let kind = text_argument(&field, &["kind"]);
                let mut notes = Vec::new();
                for provider_id in &provider_ids {
                    let stored = store
                        .list_notes(instance_id, account_id, provider_id, None, limit)
                        .await?;
                    for note in stored {
                        if kind.as_ref().is_none_or(|kind| *kind == note.record.kind) {
                            notes.push(
                                serde_json::to_value(note_view(&note)?)
                                    .map_err(|error| ApiError::internal(error.to_string()))?,
                            );
                        }
                    }
                }
                notes.truncate(limit as usize);
                notes
            }
            "occurrences" => {
                let mut filter = OccurrenceFilter {
                    account_id: Some(account_id.to_owned()),
                    note_id: text_argument(&field, &["noteId", "note_id"]),
                    resource: text_argument(&field, &["resource"]),
                    ..OccurrenceFilter::default()
                };
                if let Some(provider_id) = text_argument(&field, &["providerId", "provider_id"]) {
                    filter.provider_ids = vec![provider_id];
                }
                if let Some(kind) = text_argument(&field, &["kind"]) {
                    filter.kinds = vec![kind];
                }
                if let Some(severity) = text_argument(&field, &["severity"]) {
                    filter.severities = vec![severity.to_ascii_uppercase()];
                }
                if let Some(status) = text_argument(&field, &["status"]) {
                    filter.statuses = vec![status.to_ascii_lowercase().parse().map_err(
                        |message: String| graph_error(format!("`status`: {message}")),
                    )?];
                }
                let stored = store
                    .query_occurrences(instance_id, &filter, None, limit)
                    .await?;
                stored
                    .iter()
                    .map(|occurrence| {
                        serde_json::to_value(occurrence_view(occurrence, now)?)
                            .map_err(|error| ApiError::internal(error.to_string()))
                    })
                    .collect::<ApiResult<_>>()?
            }
            other => {
                return Err(graph_error(format!(
                    "unknown root field `{other}`; use providers, notes or occurrences"
                )));
            }
        };
        data.insert(key, select(&Value::Array(items), &field.selection));
    }
    Ok(serde_json::json!({ "data": data }))
}

/// Takes the query out of a request body: GraphQL text, or JSON `{"query": "…"}`.
pub fn query_of(body: &[u8]) -> ApiResult<String> {
    let text = std::str::from_utf8(body).map_err(|_| graph_error("the query is not UTF-8"))?;
    let trimmed = text.trim_start();
    if trimmed.starts_with('{') {
        // `{notes{id}}` is GraphQL, `{"query": …}` JSON: only JSON parses as JSON.
        if let Ok(Value::Object(object)) = serde_json::from_str::<Value>(trimmed) {
            return object
                .get("query")
                .and_then(Value::as_str)
                .map(str::to_owned)
                .ok_or_else(|| graph_error("a JSON body needs a string field `query`"));
        }
    }
    Ok(text.to_owned())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn the_ibm_sdk_query_parses() {
        let fields = parse("{notes{id}}").expect("parses");
        assert_eq!(fields.len(), 1);
        assert_eq!(fields[0].name, "notes");
        assert_eq!(fields[0].selection[0].name, "id");
    }

    #[test]
    fn arguments_aliases_and_comments_parse() {
        let fields = parse(
            "query Recent {\n # newest first\n high: occurrences(providerId: \"posture\", severity: HIGH, limit: 5) { id finding { severity } }\n}",
        )
        .expect("parses");
        let field = &fields[0];
        assert_eq!(
            (field.alias.as_deref(), field.name.as_str()),
            (Some("high"), "occurrences")
        );
        assert_eq!(
            field.arguments,
            [
                (
                    "providerId".to_owned(),
                    ArgumentValue::Text("posture".into())
                ),
                ("severity".to_owned(), ArgumentValue::Text("HIGH".into())),
                ("limit".to_owned(), ArgumentValue::Integer(5)),
            ]
        );
        assert_eq!(field.selection[1].selection[0].name, "severity");
    }

    #[test]
    fn malformed_queries_are_refused() {
        for bad in [
            "",
            "{",
            "{notes{}}",
            "mutation { x }",
            "{notes} trailing",
            "{notes(limit: ) {id}}",
        ] {
            assert!(parse(bad).is_err(), "{bad:?}");
        }
        let deep = format!("{}{}", "{a".repeat(40), "}".repeat(40));
        assert!(parse(&deep).is_err());
    }

    #[test]
    fn selections_keep_only_what_was_asked_in_either_case() {
        let fields =
            parse("{x{ id shortDescription reported_by { title } missing }}").expect("parses");
        let value = json!([{"id": "n1", "short_description": "s", "reported_by": {"id": "r", "title": "T"}, "kind": "FINDING"}]);
        assert_eq!(
            select(&value, &fields[0].selection),
            json!([{"id": "n1", "shortDescription": "s", "reported_by": {"title": "T"}, "missing": null}])
        );
    }

    #[test]
    fn queries_come_as_text_or_json() {
        assert_eq!(query_of(b"{notes{id}}").expect("text"), "{notes{id}}");
        assert_eq!(
            query_of(br#"{"query": "{notes{id}}"}"#).expect("json"),
            "{notes{id}}"
        );
        assert!(query_of(br#"{"q": 1}"#).is_err());
    }
}
