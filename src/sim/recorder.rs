//! Records every request a simulator receives, with the status it actually answered.

use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::body::{to_bytes, Body};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::faults::Dropped;

/// Bodies above this are refused; no simulated API accepts anything near it.
const MAX_BODY_BYTES: usize = 16 * 1024 * 1024;

#[derive(Clone, Default)]
pub struct RequestLog {
    entries: Arc<Mutex<Vec<RecordedRequest>>>,
}

#[derive(Clone, Debug)]
pub struct RecordedRequest {
    pub method: Method,
    pub path: String,
    pub query: Option<String>,
    /// Status sent to the client; 0 when the connection was dropped instead.
    pub status: u16,
    pub headers: HeaderMap,
    /// The request body, lossily decoded as UTF-8.
    pub body: String,
    /// When the request arrived.
    pub at: Instant,
}

impl RequestLog {
    pub fn all(&self) -> Vec<RecordedRequest> {
        self.entries.lock().unwrap().clone()
    }

    pub fn count(&self, method: &Method, path_prefix: &str) -> usize {
        self.entries
            .lock()
            .unwrap()
            .iter()
            .filter(|r| r.method == method && r.path.starts_with(path_prefix))
            .count()
    }

    /// POST, PUT, PATCH and DELETE requests on any path.
    pub fn writes(&self) -> usize {
        let writes = [Method::POST, Method::PUT, Method::PATCH, Method::DELETE];
        self.entries
            .lock()
            .unwrap()
            .iter()
            .filter(|r| writes.contains(&r.method))
            .count()
    }

    pub fn clear(&self) {
        self.entries.lock().unwrap().clear();
    }

    fn push(&self, entry: RecordedRequest) {
        self.entries.lock().unwrap().push(entry);
    }
}

/// Outermost layer: buffers the body so it can be both recorded and handed on.
///
/// A request is logged once its response is ready, so a held request appears only after its
/// gate opens (use `Gate::arrivals` to observe it earlier); `at` is still its arrival time.
pub(crate) async fn layer(State(log): State<RequestLog>, request: Request, next: Next) -> Response {
    let at = Instant::now();
    let (parts, body) = request.into_parts();
    let mut entry = RecordedRequest {
        method: parts.method.clone(),
        path: parts.uri.path().to_owned(),
        query: parts.uri.query().map(str::to_owned),
        status: 0,
        headers: parts.headers.clone(),
        body: String::new(),
        at,
    };
    let bytes = match to_bytes(body, MAX_BODY_BYTES).await {
        Ok(bytes) => bytes,
        Err(_) => {
            entry.status = StatusCode::PAYLOAD_TOO_LARGE.as_u16();
            log.push(entry);
            return StatusCode::PAYLOAD_TOO_LARGE.into_response();
        }
    };
    entry.body = String::from_utf8_lossy(&bytes).into_owned();
    let response = next
        .run(Request::from_parts(parts, Body::from(bytes)))
        .await;
    entry.status = match response.extensions().get::<Dropped>() {
        Some(Dropped) => 0,
        None => response.status().as_u16(),
    };
    log.push(entry);
    response
}

#[cfg(test)]
mod tests {
    use axum::http::Method;
    use serde_json::json;

    use crate::sim::holded::HoldedSim;

    #[tokio::test]
    async fn records_every_request_with_body_query_and_status() {
        let sim = HoldedSim::start().await;
        sim.add_api_key("k");
        let client = reqwest::Client::new();
        let base = format!("{}/api/invoicing/v1/contacts", sim.base_url());
        client
            .post(&base)
            .header("key", "k")
            .json(&json!({"name": "Ana"}))
            .send()
            .await
            .unwrap();
        client
            .get(format!("{base}?customId=a,b"))
            .header("key", "nope")
            .send()
            .await
            .unwrap();
        let all = sim.requests().all();
        assert_eq!(all.len(), 2);
        assert_eq!(all[0].status, 201);
        assert!(all[0].body.contains("\"Ana\""));
        assert_eq!(all[1].query.as_deref(), Some("customId=a,b"));
        assert_eq!(all[1].status, 401);
        assert_eq!(all[1].headers["key"], "nope");
        assert!(all[0].at <= all[1].at);
        assert_eq!(sim.requests().count(&Method::GET, "/api/invoicing"), 1);
        assert_eq!(sim.requests().count(&Method::GET, "/api/crm"), 0);
        assert_eq!(sim.requests().writes(), 1);
        sim.requests().clear();
        assert!(sim.requests().all().is_empty());
    }
}
