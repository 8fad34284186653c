//! Workers: claim due work with a lease, sync it, and record the result.
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use super::activity::ActivitySync;
use super::backoff;
use super::contact::ContactSync;
use super::error::SyncError;
use crate::domain::EntityKind;
use crate::store::{Completion, SharedStore, WorkItem};
use crate::tenants::{Absence, TenantDirectory};

/// Wakes idle workers when new work is committed, so an idle service syncs at once
/// instead of at the next poll.
#[derive(Clone, Default)]
pub struct WorkSignal(Arc<Notify>);

impl WorkSignal {
    pub fn notify(&self) {
        self.0.notify_waiters();
    }
}

#[derive(Clone, Debug)]
pub struct WorkerSettings {
    pub workers: usize,
    pub lease: Duration,
    /// How often an idle worker looks for due work without being woken (retries, other replicas).
    pub poll_interval: Duration,
    /// Attempts before a transiently failing item is moved to the dead state.
    pub max_attempts: i64,
    /// The first retry waits up to this long; each further one up to twice as long…
    pub retry_base: Duration,
    /// …but never longer than this.
    pub retry_cap: Duration,
    /// How long a sync in flight at shutdown may still take before it is handed back.
    pub drain: Duration,
}

impl Default for WorkerSettings {
    fn default() -> Self {
        WorkerSettings {
            workers: 4,
            lease: Duration::from_secs(120),
            poll_interval: Duration::from_secs(1),
            max_attempts: 12,
            retry_base: Duration::from_secs(1),
            retry_cap: Duration::from_secs(3600),
            drain: Duration::from_secs(10),
        }
    }
}

pub struct WorkerPool {
    store: SharedStore,
    tenants: Arc<dyn TenantDirectory>,
    contacts: ContactSync,
    activities: ActivitySync,
    signal: WorkSignal,
    settings: WorkerSettings,
}

impl WorkerPool {
    pub fn new(
        store: SharedStore,
        tenants: Arc<dyn TenantDirectory>,
        contacts: ContactSync,
        activities: ActivitySync,
        signal: WorkSignal,
        settings: WorkerSettings,
    ) -> Arc<Self> {
        Arc::new(WorkerPool {
            store,
            tenants,
            contacts,
            activities,
            signal,
            settings,
        })
    }

    /// Runs the workers until `shutdown`; an item in flight is finished first.
    pub async fn run(self: Arc<Self>, shutdown: CancellationToken) {
        let mut workers = tokio::task::JoinSet::new();
        for _ in 0..self.settings.workers {
            workers.spawn(self.clone().work(shutdown.clone()));
        }
        while workers.join_next().await.is_some() {}
    }

    async fn work(self: Arc<Self>, shutdown: CancellationToken) {
        while !shutdown.is_cancelled() {
            // Registered before claiming, so a signal sent between an empty claim and the
            // wait below is not missed.
            let woken = self.signal.0.notified();
            tokio::pin!(woken);
            woken.as_mut().enable();
            match self.store.claim(1, self.settings.lease).await {
                Ok(items) if !items.is_empty() => {
                    for item in items {
                        self.process(item, &shutdown).await;
                    }
                    continue;
                }
                Ok(_) => {}
                Err(error) => tracing::error!(%error, "could not claim work"),
            }
            tokio::select! {
                _ = woken => {}
                _ = tokio::time::sleep(self.settings.poll_interval) => {}
                _ = shutdown.cancelled() => {}
            }
        }
    }

    async fn process(&self, item: WorkItem, shutdown: &CancellationToken) {
        let started = Instant::now();
        // Bounded well inside the lease, so no other worker can claim an item still in flight.
        let budget = self.settings.lease * 3 / 4;
        // At shutdown an item in flight gets `drain` to finish; then it is handed back
        // untouched, so the next process (or replica) takes it at once.
        let drained = async {
            shutdown.cancelled().await;
            tokio::time::sleep(self.settings.drain).await;
        };
        let result = tokio::select! {
            result = tokio::time::timeout(budget, self.sync(&item)) => match result {
                Ok(result) => result,
                Err(_) => Err(SyncError::transient(format!("sync took longer than {budget:?}"))),
            },
            _ = drained => {
                if let Err(error) = self.store.release(&item).await {
                    tracing::error!(key = %item.key, %error, "could not release the lease at shutdown");
                }
                tracing::info!(key = %item.key, "released at shutdown");
                return;
            }
        };
        let took = started.elapsed();
        let duration_ms = took.as_millis() as u64;
        let key = &item.key;
        let metrics = crate::metrics::global();
        let recorded = match result {
            Ok(synced) => {
                let holded_id = synced.holded_id.as_deref().unwrap_or("-");
                metrics.sync(key.kind.as_str(), synced.outcome, took);
                let completion = self.store.finish(&item, synced.link).await;
                tracing::info!(
                    location = %key.location_id, kind = %key.kind, ghl_id = %key.ghl_id,
                    holded_id, outcome = synced.outcome, attempt = item.attempts + 1,
                    duration_ms, completion = ?completion.as_ref().ok(), "sync"
                );
                completion
            }
            Err(SyncError::Transient {
                reason,
                retry_after,
            }) if item.attempts + 1 < self.settings.max_attempts => {
                let delay = backoff::delay(
                    self.settings.retry_base,
                    self.settings.retry_cap,
                    item.attempts,
                    retry_after,
                );
                metrics.sync(key.kind.as_str(), "retry", took);
                let due = chrono::Utc::now()
                    + chrono::Duration::from_std(delay).unwrap_or(chrono::Duration::MAX);
                // Logged once recorded: a line saying "retry" must mean the store knows it.
                let recorded = self.store.retry_later(&item, due, &reason).await;
                tracing::warn!(
                    location = %key.location_id, kind = %key.kind, ghl_id = %key.ghl_id,
                    outcome = "retry", error = %reason, attempt = item.attempts + 1,
                    retry_in_ms = delay.as_millis() as u64, duration_ms,
                    completion = ?recorded.as_ref().ok(), "sync"
                );
                recorded
            }
            // The claim skips a location that is not active, so the item waits there
            // untouched until a re-install or a Holded key makes it active again.
            Err(SyncError::Paused(reason)) => {
                metrics.sync(key.kind.as_str(), "paused", took);
                let recorded = self
                    .store
                    .release(&item)
                    .await
                    .map(|()| Completion::Requeued);
                tracing::warn!(
                    location = %key.location_id, kind = %key.kind, ghl_id = %key.ghl_id,
                    outcome = "paused", error = %reason, duration_ms, "sync"
                );
                recorded
            }
            Err(error) => {
                let reason = match &error {
                    SyncError::Transient { reason, .. } => {
                        format!("gave up after {} attempts: {reason}", item.attempts + 1)
                    }
                    SyncError::Permanent(reason) | SyncError::Paused(reason) => reason.clone(),
                };
                metrics.sync(key.kind.as_str(), "dead", took);
                metrics.dead_letter(key.kind.as_str());
                let recorded = self.store.bury(&item, &reason).await;
                tracing::error!(
                    location = %key.location_id, kind = %key.kind, ghl_id = %key.ghl_id,
                    outcome = "dead", error = %reason, attempt = item.attempts + 1, duration_ms,
                    completion = ?recorded.as_ref().ok(), "sync"
                );
                recorded
            }
        };
        match recorded {
            Ok(Completion::LeaseLost) => {
                tracing::warn!(key = %item.key, "lease expired before the result was recorded")
            }
            Ok(_) => {}
            Err(error) => {
                tracing::error!(key = %item.key, %error, "could not record the sync result")
            }
        }
    }

    async fn sync(&self, item: &WorkItem) -> Result<super::Synced, SyncError> {
        let location_id = &item.key.location_id;
        let Some(tenant) = self.tenants.tenant(location_id).await else {
            return Err(match self.tenants.absence(location_id).await {
                Absence::Unknown => {
                    SyncError::Permanent(format!("no credentials for location {location_id}"))
                }
                Absence::Waiting(reason) => SyncError::Paused(reason),
                Absence::Unavailable(reason) => SyncError::transient(reason),
            });
        };
        match item.key.kind {
            EntityKind::Contact => self.contacts.sync(&tenant, item).await,
            EntityKind::Task | EntityKind::Note | EntityKind::Appointment => {
                self.activities.sync(&tenant, item).await
            }
        }
    }
}
