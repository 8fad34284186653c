//! SQLite backend: WAL, durable (`synchronous=FULL`) commits, and one writer task that
//! commits concurrent webhooks together (group commit) so durability costs one fsync per
//! batch rather than per request.
use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Row, SqlitePool};
use tokio::sync::{mpsc, oneshot};

use super::*;
use crate::domain::{EntityKind, GhlId, LocationId};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("src/store/migrations/sqlite");

/// Most webhooks a single commit takes; bounds the latency one batch adds.
const MAX_BATCH: usize = 256;

type IngestReply = oneshot::Sender<Result<IngestOutcome, StoreError>>;

pub struct SqliteStore {
    pool: SqlitePool,
    ingest: mpsc::Sender<(NewEvent, IngestReply)>,
}

fn now_ms() -> i64 {
    Utc::now().timestamp_millis()
}

impl SqliteStore {
    pub async fn open(database_url: &str) -> Result<Self, StoreError> {
        let options = SqliteConnectOptions::from_str(database_url)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(Duration::from_secs(10))
            .foreign_keys(true);
        if let Some(dir) = options.get_filename().parent() {
            if !dir.as_os_str().is_empty() {
                std::fs::create_dir_all(dir).map_err(|e| {
                    StoreError::Database(sqlx::Error::Configuration(
                        format!("cannot create {}: {e}", dir.display()).into(),
                    ))
                })?;
            }
        }
        let pool = SqlitePoolOptions::new()
            .max_connections(8)
            .connect_with(options)
            .await?;
        MIGRATOR.run(&pool).await?;
        // One process owns a SQLite file (it is the single-replica store), so every lease
        // still held was held by a process that is gone: hand its work back now rather
        // than after the lease runs out.
        sqlx::query(
            "UPDATE work SET lease_until = NULL, lease_token = NULL WHERE lease_until IS NOT NULL",
        )
        .execute(&pool)
        .await?;
        let (ingest, queue) = mpsc::channel(4 * MAX_BATCH);
        tokio::spawn(group_commit(pool.clone(), queue));
        Ok(SqliteStore { pool, ingest })
    }
}

async fn group_commit(pool: SqlitePool, mut queue: mpsc::Receiver<(NewEvent, IngestReply)>) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while queue.recv_many(&mut batch, MAX_BATCH).await > 0 {
        let events: Vec<&NewEvent> = batch.iter().map(|(event, _)| event).collect();
        match commit_batch(&pool, &events).await {
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

async fn commit_batch(
    pool: &SqlitePool,
    events: &[&NewEvent],
) -> Result<Vec<IngestOutcome>, sqlx::Error> {
    let mut tx = pool.begin().await?;
    let mut outcomes = Vec::with_capacity(events.len());
    for event in events {
        let inserted = sqlx::query(
            "INSERT INTO events (location_id, type, dedupe_key, received_at, body)
             VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (dedupe_key) DO NOTHING",
        )
        .bind(&event.location_id)
        .bind(&event.event_type)
        .bind(&event.dedupe_key)
        .bind(event.received_at.timestamp_millis())
        .bind(&event.body)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if inserted == 0 {
            outcomes.push(IngestOutcome::Duplicate);
            continue;
        }
        if let Some(work) = &event.work {
            upsert_work(&mut tx, work).await?;
        }
        outcomes.push(IngestOutcome::Accepted);
    }
    tx.commit().await?;
    Ok(outcomes)
}

/// A hint for a record coalesces into its one row: due now, one generation newer.
async fn upsert_work(
    tx: &mut sqlx::Transaction<'_, sqlx::Sqlite>,
    work: &WorkRequest,
) -> Result<(), sqlx::Error> {
    let now = now_ms();
    sqlx::query(
        "INSERT INTO work (location_id, kind, ghl_id, parent_id, generation, due_at, attempts, state, deleted, created_at, updated_at)
         VALUES (?1, ?2, ?3, ?4, 1, ?5, 0, 'pending', ?6, ?5, ?5)
         ON CONFLICT (location_id, kind, ghl_id) DO UPDATE SET
            generation = work.generation + 1,
            due_at = MIN(work.due_at, excluded.due_at),
            attempts = CASE WHEN work.state = 'pending' THEN work.attempts ELSE 0 END,
            state = 'pending',
            deleted = MAX(work.deleted, excluded.deleted),
            parent_id = COALESCE(excluded.parent_id, work.parent_id),
            updated_at = excluded.updated_at",
    )
    .bind(work.key.location_id.as_str())
    .bind(work.key.kind.as_str())
    .bind(work.key.ghl_id.as_str())
    .bind(work.parent.as_ref().map(GhlId::as_str))
    .bind(now)
    .bind(work.deleted)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

fn entity_key(row: &sqlx::sqlite::SqliteRow) -> Result<EntityKey, StoreError> {
    let corrupt = |e: crate::domain::InvalidValue| StoreError::Corrupt(e.0);
    Ok(EntityKey {
        location_id: LocationId::parse(row.try_get("location_id")?).map_err(corrupt)?,
        kind: EntityKind::parse(row.try_get("kind")?).map_err(corrupt)?,
        ghl_id: GhlId::parse(row.try_get("ghl_id")?).map_err(corrupt)?,
    })
}

async fn delete_link<'e>(
    executor: impl sqlx::SqliteExecutor<'e>,
    key: &EntityKey,
) -> Result<(), StoreError> {
    sqlx::query("DELETE FROM links WHERE location_id = ?1 AND kind = ?2 AND ghl_id = ?3")
        .bind(key.location_id.as_str())
        .bind(key.kind.as_str())
        .bind(key.ghl_id.as_str())
        .execute(executor)
        .await?;
    Ok(())
}

fn parent(row: &sqlx::sqlite::SqliteRow) -> Result<Option<GhlId>, StoreError> {
    row.try_get::<Option<String>, _>("parent_id")?
        .map(|p| GhlId::parse(&p).map_err(|e| StoreError::Corrupt(e.0)))
        .transpose()
}

fn link_from_row(row: &sqlx::sqlite::SqliteRow) -> Result<Link, StoreError> {
    Ok(Link {
        key: entity_key(row)?,
        parent: parent(row)?,
        holded_id: row.try_get("holded_id")?,
        hash: row.try_get("hash")?,
    })
}

fn completion(state: Option<String>) -> Completion {
    match state.as_deref() {
        None => Completion::LeaseLost,
        Some("pending") => Completion::Requeued,
        Some(_) => Completion::Done,
    }
}

#[async_trait]
impl Store for SqliteStore {
    async fn ping(&self) -> Result<(), StoreError> {
        let applied: Vec<i64> =
            sqlx::query_scalar("SELECT version FROM _sqlx_migrations WHERE success = 1")
                .fetch_all(&self.pool)
                .await?;
        match MIGRATOR.iter().find(|m| !applied.contains(&m.version)) {
            Some(missing) => Err(StoreError::NotMigrated(format!(
                "migration {} is not applied",
                missing.version
            ))),
            None => Ok(()),
        }
    }

    async fn ingest(&self, event: NewEvent) -> Result<IngestOutcome, StoreError> {
        let (reply, outcome) = oneshot::channel();
        self.ingest
            .send((event, reply))
            .await
            .map_err(|_| StoreError::Closed)?;
        outcome.await.map_err(|_| StoreError::Closed)?
    }

    async fn claim(&self, limit: usize, lease: Duration) -> Result<Vec<WorkItem>, StoreError> {
        let now = now_ms();
        let token = format!("{:032x}", rand::random::<u128>());
        let rows = sqlx::query(
            "UPDATE work SET lease_until = ?1, lease_token = ?2, updated_at = ?3
             WHERE id IN (
                SELECT id FROM work
                WHERE state = 'pending' AND due_at <= ?3 AND (lease_until IS NULL OR lease_until < ?3)
                ORDER BY due_at LIMIT ?4)
             RETURNING id, location_id, kind, ghl_id, parent_id, generation, attempts, deleted",
        )
        .bind(now + lease.as_millis() as i64)
        .bind(&token)
        .bind(now)
        .bind(limit as i64)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(WorkItem {
                    id: row.try_get("id")?,
                    key: entity_key(row)?,
                    generation: row.try_get("generation")?,
                    attempts: row.try_get("attempts")?,
                    deleted: row.try_get("deleted")?,
                    parent: parent(row)?,
                    lease_token: token.clone(),
                })
            })
            .collect()
    }

    async fn finish(&self, item: &WorkItem, link: LinkUpdate) -> Result<Completion, StoreError> {
        let now = now_ms();
        let mut tx = self.pool.begin().await?;
        let state: Option<String> = sqlx::query_scalar(
            "UPDATE work SET
                state = CASE WHEN generation = ?1 THEN 'done' ELSE 'pending' END,
                attempts = CASE WHEN generation = ?1 THEN 0 ELSE attempts END,
                last_error = NULL, lease_until = NULL, lease_token = NULL, updated_at = ?2
             WHERE id = ?3 AND lease_token = ?4
             RETURNING state",
        )
        .bind(item.generation)
        .bind(now)
        .bind(item.id)
        .bind(&item.lease_token)
        .fetch_optional(&mut *tx)
        .await?;
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
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
                     ON CONFLICT (location_id, kind, ghl_id) DO UPDATE SET
                        parent_id = COALESCE(excluded.parent_id, links.parent_id),
                        holded_id = excluded.holded_id, hash = excluded.hash, synced_at = excluded.synced_at",
                )
                .bind(item.key.location_id.as_str())
                .bind(item.key.kind.as_str())
                .bind(item.key.ghl_id.as_str())
                .bind(parent.as_ref().map(GhlId::as_str))
                .bind(holded_id)
                .bind(hash)
                .bind(now)
                .execute(&mut *tx)
                .await?;
            }
            LinkUpdate::Remove => {
                sqlx::query(
                    "DELETE FROM links WHERE location_id = ?1 AND kind = ?2 AND ghl_id = ?3",
                )
                .bind(item.key.location_id.as_str())
                .bind(item.key.kind.as_str())
                .bind(item.key.ghl_id.as_str())
                .execute(&mut *tx)
                .await?;
            }
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
        let state: Option<String> = sqlx::query_scalar(
            "UPDATE work SET due_at = ?1, attempts = attempts + 1, last_error = ?2,
                lease_until = NULL, lease_token = NULL, updated_at = ?3
             WHERE id = ?4 AND lease_token = ?5
             RETURNING state",
        )
        .bind(due_at.timestamp_millis())
        .bind(error)
        .bind(now_ms())
        .bind(item.id)
        .bind(&item.lease_token)
        .fetch_optional(&self.pool)
        .await?;
        Ok(completion(state))
    }

    async fn bury(&self, item: &WorkItem, reason: &str) -> Result<Completion, StoreError> {
        let state: Option<String> = sqlx::query_scalar(
            "UPDATE work SET
                state = CASE WHEN generation = ?1 THEN 'dead' ELSE 'pending' END,
                attempts = attempts + 1, last_error = ?2,
                lease_until = NULL, lease_token = NULL, updated_at = ?3
             WHERE id = ?4 AND lease_token = ?5
             RETURNING state",
        )
        .bind(item.generation)
        .bind(reason)
        .bind(now_ms())
        .bind(item.id)
        .bind(&item.lease_token)
        .fetch_optional(&self.pool)
        .await?;
        Ok(completion(state))
    }

    async fn enqueue(&self, requests: &[WorkRequest]) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        for request in requests {
            upsert_work(&mut tx, request).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn link(&self, key: &EntityKey) -> Result<Option<Link>, StoreError> {
        let row = sqlx::query(
            "SELECT location_id, kind, ghl_id, parent_id, holded_id, hash FROM links
             WHERE location_id = ?1 AND kind = ?2 AND ghl_id = ?3",
        )
        .bind(key.location_id.as_str())
        .bind(key.kind.as_str())
        .bind(key.ghl_id.as_str())
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(link_from_row).transpose()
    }

    async fn child_links(
        &self,
        location_id: &LocationId,
        parent: &GhlId,
    ) -> Result<Vec<Link>, StoreError> {
        let rows = sqlx::query(
            "SELECT location_id, kind, ghl_id, parent_id, holded_id, hash FROM links
             WHERE location_id = ?1 AND parent_id = ?2 AND kind <> 'contact'",
        )
        .bind(location_id.as_str())
        .bind(parent.as_str())
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(link_from_row).collect()
    }

    async fn remove_link(&self, key: &EntityKey) -> Result<(), StoreError> {
        delete_link(&self.pool, key).await
    }

    async fn work_status(&self, key: &EntityKey) -> Result<Option<WorkStatus>, StoreError> {
        let row = sqlx::query(
            "SELECT state, generation, attempts, last_error FROM work
             WHERE location_id = ?1 AND kind = ?2 AND ghl_id = ?3",
        )
        .bind(key.location_id.as_str())
        .bind(key.kind.as_str())
        .bind(key.ghl_id.as_str())
        .fetch_optional(&self.pool)
        .await?;
        row.map(|row| {
            let state = match row.try_get::<String, _>("state")?.as_str() {
                "pending" => WorkState::Pending,
                "done" => WorkState::Done,
                "dead" => WorkState::Dead,
                other => return Err(StoreError::Corrupt(format!("work state {other:?}"))),
            };
            Ok(WorkStatus {
                key: key.clone(),
                state,
                generation: row.try_get("generation")?,
                attempts: row.try_get("attempts")?,
                last_error: row.try_get("last_error")?,
            })
        })
        .transpose()
    }

    async fn count_events(&self) -> Result<i64, StoreError> {
        Ok(sqlx::query_scalar("SELECT COUNT(*) FROM events")
            .fetch_one(&self.pool)
            .await?)
    }

    async fn purge_events(&self, before: DateTime<Utc>) -> Result<u64, StoreError> {
        Ok(sqlx::query("DELETE FROM events WHERE received_at < ?1")
            .bind(before.timestamp_millis())
            .execute(&self.pool)
            .await?
            .rows_affected())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    async fn open_temp() -> (SharedStore, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}/nested/store.db", dir.path().display());
        let store = SqliteStore::open(&url).await.unwrap();
        store.ping().await.unwrap();
        (Arc::new(store), dir)
    }

    super::super::contract_tests::contract_suite!(open_temp().await);

    #[tokio::test]
    async fn reopening_releases_leases_of_the_dead_process() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}/store.db", dir.path().display());
        let store = SqliteStore::open(&url).await.unwrap();
        store
            .ingest(NewEvent {
                location_id: "loc1".into(),
                event_type: "ContactCreate".into(),
                dedupe_key: "k".into(),
                body: b"{}".to_vec(),
                received_at: Utc::now(),
                work: Some(WorkRequest {
                    key: EntityKey {
                        location_id: LocationId::parse("loc1").unwrap(),
                        kind: EntityKind::Contact,
                        ghl_id: GhlId::parse("c1").unwrap(),
                    },
                    parent: None,
                    deleted: false,
                }),
            })
            .await
            .unwrap();
        assert_eq!(
            store
                .claim(1, Duration::from_secs(3600))
                .await
                .unwrap()
                .len(),
            1
        );
        drop(store);
        let reopened = SqliteStore::open(&url).await.unwrap();
        assert_eq!(
            reopened
                .claim(1, Duration::from_secs(60))
                .await
                .unwrap()
                .len(),
            1
        );
    }
}
