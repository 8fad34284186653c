//! What every scenario sets up: the GHL and Holded simulators (in this process), a store of
//! its own, and the service's environment.
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use anyhow::{anyhow, Context};
use serde_json::{json, Value};
use sqlx::{Connection, Executor, PgConnection};

use ghl_holded_sync::sim::ghl::GhlSim;
use ghl_holded_sync::sim::holded::HoldedSim;
use ghl_holded_sync::sim::webhooks::WebhookSigner;

pub const LOCATION: &str = "benchLocation0000001";
pub const GHL_TOKEN: &str = "pit-bench-private-integration-token";
pub const HOLDED_KEY: &str = "holded-bench-api-key";

/// The PostgreSQL server the benchmark's database is created on (as the tests).
const POSTGRES_URL_VARIABLE: &str = "TEST_POSTGRES_URL";
const DEFAULT_POSTGRES_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";

pub struct Sims {
    pub ghl: GhlSim,
    pub holded: HoldedSim,
}

impl Sims {
    pub async fn start() -> Sims {
        let ghl = GhlSim::start().await;
        ghl.add_private_token(LOCATION, GHL_TOKEN);
        let holded = HoldedSim::start().await;
        holded.add_api_key(HOLDED_KEY);
        Sims { ghl, holded }
    }

    /// Puts `contact(id)` into the GHL simulator.
    pub fn seed(&self, id: &str) -> Value {
        let contact = contact(id);
        self.ghl.put_contact(contact.clone());
        contact
    }

    /// The service's variables against these simulators: every setting left at its
    /// default unless `extra` names it.
    pub fn service_env(
        &self,
        signer: &WebhookSigner,
        database_url: &str,
        extra: &[(&str, &str)],
    ) -> HashMap<String, String> {
        let mut env: HashMap<String, String> = [
            ("LISTEN_ADDR", "127.0.0.1:0".to_owned()),
            ("LOG_FORMAT", "json".to_owned()),
            ("DATABASE_URL", database_url.to_owned()),
            ("GHL_API_BASE", self.ghl.base_url()),
            ("HOLDED_API_BASE", self.holded.base_url()),
            ("GHL_WEBHOOK_ED25519_KEY", signer.ed25519_public_pem()),
            ("GHL_LOCATION_ID", LOCATION.to_owned()),
            ("GHL_PRIVATE_TOKEN", GHL_TOKEN.to_owned()),
            ("HOLDED_API_KEY", HOLDED_KEY.to_owned()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
        env.extend(
            extra
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
        );
        env
    }
}

/// A GHL contact in the `GetContectByIdSchema` shape (as the black-box tests seed them).
pub fn contact(id: &str) -> Value {
    json!({
        "id": id,
        "locationId": LOCATION,
        "firstName": "John",
        "lastName": "Deo",
        "name": "John Deo",
        "email": format!("{id}@example.com"),
        "phone": "+34 600 11 22 33",
        "type": "customer",
        "address1": "Calle Mayor 1",
        "city": "Madrid",
        "state": "Madrid",
        "postalCode": "28013",
        "country": "ES",
        "website": "https://example.com",
        "tags": ["vip", "b2b"],
    })
}

/// The store of one service: a SQLite file in a temporary folder (on the same disk as the
/// project: ext4 here, so `synchronous=FULL` really waits for fsync), or a PostgreSQL
/// database of its own, dropped afterwards.
pub enum Database {
    Sqlite(tempfile::TempDir),
    Postgres(PgDatabase),
}

impl Database {
    pub fn sqlite() -> anyhow::Result<Database> {
        Ok(Database::Sqlite(tempfile::tempdir()?))
    }

    /// How commits are made durable, for the table.
    pub fn durability(&self) -> String {
        match self {
            // Set by the service itself (src/store/sqlite.rs).
            Database::Sqlite(_) => "synchronous=FULL".to_owned(),
            Database::Postgres(db) => format!("synchronous_commit={}", db.synchronous_commit),
        }
    }

    pub fn url(&self) -> String {
        match self {
            Database::Sqlite(dir) => format!("sqlite://{}/sync.db", dir.path().display()),
            Database::Postgres(db) => db.url.clone(),
        }
    }
}

/// Databases created and not yet dropped, for the deadline watchdog: `(server url, name)`.
static CREATED: Mutex<Vec<(String, String)>> = Mutex::new(Vec::new());

pub struct PgDatabase {
    server_url: String,
    name: String,
    pub url: String,
    /// The server's `synchronous_commit` (`on`: a commit waits for its WAL flush).
    pub synchronous_commit: String,
}

impl PgDatabase {
    pub async fn create() -> anyhow::Result<PgDatabase> {
        let server_url = std::env::var(POSTGRES_URL_VARIABLE)
            .ok()
            .filter(|url| !url.is_empty())
            .unwrap_or_else(|| DEFAULT_POSTGRES_URL.to_owned());
        let connected =
            tokio::time::timeout(Duration::from_secs(10), PgConnection::connect(&server_url))
                .await
                .map_err(|_| anyhow!("{POSTGRES_URL_VARIABLE}={server_url}: no answer in 10 s"))?;
        let mut server =
            connected.with_context(|| format!("{POSTGRES_URL_VARIABLE}={server_url}"))?;
        let synchronous_commit: String = sqlx::query_scalar("SHOW synchronous_commit")
            .fetch_one(&mut server)
            .await
            .context("SHOW synchronous_commit")?;
        let name = format!("ghs_bench_{:016x}", rand::random::<u64>());
        server
            .execute(format!(r#"CREATE DATABASE "{name}""#).as_str())
            .await
            .with_context(|| format!("CREATE DATABASE {name}"))?;
        let _ = server.close().await;
        CREATED
            .lock()
            .unwrap()
            .push((server_url.clone(), name.clone()));
        let mut url = url::Url::parse(&server_url)?;
        url.set_path(&format!("/{name}"));
        Ok(PgDatabase {
            server_url,
            name,
            url: url.to_string(),
            synchronous_commit,
        })
    }
}

impl Drop for PgDatabase {
    fn drop(&mut self) {
        drop_database(&self.server_url, &self.name);
        CREATED.lock().unwrap().retain(|(_, n)| *n != self.name);
    }
}

/// Drops every database this run created and has not dropped yet.
pub fn drop_created_databases() {
    let created: Vec<_> = CREATED.lock().unwrap().drain(..).collect();
    for (server_url, name) in created {
        drop_database(&server_url, &name);
    }
}

fn drop_database(server_url: &str, name: &str) {
    let (url, name) = (server_url.to_owned(), name.to_owned());
    // Drop may run inside the benchmark's runtime, which cannot be blocked on: a thread of
    // its own with its own runtime does the dropping. FORCE ends the service's sessions.
    let dropped = std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime to drop the benchmark database");
        runtime.block_on(async {
            let mut conn = PgConnection::connect(&url).await?;
            conn.execute(format!(r#"DROP DATABASE IF EXISTS "{name}" WITH (FORCE)"#).as_str())
                .await?;
            conn.close().await
        })
    })
    .join();
    if !matches!(dropped, Ok(Ok(()))) {
        eprintln!("could not drop benchmark database: {dropped:?}");
    }
}

/// Work items in `state`, as the service's `GET /metrics` reports them (read from its store).
pub async fn work_items(
    http: &reqwest::Client,
    service_url: &str,
    state: &str,
) -> anyhow::Result<i64> {
    let text = http
        .get(format!("{service_url}/metrics"))
        .send()
        .await?
        .error_for_status()?
        .text()
        .await?;
    let prefix = format!("ghl_holded_sync_work_items{{state=\"{state}\"}} ");
    text.lines()
        .find_map(|line| line.strip_prefix(&prefix))
        .ok_or_else(|| anyhow!("/metrics has no work_items{{state={state}}}"))?
        .trim()
        .parse()
        .context("work_items value")
}
