//! Fault injection shared by both simulators, applied as one axum middleware layer.
//!
//! Rules are checked in insertion order; the first rule that matches the request and wins its
//! probability roll fires. A rule with `remaining: Some(n)` disappears after firing `n` times.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use tokio::sync::watch;

use super::holded::envelope;
use super::server::ConnectionKill;

#[derive(Clone, Default)]
pub struct Faults {
    rules: Arc<Mutex<Vec<FaultRule>>>,
}

impl Faults {
    pub fn push(&self, rule: FaultRule) {
        self.rules.lock().unwrap().push(rule);
    }

    pub fn clear(&self) {
        self.rules.lock().unwrap().clear();
    }

    /// The action to apply to this request, if any rule fires; consumes one use of that rule.
    fn fire(&self, method: &Method, path: &str) -> Option<FaultAction> {
        let mut rules = self.rules.lock().unwrap();
        let index = rules
            .iter()
            .position(|rule| rule.matches(method, path) && rule.roll())?;
        let rule = &mut rules[index];
        let action = rule.action.clone();
        if let Some(remaining) = rule.remaining.as_mut() {
            *remaining -= 1;
            if *remaining == 0 {
                rules.remove(index);
            }
        }
        Some(action)
    }
}

#[derive(Clone, Debug)]
pub struct FaultRule {
    /// `None` matches any method.
    pub method: Option<Method>,
    /// `""` matches any path; compared against the request path without the query.
    pub path_prefix: String,
    pub action: FaultAction,
    /// Chance, rolled per matching request, that the rule fires.
    pub probability: f64,
    /// `Some(n)`: fires `n` times then disappears; `None`: forever.
    pub remaining: Option<u32>,
}

impl FaultRule {
    pub fn always(method: Option<Method>, path_prefix: &str, action: FaultAction) -> Self {
        Self {
            method,
            path_prefix: path_prefix.to_owned(),
            action,
            probability: 1.0,
            remaining: None,
        }
    }

    pub fn times(self, n: u32) -> Self {
        Self {
            remaining: Some(n),
            ..self
        }
    }

    pub fn with_probability(self, p: f64) -> Self {
        Self {
            probability: p.clamp(0.0, 1.0),
            ..self
        }
    }

    fn matches(&self, method: &Method, path: &str) -> bool {
        !matches!(&self.method, Some(m) if m != method) && path.starts_with(&self.path_prefix)
    }

    fn roll(&self) -> bool {
        self.probability >= 1.0 || rand::random::<f64>() < self.probability
    }
}

#[derive(Clone, Debug)]
pub enum FaultAction {
    /// Short-circuits with this status and the API's own error body; `Retry-After` when set.
    Status {
        code: u16,
        retry_after_secs: Option<u64>,
    },
    /// Delay before the handler runs.
    Latency(Duration),
    /// Abort the TCP connection without any response.
    Drop,
    /// Run the handler (state changes now), then hold the response until the gate opens.
    Hold(Gate),
    /// Holded quirk: HTTP 200 with an HTML page.
    HtmlOk,
    /// Holded quirk: HTTP 200 `{"status":0,"info":<text>}`.
    StatusZeroOk(String),
}

/// A barrier for held responses that also counts how many requests reached it.
#[derive(Clone, Debug)]
pub struct Gate {
    open: Arc<watch::Sender<bool>>,
    arrivals: Arc<watch::Sender<usize>>,
}

impl Default for Gate {
    fn default() -> Self {
        Self::new()
    }
}

impl Gate {
    pub fn new() -> Self {
        Self {
            open: Arc::new(watch::Sender::new(false)),
            arrivals: Arc::new(watch::Sender::new(0)),
        }
    }

    /// Releases every held response, and lets later arrivals straight through.
    pub fn open(&self) {
        self.open.send_replace(true);
    }

    /// Requests that have reached the gate (their handler has already run).
    pub fn arrivals(&self) -> usize {
        *self.arrivals.borrow()
    }

    /// Waits until at least `n` requests reached the gate; `false` if `deadline` passed first.
    pub async fn wait_for_arrivals(&self, n: usize, deadline: Duration) -> bool {
        let mut arrivals = self.arrivals.subscribe();
        let reached = tokio::time::timeout(deadline, arrivals.wait_for(|&count| count >= n)).await;
        reached.is_ok()
    }

    async fn hold(&self) {
        self.arrivals.send_modify(|count| *count += 1);
        let mut open = self.open.subscribe();
        // The sender lives in `self`, so `wait_for` cannot fail with a closed channel.
        let _ = open.wait_for(|&is_open| is_open).await;
    }
}

/// Marks a response the fault layer aborted, so the recorder logs status 0.
#[derive(Clone, Copy)]
pub(crate) struct Dropped;

/// How a simulated API shapes the body of an error status; each simulator passes its own.
pub(crate) type ErrorResponder = fn(StatusCode) -> Response;

pub(crate) async fn layer(
    State((faults, error_response)): State<(Faults, ErrorResponder)>,
    request: Request,
    next: Next,
) -> Response {
    let Some(action) = faults.fire(request.method(), request.uri().path()) else {
        return next.run(request).await;
    };
    match action {
        FaultAction::Status {
            code,
            retry_after_secs,
        } => {
            let status = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            let mut response = error_response(status);
            if let Some(secs) = retry_after_secs {
                response
                    .headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from(secs));
            }
            response
        }
        FaultAction::Latency(delay) => {
            tokio::time::sleep(delay).await;
            next.run(request).await
        }
        FaultAction::Drop => {
            if let Some(ConnectInfo(kill)) =
                request.extensions().get::<ConnectInfo<ConnectionKill>>()
            {
                kill.pull();
            }
            // Never written: the connection fails as soon as hyper tries to send it.
            let mut response = StatusCode::INTERNAL_SERVER_ERROR.into_response();
            response.extensions_mut().insert(Dropped);
            response
        }
        FaultAction::Hold(gate) => {
            let response = next.run(request).await;
            gate.hold().await;
            response
        }
        FaultAction::HtmlOk => envelope::html_not_found(),
        FaultAction::StatusZeroOk(info) => envelope::failure(StatusCode::OK, &info),
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use axum::http::Method;
    use serde_json::{json, Value};

    use super::{FaultAction, FaultRule, Gate};
    use crate::sim::holded::HoldedSim;

    const KEY: &str = "fault-key";

    async fn holded() -> (HoldedSim, reqwest::Client, String) {
        let sim = HoldedSim::start().await;
        sim.add_api_key(KEY);
        let url = format!("{}/api/invoicing/v1/contacts", sim.base_url());
        (sim, reqwest::Client::new(), url)
    }

    #[tokio::test]
    async fn status_fault_short_circuits_with_retry_after_then_expires() {
        let (sim, client, url) = holded().await;
        let action = FaultAction::Status {
            code: 503,
            retry_after_secs: Some(7),
        };
        sim.faults()
            .push(FaultRule::always(Some(Method::GET), "/api/invoicing", action).times(1));
        let faulted = client.get(&url).header("key", KEY).send().await.unwrap();
        assert_eq!(faulted.status(), 503);
        assert_eq!(faulted.headers()["retry-after"], "7");
        let body: Value = faulted.json().await.unwrap();
        assert_eq!(body["status"], 0);
        let healthy = client.get(&url).header("key", KEY).send().await.unwrap();
        assert_eq!(healthy.status(), 200);
        let statuses: Vec<u16> = sim.requests().all().iter().map(|r| r.status).collect();
        assert_eq!(statuses, [503, 200]);
    }

    #[tokio::test]
    async fn drop_fault_breaks_the_connection_and_is_recorded_as_zero() {
        let (sim, client, url) = holded().await;
        sim.faults()
            .push(FaultRule::always(None, "", FaultAction::Drop).times(1));
        let outcome = client.get(&url).header("key", KEY).send().await;
        let error = outcome.expect_err("a dropped connection must not produce a response");
        assert!(error.status().is_none());
        assert_eq!(sim.requests().all()[0].status, 0);
        let after = client.get(&url).header("key", KEY).send().await.unwrap();
        assert_eq!(after.status(), 200);
    }

    #[tokio::test]
    async fn hold_fault_applies_the_write_then_waits_for_the_gate() {
        let (sim, client, url) = holded().await;
        let gate = Gate::new();
        sim.faults().push(FaultRule::always(
            Some(Method::POST),
            "/api/invoicing/v1/contacts",
            FaultAction::Hold(gate.clone()),
        ));
        let pending = tokio::spawn({
            let request = client
                .post(&url)
                .header("key", KEY)
                .json(&json!({"name": "Held"}));
            async move { request.send().await }
        });
        assert!(gate.wait_for_arrivals(1, Duration::from_secs(5)).await);
        assert_eq!(sim.contacts(KEY).len(), 1, "handler ran before the hold");
        assert!(!pending.is_finished());
        gate.open();
        let response = pending.await.unwrap().unwrap();
        assert_eq!(response.status(), 201);
        assert_eq!(gate.arrivals(), 1);
    }

    #[tokio::test]
    async fn latency_fault_delays_the_response() {
        let (sim, client, url) = holded().await;
        let delay = Duration::from_millis(300);
        sim.faults()
            .push(FaultRule::always(None, "", FaultAction::Latency(delay)));
        let started = Instant::now();
        let response = client.get(&url).header("key", KEY).send().await.unwrap();
        assert_eq!(response.status(), 200);
        assert!(started.elapsed() >= delay);
    }

    #[tokio::test]
    async fn holded_quirk_faults_answer_200_with_failure_bodies() {
        let (sim, client, url) = holded().await;
        sim.faults()
            .push(FaultRule::always(None, "", FaultAction::HtmlOk).times(1));
        let zero = FaultAction::StatusZeroOk("contactId needed".into());
        sim.faults()
            .push(FaultRule::always(None, "", zero).times(1));
        let html = client.get(&url).header("key", KEY).send().await.unwrap();
        assert_eq!(html.status(), 200);
        assert!(html.text().await.unwrap().starts_with("<!DOCTYPE html>"));
        let envelope = client.get(&url).header("key", KEY).send().await.unwrap();
        assert_eq!(envelope.status(), 200);
        let body: Value = envelope.json().await.unwrap();
        assert_eq!(body, json!({"status": 0, "info": "contactId needed"}));
    }

    #[tokio::test]
    async fn rules_respect_method_prefix_and_probability() {
        let (sim, client, url) = holded().await;
        let teapot = || FaultAction::Status {
            code: 418,
            retry_after_secs: None,
        };
        sim.faults()
            .push(FaultRule::always(Some(Method::POST), "", teapot()));
        sim.faults()
            .push(FaultRule::always(None, "/api/crm", teapot()));
        sim.faults()
            .push(FaultRule::always(None, "", teapot()).with_probability(0.0));
        let response = client.get(&url).header("key", KEY).send().await.unwrap();
        assert_eq!(response.status(), 200);
        sim.faults().clear();
        sim.faults().push(FaultRule::always(None, "", teapot()));
        let response = client.get(&url).header("key", KEY).send().await.unwrap();
        assert_eq!(response.status(), 418);
    }
}
