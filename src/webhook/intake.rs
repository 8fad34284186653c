//! verify → parse → replay window → commit event and work → wake a worker.
use std::time::{Duration, Instant};

use std::sync::Arc;

use async_trait::async_trait;
use axum::http::HeaderMap;
use chrono::Utc;

use super::envelope::{EnvelopeError, WebhookAction, WebhookEnvelope};
use super::verifier::{SignatureError, WebhookVerifier};
use crate::domain::LocationId;
use crate::store::{IngestOutcome, NewEvent, SharedStore, StoreError, WorkRequest};
use crate::sync::WorkSignal;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IntakeOutcome {
    /// Event and work committed.
    Stored,
    /// Seen before (same `webhookId` or same bytes): nothing new to do.
    Duplicate,
    /// Authentic, but not something we act on.
    Ignored,
}

#[derive(Debug, thiserror::Error)]
pub enum IntakeError {
    #[error(transparent)]
    Signature(#[from] SignatureError),
    #[error(transparent)]
    Envelope(#[from] EnvelopeError),
    #[error("timestamp is outside the replay window of {window:?}")]
    Stale { window: Duration },
    #[error("the store could not commit the event: {0}")]
    Store(#[from] StoreError),
}

/// What `INSTALL` / `UNINSTALL` events do (the Marketplace install side). Both must be
/// idempotent: a redelivered event runs them again.
#[async_trait]
pub trait AppLifecycle: Send + Sync {
    async fn installed(
        &self,
        location_id: Option<&LocationId>,
        company_id: Option<&str>,
    ) -> Result<(), StoreError>;

    async fn uninstalled(
        &self,
        location_id: Option<&LocationId>,
        company_id: Option<&str>,
    ) -> Result<(), StoreError>;
}

pub struct WebhookIntake {
    verifier: WebhookVerifier,
    store: SharedStore,
    signal: WorkSignal,
    replay_window: Duration,
    /// GHL's `appId` is the client id up to its first '-'; events of other apps are ignored.
    app_id: Option<String>,
    commit_timeout: Duration,
    /// How long an update to a record synced before waits for more (`WEBHOOK_SETTLE`).
    settle: Duration,
    lifecycle: Option<Arc<dyn AppLifecycle>>,
}

impl WebhookIntake {
    pub fn new(
        verifier: WebhookVerifier,
        store: SharedStore,
        signal: WorkSignal,
        replay_window: Duration,
        settle: Duration,
        client_id: Option<&str>,
    ) -> Self {
        WebhookIntake {
            verifier,
            store,
            signal,
            replay_window,
            app_id: client_id.map(|id| id.split('-').next().unwrap_or(id).to_owned()),
            // Past this, answering 429 (GHL retries it) beats a timeout (GHL drops it).
            commit_timeout: Duration::from_secs(5),
            settle,
            lifecycle: None,
        }
    }

    /// Acts on `INSTALL` / `UNINSTALL` (without it they are only recorded).
    pub fn with_lifecycle(mut self, lifecycle: Arc<dyn AppLifecycle>) -> Self {
        self.lifecycle = Some(lifecycle);
        self
    }

    /// Takes one webhook; logs one line with what became of it.
    pub async fn accept(
        &self,
        headers: &HeaderMap,
        body: &[u8],
    ) -> Result<IntakeOutcome, IntakeError> {
        let started = Instant::now();
        let scheme = self.verifier.verify(headers, body);
        let result = match &scheme {
            Ok(_) => self.store_verified(body).await,
            Err(e) => Err(IntakeError::Signature(e.clone())),
        };
        let duration_ms = started.elapsed().as_micros() as f64 / 1000.0;
        let metrics = crate::metrics::global();
        match &result {
            Ok((envelope, outcome)) => {
                let label = match outcome {
                    IntakeOutcome::Stored => "stored",
                    IntakeOutcome::Duplicate => "duplicate",
                    IntakeOutcome::Ignored => "ignored",
                };
                metrics.webhook(Some(&envelope.event_type), label);
                tracing::info!(
                    location = envelope.location_id.as_ref().map_or("-", LocationId::as_str),
                    event_type = %envelope.event_type,
                    webhook_id = envelope.webhook_id.as_deref().unwrap_or("-"),
                    scheme = ?scheme.as_ref().ok(), outcome = label, duration_ms, "webhook"
                )
            }
            Err(error) => {
                let label = match error {
                    IntakeError::Signature(_) => "invalid_signature",
                    IntakeError::Envelope(_) => "invalid_payload",
                    IntakeError::Stale { .. } => "stale",
                    IntakeError::Store(_) => "store_unavailable",
                };
                metrics.webhook(None, label);
                if let IntakeError::Store(error) = error {
                    tracing::error!(%error, duration_ms, outcome = label, "webhook")
                } else {
                    tracing::warn!(%error, duration_ms, outcome = label, "webhook")
                }
            }
        }
        result.map(|(_, outcome)| outcome)
    }

    async fn store_verified(
        &self,
        body: &[u8],
    ) -> Result<(WebhookEnvelope, IntakeOutcome), IntakeError> {
        let envelope = WebhookEnvelope::parse(body)?;
        if let Some(timestamp) = envelope.timestamp {
            let skew = (Utc::now() - timestamp)
                .abs()
                .to_std()
                .unwrap_or(Duration::MAX);
            if skew > self.replay_window {
                return Err(IntakeError::Stale {
                    window: self.replay_window,
                });
            }
        }
        let foreign_app = match (&self.app_id, &envelope.app_id) {
            (Some(ours), Some(theirs)) => ours != theirs,
            _ => false,
        };
        if foreign_app {
            return Ok((envelope, IntakeOutcome::Ignored));
        }
        let work = match &envelope.action {
            WebhookAction::Sync {
                key,
                parent,
                deleted,
            } => Some(WorkRequest {
                key: key.clone(),
                parent: parent.clone(),
                deleted: *deleted,
            }),
            // Acted on before the event is recorded: a failure answers 429, GHL redelivers,
            // and the redelivery must not be taken for a duplicate.
            action @ (WebhookAction::Install | WebhookAction::Uninstall) => {
                let Some(lifecycle) = &self.lifecycle else {
                    return Ok((envelope, IntakeOutcome::Ignored));
                };
                let location_id = envelope.location_id.as_ref();
                let company_id = envelope.company_id.as_deref();
                if *action == WebhookAction::Install {
                    lifecycle.installed(location_id, company_id).await?;
                } else {
                    lifecycle.uninstalled(location_id, company_id).await?;
                }
                None
            }
            WebhookAction::Ignore => return Ok((envelope, IntakeOutcome::Ignored)),
        };
        // Agency-level install events name no location: they are recorded under the agency.
        let owner = match (&envelope.location_id, &envelope.company_id) {
            (Some(location_id), _) => location_id.to_string(),
            (None, Some(company_id)) => format!("company:{company_id}"),
            (None, None) => "-".to_owned(),
        };
        let event = NewEvent {
            location_id: owner,
            event_type: envelope.event_type.clone(),
            dedupe_key: envelope.dedupe_key.clone(),
            body: body.to_vec(),
            received_at: Utc::now(),
            work,
            settle: self.settle,
        };
        let ingested = tokio::time::timeout(self.commit_timeout, self.store.ingest(event))
            .await
            .map_err(|_| StoreError::Timeout(self.commit_timeout))??;
        let outcome = match ingested {
            IngestOutcome::Accepted => {
                self.signal.notify();
                IntakeOutcome::Stored
            }
            IngestOutcome::Duplicate => IntakeOutcome::Duplicate,
        };
        Ok((envelope, outcome))
    }
}
