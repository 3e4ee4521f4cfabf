//! The one place the JSON API's errors become HTTP responses.
//!
//! Every error answers `{"error": {"code": "…", "message": "…", "field":
//! "…"?}}` with the status its variant names, so a client can branch on
//! `code` and show `message` and `field` to a person. Invariants:
//! - A field the caller got wrong is a 422 naming that field, with a dotted
//!   path for nested values (`variables.reset_url`, `contacts[2].email`).
//! - A body that is not JSON at all is a 400 saying where it broke.
//! - A 500 says "internal error" and nothing more; the cause chain goes to
//!   the log, never to the caller (it may hold SQL, paths or addresses).
//! - Messages never echo secrets (API keys) or a caller's whole payload.

use axum::{
    Json,
    http::{HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use serde::Serialize;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// Missing or wrong bearer key, or no keys configured. Nothing was read
    /// past the headers, nothing recorded.
    #[error("{0}")]
    Unauthorized(String),
    /// The body is not JSON (syntax, truncated, wrong content type).
    #[error("{0}")]
    MalformedJson(String),
    /// A header the API reads has a value it cannot use.
    #[error("{message}")]
    BadHeader {
        header: &'static str,
        message: String,
    },
    /// A field's value is wrong; `field` is its dotted path.
    #[error("{message}")]
    Invalid { field: String, message: String },
    #[error("{0}")]
    NotFound(String),
    /// The request conflicts with one already recorded (an
    /// `Idempotency-Key` reused with another body).
    #[error("{message}")]
    Conflict { code: &'static str, message: String },
    #[error("request body is larger than {0} bytes")]
    TooLarge(usize),
    #[error("{0}")]
    MethodNotAllowed(String),
    /// warmline is not configured to do this (no provider, no sender); the
    /// message says which setting is missing.
    #[error("{0}")]
    Unavailable(String),
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl ApiError {
    /// A 422 for `field`.
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        ApiError::Invalid {
            field: field.into(),
            message: message.into(),
        }
    }

    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            ApiError::MalformedJson(_) | ApiError::BadHeader { .. } => StatusCode::BAD_REQUEST,
            ApiError::Invalid { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::Conflict { .. } => StatusCode::CONFLICT,
            ApiError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The stable, machine-readable name of the error.
    pub fn code(&self) -> &'static str {
        match self {
            ApiError::Unauthorized(_) => "unauthorized",
            ApiError::MalformedJson(_) => "malformed_json",
            ApiError::BadHeader { .. } => "invalid_header",
            ApiError::Invalid { .. } => "invalid_field",
            ApiError::NotFound(_) => "not_found",
            ApiError::Conflict { code, .. } => code,
            ApiError::TooLarge(_) => "payload_too_large",
            ApiError::MethodNotAllowed(_) => "method_not_allowed",
            ApiError::Unavailable(_) => "unavailable",
            ApiError::Internal(_) => "internal",
        }
    }

    fn field(&self) -> Option<&str> {
        match self {
            ApiError::Invalid { field, .. } => Some(field),
            ApiError::BadHeader { header, .. } => Some(header),
            _ => None,
        }
    }
}

#[derive(Serialize)]
struct Body<'a> {
    error: Detail<'a>,
}

#[derive(Serialize)]
struct Detail<'a> {
    code: &'a str,
    message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    field: Option<&'a str>,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        let message = match &self {
            ApiError::Internal(e) => {
                tracing::error!(error = format!("{e:#}"), "API request failed");
                "internal error".to_string()
            }
            other => other.to_string(),
        };
        let body = Body {
            error: Detail {
                code: self.code(),
                message,
                field: self.field(),
            },
        };
        let mut response = (status, Json(body)).into_response();
        if status == StatusCode::UNAUTHORIZED {
            // RFC 6750 §3: a 401 names the scheme the client must use.
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"warmline\""),
            );
        }
        response
    }
}

/// Reads a JSON body into `T`, naming what is wrong: malformed JSON is a
/// 400 with its line and column; a value of the wrong type, an unknown
/// field (`T` should `deny_unknown_fields`) or a missing one is a 422
/// naming the field by its path.
pub fn parse_json<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    let malformed =
        |e: serde_json::Error| ApiError::MalformedJson(format!("the body is not valid JSON: {e}"));
    let de = &mut serde_json::Deserializer::from_slice(body);
    let value: T = serde_path_to_error::deserialize(&mut *de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        use serde_json::error::Category;
        match inner.classify() {
            Category::Io | Category::Syntax | Category::Eof => malformed(inner),
            Category::Data => {
                let message = without_position(&inner.to_string());
                let field = field_of(&path, &message);
                ApiError::Invalid { field, message }
            }
        }
    })?;
    // Trailing bytes after the value are malformed JSON too.
    de.end().map_err(malformed)?;
    Ok(value)
}

/// serde_json appends " at line L column C"; for a field error the field
/// name says more.
fn without_position(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(at) => message[..at].to_string(),
        None => message.to_string(),
    }
}

/// The field a data error is about: the path where it happened, or for a
/// missing field (reported at its parent) the parent path plus its name.
fn field_of(path: &str, message: &str) -> String {
    let named = message
        .strip_prefix("missing field `")
        .and_then(|rest| rest.split('`').next());
    match (path, named) {
        (".", Some(name)) => name.to_string(),
        (parent, Some(name)) => format!("{parent}.{name}"),
        (".", None) => "body".to_string(),
        (path, None) => path.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Inner {
        email: String,
    }

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Outer {
        to: String,
        #[serde(default)]
        items: Vec<Inner>,
    }

    fn field(body: &str) -> (StatusCode, Option<String>) {
        let e = parse_json::<Outer>(body.as_bytes()).unwrap_err();
        (e.status(), e.field().map(str::to_string))
    }

    #[test]
    fn each_kind_of_mistake_names_its_field() {
        assert_eq!(
            field(r#"{"to": 5}"#),
            (StatusCode::UNPROCESSABLE_ENTITY, Some("to".into()))
        );
        assert_eq!(
            field(r#"{}"#),
            (StatusCode::UNPROCESSABLE_ENTITY, Some("to".into()))
        );
        assert_eq!(
            field(r#"{"to": "a", "cc": 1}"#),
            (StatusCode::UNPROCESSABLE_ENTITY, Some("cc".into()))
        );
        assert_eq!(
            field(r#"{"to": "a", "items": [{"email": "x"}, {}]}"#),
            (
                StatusCode::UNPROCESSABLE_ENTITY,
                Some("items[1].email".into())
            )
        );
        assert_eq!(
            field(r#""a string""#),
            (StatusCode::UNPROCESSABLE_ENTITY, Some("body".into()))
        );
    }

    #[test]
    fn broken_json_is_a_400() {
        for body in [r#"{"to": "#, "not json", r#"{"to": "a"} trailing"#, ""] {
            let e = parse_json::<Outer>(body.as_bytes()).unwrap_err();
            assert_eq!(e.status(), StatusCode::BAD_REQUEST, "{body}");
            assert!(e.to_string().contains("line"), "{e}");
        }
    }
}
