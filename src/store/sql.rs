//! What the SQL backends share: one `Store` implementation, in SQL that SQLite and PostgreSQL
//! both understand, so the two cannot drift apart. A backend brings its pool and migrations,
//! how a claim keeps concurrent claimers apart, and how a webhook reaches a commit (SQLite's
//! group-commit writer, PostgreSQL's own transactions).
use std::collections::{BTreeMap, HashSet};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::migrate::Migrator;
use sqlx::{ColumnIndex, Database, Decode, Encode, Executor, IntoArguments, Pool, Row, Type};
use tokio::sync::{mpsc, oneshot};

use super::*;
use crate::domain::{EntityKind, GhlId, LocationId};

// `Installations` for the same store, kept in a file of its own.
#[path = "sql_installations.rs"]
mod installations;

/// A database the shared store runs on.
pub trait Backend: Database {
    /// Ends the claim's row selection: how concurrent claimers are kept off each other's rows.
    const LOCK_CLAIMED: &'static str;
    fn migrator() -> &'static Migrator;
    fn rows_affected(result: &Self::QueryResult) -> u64;
}

/// Most webhooks a single commit takes; bounds the latency one batch adds.
const MAX_BATCH: usize = 256;

type IngestReply = oneshot::Sender<Result<IngestOutcome, StoreError>>;

/// A store on a SQL database; `SqliteStore` and `PostgresStore` name its two kinds.
pub struct SqlStore<DB: Backend> {
    pub(super) pool: Pool<DB>,
    /// The group-commit writer every webhook goes through.
    writer: mpsc::Sender<(NewEvent, IngestReply)>,
}

/// The columns `status_from_row` reads.
const WORK_COLUMNS: &str =
    "id, location_id, kind, ghl_id, state, generation, attempts, last_error, updated_at";

fn now_ms() -> i64 {
    Utc::now().timestamp_millis()
}

/// Proves a lease (on a work item or a token row) when it is settled.
fn new_lease_token() -> String {
    format!("{:032x}", rand::random::<u128>())
}

fn completion(state: Option<String>) -> Completion {
    match state.as_deref() {
        None => Completion::LeaseLost,
        Some("pending") => Completion::Requeued,
        Some(_) => Completion::Done,
    }
}

/// The order `enqueue` locks work rows in.
fn lock_order(request: &WorkRequest) -> (&LocationId, &str, &GhlId) {
    let key = &request.key;
    (&key.location_id, key.kind.as_str(), &key.ghl_id)
}

/// `rows` parenthesised rows of `per_row` numbered placeholders from `$first` on, each
/// followed by `constants` (SQL shared by every row), for a multi-row `VALUES`.
fn value_rows(first: usize, rows: usize, per_row: usize, constants: &str) -> String {
    (0..rows)
        .map(|row| {
            let start = first + row * per_row;
            let mut values: Vec<String> =
                (start..start + per_row).map(|n| format!("${n}")).collect();
            if !constants.is_empty() {
                values.push(constants.to_owned());
            }
            format!("({})", values.join(", "))
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// The hints for one record within one upsert.
#[derive(Default)]
struct MergedHint<'a> {
    hints: i64,
    deleted: bool,
    parent: Option<&'a GhlId>,
}

/// A stored millisecond timestamp; `column` names it when it is out of range.
fn time(millis: i64, column: &str) -> Result<DateTime<Utc>, StoreError> {
    DateTime::from_timestamp_millis(millis)
        .ok_or_else(|| StoreError::Corrupt(format!("{column} out of range")))
}

fn corrupt(error: crate::domain::InvalidValue) -> StoreError {
    StoreError::Corrupt(error.0)
}

impl<DB> SqlStore<DB>
where
    DB: Backend,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    for<'q> DB::Arguments<'q>: IntoArguments<'q, DB>,
    for<'q> i64: Encode<'q, DB> + Decode<'q, DB> + Type<DB>,
    for<'q> bool: Encode<'q, DB> + Decode<'q, DB> + Type<DB>,
    for<'q> &'q str: Encode<'q, DB> + Decode<'q, DB> + Type<DB> + ColumnIndex<DB::Row>,
    for<'q> Option<&'q str>: Encode<'q, DB>,
    for<'q> &'q [u8]: Encode<'q, DB> + Type<DB>,
    for<'q> String: Decode<'q, DB> + Type<DB>,
{
    /// The store on `pool`, with its writer task started.
    pub(super) fn with_writer(pool: Pool<DB>) -> Self {
        let (writer, queue) = mpsc::channel(4 * MAX_BATCH);
        tokio::spawn(Self::group_commit(pool.clone(), queue));
        SqlStore { pool, writer }
    }

    /// Commits what is queued: every webhook that arrived while the previous batch was
    /// committing goes into the next transaction, so a commit's cost (an fsync, a round trip)
    /// is shared by the whole batch.
    async fn group_commit(pool: Pool<DB>, mut queue: mpsc::Receiver<(NewEvent, IngestReply)>) {
        let mut batch = Vec::with_capacity(MAX_BATCH);
        while queue.recv_many(&mut batch, MAX_BATCH).await > 0 {
            let events: Vec<&NewEvent> = batch.iter().map(|(event, _)| event).collect();
            match Self::commit_events(&pool, &events).await {
                Ok(outcomes) => {
                    for ((_, reply), outcome) in batch.drain(..).zip(outcomes) {
                        let _ = reply.send(Ok(outcome));
                    }
                }
                Err(error) => {
                    tracing::error!(%error, batch = batch.len(), "webhook batch commit failed");
                    for (_, reply) in batch.drain(..) {
                        let _ = reply.send(Err(StoreError::Database(sqlx::Error::Protocol(
                            error.to_string(),
                        ))));
                    }
                }
            }
        }
    }

    /// Records webhooks in one transaction, each with its work; a known dedupe key changes
    /// nothing. One statement per table for the whole batch: the group commit hands many
    /// webhooks at once, and a statement per webhook cost more than the commit itself.
    pub(super) async fn commit_events(
        pool: &Pool<DB>,
        events: &[&NewEvent],
    ) -> Result<Vec<IngestOutcome>, sqlx::Error> {
        let mut tx = pool.begin().await?;
        let inserted = Self::insert_events(&mut tx, events).await?;
        // A dedupe key is accepted once: for its first event in the batch, if it was new.
        let mut taken = HashSet::new();
        let outcomes: Vec<IngestOutcome> = events
            .iter()
            .map(|event| {
                let key = event.dedupe_key.as_str();
                if inserted.contains(key) && taken.insert(key) {
                    IngestOutcome::Accepted
                } else {
                    IngestOutcome::Duplicate
                }
            })
            .collect();
        let accepted = events.iter().zip(&outcomes);
        let work: Vec<&WorkRequest> = accepted
            .clone()
            .filter(|(_, outcome)| **outcome == IngestOutcome::Accepted)
            .filter_map(|(event, _)| event.work.as_ref())
            .collect();
        let settle = accepted
            .map(|(event, _)| event.settle)
            .max()
            .unwrap_or_default();
        Self::upsert_work(&mut tx, &work, settle).await?;
        tx.commit().await?;
        Ok(outcomes)
    }

    /// Inserts the events whose dedupe key is new; returns those keys.
    async fn insert_events(
        conn: &mut DB::Connection,
        events: &[&NewEvent],
    ) -> Result<HashSet<String>, sqlx::Error> {
        if events.is_empty() {
            return Ok(HashSet::new());
        }
        // In key order, so two replicas' batches inserting the same new keys wait for each
        // other instead of deadlocking.
        let mut events = events.to_vec();
        events.sort_by(|a, b| a.dedupe_key.cmp(&b.dedupe_key));
        let statement = format!(
            "INSERT INTO events (location_id, type, dedupe_key, received_at, body) VALUES {}
             ON CONFLICT (dedupe_key) DO NOTHING RETURNING dedupe_key",
            value_rows(1, events.len(), 5, "")
        );
        let mut query = sqlx::query(&statement);
        for event in &events {
            query = query
                .bind(event.location_id.as_str())
                .bind(event.event_type.as_str())
                .bind(event.dedupe_key.as_str())
                .bind(event.received_at.timestamp_millis())
                .bind(event.body.as_slice());
        }
        query
            .fetch_all(conn)
            .await?
            .iter()
            .map(|row| row.try_get::<String, _>("dedupe_key"))
            .collect()
    }

    /// Hints coalesce into one row per record, one generation newer per hint. A record seen
    /// for the first time (or deleted) is due at once. A record synced before waits `settle`
    /// for further hints, each restarting the wait, but never beyond `8 × settle` from the
    /// first: a burst of updates becomes one sync of the last state, and a record updated
    /// without pause still syncs. Rows are written in key order, so two concurrent upserts
    /// over the same keys (on a backend with row locks) wait for each other instead of
    /// deadlocking.
    async fn upsert_work(
        conn: &mut DB::Connection,
        requests: &[&WorkRequest],
        settle: Duration,
    ) -> Result<(), sqlx::Error> {
        let mut merged: BTreeMap<(&LocationId, &str, &GhlId), MergedHint<'_>> = BTreeMap::new();
        for request in requests {
            let hint = merged.entry(lock_order(request)).or_default();
            hint.hints += 1;
            hint.deleted |= request.deleted;
            hint.parent = request.parent.as_ref().or(hint.parent);
        }
        if merged.is_empty() {
            return Ok(());
        }
        let now = now_ms();
        let settle_ms = settle.as_millis() as i64;
        let statement = format!(
            "INSERT INTO work (location_id, kind, ghl_id, parent_id, generation, deleted, due_at, settle_from, created_at, updated_at, attempts, state)
             VALUES {}
             ON CONFLICT (location_id, kind, ghl_id) DO UPDATE SET
                generation = work.generation + excluded.generation,
                due_at = CASE
                    WHEN work.deleted OR excluded.deleted THEN excluded.due_at
                    WHEN work.state <> 'pending' THEN excluded.due_at + $1
                    WHEN excluded.due_at + $1 < COALESCE(work.settle_from, excluded.due_at) + 8 * $1
                        THEN excluded.due_at + $1
                    ELSE COALESCE(work.settle_from, excluded.due_at) + 8 * $1
                END,
                settle_from = CASE WHEN work.state = 'pending' THEN work.settle_from ELSE excluded.settle_from END,
                attempts = CASE WHEN work.state = 'pending' THEN work.attempts ELSE 0 END,
                state = 'pending',
                deleted = work.deleted OR excluded.deleted,
                parent_id = COALESCE(excluded.parent_id, work.parent_id),
                updated_at = excluded.updated_at",
            value_rows(3, merged.len(), 6, "$2, $2, $2, $2, 0, 'pending'")
        );
        let mut query = sqlx::query(&statement).bind(settle_ms).bind(now);
        for ((location_id, kind, ghl_id), hint) in &merged {
            query = query
                .bind(location_id.as_str())
                .bind(*kind)
                .bind(ghl_id.as_str())
                .bind(hint.parent.map(GhlId::as_str))
                .bind(hint.hints)
                .bind(hint.deleted);
        }
        query.execute(conn).await?;
        Ok(())
    }

    async fn delete_link(conn: &mut DB::Connection, key: &EntityKey) -> Result<(), sqlx::Error> {
        sqlx::query("DELETE FROM links WHERE location_id = $1 AND kind = $2 AND ghl_id = $3")
            .bind(key.location_id.as_str())
            .bind(key.kind.as_str())
            .bind(key.ghl_id.as_str())
            .execute(conn)
            .await?;
        Ok(())
    }

    fn entity_key(row: &DB::Row) -> Result<EntityKey, StoreError> {
        Ok(EntityKey {
            location_id: LocationId::parse(row.try_get("location_id")?).map_err(corrupt)?,
            kind: EntityKind::parse(row.try_get("kind")?).map_err(corrupt)?,
            ghl_id: GhlId::parse(row.try_get("ghl_id")?).map_err(corrupt)?,
        })
    }

    fn parent(row: &DB::Row) -> Result<Option<GhlId>, StoreError> {
        row.try_get::<Option<String>, _>("parent_id")?
            .map(|p| GhlId::parse(&p).map_err(corrupt))
            .transpose()
    }

    fn link_from_row(row: &DB::Row) -> Result<Link, StoreError> {
        Ok(Link {
            key: Self::entity_key(row)?,
            parent: Self::parent(row)?,
            holded_id: row.try_get("holded_id")?,
            hash: row.try_get("hash")?,
        })
    }

    fn status_from_row(row: &DB::Row) -> Result<WorkStatus, StoreError> {
        let state: String = row.try_get("state")?;
        Ok(WorkStatus {
            id: row.try_get("id")?,
            updated_at: time(row.try_get("updated_at")?, "work.updated_at")?,
            key: Self::entity_key(row)?,
            state: WorkState::parse(&state)
                .ok_or_else(|| StoreError::Corrupt(format!("work state {state:?}")))?,
            generation: row.try_get("generation")?,
            attempts: row.try_get("attempts")?,
            last_error: row.try_get("last_error")?,
        })
    }

    /// Runs a statement that moves a leased item on, `RETURNING state` when the lease held.
    async fn settle<'q>(
        &self,
        statement: sqlx::query::Query<'q, DB, DB::Arguments<'q>>,
    ) -> Result<Completion, StoreError> {
        let row = statement.fetch_optional(&self.pool).await?;
        let state = row.map(|row| row.try_get("state")).transpose()?;
        Ok(completion(state))
    }
}

#[async_trait]
impl<DB> Store for SqlStore<DB>
where
    DB: Backend,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    for<'q> DB::Arguments<'q>: IntoArguments<'q, DB>,
    for<'q> i64: Encode<'q, DB> + Decode<'q, DB> + Type<DB>,
    for<'q> bool: Encode<'q, DB> + Decode<'q, DB> + Type<DB>,
    for<'q> &'q str: Encode<'q, DB> + Decode<'q, DB> + Type<DB> + ColumnIndex<DB::Row>,
    for<'q> Option<&'q str>: Encode<'q, DB>,
    for<'q> &'q [u8]: Encode<'q, DB> + Type<DB>,
    for<'q> Option<&'q [u8]>: Encode<'q, DB>,
    for<'q> String: Decode<'q, DB> + Type<DB>,
    for<'q> Vec<u8>: Decode<'q, DB> + Type<DB>,
{
    async fn ping(&self) -> Result<(), StoreError> {
        let applied = sqlx::query("SELECT version FROM _sqlx_migrations WHERE success")
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(|row| row.try_get("version"))
            .collect::<Result<Vec<i64>, _>>()?;
        match DB::migrator()
            .iter()
            .find(|m| !applied.contains(&m.version))
        {
            Some(missing) => Err(StoreError::NotMigrated(format!(
                "migration {} is not applied",
                missing.version
            ))),
            None => Ok(()),
        }
    }

    async fn ingest(&self, event: NewEvent) -> Result<IngestOutcome, StoreError> {
        let (reply, outcome) = oneshot::channel();
        self.writer
            .send((event, reply))
            .await
            .map_err(|_| StoreError::Closed)?;
        outcome.await.map_err(|_| StoreError::Closed)?
    }

    async fn claim(&self, limit: usize, lease: Duration) -> Result<Vec<WorkItem>, StoreError> {
        let now = now_ms();
        let token = new_lease_token();
        // Locations without a tenants row (the one configured by environment) are claimed;
        // installed ones only while active. `location_id` is the key of `tenants`, never NULL,
        // so `NOT IN` is safe; PostgreSQL locks only the `work` rows it selects.
        let statement = format!(
            "UPDATE work SET lease_until = $1, lease_token = $2, updated_at = $3
             WHERE id IN (
                SELECT id FROM work
                WHERE state = 'pending' AND due_at <= $3 AND (lease_until IS NULL OR lease_until < $3)
                    AND location_id NOT IN (SELECT location_id FROM tenants WHERE state <> 'active')
                ORDER BY due_at LIMIT $4 {})
             RETURNING id, location_id, kind, ghl_id, parent_id, generation, attempts, deleted",
            DB::LOCK_CLAIMED
        );
        let rows = sqlx::query(&statement)
            .bind(now + lease.as_millis() as i64)
            .bind(token.as_str())
            .bind(now)
            .bind(limit as i64)
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|row| {
                Ok(WorkItem {
                    id: row.try_get("id")?,
                    key: Self::entity_key(row)?,
                    generation: row.try_get("generation")?,
                    attempts: row.try_get("attempts")?,
                    deleted: row.try_get("deleted")?,
                    parent: Self::parent(row)?,
                    lease_token: token.clone(),
                })
            })
            .collect()
    }

    async fn finish(&self, item: &WorkItem, link: LinkUpdate) -> Result<Completion, StoreError> {
        let now = now_ms();
        let mut tx = self.pool.begin().await?;
        let state: Option<String> = sqlx::query(
            "UPDATE work SET
                state = CASE WHEN generation = $1 THEN 'done' ELSE 'pending' END,
                attempts = CASE WHEN generation = $1 THEN 0 ELSE attempts END,
                last_error = NULL, lease_until = NULL, lease_token = NULL, updated_at = $2
             WHERE id = $3 AND lease_token = $4
             RETURNING state",
        )
        .bind(item.generation)
        .bind(now)
        .bind(item.id)
        .bind(item.lease_token.as_str())
        .fetch_optional(&mut *tx)
        .await?
        .map(|row| row.try_get("state"))
        .transpose()?;
        let wrote = !matches!(link, LinkUpdate::Keep);
        // The link records a Holded write that already happened, so it is kept even when
        // the lease was lost.
        match link {
            LinkUpdate::Keep => {}
            LinkUpdate::Save {
                holded_id,
                hash,
                parent,
            } => {
                sqlx::query(
                    "INSERT INTO links (location_id, kind, ghl_id, parent_id, holded_id, hash, synced_at)
                     VALUES ($1, $2, $3, $4, $5, $6, $7)
                     ON CONFLICT (location_id, kind, ghl_id) DO UPDATE SET
                        parent_id = COALESCE(excluded.parent_id, links.parent_id),
                        holded_id = excluded.holded_id, hash = excluded.hash, synced_at = excluded.synced_at",
                )
                .bind(item.key.location_id.as_str())
                .bind(item.key.kind.as_str())
                .bind(item.key.ghl_id.as_str())
                .bind(parent.as_ref().map(GhlId::as_str))
                .bind(holded_id.as_str())
                .bind(hash.as_str())
                .bind(now)
                .execute(&mut *tx)
                .await?;
            }
            LinkUpdate::Remove => Self::delete_link(&mut tx, &item.key).await?,
        }
        // Our lease ran out and someone else may have synced newer data meanwhile, which our
        // late write to Holded could have overwritten: sync the record once more.
        if state.is_none() && wrote {
            sqlx::query(
                "UPDATE work SET generation = generation + 1, state = 'pending', due_at = $1, updated_at = $1
                 WHERE id = $2",
            )
            .bind(now)
            .bind(item.id)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(completion(state))
    }

    async fn retry_later(
        &self,
        item: &WorkItem,
        due_at: DateTime<Utc>,
        error: &str,
    ) -> Result<Completion, StoreError> {
        self.settle(
            sqlx::query(
                "UPDATE work SET due_at = $1, attempts = attempts + 1, last_error = $2,
                    lease_until = NULL, lease_token = NULL, updated_at = $3
                 WHERE id = $4 AND lease_token = $5
                 RETURNING state",
            )
            .bind(due_at.timestamp_millis())
            .bind(error)
            .bind(now_ms())
            .bind(item.id)
            .bind(item.lease_token.as_str()),
        )
        .await
    }

    async fn bury(&self, item: &WorkItem, reason: &str) -> Result<Completion, StoreError> {
        self.settle(
            sqlx::query(
                "UPDATE work SET
                    state = CASE WHEN generation = $1 THEN 'dead' ELSE 'pending' END,
                    attempts = attempts + 1, last_error = $2,
                    lease_until = NULL, lease_token = NULL, updated_at = $3
                 WHERE id = $4 AND lease_token = $5
                 RETURNING state",
            )
            .bind(item.generation)
            .bind(reason)
            .bind(now_ms())
            .bind(item.id)
            .bind(item.lease_token.as_str()),
        )
        .await
    }

    async fn enqueue(&self, requests: &[WorkRequest]) -> Result<(), StoreError> {
        let requests: Vec<&WorkRequest> = requests.iter().collect();
        let mut conn = self.pool.acquire().await?;
        Self::upsert_work(&mut conn, &requests, Duration::ZERO).await?;
        Ok(())
    }

    async fn release(&self, item: &WorkItem) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE work SET lease_until = NULL, lease_token = NULL
             WHERE id = $1 AND lease_token = $2",
        )
        .bind(item.id)
        .bind(item.lease_token.as_str())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn link(&self, key: &EntityKey) -> Result<Option<Link>, StoreError> {
        let row = sqlx::query(
            "SELECT location_id, kind, ghl_id, parent_id, holded_id, hash FROM links
             WHERE location_id = $1 AND kind = $2 AND ghl_id = $3",
        )
        .bind(key.location_id.as_str())
        .bind(key.kind.as_str())
        .bind(key.ghl_id.as_str())
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(Self::link_from_row).transpose()
    }

    async fn child_links(
        &self,
        location_id: &LocationId,
        parent: &GhlId,
    ) -> Result<Vec<Link>, StoreError> {
        let rows = sqlx::query(
            "SELECT location_id, kind, ghl_id, parent_id, holded_id, hash FROM links
             WHERE location_id = $1 AND parent_id = $2 AND kind <> 'contact'",
        )
        .bind(location_id.as_str())
        .bind(parent.as_str())
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(Self::link_from_row).collect()
    }

    async fn remove_link(&self, key: &EntityKey) -> Result<(), StoreError> {
        let mut conn = self.pool.acquire().await?;
        Ok(Self::delete_link(&mut conn, key).await?)
    }

    async fn work_status(&self, key: &EntityKey) -> Result<Option<WorkStatus>, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {WORK_COLUMNS} FROM work WHERE location_id = $1 AND kind = $2 AND ghl_id = $3"
        ))
        .bind(key.location_id.as_str())
        .bind(key.kind.as_str())
        .bind(key.ghl_id.as_str())
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(Self::status_from_row).transpose()
    }

    async fn work_counts(&self) -> Result<Vec<(WorkState, i64)>, StoreError> {
        let rows = sqlx::query("SELECT state, COUNT(*) AS n FROM work GROUP BY state")
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|row| {
                let state: String = row.try_get("state")?;
                let state = WorkState::parse(&state)
                    .ok_or_else(|| StoreError::Corrupt(format!("work state {state:?}")))?;
                Ok((state, row.try_get("n")?))
            })
            .collect()
    }

    async fn list_work(
        &self,
        state: Option<WorkState>,
        limit: i64,
    ) -> Result<Vec<WorkStatus>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {WORK_COLUMNS} FROM work WHERE ($1 = '' OR state = $1)
             ORDER BY updated_at DESC, id DESC LIMIT $2"
        ))
        .bind(state.map_or("", WorkState::as_str))
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(Self::status_from_row).collect()
    }

    async fn replay_dead(&self, id: Option<i64>) -> Result<u64, StoreError> {
        let now = now_ms();
        // A new generation, so a worker still finishing an older attempt cannot mark it done.
        let result = sqlx::query(
            "UPDATE work SET state = 'pending', attempts = 0, due_at = $1, updated_at = $1,
                generation = generation + 1, lease_until = NULL, lease_token = NULL
             WHERE state = 'dead' AND ($2 < 0 OR id = $2)",
        )
        .bind(now)
        .bind(id.unwrap_or(-1))
        .execute(&self.pool)
        .await?;
        Ok(DB::rows_affected(&result))
    }

    async fn sweep_watermark(
        &self,
        location_id: &LocationId,
    ) -> Result<Option<DateTime<Utc>>, StoreError> {
        let row = sqlx::query("SELECT watermark FROM sweeps WHERE location_id = $1")
            .bind(location_id.as_str())
            .fetch_optional(&self.pool)
            .await?;
        row.map(|row| time(row.try_get("watermark")?, "sweeps.watermark"))
            .transpose()
    }

    async fn set_sweep_watermark(
        &self,
        location_id: &LocationId,
        watermark: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO sweeps (location_id, watermark) VALUES ($1, $2)
             ON CONFLICT (location_id) DO UPDATE SET watermark = excluded.watermark",
        )
        .bind(location_id.as_str())
        .bind(watermark.timestamp_millis())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn backfill_progress(
        &self,
        location_id: &LocationId,
    ) -> Result<Option<BackfillProgress>, StoreError> {
        let row = sqlx::query(
            "SELECT cursor, pages, contacts, finished FROM backfills WHERE location_id = $1",
        )
        .bind(location_id.as_str())
        .fetch_optional(&self.pool)
        .await?;
        row.map(|row| {
            let cursor: Option<String> = row.try_get("cursor")?;
            Ok(BackfillProgress {
                cursor: cursor
                    .map(|c| serde_json::from_str(&c))
                    .transpose()
                    .map_err(|e| StoreError::Corrupt(format!("backfills.cursor: {e}")))?,
                pages: row.try_get("pages")?,
                contacts: row.try_get("contacts")?,
                finished: row.try_get("finished")?,
            })
        })
        .transpose()
    }

    async fn save_backfill_progress(
        &self,
        location_id: &LocationId,
        progress: &BackfillProgress,
    ) -> Result<(), StoreError> {
        let cursor = progress.cursor.as_ref().map(|c| c.to_string());
        sqlx::query(
            "INSERT INTO backfills (location_id, cursor, pages, contacts, finished, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6)
             ON CONFLICT (location_id) DO UPDATE SET cursor = excluded.cursor,
                pages = excluded.pages, contacts = excluded.contacts,
                finished = excluded.finished, updated_at = excluded.updated_at",
        )
        .bind(location_id.as_str())
        .bind(cursor.as_deref())
        .bind(progress.pages)
        .bind(progress.contacts)
        .bind(progress.finished)
        .bind(now_ms())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn count_events(&self) -> Result<i64, StoreError> {
        let row = sqlx::query("SELECT COUNT(*) AS n FROM events")
            .fetch_one(&self.pool)
            .await?;
        Ok(row.try_get("n")?)
    }

    async fn purge_events(&self, before: DateTime<Utc>) -> Result<u64, StoreError> {
        sqlx::query("DELETE FROM nonces WHERE expires_at < $1")
            .bind(now_ms())
            .execute(&self.pool)
            .await?;
        let result = sqlx::query("DELETE FROM events WHERE received_at < $1")
            .bind(before.timestamp_millis())
            .execute(&self.pool)
            .await?;
        Ok(DB::rows_affected(&result))
    }
}
