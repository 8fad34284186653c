//! The browser side of a Marketplace install: `/oauth/install` sends the user to GHL's
//! consent screen, `/oauth/callback` finishes the install and shows the connect page,
//! `/oauth/connect` takes a location's Holded key. Answers are HTML pages (a person reads
//! them); the causes of failures are logged, not shown.
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;
use secrecy::SecretString;

use super::connect_page::{self, PendingLocation};
use crate::oauth::{ConnectError, InstallError, InstallFlow};

pub fn router(flow: Arc<InstallFlow>) -> Router {
    Router::new()
        .route("/oauth/install", get(install))
        .route("/oauth/callback", get(callback))
        .route("/oauth/connect", post(connect))
        .with_state(flow)
}

/// An HTML page that no cache keeps, no frame embeds, and that runs no script.
fn page(status: StatusCode, html: String) -> Response {
    let mut response = (status, Html(html)).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'",
        ),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    response
}

fn failure(status: StatusCode, title: &str, message: &str) -> Response {
    page(status, connect_page::failure(title, message))
}

async fn install(State(flow): State<Arc<InstallFlow>>) -> Response {
    Redirect::to(flow.consent_redirect().as_str()).into_response()
}

/// The one value of a form or query field; a repeated field is as suspicious as a missing one.
fn field(pairs: &[(String, String)], name: &str) -> Option<String> {
    let mut values = pairs.iter().filter(|(k, _)| k == name).map(|(_, v)| v);
    match (values.next(), values.next()) {
        (Some(value), None) if !value.is_empty() => Some(value.clone()),
        _ => None,
    }
}

fn pairs(raw: &[u8]) -> Vec<(String, String)> {
    url::form_urlencoded::parse(raw).into_owned().collect()
}

async fn callback(State(flow): State<Arc<InstallFlow>>, RawQuery(query): RawQuery) -> Response {
    let pairs = pairs(query.unwrap_or_default().as_bytes());
    let (Some(code), Some(state)) = (field(&pairs, "code"), field(&pairs, "state")) else {
        return failure(
            StatusCode::BAD_REQUEST,
            "Install not completed",
            "The link back from GoHighLevel lacks its code or state. Start the install again.",
        );
    };
    match flow.complete(&code, &state).await {
        Ok(locations) => {
            let pending: Vec<PendingLocation<'_>> = locations
                .iter()
                .map(|l| PendingLocation {
                    location_id: l.location_id.as_str(),
                    ticket: &l.ticket,
                    error: None,
                })
                .collect();
            page(StatusCode::OK, connect_page::connect_form(&pending))
        }
        Err(error) => {
            let status = match &error {
                InstallError::State(_) | InstallError::StateReused | InstallError::Refused(_) => {
                    StatusCode::BAD_REQUEST
                }
                InstallError::Unavailable(_) | InstallError::Incomplete(_) => {
                    StatusCode::BAD_GATEWAY
                }
                InstallError::Store(_) => StatusCode::SERVICE_UNAVAILABLE,
            };
            tracing::warn!(%error, status = status.as_u16(), "install callback failed");
            let message = match &error {
                InstallError::Store(_) => {
                    "The install could not be saved. Try again in a minute.".to_owned()
                }
                other => other.to_string(),
            };
            failure(status, "Install not completed", &message)
        }
    }
}

async fn connect(State(flow): State<Arc<InstallFlow>>, body: Bytes) -> Response {
    const TITLE: &str = "Holded not connected";
    let pairs = pairs(&body);
    let Some(raw_ticket) = field(&pairs, "ticket") else {
        return failure(
            StatusCode::BAD_REQUEST,
            TITLE,
            "The form lacks its ticket. Open the link from the install again.",
        );
    };
    let ticket = match flow.open_ticket(&raw_ticket) {
        Ok(ticket) => ticket,
        Err(error) => {
            tracing::warn!(%error, "Holded connect refused");
            return failure(StatusCode::BAD_REQUEST, TITLE, &error.to_string());
        }
    };
    let key = SecretString::from(field(&pairs, "holded_api_key").unwrap_or_default());
    let location_id = ticket.location_id.as_str();
    let Err(error) = flow.connect(&ticket, &key).await else {
        return page(StatusCode::OK, connect_page::connected(location_id));
    };
    tracing::warn!(location = location_id, %error, "Holded connect failed");
    // Errors about the key are shown beside the field so the user can try again.
    let status = match &error {
        ConnectError::KeyMissing | ConnectError::WrongKey => StatusCode::UNPROCESSABLE_ENTITY,
        ConnectError::HoldedUnavailable(_) => StatusCode::BAD_GATEWAY,
        ConnectError::Ticket(_) => {
            return failure(StatusCode::BAD_REQUEST, TITLE, &error.to_string())
        }
        ConnectError::TicketUsed | ConnectError::NotInstalled(..) => {
            return failure(StatusCode::CONFLICT, TITLE, &error.to_string())
        }
        ConnectError::Store(_) => {
            return failure(
                StatusCode::SERVICE_UNAVAILABLE,
                TITLE,
                "The key could not be saved. Try again in a minute.",
            )
        }
    };
    let message = error.to_string();
    let again = PendingLocation {
        location_id,
        ticket: &raw_ticket,
        error: Some(&message),
    };
    page(status, connect_page::connect_form(&[again]))
}
