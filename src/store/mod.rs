//! Durable state behind one trait: raw events, the work queue, and GHL → Holded links.
//! `http` and `sync` talk to `dyn Store`; only this folder knows SQL.
#[cfg(test)]
mod contract_tests;
mod installations;
mod postgres;
mod sql;
mod sqlite;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::domain::{EntityKey, GhlId, LocationId};

pub use installations::{
    Installations, InstalledLocation, OwnerType, RefreshLease, TenantRecord, TenantState,
    TokenOwner, TokenRecord,
};
pub use postgres::PostgresStore;
pub use sqlite::SqliteStore;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("migration error: {0}")]
    Migration(#[from] sqlx::migrate::MigrateError),
    #[error("schema is not migrated: {0}")]
    NotMigrated(String),
    #[error("the store did not answer within {0:?}")]
    Timeout(Duration),
    #[error("the store is shutting down")]
    Closed,
    #[error("stored row is corrupt: {0}")]
    Corrupt(String),
}

/// A verified webhook to record, with the work it asks for.
#[derive(Clone, Debug)]
pub struct NewEvent {
    pub location_id: String,
    pub event_type: String,
    pub dedupe_key: String,
    pub body: Vec<u8>,
    pub received_at: DateTime<Utc>,
    pub work: Option<WorkRequest>,
    /// How long the work of a record synced before waits for further hints (see `ingest`).
    pub settle: Duration,
}

/// "This record may be stale": coalesces with any pending request for the same key.
#[derive(Clone, Debug)]
pub struct WorkRequest {
    pub key: EntityKey,
    /// The GHL contact a task, note or appointment belongs to, when known.
    pub parent: Option<GhlId>,
    /// Sticky: once a delete is known, later hints for the same record don't undo it.
    pub deleted: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IngestOutcome {
    Accepted,
    Duplicate,
}

/// A claimed work item. The lease token proves the claim when the item is finished.
#[derive(Clone, Debug)]
pub struct WorkItem {
    pub id: i64,
    pub key: EntityKey,
    pub generation: i64,
    pub attempts: i64,
    pub deleted: bool,
    pub parent: Option<GhlId>,
    pub lease_token: String,
}

/// The Holded record a GHL record was last synced to, and the hash of what was written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Link {
    pub key: EntityKey,
    pub parent: Option<GhlId>,
    pub holded_id: String,
    pub hash: String,
}

/// What finishing a work item does to its link, in the same transaction.
#[derive(Clone, Debug)]
pub enum LinkUpdate {
    Keep,
    Save {
        holded_id: String,
        hash: String,
        parent: Option<GhlId>,
    },
    Remove,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Completion {
    /// Nothing new arrived while syncing: the item is done.
    Done,
    /// A newer hint arrived mid-sync: the item stays pending and runs again.
    Requeued,
    /// Our lease expired and someone else holds the item now; nothing was changed.
    LeaseLost,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WorkState {
    Pending,
    Done,
    Dead,
}

impl WorkState {
    pub const ALL: [WorkState; 3] = [WorkState::Pending, WorkState::Done, WorkState::Dead];

    pub fn as_str(self) -> &'static str {
        match self {
            WorkState::Pending => "pending",
            WorkState::Done => "done",
            WorkState::Dead => "dead",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == raw)
    }
}

/// A work row as an operator sees it.
#[derive(Clone, Debug)]
pub struct WorkStatus {
    pub id: i64,
    pub updated_at: DateTime<Utc>,
    pub key: EntityKey,
    pub state: WorkState,
    pub generation: i64,
    pub attempts: i64,
    pub last_error: Option<String>,
}

/// Where a backfill of one location stands, saved after every page it queues.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct BackfillProgress {
    /// The search cursor after the last queued page (`None` before the first).
    pub cursor: Option<serde_json::Value>,
    pub pages: i64,
    pub contacts: i64,
    pub finished: bool,
}

/// Who opens the store. The service of a single-replica SQLite file may reclaim the leases
/// a dead process left; a tool run beside a live service must not.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StoreRole {
    Service,
    Tool,
}

#[async_trait]
pub trait Store: Installations + Send + Sync {
    /// Reachable and fully migrated.
    async fn ping(&self) -> Result<(), StoreError>;

    /// Records the event and upserts its work in one commit; a known dedupe key changes nothing.
    /// A record seen for the first time (or deleted) is due at once; a record synced before
    /// waits `settle` for further hints, each restarting the wait, up to `8 × settle` in all.
    async fn ingest(&self, event: NewEvent) -> Result<IngestOutcome, StoreError>;

    /// Leases up to `limit` due items for `lease`; work of an installed location that is not
    /// `Active` (see `TenantState`) is left pending.
    async fn claim(&self, limit: usize, lease: Duration) -> Result<Vec<WorkItem>, StoreError>;

    /// Applies the link change and finishes the item, unless a newer generation arrived.
    async fn finish(&self, item: &WorkItem, link: LinkUpdate) -> Result<Completion, StoreError>;

    /// Releases the item to run again at `due_at`, counting a failed attempt.
    async fn retry_later(
        &self,
        item: &WorkItem,
        due_at: DateTime<Utc>,
        error: &str,
    ) -> Result<Completion, StoreError>;

    /// Moves the item to the dead state with its reason (unless newer work arrived meanwhile).
    async fn bury(&self, item: &WorkItem, reason: &str) -> Result<Completion, StoreError>;

    /// Work not tied to a webhook (a contact's history, its parent, a reconcile); coalesces
    /// like `ingest`.
    async fn enqueue(&self, requests: &[WorkRequest]) -> Result<(), StoreError>;

    /// Gives a claimed item back untouched (no attempt counted), e.g. at shutdown.
    async fn release(&self, item: &WorkItem) -> Result<(), StoreError>;

    async fn link(&self, key: &EntityKey) -> Result<Option<Link>, StoreError>;

    /// Links of the tasks, notes and appointments of one contact.
    async fn child_links(
        &self,
        location_id: &LocationId,
        parent: &GhlId,
    ) -> Result<Vec<Link>, StoreError>;

    async fn remove_link(&self, key: &EntityKey) -> Result<(), StoreError>;

    async fn work_status(&self, key: &EntityKey) -> Result<Option<WorkStatus>, StoreError>;

    async fn count_events(&self) -> Result<i64, StoreError>;

    /// Drops events received before `before` (and single-use nonces past their expiry);
    /// returns how many events went.
    async fn purge_events(&self, before: DateTime<Utc>) -> Result<u64, StoreError>;

    async fn work_counts(&self) -> Result<Vec<(WorkState, i64)>, StoreError>;

    /// Work rows, most recently changed first, optionally of one state.
    async fn list_work(
        &self,
        state: Option<WorkState>,
        limit: i64,
    ) -> Result<Vec<WorkStatus>, StoreError>;

    /// Queues dead items again (one by id, or all): due now, attempts reset, a new
    /// generation. Returns how many.
    async fn replay_dead(&self, id: Option<i64>) -> Result<u64, StoreError>;

    async fn sweep_watermark(
        &self,
        location_id: &LocationId,
    ) -> Result<Option<DateTime<Utc>>, StoreError>;

    async fn set_sweep_watermark(
        &self,
        location_id: &LocationId,
        watermark: DateTime<Utc>,
    ) -> Result<(), StoreError>;

    async fn backfill_progress(
        &self,
        location_id: &LocationId,
    ) -> Result<Option<BackfillProgress>, StoreError>;

    async fn save_backfill_progress(
        &self,
        location_id: &LocationId,
        progress: &BackfillProgress,
    ) -> Result<(), StoreError>;
}

pub type SharedStore = Arc<dyn Store>;

/// Opens the store named by `DATABASE_URL` and runs its migrations.
pub async fn open(database_url: &str, role: StoreRole) -> Result<SharedStore, StoreError> {
    if database_url.starts_with("sqlite:") {
        Ok(Arc::new(SqliteStore::open(database_url, role).await?))
    } else if database_url.starts_with("postgres://") || database_url.starts_with("postgresql://") {
        Ok(Arc::new(PostgresStore::open(database_url).await?))
    } else {
        Err(StoreError::Database(sqlx::Error::Configuration(
            "DATABASE_URL must start with sqlite:, postgres:// or postgresql://".into(),
        )))
    }
}
