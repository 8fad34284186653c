//! `POST /oauth/token` and `POST /oauth/locationToken` (reference §2.2–§2.4).

use std::collections::HashMap;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, HeaderMap};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Extension, Json, Router};
use serde_json::{json, Value};

use super::errors;
use super::state::{AccessToken, Caller, GhlState, Principal, RefreshToken, Rotation, Shared};
use super::InstallGrant;
use crate::sim::ids;

/// "if multiple concurrent calls are made within a 30-second window using the exact same
/// client_id and client_secret and refresh_token combination, the system will return the same
/// refresh token" (reference §2.3, CHANGELOG).
const REFRESH_GRACE: Duration = Duration::from_secs(30);

/// Scopes every simulated install grants: what the sync service needs.
const SCOPES: &str = "contacts.readonly contacts.write calendars/events.readonly \
                      locations/tasks.readonly oauth.readonly oauth.write";

/// `userId` is required in token responses; installs in the simulator are all made by this user.
const INSTALLING_USER_ID: &str = "SimInstallUser000001";

pub(super) fn routes() -> Router<Shared> {
    Router::new()
        .route("/oauth/token", post(token))
        .route("/oauth/locationToken", post(location_token))
}

/// Both endpoints take `application/x-www-form-urlencoded` only. What v2 does with a JSON body
/// is NOT FOUND (only v3 documents JSON); 400 is a status the spec declares, and failing loudly
/// keeps a client from silently depending on v3 behaviour.
fn form(headers: &HeaderMap, body: &Bytes) -> Result<HashMap<String, String>, Response> {
    let is_form = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
    if !is_form {
        return Err(errors::bad_request(
            "Content-Type must be application/x-www-form-urlencoded",
        ));
    }
    Ok(url::form_urlencoded::parse(body).into_owned().collect())
}

fn required<'a>(
    form: &'a HashMap<String, String>,
    names: &[&str],
) -> Result<Vec<&'a str>, Response> {
    let missing: Vec<String> = names
        .iter()
        .filter(|name| form.get(**name).is_none_or(String::is_empty))
        .map(|name| format!("{name} should not be empty"))
        .collect();
    if !missing.is_empty() {
        return Err(errors::unprocessable(&missing));
    }
    Ok(names.iter().map(|name| form[*name].as_str()).collect())
}

async fn token(State(state): State<Shared>, headers: HeaderMap, body: Bytes) -> Response {
    let form = match form(&headers, &body) {
        Ok(form) => form,
        Err(refusal) => return refusal,
    };
    let fields = match required(&form, &["client_id", "client_secret", "grant_type"]) {
        Ok(fields) => fields,
        Err(refusal) => return refusal,
    };
    let (client_id, client_secret, grant_type) = (fields[0], fields[1], fields[2]);
    let mut state = state.lock().unwrap();
    if state.apps.get(client_id).map(String::as_str) != Some(client_secret) {
        return errors::unauthorized("Invalid client credentials");
    }
    let outcome = match grant_type {
        "authorization_code" => exchange_code(&mut state, client_id, form.get("code")),
        "refresh_token" => refresh(
            &mut state,
            client_id,
            client_secret,
            form.get("refresh_token"),
        ),
        _ => Err(errors::unprocessable(&[
            "grant_type must be one of authorization_code, refresh_token".to_owned(),
        ])),
    };
    match outcome {
        Ok(response) => Json(response).into_response(),
        Err(refusal) => refusal,
    }
}

/// Codes are single-use and bound to the client they were issued for.
fn exchange_code(
    state: &mut GhlState,
    client_id: &str,
    code: Option<&String>,
) -> Result<Value, Response> {
    let issued = code
        .and_then(|code| state.codes.remove(code))
        .filter(|issued| issued.client_id == client_id)
        .ok_or_else(|| errors::unauthorized("Invalid grant: authorization code is invalid"))?;
    Ok(issue_pair(state, client_id, issued.grant))
}

/// Rotation: a refresh token works once. The status and body for a reused token are NOT FOUND;
/// the simulator answers 401 with the `UnauthorizedDTO` the spec declares for this operation
/// (so a client needs no separate error parser), with the message integrators report.
fn refresh(
    state: &mut GhlState,
    client_id: &str,
    client_secret: &str,
    refresh_token: Option<&String>,
) -> Result<Value, Response> {
    let refused = || errors::unauthorized("Invalid grant: refresh token is invalid");
    let now = state.now();
    let token = refresh_token.ok_or_else(refused)?;
    let stored = state
        .refresh_tokens
        .get(token)
        .filter(|stored| stored.client_id == client_id)
        .ok_or_else(refused)?;
    match &stored.rotation {
        Some(rotation) => {
            let identical = rotation.client_secret == client_secret;
            if !identical || now.duration_since(rotation.at) >= REFRESH_GRACE {
                return Err(refused());
            }
            let replay = rotation.response.clone();
            state.successful_refreshes += 1;
            Ok(replay)
        }
        None => {
            let grant = stored.grant.clone();
            let response = issue_pair(state, client_id, grant);
            if let Some(stored) = state.refresh_tokens.get_mut(token) {
                stored.rotation = Some(Rotation {
                    at: now,
                    client_secret: client_secret.to_owned(),
                    response: response.clone(),
                });
            }
            state.successful_refreshes += 1;
            Ok(response)
        }
    }
}

/// Mints an access/refresh pair for an install and returns the documented response body.
fn issue_pair(state: &mut GhlState, client_id: &str, grant: InstallGrant) -> Value {
    let caller = match &grant {
        InstallGrant::Location { location_id } => Caller {
            principal: Principal::Location(location_id.clone()),
            approved_locations: Vec::new(),
        },
        InstallGrant::Company {
            company_id,
            approved_locations,
        } => Caller {
            principal: Principal::Company(company_id.clone()),
            approved_locations: approved_locations.clone(),
        },
    };
    let (access_token, ttl) = mint_access_token(state, caller);
    let refresh_token = ids::token();
    let mut body = json!({
        "access_token": access_token,
        "token_type": "Bearer",
        "expires_in": ttl.as_secs(),
        "refresh_token": refresh_token,
        "scope": SCOPES,
        "userId": INSTALLING_USER_ID,
        "isBulkInstallation": false,
    });
    match &grant {
        InstallGrant::Location { location_id } => {
            body["userType"] = json!("Location");
            body["locationId"] = json!(location_id);
        }
        InstallGrant::Company {
            company_id,
            approved_locations,
        } => {
            body["userType"] = json!("Company");
            body["companyId"] = json!(company_id);
            body["approvedLocations"] = json!(approved_locations);
            body["installToFutureLocations"] = json!(false);
            body["approveAllLocations"] = json!(false);
        }
    }
    state.refresh_tokens.insert(
        refresh_token,
        RefreshToken {
            client_id: client_id.to_owned(),
            grant,
            rotation: None,
        },
    );
    body
}

/// A fresh access token for `caller`, valid for the configured lifetime.
fn mint_access_token(state: &mut GhlState, caller: Caller) -> (String, Duration) {
    let token = ids::token();
    let ttl = state.access_token_ttl;
    let expires_at = Some(state.now() + ttl);
    state
        .access_tokens
        .insert(token.clone(), AccessToken { caller, expires_at });
    (token, ttl)
}

/// Mints a location access token from a Company token. The v2 response lists no
/// `refresh_token` (only v3 adds one), so none is issued: the agency token refreshes instead.
async fn location_token(
    State(state): State<Shared>,
    Extension(caller): Extension<Caller>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let form = match form(&headers, &body) {
        Ok(form) => form,
        Err(refusal) => return refusal,
    };
    let fields = match required(&form, &["companyId", "locationId"]) {
        Ok(fields) => fields,
        Err(refusal) => return refusal,
    };
    let (company_id, location_id) = (fields[0], fields[1]);
    match &caller.principal {
        Principal::Company(id) if id == company_id => {}
        Principal::Company(_) => return errors::forbidden_location(),
        Principal::Location(_) => return errors::wrong_token_class(),
    }
    if !caller.approved_locations.iter().any(|l| l == location_id) {
        return errors::bad_request("Location is not approved for this installation");
    }
    let minted = Caller {
        principal: Principal::Location(location_id.to_owned()),
        approved_locations: Vec::new(),
    };
    let (access_token, ttl) = mint_access_token(&mut state.lock().unwrap(), minted);
    Json(json!({
        "access_token": access_token,
        "token_type": "Bearer",
        "expires_in": ttl.as_secs(),
        "scope": SCOPES,
        "locationId": location_id,
        "userId": INSTALLING_USER_ID,
    }))
    .into_response()
}
