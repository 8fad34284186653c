//! A `World` (GHL and Holded simulators, a webhook signer, a store of its own) and the
//! service binary started against it.
//!
//! The store is SQLite unless `TEST_STORE=postgres`: then every `World` creates a database of
//! its own on the PostgreSQL server at `TEST_POSTGRES_URL` (default
//! `postgres://postgres@127.0.0.1:5432/postgres`, as the store's unit tests) and drops it with
//! the `World`.
use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ghl_holded_sync::sim::faults::{FaultAction, FaultRule, Gate};
use ghl_holded_sync::sim::ghl::GhlSim;
use ghl_holded_sync::sim::holded::HoldedSim;
use ghl_holded_sync::sim::recorder::RecordedRequest;
use ghl_holded_sync::sim::webhooks::{contact_event, WebhookSigner, TEST_ONLY_RSA_PRIVATE_KEY_PEM};
use serde_json::{json, Value};
use sqlx::{Connection, Executor, PgConnection, SqliteConnection};

use super::eventually;

pub const LOCATION: &str = "ve9EPM428h8vShlRW1KT";
pub const GHL_TOKEN: &str = "pit-7f3a9c0e-secret-private-integration-token";
pub const HOLDED_KEY: &str = "holded-4b1d2e8f9a0c-secret-api-key";
pub const STARTUP: Duration = Duration::from_secs(30);
pub const SYNC: Duration = Duration::from_secs(20);

/// The variable that picks the store of every `World::new()`.
pub const STORE_VARIABLE: &str = "TEST_STORE";
/// The PostgreSQL server (its maintenance database) the test databases are created on.
pub const POSTGRES_URL_VARIABLE: &str = "TEST_POSTGRES_URL";
const DEFAULT_POSTGRES_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";

/// Which store backend the services of a `World` run on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StoreKind {
    Sqlite,
    Postgres,
}

impl StoreKind {
    /// `TEST_STORE`: `sqlite` (the default) or `postgres`; anything else stops the test.
    pub fn from_env() -> StoreKind {
        match std::env::var(STORE_VARIABLE).as_deref() {
            Err(_) | Ok("") | Ok("sqlite") => StoreKind::Sqlite,
            Ok("postgres") | Ok("postgresql") => StoreKind::Postgres,
            Ok(other) => panic!("{STORE_VARIABLE}={other}: expected sqlite or postgres"),
        }
    }
}

/// The store of one `World`: a SQLite file in a temporary folder, or a PostgreSQL database
/// of its own. Both are removed when the `World` is dropped.
pub enum TestDatabase {
    Sqlite(tempfile::TempDir),
    Postgres(PostgresDatabase),
}

impl TestDatabase {
    pub async fn create(kind: StoreKind) -> TestDatabase {
        match kind {
            StoreKind::Sqlite => TestDatabase::Sqlite(tempfile::tempdir().unwrap()),
            StoreKind::Postgres => TestDatabase::Postgres(PostgresDatabase::create().await),
        }
    }

    pub fn kind(&self) -> StoreKind {
        match self {
            TestDatabase::Sqlite(_) => StoreKind::Sqlite,
            TestDatabase::Postgres(_) => StoreKind::Postgres,
        }
    }

    /// The `DATABASE_URL` the services get.
    pub fn url(&self) -> String {
        match self {
            TestDatabase::Sqlite(dir) => format!("sqlite://{}/sync.db", dir.path().display()),
            TestDatabase::Postgres(db) => db.url.clone(),
        }
    }
}

/// A database created for one `World` on `TEST_POSTGRES_URL`'s server; dropped (with
/// `FORCE`, ending the sessions of any service still connected) when this is dropped.
pub struct PostgresDatabase {
    server_url: String,
    pub name: String,
    pub url: String,
}

impl PostgresDatabase {
    async fn create() -> PostgresDatabase {
        let server_url = std::env::var(POSTGRES_URL_VARIABLE)
            .ok()
            .filter(|url| !url.is_empty())
            .unwrap_or_else(|| DEFAULT_POSTGRES_URL.to_string());
        let mut server = connect_to_server(&server_url).await;
        let name = format!("ghs_blackbox_{:016x}", rand::random::<u64>());
        server
            .execute(format!(r#"CREATE DATABASE "{name}""#).as_str())
            .await
            .unwrap_or_else(|e| panic!("CREATE DATABASE {name} on {server_url}: {e}"));
        let _ = server.close().await;
        let mut url = url::Url::parse(&server_url)
            .unwrap_or_else(|e| panic!("{POSTGRES_URL_VARIABLE}={server_url} is not a URL: {e}"));
        url.set_path(&format!("/{name}"));
        PostgresDatabase {
            server_url,
            name,
            url: url.to_string(),
        }
    }
}

/// Never a skip: a suite that passes without a server proves nothing about PostgreSQL.
async fn connect_to_server(url: &str) -> PgConnection {
    let connected = tokio::time::timeout(Duration::from_secs(10), PgConnection::connect(url));
    match connected.await {
        Ok(Ok(conn)) => conn,
        Ok(Err(e)) => panic!(
            "the PostgreSQL black-box tests need a server: {POSTGRES_URL_VARIABLE}={url} is \
             unreachable ({e}); start one or point {POSTGRES_URL_VARIABLE} at one"
        ),
        Err(_) => panic!(
            "the PostgreSQL black-box tests need a server: {POSTGRES_URL_VARIABLE}={url} did \
             not answer within 10 s; start one or point {POSTGRES_URL_VARIABLE} at one"
        ),
    }
}

impl Drop for PostgresDatabase {
    fn drop(&mut self) {
        let (url, name) = (self.server_url.clone(), self.name.clone());
        // Drop may run inside the test's runtime, which cannot be blocked on: a thread of its
        // own with its own runtime does the dropping.
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a runtime to drop the test database");
            runtime.block_on(async {
                let mut conn = PgConnection::connect(&url).await?;
                conn.execute(format!(r#"DROP DATABASE IF EXISTS "{name}" WITH (FORCE)"#).as_str())
                    .await?;
                conn.close().await
            })
        })
        .join();
        if !matches!(dropped, Ok(Ok(()))) {
            eprintln!("could not drop test database {}: {dropped:?}", self.name);
        }
    }
}

/// A direct connection to a `World`'s store, for the helpers that read it.
enum StoreConnection {
    Sqlite(SqliteConnection),
    Postgres(PgConnection),
}

/// Runs `$body` with `$conn` bound to a direct connection to the world's store, of whichever
/// backend, then closes it. The SQL must suit both (`$1` parameters, shared column types).
macro_rules! read_store {
    ($world:expr, |$conn:ident| $body:expr) => {
        match $world.connect_store().await {
            StoreConnection::Sqlite(mut $conn) => {
                let value = $body;
                let _ = $conn.close().await;
                value
            }
            StoreConnection::Postgres(mut $conn) => {
                let value = $body;
                let _ = $conn.close().await;
                value
            }
        }
    };
}

pub struct World {
    pub ghl: GhlSim,
    pub holded: HoldedSim,
    pub signer: WebhookSigner,
    pub http: reqwest::Client,
    pub database: TestDatabase,
    /// Extra variables for every service started in this world.
    pub env: HashMap<String, String>,
}

impl World {
    /// A world on the store `TEST_STORE` names (SQLite by default).
    pub async fn new() -> World {
        World::on(StoreKind::from_env()).await
    }

    /// A world on the given store, whatever `TEST_STORE` says.
    pub async fn on(store: StoreKind) -> World {
        let ghl = GhlSim::start().await;
        ghl.add_private_token(LOCATION, GHL_TOKEN);
        let holded = HoldedSim::start().await;
        holded.add_api_key(HOLDED_KEY);
        World {
            ghl,
            holded,
            signer: WebhookSigner::generate().with_rsa_pem(TEST_ONLY_RSA_PRIVATE_KEY_PEM),
            http: reqwest::Client::new(),
            database: TestDatabase::create(store).await,
            env: HashMap::new(),
        }
    }

    /// Holds the answer to the first GHL `GET` of `path` (read, then held) until the
    /// returned gate opens: the sync is in flight for as long as the test wants.
    pub fn hold_first_ghl_get(&self, path: &str) -> Gate {
        let gate = Gate::new();
        self.ghl.faults().push(
            FaultRule::always(
                Some(reqwest::Method::GET),
                path,
                FaultAction::Hold(gate.clone()),
            )
            .times(1),
        );
        gate
    }

    /// The same world with one more variable for every service started in it, e.g.
    /// `World::new().await.with_env("WORKERS", "1")`.
    pub fn with_env(mut self, name: &str, value: &str) -> World {
        self.env.insert(name.into(), value.into());
        self
    }

    /// Budgets high enough that a test's backlog is limited by the machine, not by pacing
    /// (the simulator's headers advertise the raised GHL limit).
    pub fn without_rate_limits(&mut self) {
        self.ghl
            .enforce_rate_limit(Some((100_000, Duration::from_secs(10))));
        self.env
            .insert("GHL_RATE_LIMIT".into(), "100000/10s".into());
        self.env
            .insert("HOLDED_RATE_LIMIT".into(), "100000/1s".into());
    }

    pub fn database_url(&self) -> String {
        self.database.url()
    }

    pub fn store_kind(&self) -> StoreKind {
        self.database.kind()
    }

    pub fn service_env(&self) -> HashMap<String, String> {
        let mut env: HashMap<String, String> = [
            ("LISTEN_ADDR", "127.0.0.1:0".to_string()),
            ("LOG_FORMAT", "json".to_string()),
            ("DATABASE_URL", self.database_url()),
            ("GHL_API_BASE", self.ghl.base_url()),
            ("HOLDED_API_BASE", self.holded.base_url()),
            ("GHL_WEBHOOK_ED25519_KEY", self.signer.ed25519_public_pem()),
            ("GHL_WEBHOOK_RSA_KEY", self.signer.rsa_public_pem().unwrap()),
            ("GHL_LOCATION_ID", LOCATION.to_string()),
            ("GHL_PRIVATE_TOKEN", GHL_TOKEN.to_string()),
            ("HOLDED_API_KEY", HOLDED_KEY.to_string()),
            ("UPSTREAM_TIMEOUT", "5s".to_string()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        env.extend(self.env.clone());
        if self.store_kind() == StoreKind::Postgres && !env.contains_key("WORK_LEASE") {
            // SQLite hands a killed service's leased items back when it starts again; on
            // PostgreSQL (other replicas may hold leases) they wait for their lease to run out.
            // The shortest lease the service accepts (twice UPSTREAM_TIMEOUT) keeps that inside
            // the crash tests' deadlines instead of the default two minutes.
            let timeout = env
                .get("UPSTREAM_TIMEOUT")
                .and_then(|t| humantime::parse_duration(t).ok())
                .unwrap_or(Duration::from_secs(30));
            let lease = (timeout * 2).max(Duration::from_secs(10));
            env.insert(
                "WORK_LEASE".into(),
                humantime::format_duration(lease).to_string(),
            );
        }
        env
    }

    pub async fn start_service(&self) -> Service {
        Service::spawn(self.service_env()).await
    }

    /// A contact in the GHL simulator, shaped like `GetContectByIdSchema`.
    pub fn seed_contact(&self, id: &str) -> Value {
        let contact = json!({
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
        });
        self.ghl.put_contact(contact.clone());
        contact
    }

    /// Seeds every id as `seed_contact` does.
    pub fn seed_contacts(&self, ids: impl IntoIterator<Item = String>) {
        for id in ids {
            self.seed_contact(&id);
        }
    }

    /// Seeds contact `id` in GHL, delivers its `ContactCreate` and waits (`what` names the
    /// wait in a timeout) until it is in Holded; returns the Holded contact.
    pub async fn create_and_sync_contact(&self, service: &Service, id: &str, what: &str) -> Value {
        self.seed_contact_and_post_create(service, id).await;
        self.holded_contact_where(id, what, |_| true).await
    }

    /// Seeds contact `id` in GHL and posts its `ContactCreate`, asserting it is acknowledged;
    /// returns the service's answer. Does not wait for the sync.
    pub async fn seed_contact_and_post_create(&self, service: &Service, id: &str) -> Value {
        self.seed_contact(id);
        self.post_contact_event(service, "ContactCreate", id).await
    }

    /// Starts the service and syncs contact `id` through it (`create_and_sync_contact`), for
    /// the many tests that begin from a contact already in Holded.
    pub async fn start_with_synced_contact(&self, id: &str, what: &str) -> Service {
        let service = self.start_service().await;
        self.create_and_sync_contact(&service, id, what).await;
        service
    }

    /// The webhook GHL would send for the contact as the simulator holds it now.
    pub fn contact_webhook(&self, event_type: &str, id: &str) -> Vec<u8> {
        let contact = self
            .ghl
            .contact(id)
            .unwrap_or_else(|| json!({ "id": id, "locationId": LOCATION }));
        serde_json::to_vec(&contact_event(event_type, &contact)).unwrap()
    }

    pub async fn post_signed(&self, service: &Service, body: &[u8]) -> reqwest::Response {
        self.signer
            .post(&self.http, &service.url("/webhooks/ghl"), body)
            .await
            .expect("webhook POST")
    }

    /// Posts a signed webhook, asserts the service acknowledged it (200) and returns its
    /// answer, whose `status` says what became of it (`stored`, `duplicate`, `ignored`).
    pub async fn post_acknowledged(&self, service: &Service, body: &[u8]) -> Value {
        let response = self.post_signed(service, body).await;
        assert_eq!(response.status(), reqwest::StatusCode::OK);
        response.json().await.expect("JSON webhook answer")
    }

    /// `post_acknowledged` for a webhook event given as JSON.
    pub async fn post_event(&self, service: &Service, event: &Value) -> Value {
        self.post_acknowledged(service, &serde_json::to_vec(event).unwrap())
            .await
    }

    /// `post_acknowledged` for the contact webhook `event_type` of `id`, carrying the contact
    /// as the GHL simulator holds it now.
    pub async fn post_contact_event(&self, service: &Service, event_type: &str, id: &str) -> Value {
        self.post_acknowledged(service, &self.contact_webhook(event_type, id))
            .await
    }

    /// Deletes contact `id` from GHL and then posts `event_type` for it (acknowledged). The
    /// webhook is built first, so it still carries the contact as GHL sends it; any fetch the
    /// service makes afterwards finds the contact gone (404).
    pub async fn delete_in_ghl_then_post(&self, service: &Service, event_type: &str, id: &str) {
        let body = self.contact_webhook(event_type, id);
        self.ghl.delete_contact(id);
        self.post_acknowledged(service, &body).await;
    }

    /// `GET`s `path` on the service (health, metrics, routes that are not there).
    pub async fn get(&self, service: &Service, path: &str) -> reqwest::Response {
        self.http
            .get(service.url(path))
            .send()
            .await
            .unwrap_or_else(|e| panic!("GET {path}: {e}"))
    }

    pub async fn post_raw(
        &self,
        service: &Service,
        headers: &[(&str, String)],
        body: Vec<u8>,
    ) -> reqwest::Response {
        let mut request = self
            .http
            .post(service.url("/webhooks/ghl"))
            .header("content-type", "application/json")
            .body(body);
        for (name, value) in headers {
            request = request.header(*name, value);
        }
        request.send().await.expect("webhook POST")
    }

    /// The Holded contacts carrying `ghl_id` as customId, waiting until `ready` holds.
    pub async fn holded_contact_where(
        &self,
        ghl_id: &str,
        what: &str,
        ready: impl Fn(&Value) -> bool,
    ) -> Value {
        eventually(what, SYNC, || async {
            let found = self.holded.contacts_with_custom_id(HOLDED_KEY, ghl_id);
            match found.as_slice() {
                [one] if ready(one) => Some(one.clone()),
                [] | [_] => None,
                many => panic!("{} Holded contacts for {ghl_id}: {many:?}", many.len()),
            }
        })
        .await
    }

    /// Waits (`what` names the wait in a timeout) until the work item of `ghl_id` is dead;
    /// returns its `(state, last_error)`.
    pub async fn wait_for_dead_work(&self, ghl_id: &str, what: &str) -> (String, Option<String>) {
        eventually(what, SYNC, || async {
            self.work_row(ghl_id)
                .await
                .filter(|(state, _)| state == "dead")
        })
        .await
    }

    async fn connect_store(&self) -> StoreConnection {
        use sqlx::ConnectOptions;
        match &self.database {
            TestDatabase::Sqlite(_) => {
                let options: sqlx::sqlite::SqliteConnectOptions =
                    self.database_url().parse().unwrap();
                StoreConnection::Sqlite(options.read_only(true).connect().await.unwrap())
            }
            TestDatabase::Postgres(db) => {
                StoreConnection::Postgres(PgConnection::connect(&db.url).await.unwrap())
            }
        }
    }

    /// Counts rows in the service's store, read directly.
    pub async fn count_rows(&self, table: &str) -> i64 {
        let sql = format!("SELECT COUNT(*) FROM {table}");
        read_store!(self, |conn| sqlx::query_scalar(&sql)
            .fetch_one(&mut conn)
            .await
            .unwrap())
    }

    /// Work items in `state` (`pending`, `done` or `dead`), read directly from the store.
    pub async fn count_work(&self, state: &str) -> i64 {
        const SQL: &str = "SELECT COUNT(*) FROM work WHERE state = $1";
        read_store!(self, |conn| sqlx::query_scalar(SQL)
            .bind(state)
            .fetch_one(&mut conn)
            .await
            .unwrap())
    }

    /// `(state, last_error)` of the work row for a GHL id, read directly from the store.
    pub async fn work_row(&self, ghl_id: &str) -> Option<(String, Option<String>)> {
        const SQL: &str = "SELECT state, last_error FROM work WHERE ghl_id = $1";
        self.state_row(SQL, ghl_id).await
    }

    /// Every sealed credential column as stored: token pairs and Holded keys.
    pub async fn stored_secret_columns(&self) -> Vec<Vec<u8>> {
        const TOKENS: &str = "SELECT access, refresh FROM tokens";
        const KEYS: &str = "SELECT holded_key FROM tenants WHERE holded_key IS NOT NULL";
        read_store!(self, |conn| {
            let pairs: Vec<(Vec<u8>, Option<Vec<u8>>)> =
                sqlx::query_as(TOKENS).fetch_all(&mut conn).await.unwrap();
            let keys: Vec<Vec<u8>> = sqlx::query_scalar(KEYS).fetch_all(&mut conn).await.unwrap();
            pairs
                .into_iter()
                .flat_map(|(access, refresh)| std::iter::once(access).chain(refresh))
                .chain(keys)
                .collect()
        })
    }

    /// `(state, company_id)` of an installed location, read directly from the store.
    pub async fn tenant_row(&self, location_id: &str) -> Option<(String, Option<String>)> {
        const SQL: &str = "SELECT state, company_id FROM tenants WHERE location_id = $1";
        self.state_row(SQL, location_id).await
    }

    /// The `(state, detail)` row `sql` selects for `key` (its `$1`), if any, read directly
    /// from the store: work items and tenants are both looked up this way.
    async fn state_row(&self, sql: &str, key: &str) -> Option<(String, Option<String>)> {
        read_store!(self, |conn| sqlx::query_as(sql)
            .bind(key)
            .fetch_optional(&mut conn)
            .await
            .unwrap())
    }

    /// GHL ids of every dead work item, sorted.
    pub async fn dead_ghl_ids(&self) -> Vec<String> {
        const SQL: &str = "SELECT ghl_id FROM work WHERE state = 'dead' ORDER BY ghl_id";
        read_store!(self, |conn| sqlx::query_scalar(SQL)
            .fetch_all(&mut conn)
            .await
            .unwrap())
    }

    /// The first request the GHL simulator received for `path`, so a test can read its headers.
    pub fn first_ghl_request(&self, path: &str) -> RecordedRequest {
        self.ghl
            .requests()
            .all()
            .into_iter()
            .find(|r| r.path == path)
            .unwrap_or_else(|| panic!("no GHL request for {path}"))
    }

    /// GHL fetches of one contact record so far (not of its tasks, notes, appointments).
    pub fn ghl_fetches(&self, id: &str) -> usize {
        let path = format!("/contacts/{id}");
        self.ghl
            .requests()
            .all()
            .iter()
            .filter(|r| r.method == reqwest::Method::GET && r.path == path)
            .count()
    }
}

/// Whether a Holded record (contact or event) carries `tag` among its `tags`.
pub fn has_tag(record: &Value, tag: &str) -> bool {
    record["tags"]
        .as_array()
        .is_some_and(|tags| tags.iter().any(|t| t == tag))
}

/// The service binary, started with `env`; killed (SIGKILL) when dropped.
pub struct Service {
    child: Child,
    pub addr: SocketAddr,
    output: Arc<Mutex<Vec<String>>>,
}

impl Service {
    pub async fn spawn(env: HashMap<String, String>) -> Service {
        let mut child = Command::new(env!("CARGO_BIN_EXE_ghl-holded-sync"))
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .envs(env)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("service binary starts");
        let output = Arc::new(Mutex::new(Vec::new()));
        for stream in [
            Box::new(child.stdout.take().unwrap()) as Box<dyn std::io::Read + Send>,
            Box::new(child.stderr.take().unwrap()),
        ] {
            let output = output.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stream).lines().map_while(Result::ok) {
                    output.lock().unwrap().push(line);
                }
            });
        }
        let mut service = Service {
            child,
            addr: "0.0.0.0:0".parse().unwrap(),
            output,
        };
        let until = std::time::Instant::now() + STARTUP;
        loop {
            let listening = service
                .find_log(|l| l["message"] == "listening")
                .and_then(|l| l["addr"].as_str()?.parse().ok());
            if let Some(addr) = listening {
                service.addr = addr;
                break;
            }
            if let Ok(Some(status)) = service.child.try_wait() {
                panic!("service exited with {status}: {:#?}", service.lines());
            }
            assert!(
                std::time::Instant::now() < until,
                "service did not start: {:#?}",
                service.lines()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        service
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Every line the service printed, stdout and stderr.
    pub fn lines(&self) -> Vec<String> {
        self.output.lock().unwrap().clone()
    }

    /// Log lines parsed as JSON (non-JSON lines skipped).
    pub fn logs(&self) -> Vec<Value> {
        self.lines()
            .iter()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }

    pub fn find_log(&self, matches: impl Fn(&Value) -> bool) -> Option<Value> {
        self.logs().into_iter().find(|l| matches(l))
    }

    pub async fn wait_for_log(&self, what: &str, matches: impl Fn(&Value) -> bool) -> Value {
        eventually(what, SYNC, || {
            let found = self.find_log(&matches);
            async move { found }
        })
        .await
    }

    /// How many sync log lines for `ghl_id` have `outcome` (`created`, `unchanged`, `retry` …).
    pub fn outcome_count(&self, ghl_id: &str, outcome: &str) -> usize {
        self.sync_outcomes(ghl_id)
            .iter()
            .filter(|o| *o == outcome)
            .count()
    }

    /// Sync log lines for one GHL id.
    pub fn sync_outcomes(&self, ghl_id: &str) -> Vec<String> {
        self.logs()
            .into_iter()
            .filter(|l| l["message"] == "sync" && l["ghl_id"] == ghl_id)
            .map(|l| l["outcome"].as_str().unwrap_or_default().to_owned())
            .collect()
    }

    pub fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM, then waits up to `grace` for the exit (as Kubernetes would); panics past it.
    pub fn terminate(mut self, grace: Duration) -> std::process::ExitStatus {
        let sent = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("kill runs");
        assert!(sent.success(), "SIGTERM delivered");
        let until = std::time::Instant::now() + grace;
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                return status;
            }
            assert!(
                std::time::Instant::now() < until,
                "no exit within {grace:?}: {:#?}",
                self.lines()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
