//! Kubernetes `kubectl get -o json` output and YAML manifests → resources.
//!
//! Each object is mapped by [`palisade_model::kubernetes::resource_from_object`], the one
//! mapping shared with the admission webhooks (workloads with their pod template lifted to
//! `pod_spec`, every other object `kubernetes/object`); this module reads the files, walks
//! `List`s and multi-document YAML, and names each bad object by its line or JSON pointer.

use palisade_model::kubernetes::resource_from_object;
use serde_json::Value;

use super::ImportOptions;
use crate::{CollectionError, CollectionOutput};

/// Imports `kubectl get -o json` output (JSON) or manifests (YAML, several documents).
pub fn import(source: &str, text: &str, options: &ImportOptions) -> CollectionOutput {
    let mut output = CollectionOutput::default();
    let first = text.trim_start().chars().next();
    if matches!(first, Some('{') | Some('[')) {
        match super::parse_json_document(source, text) {
            Ok(document) => add_objects(source, "", &document, options, &mut output),
            Err(error) => output.errors.push(error),
        }
        return output;
    }
    for document in split_yaml_documents(text) {
        match serde_yaml::from_str::<Value>(document.text) {
            Ok(Value::Null) => {}
            Ok(value) => {
                // YAML objects are named by the line their document starts on.
                let location = format!("line {}", document.first_line);
                add_objects(source, &location, &value, options, &mut output);
            }
            Err(error) => {
                // The parser may notice a problem only at the end of its document; the line
                // reported stays inside that document, not on the next one.
                let last_line = document.first_line + document.text.lines().count().max(1) - 1;
                let line = error
                    .location()
                    .map(|location| document.first_line + location.line().saturating_sub(1))
                    .unwrap_or(document.first_line)
                    .min(last_line);
                output.errors.push(CollectionError::new(
                    source,
                    Some(format!("line {line}")),
                    format!(
                        "not valid YAML: {}",
                        strip_yaml_position(&error.to_string())
                    ),
                ));
            }
        }
    }
    output
}

/// Adds one document: a `List` (its items) or a single object. `location` prefixes pointers.
fn add_objects(
    source: &str,
    location: &str,
    document: &Value,
    options: &ImportOptions,
    output: &mut CollectionOutput,
) {
    let items: Vec<(String, &Value)> = match document {
        Value::Array(items) => items
            .iter()
            .enumerate()
            .map(|(index, item)| (format!("/{index}"), item))
            .collect(),
        Value::Object(_) if is_list(document) => match document.get("items") {
            Some(Value::Array(items)) => items
                .iter()
                .enumerate()
                .map(|(index, item)| (format!("/items/{index}"), item))
                .collect(),
            _ => vec![(String::new(), document)],
        },
        _ => vec![(String::new(), document)],
    };
    for (pointer, item) in items {
        match resource_from_object(item, &options.account_id, options.collected_at) {
            Ok(mapped) => output.resources.push(mapped.resource),
            Err(error) => {
                let pointer = format!("{pointer}{}", error.pointer);
                let message = error.message;
                let place = match (location.is_empty(), pointer.is_empty()) {
                    (true, true) => "/".to_owned(),
                    (true, false) => pointer,
                    (false, true) => location.to_owned(),
                    (false, false) => format!("{location} {pointer}"),
                };
                let named = item
                    .get("metadata")
                    .and_then(|metadata| metadata.get("name"))
                    .and_then(Value::as_str)
                    .map(|name| format!(" ({name})"))
                    .unwrap_or_default();
                output.errors.push(CollectionError::new(
                    source,
                    Some(place),
                    format!("{message}{named}"),
                ));
            }
        }
    }
}

fn is_list(document: &Value) -> bool {
    document
        .get("kind")
        .and_then(Value::as_str)
        .is_some_and(|kind| kind == "List" || kind.ends_with("List"))
        && document.get("items").is_some()
}

/// One YAML document of a multi-document file, with the line it starts on (1-based).
struct YamlDocument<'a> {
    text: &'a str,
    first_line: usize,
}

/// Splits at `---` lines, so a broken document costs only itself (serde_yaml stops at the
/// first error of a stream).
fn split_yaml_documents(text: &str) -> Vec<YamlDocument<'_>> {
    let mut documents = Vec::new();
    let mut start_offset = 0;
    let mut start_line = 1;
    let mut offset = 0;
    for (index, line) in text.split_inclusive('\n').enumerate() {
        let trimmed = line.trim_end();
        if trimmed == "---" || trimmed.starts_with("--- ") || trimmed == "..." {
            documents.push(YamlDocument {
                text: &text[start_offset..offset],
                first_line: start_line,
            });
            start_offset = offset + line.len();
            start_line = index + 2;
        }
        offset += line.len();
    }
    documents.push(YamlDocument {
        text: &text[start_offset..],
        first_line: start_line,
    });
    documents
        .into_iter()
        .filter(|document| {
            document
                .text
                .lines()
                .any(|line| !line.trim().is_empty() && !line.trim_start().starts_with('#'))
        })
        .collect()
}

/// serde_yaml appends " at line L column C"; the line is reported apart, in file terms.
fn strip_yaml_position(message: &str) -> String {
    match message.find(" at line ") {
        Some(index) => message[..index].to_owned(),
        None => message.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn yaml_documents_keep_their_first_line() {
        let documents = split_yaml_documents("a: 1\n---\nb: 2\n---\n# only a comment\n");
        assert_eq!(documents.len(), 2);
        assert_eq!(documents[1].first_line, 3);
    }

    #[test]
    fn a_bad_object_is_named_by_its_full_pointer() {
        let list = r#"{"kind": "List", "apiVersion": "v1", "items": [
            {"kind": "Pod", "apiVersion": "v1", "metadata": {"name": "ok"}, "spec": {}},
            {"kind": "Pod", "apiVersion": "v1", "metadata": {}}]}"#;
        let options = ImportOptions::at(chrono::DateTime::<chrono::Utc>::UNIX_EPOCH);
        let output = import("pods.json", list, &options);
        assert_eq!(output.resources.len(), 1, "the good object is kept");
        assert_eq!(output.errors.len(), 1);
        let error = output.errors[0].to_string();
        assert!(error.contains("/items/1/metadata/name"), "{error}");
    }
}
