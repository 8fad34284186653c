//! Invoicing `/contacts` (reference §3): partial PUT, `CustomId` written / `customId` read,
//! `socialNetworks` ignored on PUT and `customFields` decomposed by the `Object.entries` bug.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Extension, Json, Router};
use serde::Deserialize;
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};

use super::json_body::JsonObject;
use super::{envelope, unix_now, ApiKey, Shared};
use crate::sim::ids;

pub(super) fn routes() -> Router<Shared> {
    Router::new()
        .route("/contacts", get(list).post(create))
        .route(
            "/contacts/{contactId}",
            get(fetch).put(update).delete(remove),
        )
}

/// Body fields stored verbatim on create (documented create schema plus `tradeName` and
/// `vatnumber`, which the live API accepts and returns). Anything else, including a lower-case
/// `customId`, is ignored: the documented name on create is `CustomId` (reference §8, pitfall 4).
const CREATE_FIELDS: &[&str] = &[
    "name",
    "code",
    "tradeName",
    "vatnumber",
    "email",
    "mobile",
    "phone",
    "type",
    "isperson",
    "iban",
    "swift",
    "sepaRef",
    "groupId",
    "taxOperation",
    "sepaDate",
    "clientRecord",
    "supplierRecord",
    "numberingSeries",
    "shippingAddresses",
    "defaults",
    "tags",
    "socialNetworks",
];

/// Body fields a PUT may change. `socialNetworks` is missing on purpose: the live API silently
/// ignores it on update (DRIFT-INV-12). `CustomId`, `note` and `contactPersons` are not in the
/// PUT schema, so the simulator ignores them too. `tags` REPLACES the list: replace-vs-merge is
/// UNVERIFIED (reference §3.2), replace is what a full-list field in a partial update usually
/// means and the stricter assumption for a client.
const UPDATE_FIELDS: &[&str] = &[
    "name",
    "code",
    "tradeName",
    "vatnumber",
    "email",
    "mobile",
    "phone",
    "type",
    "isperson",
    "iban",
    "swift",
    "sepaRef",
    "groupId",
    "taxOperation",
    "sepaDate",
    "clientRecord",
    "supplierRecord",
    "numberingSeries",
    "shippingAddresses",
    "defaults",
    "tags",
];

/// Fields every stored contact has, as the live `GET /contacts/{id}` returns them.
fn blank_contact(id: &str, now: i64) -> Map<String, Value> {
    let blank = json!({
        "id": id,
        // The live API returns `customId: null` for contacts created without one (E-TYPES).
        "customId": null,
        "name": "",
        "code": "",
        "tradeName": "",
        "email": "",
        "mobile": "",
        "phone": "",
        "type": "",
        "isperson": false,
        "billAddress": {
            "address": "", "city": "", "postalCode": "", "province": "",
            "country": "", "countryCode": "", "info": ""
        },
        "socialNetworks": {"website": ""},
        "tags": [],
        "notes": [],
        "contactPersons": [],
        "shippingAddresses": [],
        "customFields": [],
        "createdAt": now,
        "updatedAt": now,
    });
    match blank {
        Value::Object(map) => map,
        _ => unreachable!("json! object literal"),
    }
}

pub(super) fn find<'a>(contacts: &'a [Value], id: &str) -> Option<&'a Value> {
    contacts.iter().find(|c| c["id"] == id)
}

fn find_mut<'a>(contacts: &'a mut [Value], id: &str) -> Option<&'a mut Value> {
    contacts.iter_mut().find(|c| c["id"] == id)
}

pub(super) fn seed(contacts: &mut Vec<Value>, contact: Value) -> String {
    let now = unix_now();
    let id = contact["id"]
        .as_str()
        .map(str::to_owned)
        .unwrap_or_else(ids::holded_id);
    let mut record = blank_contact(&id, now);
    if let Value::Object(fields) = contact {
        record.extend(fields);
    }
    record.insert("id".into(), Value::String(id.clone()));
    let mut record = Value::Object(record);
    stamp_hash(&mut record);
    contacts.retain(|c| c["id"] != id.as_str());
    contacts.push(record);
    id
}

/// `Object.entries` of every entry: `[{field:"a",value:"b"}]` becomes
/// `[{field:"field",value:"a"},{field:"value",value:"b"}]`; only `[{"a":"b"}]` round-trips
/// (reference §3.4).
fn mangle_custom_fields(entries: &Value) -> Value {
    let decomposed = entries
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_object)
        .flat_map(|entry| {
            entry
                .iter()
                .map(|(field, value)| json!({"field": field, "value": value}))
        })
        .collect();
    Value::Array(decomposed)
}

/// `updatedHash` exists live but its algorithm is NOT FOUND; any digest that changes with the
/// content serves a client that compares it.
fn stamp_hash(contact: &mut Value) {
    if let Value::Object(map) = contact {
        map.remove("updatedHash");
        let digest = Sha256::digest(Value::Object(map.clone()).to_string());
        map.insert(
            "updatedHash".into(),
            Value::String(hex::encode(&digest[..16])),
        );
    }
}

fn copy_fields(record: &mut Map<String, Value>, body: &Map<String, Value>, allowed: &[&str]) {
    for (field, value) in body {
        if !allowed.contains(&field.as_str()) {
            continue;
        }
        record.insert(field.clone(), value.clone());
    }
}

/// Partial semantics reach into `billAddress`: only the sub-fields sent change.
fn merge_bill_address(record: &mut Map<String, Value>, body: &Map<String, Value>) {
    let Some(Value::Object(sent)) = body.get("billAddress") else {
        return;
    };
    if let Some(Value::Object(stored)) = record.get_mut("billAddress") {
        stored.extend(sent.clone());
    }
}

#[derive(Deserialize)]
struct ListQuery {
    phone: Option<String>,
    mobile: Option<String>,
    /// `style: form, explode: false`: one comma-separated value.
    #[serde(rename = "customId")]
    custom_id: Option<String>,
    page: Option<String>,
}

async fn list(
    State(state): State<Shared>,
    Extension(ApiKey(key)): Extension<ApiKey>,
    Query(query): Query<ListQuery>,
) -> Response {
    let custom_ids: Option<Vec<&str>> = query.custom_id.as_deref().map(|v| v.split(',').collect());
    let mut state = state.lock().unwrap();
    let matching = state
        .account(&key)
        .contacts
        .iter()
        .filter(|c| query.phone.as_deref().is_none_or(|p| c["phone"] == p))
        .filter(|c| query.mobile.as_deref().is_none_or(|m| c["mobile"] == m))
        .filter(|c| {
            custom_ids
                .as_ref()
                .is_none_or(|ids| c["customId"].as_str().is_some_and(|id| ids.contains(&id)))
        })
        .cloned()
        .collect();
    Json(state.page_of(matching, query.page.as_deref())).into_response()
}

async fn create(
    State(state): State<Shared>,
    Extension(ApiKey(key)): Extension<ApiKey>,
    JsonObject(body): JsonObject,
) -> Response {
    let now = unix_now();
    let id = ids::holded_id();
    let mut record = blank_contact(&id, now);
    copy_fields(&mut record, &body, CREATE_FIELDS);
    merge_bill_address(&mut record, &body);
    if let Some(custom_id) = body.get("CustomId") {
        record.insert("customId".into(), custom_id.clone());
    }
    if let Some(fields) = body.get("customFields") {
        record.insert("customFields".into(), mangle_custom_fields(fields));
    }
    if let Some(Value::String(note)) = body.get("note") {
        record.insert(
            "notes".into(),
            json!([{"noteId": ids::holded_id(), "name": "", "description": note,
                    "color": "", "updatedAt": now, "userId": ""}]),
        );
    }
    if let Some(Value::Array(persons)) = body.get("contactPersons") {
        let persons: Vec<Value> = persons
            .iter()
            .map(|p| {
                json!({"personId": ids::holded_id(), "name": p["name"], "job": "",
                       "phone": p["phone"], "email": p["email"],
                       "sendDocumentsByDefault": false, "linkedin": ""})
            })
            .collect();
        record.insert("contactPersons".into(), Value::Array(persons));
    }
    let mut record = Value::Object(record);
    stamp_hash(&mut record);
    state.lock().unwrap().account(&key).contacts.push(record);
    envelope::success(StatusCode::CREATED, "Created", &id)
}

async fn fetch(
    State(state): State<Shared>,
    Extension(ApiKey(key)): Extension<ApiKey>,
    Path(id): Path<String>,
) -> Response {
    let mut state = state.lock().unwrap();
    match find(&state.account(&key).contacts, &id) {
        Some(contact) => Json(contact.clone()).into_response(),
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
    let Some(contact) = find_mut(&mut state.account(&key).contacts, &id) else {
        return not_found();
    };
    if let Value::Object(record) = contact {
        copy_fields(record, &body, UPDATE_FIELDS);
        merge_bill_address(record, &body);
        if let Some(fields) = body.get("customFields") {
            record.insert("customFields".into(), mangle_custom_fields(fields));
        }
        record.insert("updatedAt".into(), json!(unix_now()));
    }
    stamp_hash(contact);
    envelope::success(StatusCode::OK, "Updated", &id)
}

async fn remove(
    State(state): State<Shared>,
    Extension(ApiKey(key)): Extension<ApiKey>,
    Path(id): Path<String>,
) -> Response {
    let mut state = state.lock().unwrap();
    let contacts = &mut state.account(&key).contacts;
    let before = contacts.len();
    contacts.retain(|c| c["id"] != id.as_str());
    if contacts.len() == before {
        return not_found();
    }
    envelope::success(StatusCode::OK, "Successfully deleted", &id)
}

/// Unknown ids get `Standard_Error` with HTTP 200, as the live API answers (reference §2.4).
fn not_found() -> Response {
    envelope::failure(StatusCode::OK, "Not found")
}
