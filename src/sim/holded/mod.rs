//! Holded API v1 simulator: invoicing contacts and CRM events, served under the same module
//! prefixes as `https://api.holded.com` (reference `holded-api.md` §2, §3, §4.3, §10).
//!
//! Each API key is its own Holded account with its own data.

// Refusals are the HTTP responses themselves, returned once per request by a test server;
// boxing them would only add noise.
#![allow(clippy::result_large_err)]

mod contacts;
pub(crate) mod envelope;
mod events;
mod json_body;
mod records;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::Router;
use serde_json::Value;

use super::faults::Faults;
use super::rate_window::RateWindow;
use super::recorder::RequestLog;
use super::server::{self, RunningSimulator};
use contacts::Contacts;
use events::Events;

/// Page size of list endpoints; the real size is NOT FOUND (reference §2.5), 50 is a guess that
/// is small enough for tests to cross page boundaries cheaply.
const DEFAULT_PAGE_SIZE: usize = 50;

#[derive(Clone)]
pub struct HoldedSim {
    server: RunningSimulator,
    state: Shared,
}

type Shared = Arc<Mutex<HoldedState>>;

struct HoldedState {
    accounts: HashMap<String, Account>,
    page_size: usize,
    rate_limit: Option<(u32, Duration)>,
    windows: HashMap<String, RateWindow>,
}

/// One Holded account (one API key); records keep insertion order like the live lists.
#[derive(Default)]
struct Account {
    contacts: Vec<Value>,
    events: Vec<Value>,
}

/// The API key a request was authenticated with.
#[derive(Clone)]
struct ApiKey(String);

impl HoldedState {
    fn account(&mut self, key: &str) -> &mut Account {
        self.accounts.entry(key.to_owned()).or_default()
    }

    fn page_of(&self, items: Vec<Value>, page: Option<&str>) -> Vec<Value> {
        // `page` is 1-based; a missing or unparsable value means the first page.
        let page = page
            .and_then(|p| p.parse::<usize>().ok())
            .unwrap_or(1)
            .max(1);
        items
            .into_iter()
            .skip((page - 1) * self.page_size)
            .take(self.page_size)
            .collect()
    }
}

impl HoldedSim {
    pub async fn start() -> HoldedSim {
        let state: Shared = Arc::new(Mutex::new(HoldedState {
            accounts: HashMap::new(),
            page_size: DEFAULT_PAGE_SIZE,
            rate_limit: None,
            windows: HashMap::new(),
        }));
        let api_layer = middleware::from_fn_with_state(state.clone(), authorize);
        // Wrong methods on known paths get the same HTML page as unknown paths, like Express.
        let invoicing = records::routes::<Contacts>()
            .method_not_allowed_fallback(unknown_route)
            .route_layer(api_layer.clone());
        let crm = records::routes::<Events>()
            .method_not_allowed_fallback(unknown_route)
            .route_layer(api_layer);
        let api = Router::new()
            .nest("/api/invoicing/v1", invoicing)
            .nest("/api/crm/v1", crm)
            .fallback(unknown_route)
            .with_state(state.clone());
        HoldedSim {
            server: server::serve_simulator(api, envelope::failure_for_status).await,
            state,
        }
    }

    pub fn base_url(&self) -> String {
        self.server.base_url()
    }

    pub fn faults(&self) -> &Faults {
        &self.server.faults
    }

    pub fn requests(&self) -> &RequestLog {
        &self.server.requests
    }

    pub fn add_api_key(&self, key: &str) {
        self.state.lock().unwrap().account(key);
    }

    /// Stored contacts in the `GET /contacts/{id}` response shape.
    pub fn contacts(&self, key: &str) -> Vec<Value> {
        self.state.lock().unwrap().account(key).contacts.clone()
    }

    pub fn contact(&self, key: &str, id: &str) -> Option<Value> {
        let mut state = self.state.lock().unwrap();
        records::find(&state.account(key).contacts, id).cloned()
    }

    pub fn contacts_with_custom_id(&self, key: &str, custom_id: &str) -> Vec<Value> {
        let mut state = self.state.lock().unwrap();
        state
            .account(key)
            .contacts
            .iter()
            .filter(|c| c["customId"].as_str() == Some(custom_id))
            .cloned()
            .collect()
    }

    /// Seeds a contact given in the response shape (`customId`, not `CustomId`; `customFields`
    /// stored as given, unmangled); missing `id`/timestamps are filled. Returns its id.
    pub fn put_contact(&self, key: &str, contact: Value) -> String {
        let mut state = self.state.lock().unwrap();
        contacts::seed(&mut state.account(key).contacts, contact)
    }

    /// CRM events in the `GET /events/{id}` response shape.
    pub fn events(&self, key: &str) -> Vec<Value> {
        self.state.lock().unwrap().account(key).events.clone()
    }

    pub fn set_page_size(&self, n: usize) {
        self.state.lock().unwrap().page_size = n.max(1);
    }

    /// `Some((max, window))`: at most `max` requests per key per fixed window, then 429 with
    /// `Retry-After`. Off by default because the v1 limit is NOT FOUND (reference §2.6).
    pub fn enforce_rate_limit(&self, per_key: Option<(u32, Duration)>) {
        let mut state = self.state.lock().unwrap();
        state.rate_limit = per_key;
        state.windows.clear();
    }
}

/// Checks the `key` header and the optional per-key rate limit of every matched API route.
///
/// The body of a rejected key is NOT FOUND; the simulator uses HTTP 401 with the documented
/// `Standard_Error` shape, the most plausible reading of "requests without authentication will
/// also fail" (reference §2.2).
async fn authorize(State(state): State<Shared>, mut request: Request, next: Next) -> Response {
    let key = request
        .headers()
        .get("key")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let verdict = {
        let mut state = state.lock().unwrap();
        match key {
            Some(key) if state.accounts.contains_key(&key) => admit(&mut state, &key).map(|_| key),
            _ => Err(envelope::failure(
                StatusCode::UNAUTHORIZED,
                "Unauthorized: invalid or missing API key",
            )),
        }
    };
    match verdict {
        Ok(key) => {
            request.extensions_mut().insert(ApiKey(key));
            next.run(request).await
        }
        Err(refusal) => refusal,
    }
}

fn admit(state: &mut HoldedState, key: &str) -> Result<(), Response> {
    let Some((max, interval)) = state.rate_limit else {
        return Ok(());
    };
    let now = Instant::now();
    let window = state
        .windows
        .entry(key.to_owned())
        .or_insert_with(|| RateWindow::new(now));
    window.roll(now, interval);
    if window.used() >= max {
        let mut response = envelope::failure_for_status(StatusCode::TOO_MANY_REQUESTS);
        response.headers_mut().insert(
            header::RETRY_AFTER,
            HeaderValue::from(window.retry_after_secs(now, interval)),
        );
        return Err(response);
    }
    window.record();
    Ok(())
}

async fn unknown_route() -> Response {
    envelope::html_not_found()
}

fn unix_now() -> i64 {
    chrono::Utc::now().timestamp()
}

#[cfg(test)]
mod tests;
