//! A `World` (GHL and Holded simulators, a webhook signer, a database folder) and the
//! service binary started against it.
use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ghl_holded_sync::sim::ghl::GhlSim;
use ghl_holded_sync::sim::holded::HoldedSim;
use ghl_holded_sync::sim::webhooks::{contact_event, WebhookSigner, TEST_ONLY_RSA_PRIVATE_KEY_PEM};
use serde_json::{json, Value};

use super::eventually;

pub const LOCATION: &str = "ve9EPM428h8vShlRW1KT";
pub const GHL_TOKEN: &str = "pit-7f3a9c0e-secret-private-integration-token";
pub const HOLDED_KEY: &str = "holded-4b1d2e8f9a0c-secret-api-key";
pub const STARTUP: Duration = Duration::from_secs(30);
pub const SYNC: Duration = Duration::from_secs(20);

pub struct World {
    pub ghl: GhlSim,
    pub holded: HoldedSim,
    pub signer: WebhookSigner,
    pub http: reqwest::Client,
    pub db_dir: tempfile::TempDir,
    /// Extra variables for every service started in this world.
    pub env: HashMap<String, String>,
}

impl World {
    pub async fn new() -> World {
        let ghl = GhlSim::start().await;
        ghl.add_private_token(LOCATION, GHL_TOKEN);
        let holded = HoldedSim::start().await;
        holded.add_api_key(HOLDED_KEY);
        World {
            ghl,
            holded,
            signer: WebhookSigner::generate().with_rsa_pem(TEST_ONLY_RSA_PRIVATE_KEY_PEM),
            http: reqwest::Client::new(),
            db_dir: tempfile::tempdir().unwrap(),
            env: HashMap::new(),
        }
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
        format!("sqlite://{}/sync.db", self.db_dir.path().display())
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

    /// Counts rows in the service's SQLite file, read directly.
    pub async fn count_rows(&self, table: &str) -> i64 {
        use sqlx::ConnectOptions;
        let options: sqlx::sqlite::SqliteConnectOptions = self.database_url().parse().unwrap();
        let mut conn = options.read_only(true).connect().await.unwrap();
        sqlx::query_scalar(&format!("SELECT COUNT(*) FROM {table}"))
            .fetch_one(&mut conn)
            .await
            .unwrap()
    }

    /// `(state, last_error)` of the work row for a GHL id, read directly from the store.
    pub async fn work_row(&self, ghl_id: &str) -> Option<(String, Option<String>)> {
        use sqlx::ConnectOptions;
        let options: sqlx::sqlite::SqliteConnectOptions = self.database_url().parse().unwrap();
        let mut conn = options.read_only(true).connect().await.unwrap();
        sqlx::query_as("SELECT state, last_error FROM work WHERE ghl_id = ?1")
            .bind(ghl_id)
            .fetch_optional(&mut conn)
            .await
            .unwrap()
    }

    /// GHL ids of every dead work item, sorted.
    pub async fn dead_ghl_ids(&self) -> Vec<String> {
        use sqlx::ConnectOptions;
        let options: sqlx::sqlite::SqliteConnectOptions = self.database_url().parse().unwrap();
        let mut conn = options.read_only(true).connect().await.unwrap();
        sqlx::query_scalar("SELECT ghl_id FROM work WHERE state = 'dead' ORDER BY ghl_id")
            .fetch_all(&mut conn)
            .await
            .unwrap()
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
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
