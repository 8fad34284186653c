//! Prometheus metrics of the process, served at `GET /metrics` (OpenMetrics text).
//!
//! One process is one service, so the counters live in one process-wide registry that
//! every layer records into without threading a handle through each call.
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use prometheus_client::encoding::text::encode;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct WebhookLabels {
    event_type: String,
    outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct SyncLabels {
    kind: String,
    outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct UpstreamLabels {
    api: String,
    status: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ApiLabels {
    api: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StateLabels {
    state: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabels {
    outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KindLabels {
    kind: String,
}

pub struct Metrics {
    registry: Mutex<Registry>,
    webhooks: Family<WebhookLabels, Counter>,
    syncs: Family<SyncLabels, Histogram>,
    upstream_calls: Family<UpstreamLabels, Counter>,
    rate_limit_waits: Family<ApiLabels, Counter>,
    rate_limit_wait_seconds: Family<ApiLabels, Counter<f64, std::sync::atomic::AtomicU64>>,
    token_refreshes: Family<OutcomeLabels, Counter>,
    dead_letters: Family<KindLabels, Counter>,
    work_items: Family<StateLabels, Gauge>,
    tenants: Family<StateLabels, Gauge>,
}

/// Webhook types are GHL's; anything else is folded into one label value so a sender
/// cannot grow the label set.
const KNOWN_EVENT_TYPES: &[&str] = &[
    "ContactCreate",
    "ContactUpdate",
    "ContactDelete",
    "ContactTagUpdate",
    "ContactDndUpdate",
    "TaskCreate",
    "TaskComplete",
    "TaskDelete",
    "NoteCreate",
    "NoteUpdate",
    "NoteDelete",
    "AppointmentCreate",
    "AppointmentUpdate",
    "AppointmentDelete",
    "INSTALL",
    "UNINSTALL",
];

pub fn global() -> &'static Metrics {
    static METRICS: OnceLock<Metrics> = OnceLock::new();
    METRICS.get_or_init(Metrics::new)
}

impl Metrics {
    fn new() -> Self {
        let metrics = Metrics {
            registry: Mutex::new(Registry::with_prefix("ghl_holded_sync")),
            webhooks: Family::default(),
            syncs: Family::new_with_constructor(|| {
                Histogram::new(exponential_buckets(0.005, 2.0, 14))
            }),
            upstream_calls: Family::default(),
            rate_limit_waits: Family::default(),
            rate_limit_wait_seconds: Family::default(),
            token_refreshes: Family::default(),
            dead_letters: Family::default(),
            work_items: Family::default(),
            tenants: Family::default(),
        };
        {
            let mut r = metrics.registry.lock().expect("registry lock");
            r.register(
                "webhooks",
                "Webhooks received, by event type and outcome",
                metrics.webhooks.clone(),
            );
            r.register(
                "sync_duration_seconds",
                "Duration of one work item's sync, by kind and outcome",
                metrics.syncs.clone(),
            );
            r.register(
                "upstream_calls",
                "Calls to GHL and Holded, by API and HTTP status (error: no answer)",
                metrics.upstream_calls.clone(),
            );
            r.register(
                "rate_limit_waits",
                "Calls that waited for rate budget, by API",
                metrics.rate_limit_waits.clone(),
            );
            r.register(
                "rate_limit_wait_seconds",
                "Time spent waiting for rate budget, by API",
                metrics.rate_limit_wait_seconds.clone(),
            );
            r.register(
                "token_refreshes",
                "OAuth token refreshes, by outcome",
                metrics.token_refreshes.clone(),
            );
            r.register(
                "dead_letters",
                "Work items moved to the dead state, by kind",
                metrics.dead_letters.clone(),
            );
            r.register(
                "work_items",
                "Work items by state, read from the store at scrape time",
                metrics.work_items.clone(),
            );
            r.register(
                "tenants",
                "Installed locations by state (active, awaiting_key, needs_reconnect, uninstalled)",
                metrics.tenants.clone(),
            );
        }
        metrics
    }

    /// `event_type` is `None` when the body could not be trusted enough to read it.
    pub fn webhook(&self, event_type: Option<&str>, outcome: &str) {
        let event_type = match event_type {
            None => "unverified",
            Some(known) if KNOWN_EVENT_TYPES.contains(&known) => known,
            Some(_) => "other",
        };
        self.webhooks
            .get_or_create(&WebhookLabels {
                event_type: event_type.into(),
                outcome: outcome.into(),
            })
            .inc();
    }

    pub fn sync(&self, kind: &str, outcome: &str, took: Duration) {
        self.syncs
            .get_or_create(&SyncLabels {
                kind: kind.into(),
                outcome: outcome.into(),
            })
            .observe(took.as_secs_f64());
    }

    /// `status`: the HTTP status, or `None` when no answer came back.
    pub fn upstream_call(&self, api: &str, status: Option<u16>) {
        let status = status.map_or_else(|| "error".to_owned(), |s| s.to_string());
        self.upstream_calls
            .get_or_create(&UpstreamLabels {
                api: api.into(),
                status,
            })
            .inc();
    }

    pub fn rate_limit_wait(&self, api: &str, waited: Duration) {
        if waited.is_zero() {
            return;
        }
        let labels = ApiLabels { api: api.into() };
        self.rate_limit_waits.get_or_create(&labels).inc();
        self.rate_limit_wait_seconds
            .get_or_create(&labels)
            .inc_by(waited.as_secs_f64());
    }

    pub fn token_refresh(&self, outcome: &str) {
        self.token_refreshes
            .get_or_create(&OutcomeLabels {
                outcome: outcome.into(),
            })
            .inc();
    }

    pub fn dead_letter(&self, kind: &str) {
        self.dead_letters
            .get_or_create(&KindLabels { kind: kind.into() })
            .inc();
    }

    pub fn set_work_items(&self, state: &str, count: i64) {
        self.work_items
            .get_or_create(&StateLabels {
                state: state.into(),
            })
            .set(count);
    }

    pub fn set_tenants(&self, state: &str, count: i64) {
        self.tenants
            .get_or_create(&StateLabels {
                state: state.into(),
            })
            .set(count);
    }

    /// The OpenMetrics text of every metric.
    pub fn render(&self) -> String {
        let mut text = String::new();
        encode(&mut text, &self.registry.lock().expect("registry lock"))
            .expect("writing to a String");
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_every_family_with_labels() {
        let metrics = Metrics::new();
        metrics.webhook(Some("ContactCreate"), "stored");
        metrics.webhook(Some("<script>"), "ignored");
        metrics.webhook(None, "invalid_signature");
        metrics.sync("contact", "created", Duration::from_millis(12));
        metrics.upstream_call("ghl", Some(200));
        metrics.upstream_call("holded", None);
        metrics.rate_limit_wait("ghl", Duration::from_millis(500));
        metrics.rate_limit_wait("ghl", Duration::ZERO);
        metrics.token_refresh("refreshed");
        metrics.dead_letter("task");
        metrics.set_work_items("pending", 3);
        let text = metrics.render();
        for expected in [
            r#"ghl_holded_sync_webhooks_total{event_type="ContactCreate",outcome="stored"} 1"#,
            r#"ghl_holded_sync_webhooks_total{event_type="other",outcome="ignored"} 1"#,
            r#"ghl_holded_sync_webhooks_total{event_type="unverified",outcome="invalid_signature"} 1"#,
            r#"ghl_holded_sync_webhooks_total{event_type="unverified",outcome="invalid_signature"} 1"#,
            r#"ghl_holded_sync_sync_duration_seconds_count{kind="contact",outcome="created"} 1"#,
            r#"ghl_holded_sync_upstream_calls_total{api="holded",status="error"} 1"#,
            r#"ghl_holded_sync_rate_limit_waits_total{api="ghl"} 1"#,
            r#"ghl_holded_sync_token_refreshes_total{outcome="refreshed"} 1"#,
            r#"ghl_holded_sync_dead_letters_total{kind="task"} 1"#,
            r#"ghl_holded_sync_work_items{state="pending"} 3"#,
            "# EOF",
        ] {
            assert!(text.contains(expected), "missing {expected} in\n{text}");
        }
    }
}
