//! `POST /locations/{locationId}/tasks/search` (scope `locations/tasks.readonly`), used to
//! recover the `contactId` that real `TaskCreate` webhooks lack (reference §4.4, §9 rule 8).
//!
//! Its request and response schemas are NOT FOUND (the Locations spec is not in `specs/`). The
//! simulator accepts `{taskIds?: string[], contactIds?: string[], completed?: bool, skip?, limit?}`
//! (every filter optional, `limit` default 100) and answers `{tasks: TaskSchema[]}`, each task
//! carrying its `contactId`, in contact then insertion order.

use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Extension, Json, Router};
use serde_json::{json, Value};

use super::state::{Caller, Shared};

const DEFAULT_LIMIT: u64 = 100;

pub(super) fn routes() -> Router<Shared> {
    Router::new().route("/locations/{locationId}/tasks/search", post(search))
}

async fn search(
    State(state): State<Shared>,
    Extension(caller): Extension<Caller>,
    Path(location_id): Path<String>,
    Json(body): Json<Value>,
) -> Response {
    if let Err(refusal) = caller.may_access(&location_id) {
        return refusal;
    }
    let listed = |field: &str, value: &Value| {
        body[field]
            .as_array()
            .is_none_or(|wanted| wanted.contains(value))
    };
    let completed = body["completed"].as_bool();
    let skip = body["skip"].as_u64().unwrap_or(0) as usize;
    let limit = body["limit"].as_u64().unwrap_or(DEFAULT_LIMIT) as usize;
    let state = state.lock().unwrap();
    let tasks: Vec<Value> = state
        .tasks
        .iter()
        .filter(|(contact_id, _)| {
            state
                .contacts
                .get(*contact_id)
                .is_some_and(|c| c["locationId"] == location_id.as_str())
        })
        .flat_map(|(_, tasks)| tasks)
        .filter(|task| listed("taskIds", &task["id"]) && listed("contactIds", &task["contactId"]))
        .filter(|task| completed.is_none_or(|c| task["completed"].as_bool() == Some(c)))
        .skip(skip)
        .take(limit)
        .cloned()
        .collect();
    Json(json!({ "tasks": tasks })).into_response()
}
