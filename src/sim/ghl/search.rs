//! `POST /contacts/search`. The spec's body schema is empty (reference §1.4); the simulator
//! follows the UNVERIFIED mirror: `{locationId*, pageLimit* (≤ 500), page?, searchAfter?,
//! query?, filters?, sort?}`, answering `{contacts, total}`.
//!
//! Choices where even the mirror is silent:
//! - Order is total: the sort field, then `id`. Without `sort`, `dateAdded` descending.
//! - Each contact carries `searchAfter: [<sort field as epoch ms>, <id>]`; sending a contact's
//!   value back returns the contacts strictly after it.
//! - Filters: `range` on `dateAdded`/`dateUpdated` (`gt|gte|lt|lte`, ISO string or epoch ms)
//!   and `eq` on any top-level string field. Anything else is a 422, so a client relying on
//!   unsimulated semantics finds out instead of getting silently wrong results.
//! - `page` and `searchAfter` together, or paging past 10,000 records, is a 422.

use std::cmp::Ordering;

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use chrono::DateTime;
use serde_json::{json, Value};

use super::errors;
use super::state::{Caller, Shared};

const MAX_PAGE_LIMIT: u64 = 500;
const MAX_PAGED_RECORDS: u64 = 10_000;
const DATE_FIELDS: &[&str] = &["dateAdded", "dateUpdated"];

struct Sort {
    field: String,
    descending: bool,
}

enum Filter {
    Range {
        field: String,
        lower: Option<(i64, bool)>,
        upper: Option<(i64, bool)>,
    },
    Equals {
        field: String,
        value: Value,
    },
}

pub(super) async fn search(
    State(state): State<Shared>,
    Extension(caller): Extension<Caller>,
    Json(body): Json<Value>,
) -> Response {
    let request = match SearchRequest::parse(&body) {
        Ok(request) => request,
        Err(messages) => return errors::unprocessable(&messages),
    };
    if let Err(refusal) = caller.may_access(&request.location_id) {
        return refusal;
    }
    let state = state.lock().unwrap();
    let mut hits: Vec<(i64, &Value)> = state
        .contacts
        .values()
        .filter(|c| c["locationId"] == request.location_id.as_str())
        .filter(|c| request.filters.iter().all(|f| f.matches(c)))
        .filter(|c| request.query_matches(c))
        .map(|c| (epoch_ms(&c[request.sort.field.as_str()]).unwrap_or(0), c))
        .collect();
    hits.sort_by(|a, b| request.compare(sort_key(a), sort_key(b)));
    let total = hits.len();
    let start = match &request.search_after {
        Some(cursor) => hits
            .iter()
            .position(|hit| {
                request.compare(sort_key(hit), (cursor.0, &cursor.1)) == Ordering::Greater
            })
            .unwrap_or(hits.len()),
        None => ((request.page - 1) * request.page_limit) as usize,
    };
    let contacts: Vec<Value> = hits
        .into_iter()
        .skip(start)
        .take(request.page_limit as usize)
        .map(|(sort_value, contact)| {
            let mut contact = contact.clone();
            contact["searchAfter"] = json!([sort_value, contact["id"]]);
            contact
        })
        .collect();
    Json(json!({"contacts": contacts, "total": total})).into_response()
}

struct SearchRequest {
    location_id: String,
    page_limit: u64,
    page: u64,
    search_after: Option<(i64, String)>,
    query: Option<String>,
    filters: Vec<Filter>,
    sort: Sort,
}

impl SearchRequest {
    fn parse(body: &Value) -> Result<Self, Vec<String>> {
        let mut problems = Vec::new();
        let location_id = body["locationId"].as_str().unwrap_or_default().to_owned();
        if location_id.is_empty() {
            problems.push("locationId should not be empty".to_owned());
        }
        let page_limit = body["pageLimit"].as_u64().unwrap_or(0);
        if !(1..=MAX_PAGE_LIMIT).contains(&page_limit) {
            problems.push(format!(
                "pageLimit must be an integer between 1 and {MAX_PAGE_LIMIT}"
            ));
        }
        let page = body["page"].as_u64().unwrap_or(1).max(1);
        let search_after = match &body["searchAfter"] {
            Value::Null => None,
            Value::Array(parts) => match (
                parts.first().and_then(Value::as_i64),
                parts.get(1).and_then(Value::as_str),
            ) {
                (Some(at), Some(id)) => Some((at, id.to_owned())),
                _ => {
                    problems.push(
                        "searchAfter must be a value returned by a previous search".to_owned(),
                    );
                    None
                }
            },
            _ => {
                problems.push("searchAfter must be an array".to_owned());
                None
            }
        };
        if search_after.is_some() && !body["page"].is_null() {
            problems.push("page cannot be used together with searchAfter".to_owned());
        }
        if search_after.is_none() && page * page_limit > MAX_PAGED_RECORDS {
            problems.push(format!(
                "page-based pagination is limited to {MAX_PAGED_RECORDS} records, use searchAfter"
            ));
        }
        let filters = body["filters"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|f| Filter::parse(f).map_err(|e| problems.push(e)).ok())
            .collect();
        let sort = match body["sort"].as_array().and_then(|s| s.first()) {
            None => Sort {
                field: "dateAdded".to_owned(),
                descending: true,
            },
            Some(sort) => {
                let field = sort["field"].as_str().unwrap_or_default().to_owned();
                if !DATE_FIELDS.contains(&field.as_str()) {
                    problems.push(format!(
                        "sort field {field} is not supported by the simulator"
                    ));
                }
                Sort {
                    field,
                    descending: sort["direction"].as_str() == Some("desc"),
                }
            }
        };
        if !problems.is_empty() {
            return Err(problems);
        }
        Ok(Self {
            location_id,
            page_limit,
            page,
            search_after,
            query: body["query"].as_str().map(str::to_lowercase),
            filters,
            sort,
        })
    }

    fn compare(&self, a: (i64, &str), b: (i64, &str)) -> Ordering {
        let by_field = if self.sort.descending {
            b.0.cmp(&a.0)
        } else {
            a.0.cmp(&b.0)
        };
        by_field.then_with(|| a.1.cmp(b.1))
    }

    /// Free text matches name, email, phone or company, case-insensitively.
    fn query_matches(&self, contact: &Value) -> bool {
        let Some(query) = &self.query else {
            return true;
        };
        [
            "name",
            "firstName",
            "lastName",
            "email",
            "phone",
            "companyName",
        ]
        .iter()
        .filter_map(|field| contact[*field].as_str())
        .any(|text| text.to_lowercase().contains(query))
    }
}

impl Filter {
    fn parse(filter: &Value) -> Result<Self, String> {
        let field = filter["field"].as_str().unwrap_or_default().to_owned();
        match filter["operator"].as_str() {
            Some("range") if DATE_FIELDS.contains(&field.as_str()) => {
                let bound = |strict: &str, inclusive: &str| {
                    let (value, inclusive) = match filter["value"].get(strict) {
                        Some(v) => (v, false),
                        None => (filter["value"].get(inclusive)?, true),
                    };
                    epoch_ms(value).map(|ms| (ms, inclusive))
                };
                Ok(Filter::Range {
                    lower: bound("gt", "gte"),
                    upper: bound("lt", "lte"),
                    field,
                })
            }
            Some("eq") => Ok(Filter::Equals {
                field,
                value: filter["value"].clone(),
            }),
            operator => Err(format!(
                "filter {field} {} is not supported by the simulator",
                operator.unwrap_or("<none>")
            )),
        }
    }

    fn matches(&self, contact: &Value) -> bool {
        match self {
            Filter::Equals { field, value } => &contact[field.as_str()] == value,
            Filter::Range {
                field,
                lower,
                upper,
            } => {
                let Some(at) = epoch_ms(&contact[field.as_str()]) else {
                    return false;
                };
                let above =
                    lower.is_none_or(|(min, inclusive)| at > min || (inclusive && at == min));
                let below =
                    upper.is_none_or(|(max, inclusive)| at < max || (inclusive && at == max));
                above && below
            }
        }
    }
}

fn sort_key<'a>(hit: &(i64, &'a Value)) -> (i64, &'a str) {
    (hit.0, hit.1["id"].as_str().unwrap_or_default())
}

/// ISO-8601 string or epoch milliseconds, as epoch milliseconds.
fn epoch_ms(value: &Value) -> Option<i64> {
    match value {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => DateTime::parse_from_rfc3339(s)
            .ok()
            .map(|t| t.timestamp_millis()),
        _ => None,
    }
}
