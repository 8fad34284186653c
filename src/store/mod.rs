//! Durable state behind one trait: raw events, the work queue, and GHL → Holded links.
//! `http` and `sync` talk to `dyn Store`; only this folder knows SQL.
#[cfg(test)]
mod contract_tests;
mod sqlite;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::domain::{EntityKey, GhlId, LocationId};

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
    pub fn as_str(self) -> &'static str {
        match self {
            WorkState::Pending => "pending",
            WorkState::Done => "done",
            WorkState::Dead => "dead",
        }
    }
}

/// A work row as an operator sees it.
#[derive(Clone, Debug)]
pub struct WorkStatus {
    pub key: EntityKey,
    pub state: WorkState,
    pub generation: i64,
    pub attempts: i64,
    pub last_error: Option<String>,
}

#[async_trait]
pub trait Store: Send + Sync {
    /// Reachable and fully migrated.
    async fn ping(&self) -> Result<(), StoreError>;

    /// Records the event and upserts its work in one commit; a known dedupe key changes nothing.
    async fn ingest(&self, event: NewEvent) -> Result<IngestOutcome, StoreError>;

    /// Leases up to `limit` due items for `lease`.
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

    /// Drops events received before `before`; returns how many went.
    async fn purge_events(&self, before: DateTime<Utc>) -> Result<u64, StoreError>;
}

pub type SharedStore = Arc<dyn Store>;

/// Opens the store named by `DATABASE_URL` and runs its migrations.
pub async fn open(database_url: &str) -> Result<SharedStore, StoreError> {
    if database_url.starts_with("sqlite:") {
        Ok(Arc::new(SqliteStore::open(database_url).await?))
    } else {
        Err(StoreError::NotMigrated(
            "PostgreSQL is not supported yet; use a sqlite:// DATABASE_URL".into(),
        ))
    }
}
