//! [`ApiJson`]: the JSON body extractor and response type.
//!
//! Unlike axum's `Json`, a bad body answers in the API's error shape with a precise location:
//! malformed JSON gives its line and column; a field of the wrong type, a missing field or an
//! unknown field (create bodies use `deny_unknown_fields`) gives the field's JSON pointer.

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::header::CONTENT_TYPE;
use axum::response::{IntoResponse, Response};
use palisade_model::error::{ErrorCode, ErrorTarget};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::ApiError;

/// A JSON request body or response.
#[derive(Debug, Clone, Copy, Default)]
pub struct ApiJson<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        let is_json = request
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|value| value.to_str().ok())
            .is_some_and(|value| {
                let essence = value
                    .split(';')
                    .next()
                    .unwrap_or_default()
                    .trim()
                    .to_ascii_lowercase();
                essence == "application/json" || essence.ends_with("+json")
            });
        if !is_json {
            return Err(ApiError::new(
                ErrorCode::UnsupportedMediaType,
                "the body must be JSON (Content-Type: application/json)",
            )
            .with_target(ErrorTarget::header("Content-Type")));
        }
        let bytes = Bytes::from_request(request, state)
            .await
            .map_err(|rejection| {
                if rejection.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
                    ApiError::new(
                        ErrorCode::PayloadTooLarge,
                        "the body is larger than this route accepts",
                    )
                } else {
                    ApiError::new(
                        ErrorCode::BadRequest,
                        format!("cannot read the body: {rejection}"),
                    )
                }
            })?;
        parse_json(&bytes).map(ApiJson)
    }
}

impl<T: Serialize> IntoResponse for ApiJson<T> {
    fn into_response(self) -> Response {
        axum::Json(self.0).into_response()
    }
}

/// Parses a JSON body, mapping every failure to an [`ApiError`] that says where it is.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    let value =
        serde_path_to_error::deserialize(&mut deserializer).map_err(|error| json_error(&error))?;
    deserializer.end().map_err(|error| {
        ApiError::new(ErrorCode::InvalidJson, format!("invalid JSON: {error}"))
            .with_target(ErrorTarget::field(""))
    })?;
    Ok(value)
}

fn json_error(error: &serde_path_to_error::Error<serde_json::Error>) -> ApiError {
    let inner = error.inner();
    let mut pointer = json_pointer(error.path());
    match inner.classify() {
        serde_json::error::Category::Syntax
        | serde_json::error::Category::Eof
        | serde_json::error::Category::Io => {
            ApiError::new(ErrorCode::InvalidJson, format!("invalid JSON: {inner}"))
                .with_target(ErrorTarget::field(""))
        }
        serde_json::error::Category::Data => {
            let message = inner.to_string();
            // serde names the offending field in backticks; the path stops at its parent.
            let named_field = message.split('`').nth(1).map(str::to_owned);
            let code = if message.starts_with("unknown field") {
                ErrorCode::UnknownField
            } else if message.starts_with("missing field") {
                ErrorCode::MissingField
            } else {
                ErrorCode::InvalidField
            };
            if matches!(code, ErrorCode::UnknownField | ErrorCode::MissingField) {
                // serde_path_to_error includes an unknown field in the path but stops at the
                // parent for a missing one.
                if let Some(field) = named_field.map(|field| escape_pointer_segment(&field))
                    && !pointer.ends_with(&format!("/{field}"))
                {
                    pointer.push('/');
                    pointer.push_str(&field);
                }
            }
            let plain = message
                .split(" at line ")
                .next()
                .unwrap_or(&message)
                .to_owned();
            let location = if pointer.is_empty() {
                "the body".to_owned()
            } else {
                format!("`{pointer}`")
            };
            ApiError::new(code, format!("{location}: {plain}"))
                .with_target(ErrorTarget::field(pointer))
        }
    }
}

/// Converts serde_path_to_error's path (`rules[0].target`) into a JSON pointer (`/rules/0/target`).
fn json_pointer(path: &serde_path_to_error::Path) -> String {
    use serde_path_to_error::Segment;
    let mut pointer = String::new();
    for segment in path.iter() {
        match segment {
            Segment::Seq { index } => {
                pointer.push('/');
                pointer.push_str(&index.to_string());
            }
            Segment::Map { key } | Segment::Enum { variant: key } => {
                pointer.push('/');
                pointer.push_str(&escape_pointer_segment(key));
            }
            Segment::Unknown => {}
        }
    }
    pointer
}

/// Escapes `~` and `/` as RFC 6901 requires.
pub fn escape_pointer_segment(segment: &str) -> String {
    segment.replace('~', "~0").replace('/', "~1")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Outer {
        items: Vec<Inner>,
    }

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Inner {
        name: String,
        count: u32,
    }

    fn error_of(body: &str) -> (ErrorCode, String, String) {
        let error = parse_json::<Outer>(body.as_bytes()).expect_err("must fail");
        let item = &error.items[0];
        (
            item.code,
            item.target.clone().map(|t| t.name).unwrap_or_default(),
            item.message.clone(),
        )
    }

    #[test]
    fn errors_point_at_the_field() {
        let (code, target, _) =
            error_of(r#"{"items":[{"name":"a","count":1},{"name":"b","count":"x"}]}"#);
        assert_eq!(
            (code, target.as_str()),
            (ErrorCode::InvalidField, "/items/1/count")
        );
        let (code, target, message) =
            error_of(r#"{"items":[{"name":"a","count":1,"colour":"red"}]}"#);
        assert_eq!(
            (code, target.as_str()),
            (ErrorCode::UnknownField, "/items/0/colour")
        );
        assert!(message.contains("colour"), "{message}");
        let (code, target, _) = error_of(r#"{"items":[{"name":"a"}]}"#);
        assert_eq!(
            (code, target.as_str()),
            (ErrorCode::MissingField, "/items/0/count")
        );
    }

    #[test]
    fn syntax_errors_give_line_and_column() {
        let (code, _, message) = error_of("{\n  \"items\": [,]\n}");
        assert_eq!(code, ErrorCode::InvalidJson);
        assert!(message.contains("line 2 column"), "{message}");
        let (code, _, _) = error_of(r#"{"items":[]} trailing"#);
        assert_eq!(code, ErrorCode::InvalidJson);
    }
}
