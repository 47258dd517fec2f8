//! The error-code table and the error body every API error uses.
//!
//! Codes are stable snake_case strings: clients match on them, so a code is never renamed once
//! shipped. The body follows IBM SCC's shape so IBM's SDKs can read it:
//! `{"errors":[{"code","message","target"}],"trace","status_code"}`.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Declares [`ErrorCode`] with its wire name and HTTP status in one table, so the two can never
/// drift apart.
macro_rules! error_codes {
    ($($(#[$doc:meta])* $variant:ident => ($name:literal, $status:literal),)+) => {
        /// A stable, machine-readable error code.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
        pub enum ErrorCode {
            $($(#[$doc])* #[serde(rename = $name)] $variant,)+
        }

        impl ErrorCode {
            /// Every code, in table order.
            pub const ALL: &'static [ErrorCode] = &[$(ErrorCode::$variant,)+];

            /// Returns the code as it travels on the wire.
            pub fn as_str(self) -> &'static str {
                match self { $(ErrorCode::$variant => $name,)+ }
            }

            /// Returns the HTTP status that answers this code.
            pub fn http_status(self) -> u16 {
                match self { $(ErrorCode::$variant => $status,)+ }
            }
        }
    };
}

error_codes! {
    /// The request is malformed in a way no more specific code describes.
    BadRequest => ("bad_request", 400),
    /// The body is not valid JSON; the message gives the line and column.
    InvalidJson => ("invalid_json", 400),
    /// A field has a value of the wrong type or outside its allowed set.
    InvalidField => ("invalid_field", 400),
    /// A create or update body names a field the API does not know.
    UnknownField => ("unknown_field", 400),
    /// A required field is absent.
    MissingField => ("missing_field", 400),
    /// A query or path parameter is invalid.
    InvalidParameter => ("invalid_parameter", 400),
    /// No API key, or one that is unknown or revoked.
    Unauthorized => ("unauthorized", 401),
    /// The key is valid but its role does not allow this action.
    Forbidden => ("forbidden", 403),
    /// The object does not exist, or belongs to another instance.
    NotFound => ("not_found", 404),
    /// The route exists but not with this method.
    MethodNotAllowed => ("method_not_allowed", 405),
    /// The request took longer than the server allows.
    RequestTimeout => ("request_timeout", 408),
    /// The object already exists, or the change conflicts with its state.
    Conflict => ("conflict", 409),
    /// `If-Match` names a version that is no longer current.
    PreconditionFailed => ("precondition_failed", 412),
    /// The body is larger than the route accepts.
    PayloadTooLarge => ("payload_too_large", 413),
    /// The body's content type is not one the route accepts.
    UnsupportedMediaType => ("unsupported_media_type", 415),
    /// An update needs `If-Match` and the request has none.
    PreconditionRequired => ("precondition_required", 428),
    /// The key sent more requests than its rate allows; see `Retry-After`.
    RateLimited => ("rate_limited", 429),
    /// A bug or an unexpected failure; details are in the server log under the trace id.
    Internal => ("internal_error", 500),
    /// A dependency (the store) is unavailable; retry later.
    ServiceUnavailable => ("service_unavailable", 503),
}

// Written by hand: the derive, given `serde(rename)` through the macro above, documented the
// variants' Rust names (`NotFound`) instead of the wire names (`not_found`), so every error body
// contradicted the OpenAPI document (found by the API fuzz test, issue 11).
impl utoipa::PartialSchema for ErrorCode {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::schema::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::String)
            .description(Some("A stable, machine-readable error code."))
            .enum_values(Some(ErrorCode::ALL.iter().map(|code| code.as_str())))
            .into()
    }
}

impl ToSchema for ErrorCode {}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str(self.as_str())
    }
}

/// What an error points at: a body field (by JSON pointer), a query or path parameter, or a header.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ErrorTarget {
    /// `field`, `parameter` or `header`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The JSON pointer of the field, or the name of the parameter or header.
    pub name: String,
}

impl ErrorTarget {
    /// Points at a body field by JSON pointer (`/rules/0/target`).
    pub fn field(pointer: impl Into<String>) -> Self {
        Self {
            kind: "field".to_owned(),
            name: pointer.into(),
        }
    }

    /// Points at a query or path parameter.
    pub fn parameter(name: impl Into<String>) -> Self {
        Self {
            kind: "parameter".to_owned(),
            name: name.into(),
        }
    }

    /// Points at a request header.
    pub fn header(name: impl Into<String>) -> Self {
        Self {
            kind: "header".to_owned(),
            name: name.into(),
        }
    }
}

/// One error in an [`ErrorBody`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ErrorItem {
    pub code: ErrorCode,
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<ErrorTarget>,
}

/// The body of every 4xx and 5xx answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ErrorBody {
    pub errors: Vec<ErrorItem>,
    /// The request's trace id; the server log carries the same id.
    pub trace: String,
    pub status_code: u16,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_unique_snake_case_and_serialise_as_their_wire_name() {
        let mut seen = std::collections::HashSet::new();
        for code in ErrorCode::ALL {
            assert!(seen.insert(code.as_str()), "duplicate code {code}");
            assert!(
                code.as_str()
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c == '_')
            );
            assert!((400..600).contains(&code.http_status()));
            let json = serde_json::to_value(code).expect("serialise");
            assert_eq!(json, serde_json::Value::String(code.as_str().to_owned()));
        }
    }

    #[test]
    fn issue_11_the_documented_schema_lists_the_wire_names() {
        let schema = serde_json::to_value(<ErrorCode as utoipa::PartialSchema>::schema())
            .expect("serialise");
        let documented: Vec<&str> = schema["enum"]
            .as_array()
            .expect("an enum")
            .iter()
            .filter_map(serde_json::Value::as_str)
            .collect();
        let wire: Vec<&str> = ErrorCode::ALL.iter().map(|code| code.as_str()).collect();
        assert_eq!(documented, wire);
        assert_eq!(schema["type"], "string");
    }
}
