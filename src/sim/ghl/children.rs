//! Tasks and notes: records that live under a contact and share one CRUD shape
//! (`/contacts/{contactId}/tasks[/{taskId}]`, `/contacts/{contactId}/notes[/{id}]`).

use std::collections::BTreeMap;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{self, get};
use axum::{Extension, Json, Router};
use serde_json::{json, Map, Value};

use super::contacts::{self, now_iso};
use super::errors;
use super::state::{Caller, GhlState, Shared};
use crate::sim::ids;

/// What differs between tasks and notes.
pub(super) struct ChildKind {
    /// Response key of one record (`task`); the list key is `plural`.
    singular: &'static str,
    plural: &'static str,
    not_found: &'static str,
    /// Required fields of the create DTO (`CreateTaskParams`, `NotesDTO`).
    required: &'static [&'static str],
    /// Notes carry `dateAdded` (`GetNoteSchema`); tasks do not (`TaskSchema`).
    stamps_date_added: bool,
    records: fn(&mut GhlState) -> &mut BTreeMap<String, Vec<Value>>,
}

pub(super) static TASKS: ChildKind = ChildKind {
    singular: "task",
    plural: "tasks",
    not_found: "Task not found",
    required: &["title", "dueDate", "completed"],
    stamps_date_added: false,
    records: |state| &mut state.tasks,
};

pub(super) static NOTES: ChildKind = ChildKind {
    singular: "note",
    plural: "notes",
    not_found: "Note not found",
    required: &["body"],
    stamps_date_added: true,
    records: |state| &mut state.notes,
};

pub(super) fn routes() -> Router<Shared> {
    let mut router = Router::new();
    for kind in [&TASKS, &NOTES] {
        let list_path = format!("/contacts/{{contactId}}/{}", kind.plural);
        let one_path = format!("{list_path}/{{id}}");
        router = router
            .route(
                &list_path,
                get(move |s, c, p| list(kind, s, c, p))
                    .post(move |s, c, p, b| create(kind, s, c, p, b)),
            )
            .route(
                &one_path,
                get(move |s, c, p| fetch(kind, s, c, p))
                    .put(move |s, c, p, b| update(kind, s, c, p, b))
                    .delete(move |s, c, p| remove(kind, s, c, p)),
            );
    }
    router.route(
        "/contacts/{contactId}/tasks/{taskId}/completed",
        routing::put(complete_task),
    )
}

/// Stores (or replaces by `id`) a record under `contact_id`.
pub(super) fn put(kind: &ChildKind, state: &mut GhlState, contact_id: &str, mut record: Value) {
    record["contactId"] = json!(contact_id);
    if kind.stamps_date_added && record.get("dateAdded").is_none_or(Value::is_null) {
        record["dateAdded"] = json!(now_iso());
    }
    let records = (kind.records)(state)
        .entry(contact_id.to_owned())
        .or_default();
    records.retain(|r| r["id"] != record["id"]);
    records.push(record);
}

pub(super) fn delete(kind: &ChildKind, state: &mut GhlState, contact_id: &str, id: &str) {
    if let Some(records) = (kind.records)(state).get_mut(contact_id) {
        records.retain(|r| r["id"] != id);
    }
}

fn find<'a>(
    kind: &ChildKind,
    state: &'a mut GhlState,
    contact_id: &str,
    id: &str,
) -> Option<&'a mut Value> {
    (kind.records)(state)
        .get_mut(contact_id)?
        .iter_mut()
        .find(|r| r["id"] == id)
}

/// Runs `act` on the record `id` under `contact_id` once the caller may see that contact;
/// an unknown record answers the kind's 404.
fn with_owned_record(
    kind: &ChildKind,
    state: &Shared,
    caller: &Caller,
    contact_id: &str,
    id: &str,
    act: impl FnOnce(&mut Value) -> Response,
) -> Response {
    contacts::with_owned(state, caller, contact_id, |state| {
        match find(kind, state, contact_id, id) {
            Some(record) => act(record),
            None => errors::not_found(kind.not_found),
        }
    })
}

async fn list(
    kind: &'static ChildKind,
    State(state): State<Shared>,
    Extension(caller): Extension<Caller>,
    Path(contact_id): Path<String>,
) -> Response {
    contacts::with_owned(&state, &caller, &contact_id, |state| {
        let records = (kind.records)(state)
            .get(&contact_id)
            .cloned()
            .unwrap_or_default();
        Json(json!({ kind.plural: records })).into_response()
    })
}

async fn create(
    kind: &'static ChildKind,
    State(state): State<Shared>,
    Extension(caller): Extension<Caller>,
    Path(contact_id): Path<String>,
    Json(body): Json<Map<String, Value>>,
) -> Response {
    let missing: Vec<String> = kind
        .required
        .iter()
        .filter(|field| body.get(**field).is_none_or(Value::is_null))
        .map(|field| format!("{field} should not be empty"))
        .collect();
    if !missing.is_empty() {
        return errors::unprocessable(&missing);
    }
    contacts::with_owned(&state, &caller, &contact_id, |state| {
        let mut record = Value::Object(body);
        record["id"] = json!(ids::ghl_id());
        put(kind, state, &contact_id, record.clone());
        let stored = find(
            kind,
            state,
            &contact_id,
            record["id"].as_str().unwrap_or_default(),
        )
        .cloned();
        (StatusCode::CREATED, Json(json!({ kind.singular: stored }))).into_response()
    })
}

async fn fetch(
    kind: &'static ChildKind,
    State(state): State<Shared>,
    Extension(caller): Extension<Caller>,
    Path((contact_id, id)): Path<(String, String)>,
) -> Response {
    with_owned_record(kind, &state, &caller, &contact_id, &id, |record| {
        Json(json!({ kind.singular: record })).into_response()
    })
}

/// Update DTOs have every create field optional: the fields sent replace the stored ones.
async fn update(
    kind: &'static ChildKind,
    State(state): State<Shared>,
    Extension(caller): Extension<Caller>,
    Path((contact_id, id)): Path<(String, String)>,
    Json(body): Json<Map<String, Value>>,
) -> Response {
    with_owned_record(kind, &state, &caller, &contact_id, &id, |record| {
        // Only objects carry an `id`, so the record found is always an object.
        if let Value::Object(fields) = record {
            for (field, value) in body {
                if field != "id" && field != "contactId" {
                    fields.insert(field, value);
                }
            }
        }
        Json(json!({ kind.singular: record })).into_response()
    })
}

async fn remove(
    kind: &'static ChildKind,
    State(state): State<Shared>,
    Extension(caller): Extension<Caller>,
    Path((contact_id, id)): Path<(String, String)>,
) -> Response {
    contacts::with_owned(&state, &caller, &contact_id, |state| {
        if find(kind, state, &contact_id, &id).is_none() {
            return errors::not_found(kind.not_found);
        }
        delete(kind, state, &contact_id, &id);
        Json(json!({"succeded": true})).into_response()
    })
}

async fn complete_task(
    State(state): State<Shared>,
    Extension(caller): Extension<Caller>,
    Path((contact_id, id)): Path<(String, String)>,
    Json(body): Json<Value>,
) -> Response {
    let Some(completed) = body["completed"].as_bool() else {
        return errors::unprocessable(&["completed must be a boolean value".to_owned()]);
    };
    with_owned_record(&TASKS, &state, &caller, &contact_id, &id, |task| {
        task["completed"] = json!(completed);
        Json(json!({ "task": task })).into_response()
    })
}
