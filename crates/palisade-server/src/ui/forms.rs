//! Plain HTML forms over the API's service functions.
//!
//! A form's fields become the JSON body the API takes, and the body goes through the very
//! function the API route calls, so there is one validation path. The API names each mistake by
//! the JSON pointer of its field; [`Problems::from_error`] maps the pointers back to form fields
//! (through a small table per form) so each message is shown next to its field, with
//! `aria-invalid` and `aria-describedby`, and listed in a summary at the top of the form. The
//! only checks made here are the ones turning text into JSON (a number, a JSON document, a line
//! of a list), and they name their field the same way.
//!
//! Everything works without JavaScript: the browser posts the form, the server answers either a
//! redirect (success) or the same form with the values typed and the problems shown (400, or 409
//! for a conflict).

use std::collections::BTreeMap;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use maud::{Markup, html};
use palisade_model::error::ErrorCode;

use super::UiError;
use crate::error::ApiError;

/// The fields of a submitted form, in order; a name may repeat (checkboxes).
#[derive(Debug, Clone, Default)]
pub struct Values(Vec<(String, String)>);

impl Values {
    /// Values from pairs (a decoded form, or an object being edited).
    pub fn new(pairs: Vec<(String, String)>) -> Self {
        Self(pairs)
    }

    /// Sets a field (replacing earlier values of the same name).
    pub fn set(&mut self, name: &str, value: impl Into<String>) {
        self.0.retain(|(field, _)| field != name);
        self.0.push((name.to_owned(), value.into()));
    }

    /// Adds one more value of a repeated field.
    pub fn push(&mut self, name: &str, value: impl Into<String>) {
        self.0.push((name.to_owned(), value.into()));
    }

    /// The first value of a field, trimmed ("" when absent).
    pub fn get(&self, name: &str) -> &str {
        self.0
            .iter()
            .find(|(field, _)| field == name)
            .map_or("", |(_, value)| value.trim())
    }

    /// The first value of a field as typed (multi-line text keeps its layout).
    pub fn raw(&self, name: &str) -> &str {
        self.0
            .iter()
            .find(|(field, _)| field == name)
            .map_or("", |(_, value)| value.as_str())
    }

    /// Every value of a repeated field.
    pub fn all(&self, name: &str) -> Vec<&str> {
        self.0
            .iter()
            .filter(|(field, _)| field == name)
            .map(|(_, value)| value.as_str())
            .collect()
    }

    /// Whether a repeated field has this value (a ticked checkbox).
    pub fn has(&self, name: &str, value: &str) -> bool {
        self.0
            .iter()
            .any(|(field, given)| field == name && given == value)
    }

    /// Whether a single checkbox is ticked.
    pub fn checked(&self, name: &str) -> bool {
        !self.get(name).is_empty()
    }

    /// Drops the blank lines of a one-item-per-line field and trims the others, so that the
    /// API's item index is the line number shown with the form.
    pub fn tidy_lines(&mut self, name: &str) {
        let tidy: Vec<&str> = self
            .raw(name)
            .lines()
            .map(str::trim)
            .filter(|line| !line.is_empty())
            .collect();
        let tidy = tidy.join("\n");
        self.set(name, tidy);
    }

    /// The non-empty values of a comma-separated field.
    pub fn list(&self, name: &str) -> Vec<String> {
        self.get(name)
            .split(',')
            .map(str::trim)
            .filter(|item| !item.is_empty())
            .map(str::to_owned)
            .collect()
    }
}

/// How a message is placed when its pointer lies below the field's own pointer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Detail {
    /// The field holds one value: the message as is.
    Plain,
    /// The field holds one item per line: the message starts with the item's line number.
    Line,
    /// The field holds a JSON document: the message names the pointer inside it.
    Pointer,
}

/// Where the API's JSON pointers land in a form: `(pointer, field, detail)`. An error belongs to
/// the first entry whose pointer is the error's or one of its ancestors.
pub type FieldMap = [(&'static str, &'static str, Detail)];

/// The problems of a submitted form: by field, and those that belong to no field.
#[derive(Debug, Clone, Default)]
pub struct Problems {
    fields: BTreeMap<String, Vec<String>>,
    general: Vec<String>,
    /// The answer's status when the form is shown again (400 unless the API said otherwise).
    status: Option<StatusCode>,
}

/// Drops the "`/pointer`: " or "the body: " prefix the API puts before a message, which the
/// form shows next to the field instead.
fn bare_message(message: &str) -> &str {
    if let Some(rest) = message.strip_prefix('`')
        && let Some((_, text)) = rest.split_once("`: ")
    {
        return text;
    }
    message.strip_prefix("the body: ").unwrap_or(message)
}

impl Problems {
    /// Whether nothing is wrong.
    pub fn is_empty(&self) -> bool {
        self.fields.is_empty() && self.general.is_empty()
    }

    /// Records a problem of a field (`None`: of the whole form).
    pub fn add(&mut self, field: Option<&str>, message: impl Into<String>) {
        match field {
            Some(field) => self
                .fields
                .entry(field.to_owned())
                .or_default()
                .push(message.into()),
            None => self.general.push(message.into()),
        }
    }

    /// The problems of one field.
    pub fn of(&self, field: &str) -> &[String] {
        self.fields.get(field).map_or(&[], Vec::as_slice)
    }

    /// Places an API error on the form, or gives it back when it is not about what was typed
    /// (a missing object, a refused role, a storage failure: those get an error page).
    pub fn from_error(error: ApiError, map: &FieldMap) -> Result<Problems, UiError> {
        let status = error.status();
        let about_input = matches!(
            status,
            StatusCode::BAD_REQUEST | StatusCode::CONFLICT | StatusCode::PRECONDITION_FAILED
        ) && error.code() != ErrorCode::InvalidJson;
        if !about_input {
            return Err(UiError::Page(error));
        }
        let mut problems = Problems {
            status: Some(status),
            ..Problems::default()
        };
        for item in &error.items {
            let message = bare_message(&item.message);
            let pointer = item
                .target
                .as_ref()
                .filter(|target| target.kind == "field")
                .map(|target| target.name.as_str());
            let placed = pointer.and_then(|pointer| {
                map.iter().find_map(|(prefix, field, detail)| {
                    let rest = pointer.strip_prefix(prefix)?;
                    if !(rest.is_empty() || rest.starts_with('/')) {
                        return None;
                    }
                    let text = match (detail, rest) {
                        (_, "") | (Detail::Plain, _) => message.to_owned(),
                        (Detail::Line, rest) => {
                            let index = rest[1..].split('/').next().unwrap_or_default();
                            match index.parse::<usize>() {
                                Ok(index) => format!("line {}: {message}", index + 1),
                                Err(_) => message.to_owned(),
                            }
                        }
                        (Detail::Pointer, rest) => format!("at {rest}: {message}"),
                    };
                    Some((*field, text))
                })
            });
            match placed {
                Some((field, text)) => problems.add(Some(field), text),
                None => problems.add(None, item.message.clone()),
            }
        }
        Ok(problems)
    }

    /// The status of the answer that shows the form again.
    pub fn status(&self) -> StatusCode {
        self.status.unwrap_or(StatusCode::BAD_REQUEST)
    }
}

/// A form being shown: the values to fill in and the problems to point out.
pub struct FormView<'a> {
    pub values: &'a Values,
    pub problems: &'a Problems,
}

impl FormView<'_> {
    fn described_by(&self, name: &str, hint: Option<&str>) -> Option<String> {
        let mut ids = Vec::new();
        if hint.is_some() {
            ids.push(format!("{name}-hint"));
        }
        if !self.problems.of(name).is_empty() {
            ids.push(format!("{name}-error"));
        }
        (!ids.is_empty()).then(|| ids.join(" "))
    }

    fn hint_and_error(&self, name: &str, hint: Option<&str>) -> Markup {
        html! {
            @if let Some(hint) = hint {
                span.hint id=(format!("{name}-hint")) { (hint) }
            }
            @let problems = self.problems.of(name);
            @if !problems.is_empty() {
                span.field-error id=(format!("{name}-error")) {
                    @for (index, problem) in problems.iter().enumerate() {
                        @if index > 0 { br; }
                        (problem)
                    }
                }
            }
        }
    }

    fn invalid(&self, name: &str) -> Option<&'static str> {
        (!self.problems.of(name).is_empty()).then_some("true")
    }

    /// A one-line input (`kind`: `text`, `url`, `number` …).
    pub fn input(
        &self,
        name: &str,
        label: &str,
        kind: &str,
        hint: Option<&str>,
        required: bool,
    ) -> Markup {
        html! {
            div.field {
                label for=(name) { (label) @if required { " " span.required aria-hidden="true" { "*" } } }
                (self.hint_and_error(name, hint))
                input id=(name) name=(name) type=(kind) value=(self.values.get(name)) required[required]
                    aria-invalid=[self.invalid(name)] aria-describedby=[self.described_by(name, hint)];
            }
        }
    }

    /// A multi-line input.
    pub fn textarea(
        &self,
        name: &str,
        label: &str,
        rows: u32,
        hint: Option<&str>,
        required: bool,
    ) -> Markup {
        html! {
            div.field {
                label for=(name) { (label) @if required { " " span.required aria-hidden="true" { "*" } } }
                (self.hint_and_error(name, hint))
                textarea id=(name) name=(name) rows=(rows) spellcheck="false" required[required]
                    aria-invalid=[self.invalid(name)] aria-describedby=[self.described_by(name, hint)] {
                    (self.values.raw(name))
                }
            }
        }
    }

    /// A choice among `options` (`(value, label)`).
    pub fn select(
        &self,
        name: &str,
        label: &str,
        options: &[(String, String)],
        hint: Option<&str>,
    ) -> Markup {
        let current = self.values.get(name);
        html! {
            div.field {
                label for=(name) { (label) }
                (self.hint_and_error(name, hint))
                select id=(name) name=(name) aria-invalid=[self.invalid(name)] aria-describedby=[self.described_by(name, hint)] {
                    @for (value, text) in options {
                        option value=(value) selected[current == value] { (text) }
                    }
                }
            }
        }
    }

    /// Several ticks among `options` (`(value, label)`), in a fieldset.
    pub fn checkboxes(
        &self,
        name: &str,
        legend: &str,
        options: &[(String, String)],
        hint: Option<&str>,
    ) -> Markup {
        html! {
            fieldset.field id=(name) aria-invalid=[self.invalid(name)] aria-describedby=[self.described_by(name, hint)] {
                legend { (legend) }
                (self.hint_and_error(name, hint))
                @for (index, (value, text)) in options.iter().enumerate() {
                    @let id = format!("{name}-{index}");
                    div.check {
                        input type="checkbox" id=(id) name=(name) value=(value) checked[self.values.has(name, value)];
                        label for=(id) { (text) }
                    }
                }
            }
        }
    }

    /// One tick box (sent as `on` when ticked).
    pub fn checkbox(&self, name: &str, label: &str, hint: Option<&str>) -> Markup {
        html! {
            div.field.check {
                input type="checkbox" id=(name) name=(name) value="on" checked[self.values.checked(name)]
                    aria-invalid=[self.invalid(name)] aria-describedby=[self.described_by(name, hint)];
                label for=(name) { (label) }
                (self.hint_and_error(name, hint))
            }
        }
    }

    /// The list of problems at the top of a form shown again, each linking to its field; it is
    /// announced, and the page's first link target, so keyboard users start from it.
    pub fn summary(&self, labels: &[(&str, &str)]) -> Markup {
        if self.problems.is_empty() {
            return html! {};
        }
        html! {
            div.error-summary role="alert" aria-labelledby="error-summary-title" tabindex="-1" {
                h2 #error-summary-title { "Please correct the following" }
                ul {
                    @for message in &self.problems.general {
                        li { (message) }
                    }
                    @for (field, messages) in &self.problems.fields {
                        @let label = labels.iter().find(|(name, _)| name == field).map_or(field.as_str(), |(_, label)| *label);
                        @for message in messages {
                            li { a href=(format!("#{field}")) { (label) } ": " (message) }
                        }
                    }
                }
            }
        }
    }
}

/// The answer that shows a form again with its problems.
pub fn again(problems: &Problems, page: Markup) -> Response {
    let mut response = (problems.status(), page).into_response();
    // The shared middleware must not replace this page with the API's JSON error body.
    response
        .extensions_mut()
        .insert(crate::middleware::KeepErrorBody);
    response
}

#[cfg(test)]
mod tests {
    use palisade_model::error::{ErrorItem, ErrorTarget};

    use super::*;

    const MAP: &FieldMap = &[
        ("/name", "name", Detail::Plain),
        ("/target/service_name", "service_name", Detail::Plain),
        ("/required_config", "required_config", Detail::Pointer),
        ("/customized_defaults", "defaults", Detail::Line),
    ];

    fn error(items: &[(&str, &str)]) -> ApiError {
        ApiError::many(
            items
                .iter()
                .map(|(pointer, message)| ErrorItem {
                    code: ErrorCode::InvalidField,
                    message: format!("`{pointer}`: {message}"),
                    target: Some(ErrorTarget::field(*pointer)),
                })
                .collect(),
        )
    }

    #[test]
    fn pointers_land_on_their_fields() {
        let problems = Problems::from_error(
            error(&[
                ("/name", "must not be empty"),
                ("/required_config/and/0/operator", "unknown operator"),
                ("/customized_defaults/2/property", "defaulted twice"),
                ("/target/service_name_extra", "unknown field"),
                ("/labels", "must be an array"),
            ]),
            MAP,
        )
        .expect("about the input");
        assert_eq!(problems.of("name"), ["must not be empty"]);
        assert_eq!(
            problems.of("required_config"),
            ["at /and/0/operator: unknown operator"]
        );
        assert_eq!(problems.of("defaults"), ["line 3: defaulted twice"]);
        // Only whole segments match: `/target/service_name_extra` is not the service name.
        assert!(problems.of("service_name").is_empty());
        assert_eq!(problems.general.len(), 2);
        assert_eq!(problems.status(), StatusCode::BAD_REQUEST);
    }

    #[test]
    fn errors_not_about_the_input_give_an_error_page() {
        assert!(Problems::from_error(ApiError::not_found("scope", "x"), MAP).is_err());
        assert!(Problems::from_error(ApiError::new(ErrorCode::Forbidden, "no"), MAP).is_err());
        let conflict =
            Problems::from_error(ApiError::new(ErrorCode::Conflict, "in use"), MAP).expect("form");
        assert_eq!(conflict.status(), StatusCode::CONFLICT);
        assert_eq!(conflict.general, ["in use"]);
    }

    #[test]
    fn values_read_repeated_and_listed_fields() {
        let values = Values::new(vec![
            ("severity".into(), "high".into()),
            ("severity".into(), "low".into()),
            ("labels".into(), " a, b ,,c ".into()),
        ]);
        assert_eq!(values.all("severity"), ["high", "low"]);
        assert!(values.has("severity", "low") && !values.has("severity", "medium"));
        assert_eq!(values.list("labels"), ["a", "b", "c"]);
        assert_eq!(values.get("missing"), "");
        assert!(!values.checked("enabled"));
    }
}
