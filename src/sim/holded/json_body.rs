//! JSON request bodies as Holded v1 accepts them.

use axum::extract::{FromRequest, Request};
use axum::http::{header, StatusCode};
use axum::response::Response;
use serde_json::{Map, Value};

use super::envelope;

/// A JSON object body sent with `Content-Type: application/json` (reference §2.2).
///
/// What the live API does with another content type or a malformed body is NOT FOUND; the
/// simulator answers HTTP 400 with the `{"status":0,…}` envelope so a client that gets either
/// wrong fails loudly in tests instead of silently writing an empty record.
pub(crate) struct JsonObject(pub(crate) Map<String, Value>);

impl<S: Send + Sync> FromRequest<S> for JsonObject {
    type Rejection = Response;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        let is_json = request
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.trim_start().starts_with("application/json"));
        if !is_json {
            return Err(envelope::failure(
                StatusCode::BAD_REQUEST,
                "Content-Type must be application/json",
            ));
        }
        let bytes = axum::body::Bytes::from_request(request, state)
            .await
            .map_err(|_| envelope::failure(StatusCode::BAD_REQUEST, "Unreadable body"))?;
        match serde_json::from_slice(&bytes) {
            Ok(Value::Object(map)) => Ok(Self(map)),
            _ => Err(envelope::failure(
                StatusCode::BAD_REQUEST,
                "Body must be a JSON object",
            )),
        }
    }
}
