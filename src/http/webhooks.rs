//! `POST /webhooks/ghl`.
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, StatusCode};
use axum::routing::post;
use axum::{Json, Router};
use http_body_util::BodyExt;
use serde_json::json;

use super::{ApiError, AppState};
use crate::webhook::{IntakeError, IntakeOutcome};

/// Largest body accepted; GHL payloads are a few KiB.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;
/// GHL retries a 429 about ten minutes later whatever we say; this is for other senders.
const RETRY_AFTER_SECS: u64 = 60;

pub fn router() -> Router<AppState> {
    Router::new().route("/webhooks/ghl", post(receive))
}

/// How much of an oversized body is read and thrown away before the 413, so that a client
/// still sending it gets the answer instead of a reset connection. Past this, it gets a reset.
const DISCARD_LIMIT: usize = 4 * MAX_BODY_BYTES;

async fn discard(mut body: Body) {
    let mut read = 0;
    while read < DISCARD_LIMIT {
        match body.frame().await {
            Some(Ok(frame)) => read += frame.data_ref().map_or(0, |d| d.len()),
            _ => return,
        }
    }
}

fn too_large() -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "body_too_large",
        format!("body exceeds {MAX_BODY_BYTES} bytes"),
    )
}

async fn receive(
    State(state): State<AppState>,
    request: Request<Body>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let (parts, body) = request.into_parts();
    let declared = parts
        .headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|len| len > MAX_BODY_BYTES as u64) {
        discard(body).await;
        return Err(too_large());
    }
    let body = axum::body::to_bytes(body, MAX_BODY_BYTES)
        .await
        .map_err(|error| {
            let limit_hit = std::error::Error::source(&error)
                .is_some_and(|s| s.is::<http_body_util::LengthLimitError>());
            if limit_hit {
                too_large()
            } else {
                ApiError::new(
                    StatusCode::BAD_REQUEST,
                    "unreadable_body",
                    "the body could not be read",
                )
            }
        })?;
    let outcome = state
        .intake
        .accept(&parts.headers, &body)
        .await
        .map_err(intake_error)?;
    let label = match outcome {
        IntakeOutcome::Stored => "stored",
        IntakeOutcome::Duplicate => "duplicate",
        IntakeOutcome::Ignored => "ignored",
    };
    Ok(Json(json!({ "status": label })))
}

fn intake_error(error: IntakeError) -> ApiError {
    match error {
        IntakeError::Signature(e) => {
            ApiError::new(StatusCode::UNAUTHORIZED, "invalid_signature", e.to_string())
        }
        IntakeError::Stale { .. } => ApiError::new(
            StatusCode::UNAUTHORIZED,
            "stale_timestamp",
            error.to_string(),
        ),
        IntakeError::Envelope(e) => {
            ApiError::new(StatusCode::BAD_REQUEST, "invalid_payload", e.to_string())
        }
        // The only status GHL retries; the cause is already logged by the intake.
        IntakeError::Store(_) => ApiError {
            retry_after_secs: Some(RETRY_AFTER_SECS),
            ..ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "store_unavailable",
                "the event could not be stored; retry later",
            )
        },
    }
}
