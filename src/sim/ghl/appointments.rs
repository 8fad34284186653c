//! Appointments: per contact (`GET /contacts/{contactId}/appointments`, Contacts family) and by
//! id (`GET /calendars/events/appointments/{eventId}`, Calendars family, `Version: 2021-04-15`).

use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Extension, Json, Router};
use serde_json::json;

use super::contacts;
use super::errors;
use super::state::{Caller, Shared};

pub(super) fn routes() -> Router<Shared> {
    Router::new()
        .route("/contacts/{contactId}/appointments", get(for_contact))
        .route("/calendars/events/appointments/{eventId}", get(fetch))
}

async fn for_contact(
    State(state): State<Shared>,
    Extension(caller): Extension<Caller>,
    Path(contact_id): Path<String>,
) -> Response {
    contacts::with_owned(&state, &caller, &contact_id, |state| {
        let events: Vec<_> = state
            .appointments
            .values()
            .filter(|a| a["contactId"] == contact_id.as_str())
            .cloned()
            .collect();
        Json(json!({ "events": events })).into_response()
    })
}

async fn fetch(
    State(state): State<Shared>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> Response {
    let state = state.lock().unwrap();
    let Some(event) = state.appointments.get(&id) else {
        return errors::not_found("Appointment not found");
    };
    if let Err(refusal) = caller.may_access(event["locationId"].as_str().unwrap_or_default()) {
        return refusal;
    }
    Json(json!({ "event": event })).into_response()
}
