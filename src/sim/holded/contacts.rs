//! Invoicing `/contacts` (reference §3): partial PUT, `CustomId` written / `customId` read,
//! `socialNetworks` ignored on PUT and `customFields` decomposed by the `Object.entries` bug.

use serde::Deserialize;
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};

use super::records::{self, copy_fields, RecordKind};
use super::{unix_now, Account};
use crate::sim::ids;

/// Body fields a create or a PUT stores as sent (documented schemas plus `tradeName` and
/// `vatnumber`, which the live API accepts and returns). Anything else, including a lower-case
/// `customId`, is ignored: the documented name on create is `CustomId` (reference §8, pitfall 4).
/// `CustomId`, `note` and `contactPersons` are not in the PUT schema, so a PUT ignores them too.
/// `tags` REPLACES the list: replace-vs-merge is UNVERIFIED (reference §3.2), replace is what a
/// full-list field in a partial update usually means and the stricter assumption for a client.
const EDITABLE_FIELDS: &[&str] = &[
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

/// Body fields only a create stores: the live API silently ignores `socialNetworks` on update
/// (DRIFT-INV-12).
const CREATE_ONLY_FIELDS: &[&str] = &["socialNetworks"];

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
    records::object(blank)
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
    stamp_hash(&mut record);
    contacts.retain(|c| c["id"] != id.as_str());
    contacts.push(Value::Object(record));
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
fn stamp_hash(contact: &mut Map<String, Value>) {
    contact.remove("updatedHash");
    let digest = Sha256::digest(Value::Object(contact.clone()).to_string());
    contact.insert(
        "updatedHash".into(),
        Value::String(hex::encode(&digest[..16])),
    );
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
pub(super) struct ListQuery {
    phone: Option<String>,
    mobile: Option<String>,
    /// `style: form, explode: false`: one comma-separated value.
    #[serde(rename = "customId")]
    custom_id: Option<String>,
    page: Option<String>,
}

/// The account's invoicing contacts.
pub(super) struct Contacts;

impl RecordKind for Contacts {
    const COLLECTION_PATH: &'static str = "/contacts";
    const RECORD_PATH: &'static str = "/contacts/{contactId}";

    type ListQuery = ListQuery;

    fn of(account: &mut Account) -> &mut Vec<Value> {
        &mut account.contacts
    }

    fn page(query: &ListQuery) -> Option<&str> {
        query.page.as_deref()
    }

    /// Every filter sent must match exactly; `customId` matches any of its listed values.
    fn listed(query: &ListQuery) -> impl Fn(&Value) -> bool + '_ {
        let custom_ids: Option<Vec<&str>> =
            query.custom_id.as_deref().map(|v| v.split(',').collect());
        move |c| {
            query.phone.as_deref().is_none_or(|p| c["phone"] == p)
                && query.mobile.as_deref().is_none_or(|m| c["mobile"] == m)
                && custom_ids
                    .as_ref()
                    .is_none_or(|ids| c["customId"].as_str().is_some_and(|id| ids.contains(&id)))
        }
    }

    fn created(id: &str, body: &Map<String, Value>) -> Map<String, Value> {
        let now = unix_now();
        let mut record = blank_contact(id, now);
        copy_fields(&mut record, body, EDITABLE_FIELDS);
        copy_fields(&mut record, body, CREATE_ONLY_FIELDS);
        merge_bill_address(&mut record, body);
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
        stamp_hash(&mut record);
        record
    }

    fn update(record: &mut Map<String, Value>, body: &Map<String, Value>) {
        copy_fields(record, body, EDITABLE_FIELDS);
        merge_bill_address(record, body);
        if let Some(fields) = body.get("customFields") {
            record.insert("customFields".into(), mangle_custom_fields(fields));
        }
        record.insert("updatedAt".into(), json!(unix_now()));
        stamp_hash(record);
    }
}
