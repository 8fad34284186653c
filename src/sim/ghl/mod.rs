//! GHL (LeadConnector) API v2 simulator: contacts, tasks, notes, appointments and OAuth, with
//! the headers, error bodies and rate budgets of reference `ghl-api.md` §1–§5.

// Refusals are the HTTP responses themselves, returned once per request by a test server;
// boxing them would only add noise.
#![allow(clippy::result_large_err)]

mod appointments;
mod children;
mod contacts;
mod errors;
mod gateway;
mod location_tasks;
mod oauth;
mod search;
mod state;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::{Method, Uri};
use axum::middleware;
use axum::response::Response;
use axum::Router;
use serde_json::Value;

use super::clock::Clock;
use super::faults::Faults;
use super::recorder::RequestLog;
use super::server::{self, RunningSimulator};
use children::{NOTES, TASKS};
use state::{AccessToken, Caller, GhlState, IssuedCode, Principal, Shared};

/// What an app installation grants, fixed when the authorization code is issued.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum InstallGrant {
    /// A Sub-Account install: tokens act for this location.
    Location { location_id: String },
    /// An Agency install: tokens act for the company and may mint location tokens for
    /// `approved_locations` via `/oauth/locationToken`.
    Company {
        company_id: String,
        approved_locations: Vec<String>,
    },
}

/// Handle to a running simulator; clones share the same server and state.
#[derive(Clone)]
pub struct GhlSim {
    server: RunningSimulator,
    state: Shared,
    clock: Clock,
}

impl GhlSim {
    pub async fn start() -> GhlSim {
        let clock = Clock::default();
        let state: Shared = Arc::new(Mutex::new(GhlState::new(clock.clone())));
        let api = Router::new()
            .merge(contacts::routes())
            .merge(children::routes())
            .merge(appointments::routes())
            .merge(location_tasks::routes())
            .merge(oauth::routes())
            .fallback(unknown_route)
            .layer(middleware::from_fn_with_state(
                state.clone(),
                gateway::layer,
            ))
            .with_state(state.clone());
        GhlSim {
            server: server::serve_simulator(api, errors::for_status).await,
            state,
            clock,
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

    /// Moves the simulator's clock forward: token expiry, the refresh grace window and rate
    /// windows all see the jump, so tests need not sleep.
    pub fn advance_time(&self, by: Duration) {
        self.clock.advance(by);
    }

    /// A Private Integration token of that location; it never expires.
    pub fn add_private_token(&self, location_id: &str, token: &str) {
        let caller = Caller {
            principal: Principal::Location(location_id.to_owned()),
            approved_locations: Vec::new(),
        };
        self.state.lock().unwrap().access_tokens.insert(
            token.to_owned(),
            AccessToken {
                caller,
                expires_at: None,
            },
        );
    }

    pub fn register_app(&self, client_id: &str, client_secret: &str) {
        self.state
            .lock()
            .unwrap()
            .apps
            .insert(client_id.to_owned(), client_secret.to_owned());
    }

    /// What the consent redirect would carry as `?code=`: single use, for `client_id` only.
    pub fn issue_authorization_code(&self, client_id: &str, code: &str, grant: InstallGrant) {
        self.state.lock().unwrap().codes.insert(
            code.to_owned(),
            IssuedCode {
                client_id: client_id.to_owned(),
                grant,
            },
        );
    }

    /// Refuses every refresh token of this location's or company's installs from now on,
    /// as GHL does once an install is revoked or its refresh token has lapsed.
    pub fn revoke_refresh_tokens(&self, owner_id: &str) {
        self.state
            .lock()
            .unwrap()
            .refresh_tokens
            .retain(|_, token| match &token.grant {
                InstallGrant::Location { location_id } => location_id != owner_id,
                InstallGrant::Company { company_id, .. } => company_id != owner_id,
            });
    }

    /// Every access and refresh token issued so far (tests look for them where they must
    /// not be).
    pub fn issued_tokens(&self) -> Vec<String> {
        let state = self.state.lock().unwrap();
        state
            .access_tokens
            .keys()
            .chain(state.refresh_tokens.keys())
            .cloned()
            .collect()
    }

    /// Lifetime of access tokens issued from now on (default 86399 s).
    pub fn set_access_token_ttl(&self, ttl: Duration) {
        self.state.lock().unwrap().access_token_ttl = ttl;
    }

    /// Successful `grant_type=refresh_token` calls, grace-window replays included.
    pub fn token_requests(&self) -> usize {
        self.state.lock().unwrap().successful_refreshes
    }

    /// Every OAuth-issued access token answers 401 from now on; Private Integration tokens,
    /// which do not expire, keep working.
    pub fn expire_access_tokens(&self) {
        let mut state = self.state.lock().unwrap();
        let now = state.now();
        for token in state.access_tokens.values_mut() {
            if token.expires_at.is_some() {
                token.expires_at = Some(now);
            }
        }
    }

    /// `Some((max, interval))` refuses with 429 past `max` requests per interval per location
    /// (or company), and past 200,000 a day; `None` only reports the budget in headers.
    pub fn enforce_rate_limit(&self, max_per_interval: Option<(u32, Duration)>) {
        let mut state = self.state.lock().unwrap();
        state.rate.enforced = max_per_interval;
        state.rate.budgets.clear();
    }

    /// Stores a contact in the `GetContectByIdSchema` shape; it must carry `id` and `locationId`.
    pub fn put_contact(&self, contact: Value) {
        contacts::store(&mut self.state.lock().unwrap(), contact);
    }

    /// Shallow-merges `patch` into the contact and bumps `dateUpdated`.
    pub fn patch_contact(&self, id: &str, patch: Value) {
        let mut state = self.state.lock().unwrap();
        if let (Some(Value::Object(contact)), Value::Object(patch)) =
            (state.contacts.get_mut(id), patch)
        {
            contact.extend(patch);
            contact.insert("dateUpdated".into(), Value::String(contacts::now_iso()));
        }
    }

    /// Removes the contact with its tasks and notes.
    pub fn delete_contact(&self, id: &str) {
        contacts::delete(&mut self.state.lock().unwrap(), id);
    }

    pub fn contact(&self, id: &str) -> Option<Value> {
        self.state.lock().unwrap().contacts.get(id).cloned()
    }

    /// Stores (or replaces by `id`) a task in the `TaskSchema` shape; `contactId` is set.
    pub fn put_task(&self, contact_id: &str, task: Value) {
        children::put(&TASKS, &mut self.state.lock().unwrap(), contact_id, task);
    }

    pub fn delete_task(&self, contact_id: &str, task_id: &str) {
        children::delete(&TASKS, &mut self.state.lock().unwrap(), contact_id, task_id);
    }

    /// Stores (or replaces by `id`) a note in the `GetNoteSchema` shape; `contactId` is set and
    /// `dateAdded` filled when absent.
    pub fn put_note(&self, contact_id: &str, note: Value) {
        children::put(&NOTES, &mut self.state.lock().unwrap(), contact_id, note);
    }

    pub fn delete_note(&self, contact_id: &str, note_id: &str) {
        children::delete(&NOTES, &mut self.state.lock().unwrap(), contact_id, note_id);
    }

    /// Stores an appointment in the `CalendarEventDTO` shape; it must carry `id`, `locationId`
    /// and `contactId`.
    pub fn put_appointment(&self, appointment: Value) {
        if let Some(id) = appointment["id"].as_str() {
            let id = id.to_owned();
            self.state
                .lock()
                .unwrap()
                .appointments
                .insert(id, appointment);
        }
    }

    pub fn delete_appointment(&self, id: &str) {
        self.state.lock().unwrap().appointments.remove(id);
    }
}

/// GHL is a NestJS service; unknown routes get its stock 404 body.
async fn unknown_route(method: Method, uri: Uri) -> Response {
    errors::not_found(&format!("Cannot {method} {}", uri.path()))
}

#[cfg(test)]
mod tests;
