//! Section 3: a backlog of 2,000 contacts against a GHL simulator that enforces 100 calls per
//! 10 s. How much of each window the service uses, and whether it ever draws a 429.
//!
//! The simulator's windows are fixed, not sliding: a window opens with the first call after
//! the previous one closed and lasts 10 s. They are rebuilt here from its request log.
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use serde_json::Value;

use ghl_holded_sync::sim::webhooks::{contact_event, WebhookSigner};

use super::procs::Process;
use super::world::{Database, Sims};

pub const CONTACTS: usize = 2_000;
pub const LIMIT: u32 = 100;
pub const WINDOW: Duration = Duration::from_secs(10);
/// Windows measured after the first (which includes start-up and the backlog arriving).
pub const MEASURED: usize = 3;
const DEADLINE: Duration = Duration::from_secs(75);

/// One of the simulator's fixed windows.
#[derive(Clone, Debug)]
pub struct Window {
    /// Offset of its first call from the first call of the run.
    pub start: Duration,
    pub calls: u32,
    pub refused: u32,
    /// Offset of its `LIMIT`-th call from its start, if it reached the limit.
    pub full_after: Option<Duration>,
}

pub struct Budget {
    pub windows: Vec<Window>,
    /// Calls (not refused) in `MEASURED` windows' worth of wall time from window 1's start.
    pub span_calls: u32,
    pub refused_total: u32,
    pub contacts_synced_in_span: usize,
    pub workers: &'static str,
}

impl Budget {
    /// Windows 1..=MEASURED (0 is the start-up window).
    pub fn measured(&self) -> &[Window] {
        let end = (1 + MEASURED).min(self.windows.len());
        self.windows.get(1..end).unwrap_or(&[])
    }

    /// Idle time between a measured window's end and the next window's first call.
    pub fn gaps(&self) -> Vec<Duration> {
        self.windows
            .windows(2)
            .skip(1)
            .take(MEASURED)
            .map(|pair| pair[1].start.saturating_sub(pair[0].start + WINDOW))
            .collect()
    }
}

pub async fn run(signer: &WebhookSigner, log_dir: &Path) -> anyhow::Result<Budget> {
    let sims = Sims::start().await;
    sims.ghl.enforce_rate_limit(Some((LIMIT, WINDOW)));
    let contacts: Vec<Value> = (0..CONTACTS)
        .map(|i| sims.seed(&format!("budgetContact{i:04}")))
        .collect();
    let database = Database::sqlite()?;
    // Holded's v1 limit is undocumented: raised so that only GHL's budget paces the backlog.
    let workers = "4";
    let env = sims.service_env(
        signer,
        &database.url(),
        &[("HOLDED_RATE_LIMIT", "100000/1s"), ("WORKERS", workers)],
    );
    let process = Process::service("budget", &env, log_dir).await?;
    let http = reqwest::Client::new();
    let url = Arc::new(process.url("/webhooks/ghl"));
    let bodies: Vec<Vec<u8>> = contacts
        .iter()
        .map(|c| serde_json::to_vec(&contact_event("ContactCreate", c)))
        .collect::<Result<_, _>>()?;
    let signatures: Vec<String> = bodies.iter().map(|b| signer.sign_ed25519(b)).collect();
    let mut posts = tokio::task::JoinSet::new();
    let queue = Arc::new(std::sync::Mutex::new(
        bodies.into_iter().zip(signatures).collect::<Vec<_>>(),
    ));
    for _ in 0..32 {
        let (http, url, queue) = (http.clone(), url.clone(), queue.clone());
        posts.spawn(async move {
            loop {
                let Some((body, signature)) = queue.lock().unwrap().pop() else {
                    return Ok::<(), anyhow::Error>(());
                };
                http.post(url.as_str())
                    .header("content-type", "application/json")
                    .header("x-ghl-signature", signature)
                    .body(body)
                    .send()
                    .await?
                    .error_for_status()?;
            }
        });
    }
    while let Some(posted) = posts.join_next().await {
        posted.context("a webhook sender panicked")??;
    }

    let started = Instant::now();
    let windows = loop {
        let (origin, windows) = fixed_windows(&sims);
        let complete = windows
            .get(MEASURED)
            .is_some_and(|last| Instant::now() >= origin + last.start + WINDOW);
        if complete || started.elapsed() > DEADLINE {
            break windows;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    let log = sims.ghl.requests().all();
    let origin = log
        .iter()
        .map(|r| r.at)
        .min()
        .context("no GHL call at all")?;
    let (span_calls, contacts_synced_in_span) = match windows.get(1) {
        Some(first) => {
            let from = origin + first.start;
            let to = from + WINDOW * MEASURED as u32;
            let in_span = |at: Instant| at >= from && at < to;
            let calls = log
                .iter()
                .filter(|r| r.status != 429 && in_span(r.at))
                .count();
            let synced = sims
                .holded
                .requests()
                .all()
                .iter()
                .filter(|r| r.method == reqwest::Method::POST && in_span(r.at))
                .count();
            (calls as u32, synced)
        }
        None => (0, 0),
    };
    let refused_total = log.iter().filter(|r| r.status == 429).count() as u32;
    drop(process);
    Ok(Budget {
        windows,
        span_calls,
        refused_total,
        contacts_synced_in_span,
        workers,
    })
}

/// The simulator's windows as its request log shows them: the first opens with the first
/// call; each later one with the first call at least `WINDOW` after the previous opened.
fn fixed_windows(sims: &Sims) -> (Instant, Vec<Window>) {
    let mut calls: Vec<(Instant, u16)> = sims
        .ghl
        .requests()
        .all()
        .iter()
        .map(|r| (r.at, r.status))
        .collect();
    calls.sort_by_key(|(at, _)| *at);
    let Some(&(origin, _)) = calls.first() else {
        return (Instant::now(), Vec::new());
    };
    let mut windows: Vec<Window> = Vec::new();
    let mut opened = origin;
    for (at, status) in calls {
        if windows.is_empty() || at.duration_since(opened) >= WINDOW {
            opened = at;
            windows.push(Window {
                start: at.duration_since(origin),
                calls: 0,
                refused: 0,
                full_after: None,
            });
        }
        let window = windows.last_mut().expect("just pushed");
        if status == 429 {
            window.refused += 1;
        } else {
            window.calls += 1;
            if window.calls == LIMIT {
                window.full_after = Some(at.duration_since(opened));
            }
        }
    }
    (origin, windows)
}
