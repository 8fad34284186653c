//! SQLite backend: WAL, durable (`synchronous=FULL`) commits (concurrent webhooks committed
//! together by the shared group-commit writer, so durability costs one fsync per batch), and
//! WAL checkpoints off the commit path. The queries themselves are shared (`super::sql`).
use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::migrate::Migrator;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteQueryResult,
    SqliteSynchronous,
};
use sqlx::{Sqlite, SqlitePool};

use super::sql::{Backend, SqlStore};
use super::*;

/// A replica of the previous release keeps starting while a rolling deploy has already applied
/// a newer migration: migrations only add what old code does not read.
static MIGRATOR: Migrator = Migrator {
    ignore_missing: true,
    ..sqlx::migrate!("src/store/migrations/sqlite")
};

/// The single-replica store: one process owns the file.
pub type SqliteStore = SqlStore<Sqlite>;

impl SqliteStore {
    pub async fn open(database_url: &str, role: StoreRole) -> Result<Self, StoreError> {
        let mut options = SqliteConnectOptions::from_str(database_url)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(Duration::from_secs(10))
            .foreign_keys(true);
        if role == StoreRole::Service {
            // SQLite checkpoints the WAL inside whichever commit crosses 1,000 pages, which
            // stalls that commit (and every webhook batched into it) for tens of
            // milliseconds. The service checkpoints from a task of its own instead.
            options = options.pragma("wal_autocheckpoint", "0");
        }
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
        // One service process owns a SQLite file (it is the single-replica store), so when
        // the service starts, every lease still held was held by a process that is gone:
        // hand its work back now rather than after the lease runs out.
        if role == StoreRole::Service {
            sqlx::query(
                "UPDATE work SET lease_until = NULL, lease_token = NULL WHERE lease_until IS NOT NULL",
            )
            .execute(&pool)
            .await?;
        }
        if role == StoreRole::Service {
            tokio::spawn(checkpoint(pool.clone()));
        }
        Ok(SqlStore::with_writer(pool))
    }
}

#[async_trait]
impl Backend for Sqlite {
    /// One writer at a time: the claiming UPDATE is atomic as it stands.
    const LOCK_CLAIMED: &'static str = "";

    fn migrator() -> &'static Migrator {
        &MIGRATOR
    }

    fn rows_affected(result: &SqliteQueryResult) -> u64 {
        result.rows_affected()
    }
}

/// How often the WAL is copied back into the database file. PASSIVE never waits for
/// readers or writers, so no commit stalls behind it.
const CHECKPOINT_EVERY: Duration = Duration::from_secs(1);

async fn checkpoint(pool: SqlitePool) {
    let mut tick = tokio::time::interval(CHECKPOINT_EVERY);
    while !pool.is_closed() {
        tick.tick().await;
        if let Err(error) = sqlx::query("PRAGMA wal_checkpoint(PASSIVE)")
            .execute(&pool)
            .await
        {
            tracing::warn!(%error, "WAL checkpoint failed");
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::domain::{EntityKind, GhlId, LocationId};

    async fn open_temp() -> (SharedStore, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}/nested/store.db", dir.path().display());
        let store = SqliteStore::open(&url, StoreRole::Service).await.unwrap();
        store.ping().await.unwrap();
        (Arc::new(store), dir)
    }

    super::super::contract_tests::contract_suite!(open_temp().await);

    /// A rolling deploy: the old release must still start on a store a newer one migrated.
    #[tokio::test]
    async fn an_older_release_opens_a_store_migrated_further() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}/store.db", dir.path().display());
        let store = SqliteStore::open(&url, StoreRole::Service).await.unwrap();
        sqlx::query(
            "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time)
             VALUES (99999999999999, 'from a newer release', TRUE, x'00', 0)",
        )
        .execute(&store.pool)
        .await
        .unwrap();
        store.pool.close().await;
        let reopened = SqliteStore::open(&url, StoreRole::Service)
            .await
            .expect("an older release starts");
        reopened.ping().await.unwrap();
    }

    #[tokio::test]
    async fn reopening_releases_leases_of_the_dead_process() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}/store.db", dir.path().display());
        let store = SqliteStore::open(&url, StoreRole::Service).await.unwrap();
        store
            .ingest(NewEvent {
                location_id: "loc1".into(),
                event_type: "ContactCreate".into(),
                dedupe_key: "k".into(),
                body: b"{}".to_vec(),
                received_at: Utc::now(),
                settle: Duration::ZERO,
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
        let reopened = SqliteStore::open(&url, StoreRole::Service).await.unwrap();
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
