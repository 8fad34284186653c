//! CRM `/events` (reference §4.3): the body fields of the crm spec; the response adds
//! `endDate = startDate + duration`, and `funnelId` is not stored, as on the live API.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Extension, Json, Router};
use serde::Deserialize;
use serde_json::{json, Map, Value};

use super::json_body::JsonObject;
use super::{envelope, ApiKey, Shared};
use crate::sim::ids;

pub(super) fn routes() -> Router<Shared> {
    Router::new()
        .route("/events", get(list).post(create))
        .route("/events/{eventId}", get(fetch).put(update).delete(remove))
}

/// Body fields stored as sent. `funnelId` is accepted but dropped (DRIFT-CRM-3); `userId` is
/// accepted but not part of the documented response, so it is dropped too.
const STORED_FIELDS: &[&str] = &[
    "name",
    "contactId",
    "contactName",
    "kind",
    "desc",
    "status",
    "tags",
    "locationDesc",
    "leadId",
];

fn apply(event: &mut Map<String, Value>, body: &Map<String, Value>) {
    for (field, value) in body {
        if STORED_FIELDS.contains(&field.as_str()) {
            event.insert(field.clone(), value.clone());
        }
    }
    // The response has no `duration`; keep the old one when only `startDate` moves.
    let old_start = event["startDate"].as_i64().unwrap_or(0);
    let old_duration = event["endDate"].as_i64().unwrap_or(old_start) - old_start;
    let start = body
        .get("startDate")
        .and_then(Value::as_i64)
        .unwrap_or(old_start);
    let duration = body
        .get("duration")
        .and_then(Value::as_i64)
        .unwrap_or(old_duration);
    event.insert("startDate".into(), json!(start));
    event.insert("endDate".into(), json!(start + duration));
}

#[derive(Deserialize)]
struct ListQuery {
    page: Option<String>,
}

async fn list(
    State(state): State<Shared>,
    Extension(ApiKey(key)): Extension<ApiKey>,
    Query(query): Query<ListQuery>,
) -> Response {
    let mut state = state.lock().unwrap();
    let events = state.account(&key).events.clone();
    Json(state.page_of(events, query.page.as_deref())).into_response()
}

async fn create(
    State(state): State<Shared>,
    Extension(ApiKey(key)): Extension<ApiKey>,
    JsonObject(body): JsonObject,
) -> Response {
    let id = ids::holded_id();
    // Absent fields come back like the spec's second list example: empty or null.
    let mut event = match json!({
        "id": id, "name": "", "contactId": "", "contactName": null, "kind": "",
        "desc": null, "startDate": 0, "endDate": 0, "status": 0, "tags": [],
        "locationDesc": null, "leadId": null,
    }) {
        Value::Object(map) => map,
        _ => unreachable!("json! object literal"),
    };
    apply(&mut event, &body);
    state
        .lock()
        .unwrap()
        .account(&key)
        .events
        .push(Value::Object(event));
    envelope::success(StatusCode::CREATED, "Created", &id)
}

async fn fetch(
    State(state): State<Shared>,
    Extension(ApiKey(key)): Extension<ApiKey>,
    Path(id): Path<String>,
) -> Response {
    let mut state = state.lock().unwrap();
    match state
        .account(&key)
        .events
        .iter()
        .find(|e| e["id"] == id.as_str())
    {
        Some(event) => Json(event.clone()).into_response(),
        None => not_found(),
    }
}

async fn update(
    State(state): State<Shared>,
    Extension(ApiKey(key)): Extension<ApiKey>,
    Path(id): Path<String>,
    JsonObject(body): JsonObject,
) -> Response {
    let mut state = state.lock().unwrap();
    let stored = state
        .account(&key)
        .events
        .iter_mut()
        .find(|e| e["id"] == id.as_str());
    let Some(Value::Object(event)) = stored else {
        return not_found();
    };
    apply(event, &body);
    envelope::success(StatusCode::OK, "Updated", &id)
}

async fn remove(
    State(state): State<Shared>,
    Extension(ApiKey(key)): Extension<ApiKey>,
    Path(id): Path<String>,
) -> Response {
    let mut state = state.lock().unwrap();
    let events = &mut state.account(&key).events;
    let before = events.len();
    events.retain(|e| e["id"] != id.as_str());
    if events.len() == before {
        return not_found();
    }
    envelope::success(StatusCode::OK, "Successfully deleted", &id)
}

/// Same HTTP-200 `Standard_Error` the contacts module answers for unknown ids.
fn not_found() -> Response {
    envelope::failure(StatusCode::OK, "Not found")
}
