//! CRM `/events` (reference §4.3): the body fields of the crm spec; the response adds
//! `endDate = startDate + duration`, and `funnelId` is not stored, as on the live API.

use serde::Deserialize;
use serde_json::{json, Map, Value};

use super::records::{self, copy_fields, RecordKind};
use super::Account;

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

/// The list takes no filters, only the page.
#[derive(Deserialize)]
pub(super) struct ListQuery {
    page: Option<String>,
}

/// The account's CRM events.
pub(super) struct Events;

impl RecordKind for Events {
    const COLLECTION_PATH: &'static str = "/events";
    const RECORD_PATH: &'static str = "/events/{eventId}";

    type ListQuery = ListQuery;

    fn of(account: &mut Account) -> &mut Vec<Value> {
        &mut account.events
    }

    fn page(query: &ListQuery) -> Option<&str> {
        query.page.as_deref()
    }

    fn listed(_: &ListQuery) -> impl Fn(&Value) -> bool + '_ {
        |_| true
    }

    fn created(id: &str, body: &Map<String, Value>) -> Map<String, Value> {
        // Absent fields come back like the spec's second list example: empty or null.
        let mut event = records::object(json!({
            "id": id, "name": "", "contactId": "", "contactName": null, "kind": "",
            "desc": null, "startDate": 0, "endDate": 0, "status": 0, "tags": [],
            "locationDesc": null, "leadId": null,
        }));
        Self::update(&mut event, body);
        event
    }

    fn update(event: &mut Map<String, Value>, body: &Map<String, Value>) {
        copy_fields(event, body, STORED_FIELDS);
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
}
