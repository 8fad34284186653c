//! Calls to Holded v1 with the `key` header. HTTP 200 is not success on its own: Holded
//! answers some failures with `{"status":0,…}` or an HTML page and a 200.
use std::sync::Arc;
use std::time::Duration;

use sha2::Digest;

use reqwest::header::{HeaderValue, CONTENT_TYPE};
use reqwest::Method;
use secrecy::{ExposeSecret, SecretString};
use serde::Serialize;

use super::models::{
    CreateContactBody, HoldedContact, HoldedContactFields, HoldedEventFields, TagsBody,
};
use crate::budget::{Observed, RateBudgets, RateLimit};
use crate::upstream;

#[derive(Debug, thiserror::Error)]
pub enum HoldedError {
    #[error("Holded refused the API key ({0})")]
    Unauthorized(u16),
    #[error("Holded has no such record")]
    NotFound,
    #[error("Holded rate limit (429)")]
    RateLimited { retry_after: Option<Duration> },
    #[error("Holded refused the request ({status}): {info}")]
    Rejected { status: u16, info: String },
    #[error("Holded is unavailable ({status})")]
    Unavailable { status: u16 },
    #[error("Holded answered HTTP {status} with an HTML page instead of JSON")]
    HtmlPage { status: u16 },
    #[error("Holded answered with an unreadable body: {0}")]
    BadBody(String),
    #[error("Holded request failed: {0}")]
    Transport(String),
}

/// One base URL per Holded v1 module, as in the `servers` of each spec.
#[derive(Clone, Debug)]
pub struct HoldedEndpoints {
    pub invoicing: url::Url,
    pub crm: url::Url,
}

impl HoldedEndpoints {
    /// `https://api.holded.com` → `…/api/invoicing/v1` and `…/api/crm/v1`.
    pub fn from_base(base: &url::Url) -> Self {
        HoldedEndpoints {
            invoicing: upstream::join(base, &["api", "invoicing", "v1"]),
            crm: upstream::join(base, &["api", "crm", "v1"]),
        }
    }
}

/// Holded documents no v1 limit (reference §2.6); existing clients self-throttle to
/// 10/s, and v2 allows 100/min. Five a second stays clear of both.
pub const DEFAULT_LIMIT: RateLimit = RateLimit {
    calls: 5,
    per: Duration::from_secs(1),
};

#[derive(Clone)]
pub struct HoldedClient {
    http: reqwest::Client,
    endpoints: HoldedEndpoints,
    /// Keyed by a digest of the API key: one budget per Holded account.
    budgets: Arc<RateBudgets<[u8; 32]>>,
}

#[derive(serde::Deserialize)]
struct Created {
    id: String,
}

impl HoldedClient {
    pub fn new(endpoints: HoldedEndpoints, timeout: Duration) -> Self {
        Self::with_budget(endpoints, timeout, DEFAULT_LIMIT)
    }

    pub fn with_budget(endpoints: HoldedEndpoints, timeout: Duration, limit: RateLimit) -> Self {
        HoldedClient {
            http: upstream::http_client(timeout),
            endpoints,
            budgets: Arc::new(RateBudgets::new(limit, None)),
        }
    }

    /// Proves the key works with a read that changes nothing (a contact lookup by a
    /// `customId` no record carries).
    pub async fn check_key(&self, key: &SecretString) -> Result<(), HoldedError> {
        self.find_contacts_by_custom_id(key, "ghl-holded-sync-check")
            .await
            .map(drop)
    }

    /// Contacts whose `customId` is `custom_id` (we write the GHL id there on create).
    pub async fn find_contacts_by_custom_id(
        &self,
        key: &SecretString,
        custom_id: &str,
    ) -> Result<Vec<HoldedContact>, HoldedError> {
        let mut url = upstream::join(&self.endpoints.invoicing, &["contacts"]);
        url.query_pairs_mut().append_pair("customId", custom_id);
        let body = self.send(key, Method::GET, url, None::<&()>).await?;
        serde_json::from_value(body).map_err(|e| HoldedError::BadBody(e.to_string()))
    }

    pub async fn get_contact(
        &self,
        key: &SecretString,
        id: &str,
    ) -> Result<HoldedContact, HoldedError> {
        let url = upstream::join(&self.endpoints.invoicing, &["contacts", id]);
        let body = self.send(key, Method::GET, url, None::<&()>).await?;
        serde_json::from_value(body).map_err(|e| HoldedError::BadBody(e.to_string()))
    }

    /// Creates the contact and returns its Holded id.
    pub async fn create_contact(
        &self,
        key: &SecretString,
        custom_id: &str,
        fields: &HoldedContactFields,
    ) -> Result<String, HoldedError> {
        let url = upstream::join(&self.endpoints.invoicing, &["contacts"]);
        let body = CreateContactBody { custom_id, fields };
        let created = self.send(key, Method::POST, url, Some(&body)).await?;
        let created: Created =
            serde_json::from_value(created).map_err(|e| HoldedError::BadBody(e.to_string()))?;
        Ok(created.id)
    }

    pub async fn update_contact(
        &self,
        key: &SecretString,
        id: &str,
        fields: &HoldedContactFields,
    ) -> Result<(), HoldedError> {
        let url = upstream::join(&self.endpoints.invoicing, &["contacts", id]);
        self.send(key, Method::PUT, url, Some(fields))
            .await
            .map(drop)
    }

    pub async fn set_contact_tags(
        &self,
        key: &SecretString,
        id: &str,
        tags: &[String],
    ) -> Result<(), HoldedError> {
        let url = upstream::join(&self.endpoints.invoicing, &["contacts", id]);
        self.send(key, Method::PUT, url, Some(&TagsBody { tags }))
            .await
            .map(drop)
    }

    pub async fn delete_contact(&self, key: &SecretString, id: &str) -> Result<(), HoldedError> {
        let url = upstream::join(&self.endpoints.invoicing, &["contacts", id]);
        self.send(key, Method::DELETE, url, None::<&()>)
            .await
            .map(drop)
    }

    /// Creates a CRM event and returns its Holded id.
    pub async fn create_event(
        &self,
        key: &SecretString,
        fields: &HoldedEventFields,
    ) -> Result<String, HoldedError> {
        let url = upstream::join(&self.endpoints.crm, &["events"]);
        let created = self.send(key, Method::POST, url, Some(fields)).await?;
        let created: Created =
            serde_json::from_value(created).map_err(|e| HoldedError::BadBody(e.to_string()))?;
        Ok(created.id)
    }

    /// The first event carrying `tag`, walking `GET /events?page=1,2,…` until an empty page
    /// or `max_pages` (v1 documents neither filters nor a page size for events).
    pub async fn find_event_tagged(
        &self,
        key: &SecretString,
        tag: &str,
        max_pages: u32,
    ) -> Result<Option<String>, HoldedError> {
        #[derive(serde::Deserialize)]
        struct Listed {
            id: String,
            #[serde(default)]
            tags: Option<Vec<String>>,
        }
        for page in 1..=max_pages {
            let mut url = upstream::join(&self.endpoints.crm, &["events"]);
            url.query_pairs_mut().append_pair("page", &page.to_string());
            let body = self.send(key, Method::GET, url, None::<&()>).await?;
            let events: Vec<Listed> =
                serde_json::from_value(body).map_err(|e| HoldedError::BadBody(e.to_string()))?;
            if events.is_empty() {
                return Ok(None);
            }
            if let Some(found) = events.into_iter().find(|e| {
                e.tags
                    .as_deref()
                    .unwrap_or_default()
                    .iter()
                    .any(|t| t == tag)
            }) {
                return Ok(Some(found.id));
            }
        }
        tracing::warn!(
            tag,
            max_pages,
            "gave up looking for an event after the page limit"
        );
        Ok(None)
    }

    pub async fn update_event(
        &self,
        key: &SecretString,
        id: &str,
        fields: &HoldedEventFields,
    ) -> Result<(), HoldedError> {
        let url = upstream::join(&self.endpoints.crm, &["events", id]);
        self.send(key, Method::PUT, url, Some(fields))
            .await
            .map(drop)
    }

    pub async fn delete_event(&self, key: &SecretString, id: &str) -> Result<(), HoldedError> {
        let url = upstream::join(&self.endpoints.crm, &["events", id]);
        self.send(key, Method::DELETE, url, None::<&()>)
            .await
            .map(drop)
    }

    async fn send<B: Serialize>(
        &self,
        key: &SecretString,
        method: Method,
        url: url::Url,
        body: Option<&B>,
    ) -> Result<serde_json::Value, HoldedError> {
        let account: [u8; 32] = sha2::Sha256::digest(key.expose_secret().as_bytes()).into();
        let waited = self.budgets.acquire(&account).await;
        let metrics = crate::metrics::global();
        metrics.rate_limit_wait("holded", waited);
        let mut key_header =
            HeaderValue::from_str(key.expose_secret()).map_err(|_| HoldedError::Unauthorized(0))?;
        key_header.set_sensitive(true);
        let mut request = self
            .http
            .request(method, url)
            .header("key", key_header)
            .header("Accept", "application/json");
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request.send().await.map_err(|e| {
            metrics.upstream_call("holded", None);
            HoldedError::Transport(upstream::describe(&e))
        })?;
        let status = response.status().as_u16();
        metrics.upstream_call("holded", Some(status));
        let retry_after = upstream::retry_after(response.headers());
        if status == 429 {
            let pause = retry_after.unwrap_or(Duration::from_secs(1));
            self.budgets.observe(
                &account,
                Observed {
                    retry_after: Some(pause),
                    ..Observed::default()
                },
            );
        }
        let is_json = response
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.contains("json"));
        let bytes = response
            .bytes()
            .await
            .map_err(|e| HoldedError::Transport(upstream::describe(&e)))?;
        interpret(status, is_json, retry_after, &bytes)
    }
}

/// Turns a Holded answer into its JSON body or the error it really is.
fn interpret(
    status: u16,
    is_json: bool,
    retry_after: Option<Duration>,
    bytes: &[u8],
) -> Result<serde_json::Value, HoldedError> {
    match status {
        401 | 403 => return Err(HoldedError::Unauthorized(status)),
        429 => return Err(HoldedError::RateLimited { retry_after }),
        408 | 500..=599 => return Err(HoldedError::Unavailable { status }),
        _ => {}
    }
    let looks_html = bytes.trim_ascii_start().starts_with(b"<");
    if looks_html
        || (!is_json
            && !bytes.is_empty()
            && serde_json::from_slice::<serde_json::Value>(bytes).is_err())
    {
        return Err(HoldedError::HtmlPage { status });
    }
    let body: serde_json::Value =
        serde_json::from_slice(bytes).map_err(|e| HoldedError::BadBody(e.to_string()))?;
    let envelope_status = body.get("status").and_then(serde_json::Value::as_i64);
    let info = body
        .get("info")
        .and_then(serde_json::Value::as_str)
        .unwrap_or_default()
        .to_owned();
    if envelope_status == Some(0) || !(200..300).contains(&status) {
        // Only Holded's own envelope says a record is gone; a bare 404 may be a wrong
        // HOLDED_API_BASE, and must not make us recreate or forget records.
        if info.eq_ignore_ascii_case("not found") {
            return Err(HoldedError::NotFound);
        }
        return Err(HoldedError::Rejected { status, info });
    }
    Ok(body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_zero_with_http_200_is_an_error() {
        let err = interpret(
            200,
            true,
            None,
            br#"{"status":0,"info":"contactId needed"}"#,
        )
        .unwrap_err();
        assert!(
            matches!(err, HoldedError::Rejected { status: 200, ref info } if info == "contactId needed")
        );
        let err = interpret(200, true, None, br#"{"status":0,"info":"Not found"}"#).unwrap_err();
        assert!(matches!(err, HoldedError::NotFound));
        let err = interpret(
            404,
            true,
            None,
            br#"{"status":404,"title":"Route not found"}"#,
        )
        .unwrap_err();
        assert!(matches!(err, HoldedError::Rejected { status: 404, .. }));
    }

    #[test]
    fn html_with_http_200_is_an_error() {
        let err = interpret(200, false, None, b"<!DOCTYPE html><html>404</html>").unwrap_err();
        assert!(matches!(err, HoldedError::HtmlPage { status: 200 }));
        let err = interpret(200, true, None, b"  <html></html>").unwrap_err();
        assert!(matches!(err, HoldedError::HtmlPage { .. }));
    }

    #[test]
    fn success_envelopes_and_arrays_pass() {
        let ok = interpret(
            201,
            true,
            None,
            br#"{"status":1,"info":"Created","id":"5ac4f2cec839ea004e18a463"}"#,
        )
        .unwrap();
        assert_eq!(ok["id"], "5ac4f2cec839ea004e18a463");
        assert!(interpret(200, true, None, b"[]").unwrap().is_array());
    }

    #[test]
    fn throttling_and_outages_are_classified() {
        let err = interpret(429, true, Some(Duration::from_secs(3)), b"{}").unwrap_err();
        assert!(
            matches!(err, HoldedError::RateLimited { retry_after: Some(d) } if d.as_secs() == 3)
        );
        assert!(matches!(
            interpret(503, false, None, b"").unwrap_err(),
            HoldedError::Unavailable { status: 503 }
        ));
        assert!(matches!(
            interpret(401, true, None, b"{}").unwrap_err(),
            HoldedError::Unauthorized(401)
        ));
    }

    #[test]
    fn create_body_uses_capital_custom_id() {
        let fields = HoldedContactFields {
            name: "Ada".into(),
            ..Default::default()
        };
        let body = serde_json::to_value(CreateContactBody {
            custom_id: "g1",
            fields: &fields,
        })
        .unwrap();
        assert_eq!(body["CustomId"], "g1");
        assert_eq!(body["name"], "Ada");
        assert!(body.get("customId").is_none());
    }
}
