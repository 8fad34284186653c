//! Calls to the GHL API with the per-family `Version` header and a bearer token.
use std::time::Duration;

use std::sync::Arc;

use async_trait::async_trait;
use reqwest::{Method, StatusCode};
use secrecy::{ExposeSecret, SecretString};

use super::models::{
    AppointmentEnvelope, AppointmentList, ContactEnvelope, GhlAppointment, GhlContact, GhlNote,
    GhlTask, NoteEnvelope, NoteList, SearchPage, TaskEnvelope, TaskList,
};
use crate::budget::{Observed, RateBudgets, RateLimit};
use crate::domain::{GhlId, LocationId};
use crate::upstream;

/// `Version` for every Contacts operation (specs/ghl/apps/contacts.json).
const CONTACTS_VERSION: &str = "2021-07-28";
/// `Version` for the Calendars family (specs/ghl/apps/calendars.json).
const CALENDARS_VERSION: &str = "2021-04-15";

#[derive(Debug, thiserror::Error)]
pub enum GhlError {
    #[error("GHL refused the token (401): {0}")]
    Unauthorized(String),
    /// No usable token until someone installs the app again (a refused refresh, an uninstall).
    #[error("the location must reconnect the app: {0}")]
    Reconnect(String),
    #[error("GHL rate limit (429)")]
    RateLimited { retry_after: Option<Duration> },
    #[error("GHL answered {status}: {message}")]
    Rejected { status: u16, message: String },
    #[error("GHL is unavailable ({status}): {message}")]
    Unavailable { status: u16, message: String },
    #[error("GHL request failed: {0}")]
    Transport(String),
    #[error("GHL answered 200 with an unreadable body: {0}")]
    BadBody(String),
}

/// Who a call is for: the location's budget is charged, its token sent.
#[derive(Clone, Copy)]
pub struct GhlAccess<'a> {
    pub location_id: &'a LocationId,
    pub tokens: &'a dyn TokenSource,
}

/// Where a location's bearer token comes from: a fixed Private Integration token, or the
/// OAuth token manager. The client asks it for a token per call and tells it about a 401.
#[async_trait]
pub trait TokenSource: Send + Sync {
    async fn bearer(&self, location_id: &LocationId) -> Result<SecretString, GhlError>;

    /// GHL answered 401 to `refused`: a renewed token to retry once with, or `None` when
    /// there is nothing better to offer.
    async fn renew(
        &self,
        location_id: &LocationId,
        refused: &SecretString,
    ) -> Result<Option<SecretString>, GhlError>;
}

/// A Private Integration token: it does not expire, so a 401 has no remedy here.
pub struct FixedToken(pub SecretString);

#[async_trait]
impl TokenSource for FixedToken {
    async fn bearer(&self, _: &LocationId) -> Result<SecretString, GhlError> {
        Ok(self.0.clone())
    }

    async fn renew(
        &self,
        _: &LocationId,
        _: &SecretString,
    ) -> Result<Option<SecretString>, GhlError> {
        Ok(None)
    }
}

/// GHL's documented limits per app and location (reference §5); headers correct them.
pub const DEFAULT_BURST: RateLimit = RateLimit {
    calls: 100,
    per: Duration::from_secs(10),
};
pub const DEFAULT_DAILY: u32 = 200_000;

#[derive(Clone)]
pub struct GhlClient {
    http: reqwest::Client,
    base: url::Url,
    budgets: Arc<RateBudgets<LocationId>>,
}

impl GhlClient {
    pub fn new(base: url::Url, timeout: Duration) -> Self {
        Self::with_budget(base, timeout, DEFAULT_BURST, DEFAULT_DAILY)
    }

    pub fn with_budget(base: url::Url, timeout: Duration, burst: RateLimit, daily: u32) -> Self {
        GhlClient {
            http: upstream::http_client(timeout),
            base,
            budgets: Arc::new(RateBudgets::new(burst, Some(daily))),
        }
    }

    /// The current contact, or `None` when GHL no longer has it (404).
    pub async fn get_contact(
        &self,
        access: GhlAccess<'_>,
        contact_id: &GhlId,
    ) -> Result<Option<GhlContact>, GhlError> {
        let found: Option<ContactEnvelope> = self
            .get(access, CONTACTS_VERSION, &["contacts", contact_id.as_str()])
            .await?;
        Ok(found.map(|e| e.contact))
    }

    pub async fn get_task(
        &self,
        access: GhlAccess<'_>,
        contact_id: &GhlId,
        task_id: &GhlId,
    ) -> Result<Option<GhlTask>, GhlError> {
        let path = ["contacts", contact_id.as_str(), "tasks", task_id.as_str()];
        let found: Option<TaskEnvelope> = self.get(access, CONTACTS_VERSION, &path).await?;
        Ok(found.map(|e| e.task))
    }

    /// A contact's tasks (no pagination in the spec); empty when the contact is gone.
    pub async fn list_tasks(
        &self,
        access: GhlAccess<'_>,
        contact_id: &GhlId,
    ) -> Result<Vec<GhlTask>, GhlError> {
        let path = ["contacts", contact_id.as_str(), "tasks"];
        let found: Option<TaskList> = self.get(access, CONTACTS_VERSION, &path).await?;
        Ok(found.map(|l| l.tasks).unwrap_or_default())
    }

    pub async fn get_note(
        &self,
        access: GhlAccess<'_>,
        contact_id: &GhlId,
        note_id: &GhlId,
    ) -> Result<Option<GhlNote>, GhlError> {
        let path = ["contacts", contact_id.as_str(), "notes", note_id.as_str()];
        let found: Option<NoteEnvelope> = self.get(access, CONTACTS_VERSION, &path).await?;
        Ok(found.map(|e| e.note))
    }

    pub async fn list_notes(
        &self,
        access: GhlAccess<'_>,
        contact_id: &GhlId,
    ) -> Result<Vec<GhlNote>, GhlError> {
        let path = ["contacts", contact_id.as_str(), "notes"];
        let found: Option<NoteList> = self.get(access, CONTACTS_VERSION, &path).await?;
        Ok(found.map(|l| l.notes).unwrap_or_default())
    }

    /// `GET /calendars/events/appointments/{eventId}` (Calendars family: `Version: 2021-04-15`).
    pub async fn get_appointment(
        &self,
        access: GhlAccess<'_>,
        event_id: &GhlId,
    ) -> Result<Option<GhlAppointment>, GhlError> {
        let path = ["calendars", "events", "appointments", event_id.as_str()];
        let found: Option<AppointmentEnvelope> = self.get(access, CALENDARS_VERSION, &path).await?;
        Ok(found.map(|e| e.event))
    }

    pub async fn list_appointments(
        &self,
        access: GhlAccess<'_>,
        contact_id: &GhlId,
    ) -> Result<Vec<GhlAppointment>, GhlError> {
        let path = ["contacts", contact_id.as_str(), "appointments"];
        let found: Option<AppointmentList> = self.get(access, CONTACTS_VERSION, &path).await?;
        Ok(found.map(|l| l.events).unwrap_or_default())
    }

    /// The contact of a task, through `POST /locations/{locationId}/tasks/search`: real
    /// `TaskCreate` payloads omit `contactId` (highlevel-api-docs issue 332). The request
    /// body is undocumented (UNVERIFIED): we ask for the one task id and still match the
    /// answer by id, so a server that ignores the filter cannot mislead us.
    pub async fn find_task_contact(
        &self,
        access: GhlAccess<'_>,
        task_id: &GhlId,
    ) -> Result<Option<GhlId>, GhlError> {
        let path = ["locations", access.location_id.as_str(), "tasks", "search"];
        let body = serde_json::json!({ "taskIds": [task_id.as_str()] });
        let answer = self
            .send(access, Method::POST, CONTACTS_VERSION, &path, Some(&body))
            .await?;
        let Some(answer) = answer else {
            return Ok(None);
        };
        let found: TaskList =
            serde_json::from_slice(&answer).map_err(|e| GhlError::BadBody(e.to_string()))?;
        Ok(found
            .tasks
            .into_iter()
            .find(|t| t.id == task_id.as_str())
            .and_then(|t| t.contact_id)
            .and_then(|c| GhlId::parse(&c).ok()))
    }

    /// One page of the location's contacts updated at or after `since`, oldest change
    /// first, continuing after `cursor`. The request body is undocumented in the spec; this
    /// follows the (UNVERIFIED) public description reference §1.4 cites.
    pub async fn search_updated_since(
        &self,
        access: GhlAccess<'_>,
        since: chrono::DateTime<chrono::Utc>,
        cursor: Option<&serde_json::Value>,
        page_limit: u32,
    ) -> Result<SearchPage, GhlError> {
        let mut body = serde_json::json!({
            "locationId": access.location_id.as_str(),
            "pageLimit": page_limit,
            "filters": [{
                "field": "dateUpdated",
                "operator": "range",
                "value": { "gte": since.to_rfc3339_opts(chrono::SecondsFormat::Millis, true) },
            }],
            "sort": [{ "field": "dateUpdated", "direction": "asc" }],
        });
        if let Some(cursor) = cursor {
            body["searchAfter"] = cursor.clone();
        }
        let answer = self
            .send(
                access,
                Method::POST,
                CONTACTS_VERSION,
                &["contacts", "search"],
                Some(&body),
            )
            .await?
            .unwrap_or_default();
        serde_json::from_slice(&answer).map_err(|e| GhlError::BadBody(e.to_string()))
    }

    /// A GET whose 404 means "no longer exists".
    async fn get<T: serde::de::DeserializeOwned>(
        &self,
        access: GhlAccess<'_>,
        version: &str,
        path: &[&str],
    ) -> Result<Option<T>, GhlError> {
        let Some(body) = self.send(access, Method::GET, version, path, None).await? else {
            return Ok(None);
        };
        serde_json::from_slice(&body)
            .map(Some)
            .map_err(|e| GhlError::BadBody(e.to_string()))
    }

    /// One call within the location's budget; the answer's rate-limit headers feed the
    /// budget back. `None` when GHL says the record does not exist. A 401 renews the token
    /// once and retries once (reference §9.12).
    async fn send(
        &self,
        access: GhlAccess<'_>,
        method: Method,
        version: &str,
        path: &[&str],
        body: Option<&serde_json::Value>,
    ) -> Result<Option<bytes::Bytes>, GhlError> {
        let bearer = access.tokens.bearer(access.location_id).await?;
        let call = |bearer| self.attempt(access, bearer, method.clone(), version, path, body);
        match call(&bearer).await {
            Err(GhlError::Unauthorized(message)) => {
                match access.tokens.renew(access.location_id, &bearer).await? {
                    Some(renewed) => call(&renewed).await,
                    None => Err(GhlError::Unauthorized(message)),
                }
            }
            answer => answer,
        }
    }

    async fn attempt(
        &self,
        access: GhlAccess<'_>,
        bearer: &SecretString,
        method: Method,
        version: &str,
        path: &[&str],
        body: Option<&serde_json::Value>,
    ) -> Result<Option<bytes::Bytes>, GhlError> {
        let waited = self.budgets.acquire(access.location_id).await;
        let metrics = crate::metrics::global();
        metrics.rate_limit_wait("ghl", waited);
        let mut request = self
            .http
            .request(method, upstream::join(&self.base, path))
            .bearer_auth(bearer.expose_secret())
            .header("Version", version)
            .header("Accept", "application/json");
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request.send().await.map_err(|e| {
            metrics.upstream_call("ghl", None);
            GhlError::Transport(upstream::describe(&e))
        })?;
        metrics.upstream_call("ghl", Some(response.status().as_u16()));
        self.budgets.observe(
            access.location_id,
            observed_limits(response.status(), response.headers()),
        );
        if response.status() == StatusCode::NOT_FOUND {
            let body = response.bytes().await.unwrap_or_default();
            if record_missing(&body) {
                return Ok(None);
            }
            return Err(GhlError::Rejected {
                status: 404,
                message: format!(
                    "no such route (check GHL_API_BASE): {}",
                    error_message(&body)
                ),
            });
        }
        checked(response).await.map(Some)
    }
}

/// The five `X-RateLimit-*` headers of reference §5; a 429 without `Retry-After` waits out
/// the interval.
fn observed_limits(status: StatusCode, headers: &reqwest::header::HeaderMap) -> Observed {
    let number =
        |name: &str| -> Option<u64> { headers.get(name)?.to_str().ok()?.trim().parse().ok() };
    let interval = number("x-ratelimit-interval-milliseconds").map(Duration::from_millis);
    let retry_after = (status == StatusCode::TOO_MANY_REQUESTS).then(|| {
        upstream::retry_after(headers)
            .or(interval)
            .unwrap_or(DEFAULT_BURST.per)
    });
    Observed {
        max: number("x-ratelimit-max").map(|n| n as u32),
        interval,
        remaining: number("x-ratelimit-remaining").map(|n| n as u32),
        daily_remaining: number("x-ratelimit-daily-remaining").map(|n| n as u32),
        retry_after,
    }
}

/// The body of a 2xx answer; every other status becomes the matching error.
pub(super) async fn checked(response: reqwest::Response) -> Result<bytes::Bytes, GhlError> {
    let status = response.status();
    let retry_after = upstream::retry_after(response.headers());
    let body = response
        .bytes()
        .await
        .map_err(|e| GhlError::Transport(upstream::describe(&e)))?;
    if status.is_success() {
        return Ok(body);
    }
    let message = error_message(&body);
    Err(match status.as_u16() {
        401 => GhlError::Unauthorized(message),
        429 => GhlError::RateLimited { retry_after },
        code @ (408 | 500..=599) => GhlError::Unavailable {
            status: code,
            message,
        },
        code => GhlError::Rejected {
            status: code,
            message,
        },
    })
}

/// A 404 means "this record is gone" only when GHL says so in its own error shape. A route
/// that does not exist (a wrong `GHL_API_BASE`, a proxy's page) must never read as "deleted":
/// the delete policy would then tag or delete every Holded contact. NestJS, which serves the
/// GHL API, words an unknown route "Cannot GET /path".
fn record_missing(body: &[u8]) -> bool {
    let Ok(parsed) = serde_json::from_slice::<serde_json::Value>(body) else {
        return false;
    };
    let status_ok = parsed.get("statusCode").and_then(serde_json::Value::as_u64) == Some(404);
    let message = error_message(body);
    status_ok && !message.starts_with("Cannot ")
}

/// `{statusCode, message, error?}` where `message` may be an array (422).
pub(super) fn error_message(body: &[u8]) -> String {
    let parsed: Option<serde_json::Value> = serde_json::from_slice(body).ok();
    match parsed.as_ref().and_then(|v| v.get("message")) {
        Some(serde_json::Value::String(s)) => s.clone(),
        Some(serde_json::Value::Array(items)) => items
            .iter()
            .map(|i| {
                i.as_str()
                    .map(str::to_owned)
                    .unwrap_or_else(|| i.to_string())
            })
            .collect::<Vec<_>>()
            .join("; "),
        _ => String::from_utf8_lossy(&body[..body.len().min(200)]).into_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_ghls_own_404_means_gone() {
        assert!(record_missing(
            br#"{"statusCode":404,"message":"Contact not found"}"#
        ));
        assert!(!record_missing(
            br#"{"statusCode":404,"message":"Cannot GET /v9/contacts/x","error":"Not Found"}"#
        ));
        assert!(!record_missing(b"<html>404</html>"));
        assert!(!record_missing(
            br#"{"type":"https://stoplight.io/prism/errors#NO_PATH_MATCHED_ERROR","status":404}"#
        ));
    }

    #[test]
    fn error_messages_read_both_shapes() {
        assert_eq!(
            error_message(br#"{"statusCode":400,"message":"Bad Request"}"#),
            "Bad Request"
        );
        assert_eq!(
            error_message(
                br#"{"statusCode":422,"message":["a","b"],"error":"Unprocessable Entity"}"#
            ),
            "a; b"
        );
        assert_eq!(error_message(b"<html>"), "<html>");
    }
}
