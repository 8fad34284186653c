//! Calls to the GHL API with the per-family `Version` header and a bearer token.
use std::time::Duration;

use reqwest::StatusCode;
use secrecy::{ExposeSecret, SecretString};

use super::models::{ContactEnvelope, GhlContact};
use crate::domain::GhlId;
use crate::upstream;

/// `Version` for every Contacts operation (specs/ghl/apps/contacts.json).
const CONTACTS_VERSION: &str = "2021-07-28";

#[derive(Debug, thiserror::Error)]
pub enum GhlError {
    #[error("GHL refused the token (401): {0}")]
    Unauthorized(String),
    #[error("GHL rate limit (429)")]
    RateLimited { retry_after: Option<Duration> },
    #[error("GHL answered {status}: {message}")]
    Rejected { status: u16, message: String },
    #[error("GHL is unavailable ({status}): {message}")]
    Unavailable { status: u16, message: String },
    #[error("GHL request failed: {0}")]
    Transport(String),
    #[error("GHL answered 200 with an unreadable body: {0}")]
    BadBody(String),
}

#[derive(Clone)]
pub struct GhlClient {
    http: reqwest::Client,
    base: url::Url,
}

impl GhlClient {
    pub fn new(base: url::Url, timeout: Duration) -> Self {
        GhlClient {
            http: upstream::http_client(timeout),
            base,
        }
    }

    /// The current contact, or `None` when GHL no longer has it (404).
    pub async fn get_contact(
        &self,
        token: &SecretString,
        contact_id: &GhlId,
    ) -> Result<Option<GhlContact>, GhlError> {
        let response = self
            .http
            .get(upstream::join(
                &self.base,
                &["contacts", contact_id.as_str()],
            ))
            .bearer_auth(token.expose_secret())
            .header("Version", CONTACTS_VERSION)
            .header("Accept", "application/json")
            .send()
            .await
            .map_err(|e| GhlError::Transport(upstream::describe(&e)))?;
        if response.status() == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        let body = checked(response).await?;
        let envelope: ContactEnvelope =
            serde_json::from_slice(&body).map_err(|e| GhlError::BadBody(e.to_string()))?;
        Ok(Some(envelope.contact))
    }
}

/// The body of a 2xx answer; every other status becomes the matching error.
async fn checked(response: reqwest::Response) -> Result<bytes::Bytes, GhlError> {
    let status = response.status();
    let retry_after = upstream::retry_after(response.headers());
    let body = response
        .bytes()
        .await
        .map_err(|e| GhlError::Transport(upstream::describe(&e)))?;
    if status.is_success() {
        return Ok(body);
    }
    let message = error_message(&body);
    Err(match status.as_u16() {
        401 => GhlError::Unauthorized(message),
        429 => GhlError::RateLimited { retry_after },
        code @ (408 | 500..=599) => GhlError::Unavailable {
            status: code,
            message,
        },
        code => GhlError::Rejected {
            status: code,
            message,
        },
    })
}

/// `{statusCode, message, error?}` where `message` may be an array (422).
fn error_message(body: &[u8]) -> String {
    let parsed: Option<serde_json::Value> = serde_json::from_slice(body).ok();
    match parsed.as_ref().and_then(|v| v.get("message")) {
        Some(serde_json::Value::String(s)) => s.clone(),
        Some(serde_json::Value::Array(items)) => items
            .iter()
            .map(|i| {
                i.as_str()
                    .map(str::to_owned)
                    .unwrap_or_else(|| i.to_string())
            })
            .collect::<Vec<_>>()
            .join("; "),
        _ => String::from_utf8_lossy(&body[..body.len().min(200)]).into_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_messages_read_both_shapes() {
        assert_eq!(
            error_message(br#"{"statusCode":400,"message":"Bad Request"}"#),
            "Bad Request"
        );
        assert_eq!(
            error_message(
                br#"{"statusCode":422,"message":["a","b"],"error":"Unprocessable Entity"}"#
            ),
            "a; b"
        );
        assert_eq!(error_message(b"<html>"), "<html>");
    }
}
