//! Section 1 (ingest) and section 4 (memory): signed, distinct webhooks at a fixed
//! concurrency into the real service, beside the bare-axum baseline.
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::Value;

use ghl_holded_sync::sim::webhooks::WebhookSigner;

use super::load::{self, Feed, Outcome, Shape, Signed};
use super::procs::{Memory, Process};
use super::world::{self, Database, PgDatabase, Sims};

pub const CONNECTIONS: usize = 64;
/// The closed-loop runs alternate between the baseline and the service, slice by slice, so
/// that both see the same machine (other work on it comes and goes).
const SLICES: usize = 2;
const SLICE: Duration = Duration::from_secs(5);
const FIRST_WARMUP: Duration = Duration::from_secs(2);
const SLICE_WARMUP: Duration = Duration::from_secs(1);
const HALF_WARMUP: Duration = Duration::from_secs(1);
const HALF_MEASURE: Duration = Duration::from_secs(10);
/// How long an idle service is left to settle before its resident memory is read.
const SETTLE: Duration = Duration::from_secs(2);
/// Distinct contacts the webhooks name (all exist in the GHL simulator).
pub const CONTACTS: usize = 10_000;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Store {
    Sqlite,
    Postgres,
}

impl Store {
    /// Its name in `BENCH_SECTIONS` (`ingest-<key>`).
    pub fn key(self) -> &'static str {
        match self {
            Store::Sqlite => "sqlite",
            Store::Postgres => "postgres",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Store::Sqlite => "SQLite",
            Store::Postgres => "PostgreSQL",
        }
    }
}

/// Pre-signed webhooks, grown between runs (never during one) as the rates require.
pub struct Bodies {
    signer: Arc<WebhookSigner>,
    contacts: Vec<Value>,
    signed: Arc<Vec<Signed>>,
}

impl Bodies {
    pub fn new(signer: Arc<WebhookSigner>) -> Bodies {
        let contacts = (0..CONTACTS)
            .map(|i| world::contact(&contact_id(i)))
            .collect();
        Bodies {
            signer,
            contacts,
            signed: Arc::new(Vec::new()),
        }
    }

    pub fn signer(&self) -> &WebhookSigner {
        &self.signer
    }

    pub fn len(&self) -> usize {
        self.signed.len()
    }

    /// At least `n` distinct bodies.
    pub fn ensure(&mut self, n: usize) {
        let have = self.signed.len();
        if have >= n {
            return;
        }
        let more = load::sign(&self.signer, &self.contacts, have, n - have);
        Arc::make_mut(&mut self.signed).extend(more);
    }

    fn shared(&self) -> Arc<Vec<Signed>> {
        self.signed.clone()
    }
}

pub fn contact_id(i: usize) -> String {
    format!("benchContact{i:05}")
}

pub struct Baseline {
    pub outcome: Outcome,
    pub idle: Memory,
    pub peak: Memory,
}

pub struct ServiceIngest {
    pub store: Store,
    /// How the store made commits durable.
    pub durability: String,
    pub full: Outcome,
    pub half: Outcome,
    /// Resident memory after start-up settled, before any load.
    pub idle: Memory,
    /// After both load runs: `peak_kib` is the high-water mark of the whole life.
    pub after: Memory,
    pub errors_logged: usize,
    /// Syncs the workers finished meanwhile (the background the ingest ran beside).
    pub background_syncs: usize,
    pub ghl_calls: usize,
    pub seconds: f64,
}

/// The real service on `store` beside the bare-axum process: idle memory of both, closed-loop
/// runs at [`CONNECTIONS`] alternating between them, then the service paced at half the rate
/// it sustained.
pub async fn run(
    store: Store,
    bodies: &mut Bodies,
    log_dir: &Path,
) -> anyhow::Result<(Baseline, ServiceIngest)> {
    let started = Instant::now();
    let sims = Sims::start().await;
    for i in 0..CONTACTS {
        sims.seed(&contact_id(i));
    }
    let database = match store {
        Store::Sqlite => Database::sqlite()?,
        Store::Postgres => Database::Postgres(PgDatabase::create().await?),
    };
    let durability = database.durability();
    let env = sims.service_env(bodies.signer(), &database.url(), &[]);
    let service = Process::service(&format!("ingest-{}", store.label()), &env, log_dir).await?;
    let bare = Process::bare_axum(log_dir).await?;
    tokio::time::sleep(SETTLE).await;
    let idle = service.memory()?;
    let bare_idle = bare.memory()?;

    let bare_feed = Arc::new(Feed::repeat(bodies.shared()));
    let feed = Arc::new(Feed::distinct(bodies.shared(), 0));
    let mut bare_outcome: Option<Outcome> = None;
    let mut full: Option<Outcome> = None;
    for slice in 0..SLICES {
        let shape = Shape {
            connections: CONNECTIONS,
            warmup: if slice == 0 {
                FIRST_WARMUP
            } else {
                SLICE_WARMUP
            },
            measure: SLICE,
            rate: None,
        };
        let b = load::run(bare.addr, bare_feed.clone(), shape, Some(bare.pid())).await?;
        bare_outcome = Some(match bare_outcome {
            Some(previous) => previous.merge(b),
            None => b,
        });
        let s = load::run(service.addr, feed.clone(), shape, Some(service.pid())).await?;
        full = Some(match full {
            Some(previous) => previous.merge(s),
            None => s,
        });
    }
    let bare_outcome = bare_outcome.expect("at least one slice");
    let full = full.expect("at least one slice");
    let baseline = Baseline {
        outcome: bare_outcome,
        idle: bare_idle,
        peak: bare.memory()?,
    };
    drop(bare);

    // Fresh bodies for the paced run: everything sent so far is a duplicate now.
    let used = feed.position();
    let half_rate = (full.rate() / 2.0).max(1.0);
    let needed = used + (half_rate * (HALF_WARMUP + HALF_MEASURE).as_secs_f64() * 1.2) as usize;
    bodies.ensure(needed);
    let half_shape = Shape {
        connections: CONNECTIONS,
        warmup: HALF_WARMUP,
        measure: HALF_MEASURE,
        rate: Some(half_rate),
    };
    let feed = Arc::new(Feed::distinct(bodies.shared(), used));
    let half = load::run(service.addr, feed, half_shape, Some(service.pid())).await?;
    let after = service.memory()?;
    let errors_logged = service.count_level("ERROR");
    let background_syncs = sims
        .holded
        .requests()
        .all()
        .iter()
        .filter(|r| r.method == reqwest::Method::POST)
        .count();
    let ghl_calls = sims.ghl.requests().all().len();
    drop(service);
    drop(database);
    Ok((
        baseline,
        ServiceIngest {
            store,
            durability,
            full,
            half,
            idle,
            after,
            errors_logged,
            background_syncs,
            ghl_calls,
            seconds: started.elapsed().as_secs_f64(),
        },
    ))
}
