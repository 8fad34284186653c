//! Contacts CRUD (reference §3.1, §3.2; `specs/ghl/apps/contacts.json`).

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use serde_json::{json, Map, Value};

use super::errors;
use super::search;
use super::state::{Caller, GhlState, Shared};
use crate::sim::ids;

pub(super) fn routes() -> Router<Shared> {
    Router::new()
        // The spec's path has the trailing slash; clients commonly drop it, GHL accepts both.
        .route("/contacts/", post(create))
        .route("/contacts", post(create))
        .route("/contacts/search", post(search::search))
        .route(
            "/contacts/{contactId}",
            get(fetch).put(update).delete(remove),
        )
}

/// The contact `id` names, if it exists and the caller may see it.
pub(super) fn owned<'a>(
    state: &'a GhlState,
    caller: &Caller,
    id: &str,
) -> Result<&'a Value, Response> {
    let contact = state
        .contacts
        .get(id)
        .ok_or_else(|| errors::not_found("Contact not found"))?;
    caller.may_access(contact["locationId"].as_str().unwrap_or_default())?;
    Ok(contact)
}

/// Runs `act` on the locked state once the contact `id` exists and the caller may see it, or
/// answers why not; the lock is held throughout so the check still holds while `act` runs.
pub(super) fn with_owned(
    state: &Shared,
    caller: &Caller,
    id: &str,
    act: impl FnOnce(&mut GhlState) -> Response,
) -> Response {
    let mut state = state.lock().unwrap();
    if let Err(refusal) = owned(&state, caller, id) {
        return refusal;
    }
    act(&mut state)
}

pub(super) fn now_iso() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// Stores a contact as given, filling `dateAdded`/`dateUpdated` when absent.
pub(super) fn store(state: &mut GhlState, mut contact: Value) {
    let now = now_iso();
    for field in ["dateAdded", "dateUpdated"] {
        if contact.get(field).is_none_or(Value::is_null) {
            contact[field] = json!(now);
        }
    }
    if let Some(id) = contact["id"].as_str() {
        state.contacts.insert(id.to_owned(), contact);
    }
}

/// Applies a `CreateContactDto`/`UpdateContactDto` body. Custom fields are written as
/// `{id|key, field_value}` but read back as `{id, value}` (reference §3.2); `tags` overwrites
/// the whole list, as the spec warns.
fn apply_write(contact: &mut Map<String, Value>, body: Map<String, Value>) {
    for (field, value) in body {
        let value = match field.as_str() {
            "customFields" => read_shape_custom_fields(&value),
            "id" | "dateAdded" | "dateUpdated" => continue,
            _ => value,
        };
        contact.insert(field, value);
    }
    let full_name = [contact.get("firstName"), contact.get("lastName")]
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .filter(|part| !part.is_empty())
        .collect::<Vec<_>>()
        .join(" ");
    if !full_name.is_empty() {
        contact.insert("name".into(), json!(full_name));
    }
    contact.insert("dateUpdated".into(), json!(now_iso()));
}

fn read_shape_custom_fields(written: &Value) -> Value {
    let entries = written.as_array().into_iter().flatten().map(|entry| {
        let id = entry.get("id").or_else(|| entry.get("key"));
        let value = entry.get("field_value").or_else(|| entry.get("value"));
        json!({"id": id, "value": value})
    });
    Value::Array(entries.collect())
}

async fn create(
    State(state): State<Shared>,
    Extension(caller): Extension<Caller>,
    Json(body): Json<Map<String, Value>>,
) -> Response {
    let Some(location_id) = body.get("locationId").and_then(Value::as_str) else {
        return errors::unprocessable(&["locationId should not be empty".to_owned()]);
    };
    if let Err(refusal) = caller.may_access(location_id) {
        return refusal;
    }
    let id = ids::ghl_id();
    let mut contact = Map::new();
    contact.insert("id".into(), json!(id));
    contact.insert("dateAdded".into(), json!(now_iso()));
    apply_write(&mut contact, body);
    let contact = Value::Object(contact);
    state.lock().unwrap().contacts.insert(id, contact.clone());
    (StatusCode::CREATED, Json(json!({"contact": contact}))).into_response()
}

async fn fetch(
    State(state): State<Shared>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> Response {
    with_owned(&state, &caller, &id, |state| {
        Json(json!({"contact": state.contacts[&id]})).into_response()
    })
}

async fn update(
    State(state): State<Shared>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    Json(mut body): Json<Map<String, Value>>,
) -> Response {
    with_owned(&state, &caller, &id, |state| {
        // `UpdateContactDto` has no `locationId`: a contact cannot move between locations.
        body.remove("locationId");
        let Some(Value::Object(contact)) = state.contacts.get_mut(&id) else {
            return errors::not_found("Contact not found");
        };
        apply_write(contact, body);
        let contact = Value::Object(contact.clone());
        Json(json!({"succeded": true, "contact": contact})).into_response()
    })
}

async fn remove(
    State(state): State<Shared>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> Response {
    with_owned(&state, &caller, &id, |state| {
        delete(state, &id);
        Json(json!({"succeded": true})).into_response()
    })
}

/// Deleting a contact takes its tasks and notes with it.
pub(super) fn delete(state: &mut GhlState, id: &str) {
    state.contacts.remove(id);
    state.tasks.remove(id);
    state.notes.remove(id);
}
