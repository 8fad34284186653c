//! PostgreSQL backend: the store several replicas share. Each replica commits its concurrent
//! webhooks together (the shared group-commit writer); between replicas the unique dedupe key
//! and `ON CONFLICT` settle races, and a claim locks the rows it takes with
//! `FOR UPDATE SKIP LOCKED`, so two replicas never lease the same item. The queries
//! themselves are shared (`super::sql`).
use async_trait::async_trait;
use sqlx::migrate::Migrator;
use sqlx::postgres::{PgPoolOptions, PgQueryResult};
use sqlx::Postgres;

use super::sql::{Backend, SqlStore};
use super::*;

/// A replica of the previous release keeps starting while a rolling deploy has already applied
/// a newer migration: migrations only add what old code does not read.
static MIGRATOR: Migrator = Migrator {
    ignore_missing: true,
    ..sqlx::migrate!("src/store/migrations/postgres")
};

/// Connections per replica; every replica has its own pool on the shared server.
const POOL_SIZE: u32 = 10;

pub type PostgresStore = SqlStore<Postgres>;

impl PostgresStore {
    /// Connects and runs the migrations (sqlx serialises replicas migrating at once with an
    /// advisory lock). Leases are left as they are: other replicas may be holding them, and
    /// a dead replica's leases simply run out.
    pub async fn open(database_url: &str) -> Result<Self, StoreError> {
        let pool = PgPoolOptions::new()
            .max_connections(POOL_SIZE)
            .connect(database_url)
            .await?;
        MIGRATOR.run(&pool).await?;
        Ok(SqlStore::with_writer(pool))
    }
}

#[async_trait]
impl Backend for Postgres {
    /// A row another claimer has locked is skipped, not waited for and then taken again.
    const LOCK_CLAIMED: &'static str = "FOR UPDATE SKIP LOCKED";

    fn migrator() -> &'static Migrator {
        &MIGRATOR
    }

    fn rows_affected(result: &PgQueryResult) -> u64 {
        result.rows_affected()
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;
    use std::sync::Arc;
    use std::time::Duration;

    use chrono::Utc;
    use sqlx::{Connection, Executor, PgConnection};

    use super::*;
    use crate::domain::{EntityKind, GhlId, LocationId};

    const URL_VARIABLE: &str = "TEST_POSTGRES_URL";

    /// A server database (the maintenance one) to create the test databases from.
    fn server_url() -> String {
        std::env::var(URL_VARIABLE)
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
    }

    async fn connect_to_server(url: &str) -> PgConnection {
        let connected = tokio::time::timeout(Duration::from_secs(10), PgConnection::connect(url));
        match connected.await {
            Ok(Ok(conn)) => conn,
            // Never a skip, in CI or not: a suite that passes without a server proves nothing.
            Ok(Err(e)) => panic!(
                "the PostgreSQL tests need a server: {URL_VARIABLE}={url} is unreachable ({e}); \
                 start one or point {URL_VARIABLE} at one"
            ),
            Err(_) => panic!(
                "the PostgreSQL tests need a server: {URL_VARIABLE}={url} did not answer \
                 within 10 s; start one or point {URL_VARIABLE} at one"
            ),
        }
    }

    /// A database of its own for one test, dropped with the guard.
    struct TempDatabase {
        server_url: String,
        name: String,
    }

    impl Drop for TempDatabase {
        fn drop(&mut self) {
            let (url, name) = (self.server_url.clone(), self.name.clone());
            // Drop runs inside the test's runtime, which cannot be blocked on: a thread of
            // its own with its own runtime does the dropping. FORCE ends the pool's sessions.
            let dropped = std::thread::spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("a runtime to drop the test database");
                runtime.block_on(async {
                    let mut conn = PgConnection::connect(&url).await?;
                    conn.execute(
                        format!(r#"DROP DATABASE IF EXISTS "{name}" WITH (FORCE)"#).as_str(),
                    )
                    .await
                })
            })
            .join();
            if !matches!(dropped, Ok(Ok(_))) {
                eprintln!("could not drop test database {}: {dropped:?}", self.name);
            }
        }
    }

    async fn open_temp() -> (SharedStore, TempDatabase) {
        let (store, guard) = open_store().await;
        (Arc::new(store), guard)
    }

    async fn open_store() -> (PostgresStore, TempDatabase) {
        let server_url = server_url();
        let mut server = connect_to_server(&server_url).await;
        let name = format!("ghs_test_{:016x}", rand::random::<u64>());
        server
            .execute(format!(r#"CREATE DATABASE "{name}""#).as_str())
            .await
            .unwrap();
        let guard = TempDatabase {
            server_url: server_url.clone(),
            name: name.clone(),
        };
        let mut url = url::Url::parse(&server_url).expect("TEST_POSTGRES_URL is a URL");
        url.set_path(&format!("/{name}"));
        let store = PostgresStore::open(url.as_str()).await.unwrap();
        store.ping().await.unwrap();
        (store, guard)
    }

    super::super::contract_tests::contract_suite!(open_temp().await);

    fn contact(id: &str) -> WorkRequest {
        WorkRequest {
            key: EntityKey {
                location_id: LocationId::parse("loc1").unwrap(),
                kind: EntityKind::Contact,
                ghl_id: GhlId::parse(id).unwrap(),
            },
            parent: None,
            deleted: false,
        }
    }

    const LEASE: Duration = Duration::from_secs(60);

    async fn fifty_due_items(store: &PostgresStore) {
        let requests: Vec<WorkRequest> = (0..50).map(|i| contact(&format!("c{i}"))).collect();
        store.enqueue(&requests).await.unwrap();
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_claimers_take_disjoint_items() {
        let (store, _guard) = open_store().await;
        fifty_due_items(&store).await;
        let store = Arc::new(store);
        let start = Arc::new(tokio::sync::Barrier::new(2));
        let claimers: Vec<_> = (0..2)
            .map(|_| {
                let (store, start) = (store.clone(), start.clone());
                tokio::spawn(async move {
                    start.wait().await;
                    let mut ids = Vec::new();
                    loop {
                        let batch = store.claim(7, LEASE).await.unwrap();
                        if batch.is_empty() {
                            return ids;
                        }
                        ids.extend(batch.iter().map(|item| item.id));
                    }
                })
            })
            .collect();
        let mut claimed = Vec::new();
        for claimer in claimers {
            claimed.push(claimer.await.unwrap());
        }
        let (first, second): (HashSet<i64>, HashSet<i64>) = (
            claimed[0].iter().copied().collect(),
            claimed[1].iter().copied().collect(),
        );
        assert_eq!(first.len() + second.len(), 50, "no item is claimed twice");
        assert!(first.is_disjoint(&second));
        assert_eq!(first.union(&second).count(), 50, "every item is claimed");
    }

    #[tokio::test]
    async fn a_claim_skips_rows_another_claim_holds() {
        let (store, _guard) = open_store().await;
        fifty_due_items(&store).await;
        // Another replica is mid-claim: it has locked 20 due rows and not committed yet.
        let mut other = store.pool.begin().await.unwrap();
        let held: HashSet<i64> = sqlx::query_scalar(
            "SELECT id FROM work WHERE state = 'pending' ORDER BY due_at, id LIMIT 20 FOR UPDATE",
        )
        .fetch_all(&mut *other)
        .await
        .unwrap()
        .into_iter()
        .collect();
        let claimed = tokio::time::timeout(Duration::from_secs(5), store.claim(50, LEASE))
            .await
            .expect("a claim does not wait for rows another claim holds")
            .unwrap();
        let claimed: HashSet<i64> = claimed.iter().map(|item| item.id).collect();
        assert_eq!(claimed.len(), 30);
        assert!(claimed.is_disjoint(&held));
        other.rollback().await.unwrap();
        assert_eq!(store.claim(50, LEASE).await.unwrap().len(), 20);
    }

    #[tokio::test]
    async fn reopening_keeps_other_replicas_leases() {
        let (store, guard) = open_store().await;
        store.enqueue(&[contact("c1")]).await.unwrap();
        assert_eq!(store.claim(1, LEASE).await.unwrap().len(), 1);
        let mut url = url::Url::parse(&guard.server_url).unwrap();
        url.set_path(&format!("/{}", guard.name));
        let another = PostgresStore::open(url.as_str()).await.unwrap();
        assert!(another.claim(1, LEASE).await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn open_chooses_postgres_by_url() {
        let (_store, guard) = open_store().await;
        let mut url = url::Url::parse(&guard.server_url).unwrap();
        url.set_path(&format!("/{}", guard.name));
        let store = super::super::open(url.as_str(), StoreRole::Service)
            .await
            .unwrap();
        store.ping().await.unwrap();
        let event = NewEvent {
            location_id: "loc1".into(),
            event_type: "ContactCreate".into(),
            dedupe_key: "k".into(),
            body: b"{}".to_vec(),
            received_at: Utc::now(),
            settle: Duration::ZERO,
            work: Some(contact("c1")),
        };
        assert_eq!(store.ingest(event).await.unwrap(), IngestOutcome::Accepted);
    }
}
