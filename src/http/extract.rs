//! The JSON body extractor of every POST route, and the answers for paths and methods that do
//! not exist.
//!
//! axum's own `Json` extractor answers bad input in plain text and with 415 or 422; Aspen's
//! contract is one JSON error shape, 400 for anything wrong with the body itself and 413 for a
//! body over `HTTP_BODY_BYTES_MAX`. [`JsonBody`] reads the bytes under the router's body limit
//! and parses them with serde_json, whose messages name the field and the position.
//!
//! The body must be declared as JSON (`Content-Type: application/json`). That is not pedantry:
//! the API has no authentication and listens on loopback, and a web page can make a browser
//! send a `text/plain` POST to loopback without asking; it cannot send `application/json`
//! without a CORS preflight, which this server never grants.

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::{Method, Uri, header};
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;

use super::error::{ApiError, ErrorKind};
use super::routes::route_table;
use crate::limits::HTTP_BODY_BYTES_MAX;

/// A request body parsed as JSON into `T`, or a JSON error answer.
#[derive(Debug)]
pub struct JsonBody<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, ApiError> {
        check_content_type(request.headers().get(header::CONTENT_TYPE))?;
        let bytes = Bytes::from_request(request, state).await.map_err(|rejection| {
            if rejection.status() == ErrorKind::PayloadTooLarge.status() {
                ApiError::new(
                    ErrorKind::PayloadTooLarge,
                    format!("the request body is larger than {HTTP_BODY_BYTES_MAX} bytes"),
                )
            } else {
                ApiError::invalid(format!("the request body could not be read: {rejection}"))
            }
        })?;
        parse_json(&bytes).map(JsonBody)
    }
}

/// Accepts `application/json` and `application/<anything>+json`, with parameters.
fn check_content_type(value: Option<&header::HeaderValue>) -> Result<(), ApiError> {
    let essence = value
        .and_then(|value| value.to_str().ok())
        .map(|value| value.split(';').next().unwrap_or("").trim().to_ascii_lowercase());
    match essence.as_deref() {
        Some("application/json") => Ok(()),
        Some(other) if other.starts_with("application/") && other.ends_with("+json") => Ok(()),
        other => Err(ApiError::new(
            ErrorKind::UnsupportedMediaType,
            format!(
                "the request body must be JSON sent with Content-Type: application/json (got {})",
                other.unwrap_or("no Content-Type")
            ),
        )),
    }
}

/// Parses a body, turning serde_json's error into a 400 that says what is wrong and where.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(bytes).map_err(|error| {
        let what = match error.classify() {
            serde_json::error::Category::Data => "does not match the expected shape",
            serde_json::error::Category::Eof => "ends too early",
            serde_json::error::Category::Syntax | serde_json::error::Category::Io => {
                "is not valid JSON"
            }
        };
        ApiError::invalid(format!("the request body {what}: {error}"))
    })
}

/// The answer for a path no route has.
pub async fn no_route(method: Method, uri: Uri) -> ApiError {
    ApiError::new(ErrorKind::NoRoute, format!("there is no route {method} {}", uri.path()))
}

/// The answer for a known path asked with the wrong method, with the `Allow` header listing
/// the methods it has.
pub async fn method_not_allowed(method: Method, uri: Uri) -> Response {
    let allowed: Vec<String> = route_table()
        .into_iter()
        .filter(|(_, path)| *path == uri.path())
        .map(|(method, _)| method.to_string())
        .collect();
    let error = ApiError::new(
        ErrorKind::MethodNotAllowed,
        format!("{} does not take {method}; it takes {}", uri.path(), allowed.join(", ")),
    );
    ([(header::ALLOW, allowed.join(", "))], error).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::WriteRequest;

    #[test]
    fn bad_bodies_say_what_is_wrong() {
        let cases: [(&str, &str); 5] = [
            ("{", "ends too early"),
            ("not json", "is not valid JSON"),
            (r#"{"command": {"Set": {"key": "k"}}}"#, "missing field `value`"),
            (r#"{"command": {"Set": {"key": 1, "value": "v"}}}"#, "invalid type"),
            (r#"{"command": {"Frobnicate": {}}}"#, "unknown variant"),
        ];
        for (body, expected) in cases {
            let error = parse_json::<WriteRequest>(body.as_bytes()).unwrap_err();
            assert_eq!(error.kind, ErrorKind::InvalidRequest);
            assert!(error.body.error.contains(expected), "{body}: {}", error.body.error);
        }
    }

    #[test]
    fn only_json_content_types_are_accepted() {
        let value = |text: &'static str| header::HeaderValue::from_static(text);
        assert!(check_content_type(Some(&value("application/json"))).is_ok());
        assert!(check_content_type(Some(&value("Application/JSON; charset=utf-8"))).is_ok());
        assert!(check_content_type(Some(&value("application/merge-patch+json"))).is_ok());
        for refused in
            [Some(value("text/plain")), Some(value("application/x-www-form-urlencoded")), None]
        {
            let error = check_content_type(refused.as_ref()).unwrap_err();
            assert_eq!(error.status().as_u16(), 415);
        }
    }
}
