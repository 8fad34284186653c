//! What invoicing contacts and CRM events have in common: both are lists of JSON objects keyed by
//! `id` inside one account, and Holded answers reads, writes and deletes of either with the same
//! status envelopes (reference §2.3, §2.4). Only the fields differ, so each kind states its field
//! rules as a [`RecordKind`] and the handlers here do the routing, lookup, paging and envelopes.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Extension, Json, Router};
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use super::json_body::JsonObject;
use super::{envelope, Account, ApiKey, Shared};
use crate::sim::ids;

/// What one kind of account record does its own way; the handlers below serve every kind.
pub(super) trait RecordKind: 'static {
    /// Route of the whole list, relative to the module prefix (`/contacts`).
    const COLLECTION_PATH: &'static str;
    /// Route of one record (`/contacts/{contactId}`).
    const RECORD_PATH: &'static str;

    /// Query parameters the list route accepts.
    type ListQuery: DeserializeOwned + Send + 'static;

    /// The account's records of this kind, in insertion order like the live lists.
    fn of(account: &mut Account) -> &mut Vec<Value>;

    /// The 1-based `page` parameter of a list query.
    fn page(query: &Self::ListQuery) -> Option<&str>;

    /// Which records a list query returns.
    fn listed(query: &Self::ListQuery) -> impl Fn(&Value) -> bool + '_;

    /// The record a create with `body` stores under the new `id`.
    fn created(id: &str, body: &Map<String, Value>) -> Map<String, Value>;

    /// Applies a PUT `body` to a stored record.
    fn update(record: &mut Map<String, Value>, body: &Map<String, Value>);
}

pub(super) fn routes<K: RecordKind>() -> Router<Shared> {
    // Methods are registered in this order because axum lists them so in the `Allow` header it
    // adds to the answer for an unsupported method.
    Router::new()
        .route(K::COLLECTION_PATH, get(list::<K>).post(create::<K>))
        .route(
            K::RECORD_PATH,
            get(fetch::<K>).put(update::<K>).delete(remove::<K>),
        )
}

pub(super) fn find<'a>(records: &'a [Value], id: &str) -> Option<&'a Value> {
    records.iter().find(|r| r["id"] == id)
}

/// The object a `json!({…})` literal builds.
pub(super) fn object(literal: Value) -> Map<String, Value> {
    match literal {
        Value::Object(map) => map,
        _ => unreachable!("json! object literal"),
    }
}

/// Stores the body fields named in `allowed` as sent and drops the rest of the body.
pub(super) fn copy_fields(
    record: &mut Map<String, Value>,
    body: &Map<String, Value>,
    allowed: &[&str],
) {
    for (field, value) in body {
        if allowed.contains(&field.as_str()) {
            record.insert(field.clone(), value.clone());
        }
    }
}

async fn list<K: RecordKind>(
    State(state): State<Shared>,
    Extension(ApiKey(key)): Extension<ApiKey>,
    Query(query): Query<K::ListQuery>,
) -> Response {
    let listed = K::listed(&query);
    let mut state = state.lock().unwrap();
    let matching = K::of(state.account(&key))
        .iter()
        .filter(|r| listed(r))
        .cloned()
        .collect();
    Json(state.page_of(matching, K::page(&query))).into_response()
}

async fn create<K: RecordKind>(
    State(state): State<Shared>,
    Extension(ApiKey(key)): Extension<ApiKey>,
    JsonObject(body): JsonObject,
) -> Response {
    let id = ids::holded_id();
    let record = K::created(&id, &body);
    K::of(state.lock().unwrap().account(&key)).push(Value::Object(record));
    envelope::success(StatusCode::CREATED, "Created", &id)
}

async fn fetch<K: RecordKind>(
    State(state): State<Shared>,
    Extension(ApiKey(key)): Extension<ApiKey>,
    Path(id): Path<String>,
) -> Response {
    let mut state = state.lock().unwrap();
    match find(K::of(state.account(&key)), &id) {
        Some(record) => Json(record.clone()).into_response(),
        None => not_found(),
    }
}

async fn update<K: RecordKind>(
    State(state): State<Shared>,
    Extension(ApiKey(key)): Extension<ApiKey>,
    Path(id): Path<String>,
    JsonObject(body): JsonObject,
) -> Response {
    let mut state = state.lock().unwrap();
    let stored = K::of(state.account(&key))
        .iter_mut()
        .find(|r| r["id"] == id.as_str());
    // Only objects carry an `id`, so a match is always an object.
    let Some(Value::Object(record)) = stored else {
        return not_found();
    };
    K::update(record, &body);
    envelope::success(StatusCode::OK, "Updated", &id)
}

async fn remove<K: RecordKind>(
    State(state): State<Shared>,
    Extension(ApiKey(key)): Extension<ApiKey>,
    Path(id): Path<String>,
) -> Response {
    let mut state = state.lock().unwrap();
    let records = K::of(state.account(&key));
    let before = records.len();
    records.retain(|r| r["id"] != id.as_str());
    if records.len() == before {
        return not_found();
    }
    envelope::success(StatusCode::OK, "Successfully deleted", &id)
}

/// Unknown ids get `Standard_Error` with HTTP 200, as the live API answers (reference §2.4).
fn not_found() -> Response {
    envelope::failure(StatusCode::OK, "Not found")
}
