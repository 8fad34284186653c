//! The sweeper: GHL loses webhooks, so every `SWEEP_INTERVAL` each location's contacts
//! updated since its watermark are queued again. The watermark moves only after the
//! queueing has committed, so a crash mid-sweep repeats work rather than losing it.
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio_util::sync::CancellationToken;

use super::error::SyncError;
use super::worker::WorkSignal;
use crate::domain::{EntityKey, EntityKind, GhlId, LocationId};
use crate::ghl::GhlClient;
use crate::store::{SharedStore, WorkRequest};
use crate::tenants::{Tenant, TenantDirectory};

/// Search results may lag a few seconds behind a change (reference §1.4), so each sweep
/// looks this far behind its watermark. Re-queued unchanged contacts cost a GHL read and
/// no Holded write.
const SEARCH_LAG: Duration = Duration::from_secs(60);
const PAGE_LIMIT: u32 = 100;

pub struct Sweeper {
    store: SharedStore,
    ghl: GhlClient,
    tenants: Arc<dyn TenantDirectory>,
    signal: WorkSignal,
    interval: Duration,
}

impl Sweeper {
    pub fn new(
        store: SharedStore,
        ghl: GhlClient,
        tenants: Arc<dyn TenantDirectory>,
        signal: WorkSignal,
        interval: Duration,
    ) -> Self {
        Sweeper {
            store,
            ghl,
            tenants,
            signal,
            interval,
        }
    }

    pub async fn run(self, shutdown: CancellationToken) {
        loop {
            tokio::select! {
                _ = tokio::time::sleep(self.interval) => {}
                _ = shutdown.cancelled() => return,
            }
            for tenant in self.tenants.all().await {
                match self.sweep(&tenant).await {
                    Ok(0) => {}
                    Ok(queued) => {
                        tracing::info!(location = %tenant.location_id, queued, "sweep queued changed contacts");
                        self.signal.notify();
                    }
                    Err(error) => {
                        tracing::warn!(location = %tenant.location_id, %error, "sweep failed; the next one retries")
                    }
                }
            }
        }
    }

    /// Queues the contacts of one location changed since its watermark; returns how many.
    pub async fn sweep(&self, tenant: &Tenant) -> Result<usize, SyncError> {
        let location = &tenant.location_id;
        let interval = chrono::Duration::from_std(self.interval).unwrap_or(chrono::Duration::MAX);
        let lag = chrono::Duration::from_std(SEARCH_LAG).expect("small duration");
        let watermark = self
            .store
            .sweep_watermark(location)
            .await?
            .unwrap_or_else(|| Utc::now() - interval);
        let mut newest = watermark;
        let mut cursor = None;
        let mut queued = 0;
        loop {
            let hits = self
                .ghl
                .search_updated_since(tenant.ghl(), watermark - lag, cursor.as_ref(), PAGE_LIMIT)
                .await?
                .contacts;
            let requests: Vec<WorkRequest> = hits
                .iter()
                .filter_map(|hit| GhlId::parse(&hit.id).ok())
                .map(|ghl_id| contact_work(location, ghl_id))
                .collect();
            self.store.enqueue(&requests).await?;
            queued += requests.len();
            newest = hits
                .iter()
                .filter_map(|h| h.date_updated.as_deref())
                .filter_map(|d| DateTime::parse_from_rfc3339(d).ok())
                .map(|d| d.with_timezone(&Utc))
                .fold(newest, DateTime::max);
            cursor = hits.last().and_then(|h| h.search_after.clone());
            if hits.len() < PAGE_LIMIT as usize || cursor.is_none() {
                break;
            }
        }
        self.store.set_sweep_watermark(location, newest).await?;
        Ok(queued)
    }
}

pub fn contact_work(location: &LocationId, ghl_id: GhlId) -> WorkRequest {
    WorkRequest {
        key: EntityKey {
            location_id: location.clone(),
            kind: EntityKind::Contact,
            ghl_id,
        },
        parent: None,
        deleted: false,
    }
}
