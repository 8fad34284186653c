//! Section 2: 1,000 updates to 10 contacts within one second. Each update changes the contact
//! in GHL (its street address, a field Holded receives) and then GHL posts its
//! `ContactUpdate`; the simulators count what the service fetched and wrote.
use std::collections::HashMap;
use std::path::Path;
use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::json;

use ghl_holded_sync::sim::webhooks::{contact_event, WebhookSigner};

use super::procs::Process;
use super::world::{self, Database, Sims, HOLDED_KEY};

pub const CONTACTS: usize = 10;
pub const UPDATES: usize = 1_000;
const BURST: Duration = Duration::from_secs(1);
const DRAIN_DEADLINE: Duration = Duration::from_secs(60);
/// The GHL budget's window (the service's default `GHL_RATE_LIMIT`, 100/10s).
const GHL_WINDOW: Duration = Duration::from_secs(10);

pub struct Coalescing {
    /// GHL `GET /contacts/{id}` per contact, after the warm-up.
    pub fetches: Vec<usize>,
    /// Holded contact writes (POST/PUT/DELETE) per contact, after the warm-up.
    pub writes: Vec<usize>,
    /// Every GHL call of the burst (contact fetches and the task lists each sync reads).
    pub ghl_calls: usize,
    /// Holded writes that could not be tied to one of the contacts.
    pub stray_writes: usize,
    /// Contacts whose Holded record ended with the last GHL state.
    pub converged: usize,
    /// From the first update to the last.
    pub burst_seconds: f64,
    /// From the last update until no work was pending.
    pub drain_seconds: f64,
    pub rejected_webhooks: usize,
}

fn id(i: usize) -> String {
    format!("coalesce{i:02}")
}

fn street(update: usize) -> String {
    format!("Avenida {update}")
}

pub async fn run(signer: &WebhookSigner, log_dir: &Path) -> anyhow::Result<Coalescing> {
    let sims = Sims::start().await;
    for i in 0..CONTACTS {
        sims.seed(&id(i));
    }
    let database = Database::sqlite()?;
    let env = sims.service_env(signer, &database.url(), &[]);
    let process = Process::service("coalesce", &env, log_dir).await?;
    let http = reqwest::Client::new();
    let url = process.url("/webhooks/ghl");

    // Warm-up: each contact's first sync (create in Holded, list its history).
    for i in 0..CONTACTS {
        let contact = sims.ghl.contact(&id(i)).expect("seeded");
        let body = serde_json::to_vec(&contact_event("ContactCreate", &contact))?;
        signer.post(&http, &url, &body).await?.error_for_status()?;
    }
    wait_until_drained(&http, &process, || {
        (0..CONTACTS).all(|i| {
            sims.holded
                .contacts_with_custom_id(HOLDED_KEY, &id(i))
                .len()
                == 1
        })
    })
    .await?;
    // The burst starts with the GHL budget's window empty, so pacing neither helps nor
    // hurts the coalescing measured here.
    if let Some(last) = sims.ghl.requests().all().iter().map(|r| r.at).max() {
        tokio::time::sleep_until((last + GHL_WINDOW).into()).await;
    }
    sims.ghl.requests().clear();
    sims.holded.requests().clear();

    // The burst: one update every millisecond, round robin over the contacts.
    let tick = BURST / UPDATES as u32;
    let mut ticks = tokio::time::interval(tick);
    let mut posts = tokio::task::JoinSet::new();
    let burst_started = Instant::now();
    for n in 0..UPDATES {
        ticks.tick().await;
        let contact_id = id(n % CONTACTS);
        let update = n / CONTACTS + 1;
        sims.ghl
            .patch_contact(&contact_id, json!({ "address1": street(update) }));
        let contact = sims.ghl.contact(&contact_id).expect("seeded");
        let body = serde_json::to_vec(&contact_event("ContactUpdate", &contact))?;
        let signature = signer.sign_ed25519(&body);
        let request = http
            .post(&url)
            .header("content-type", "application/json")
            .header("x-ghl-signature", signature)
            .body(body);
        posts.spawn(async move { request.send().await.map(|r| r.status().is_success()) });
    }
    let burst_seconds = burst_started.elapsed().as_secs_f64();
    let mut rejected_webhooks = 0;
    while let Some(posted) = posts.join_next().await {
        if !matches!(posted, Ok(Ok(true))) {
            rejected_webhooks += 1;
        }
    }
    let burst_ended = Instant::now();
    wait_until_drained(&http, &process, || true).await?;
    let drain_seconds = burst_ended.elapsed().as_secs_f64();

    let last_street = street(UPDATES / CONTACTS);
    let holded_ids: HashMap<String, String> = sims
        .holded
        .contacts(HOLDED_KEY)
        .iter()
        .filter_map(|c| {
            Some((
                c["id"].as_str()?.to_owned(),
                c["customId"].as_str()?.to_owned(),
            ))
        })
        .collect();
    let converged = sims
        .holded
        .contacts(HOLDED_KEY)
        .iter()
        .filter(|c| c["billAddress"]["address"] == last_street.as_str())
        .count();
    let ghl_log = sims.ghl.requests().all();
    let fetches = (0..CONTACTS)
        .map(|i| {
            let path = format!("/contacts/{}", id(i));
            ghl_log
                .iter()
                .filter(|r| r.method == Method::GET && r.path == path)
                .count()
        })
        .collect();
    let mut writes = vec![0; CONTACTS];
    let mut stray_writes = 0;
    for request in sims.holded.requests().all() {
        if !matches!(request.method, Method::POST | Method::PUT | Method::DELETE) {
            continue;
        }
        // A create names the GHL id in its body; an update or delete the Holded id in its path.
        let ghl_id = if request.method == Method::POST {
            serde_json::from_str::<serde_json::Value>(&request.body)
                .ok()
                .and_then(|b| b["CustomId"].as_str().map(str::to_owned))
        } else {
            request
                .path
                .rsplit('/')
                .next()
                .and_then(|holded_id| holded_ids.get(holded_id).cloned())
        };
        match ghl_id.and_then(|g| (0..CONTACTS).find(|i| id(*i) == g)) {
            Some(i) => writes[i] += 1,
            None => stray_writes += 1,
        }
    }
    drop(process);
    Ok(Coalescing {
        fetches,
        writes,
        ghl_calls: ghl_log.len(),
        stray_writes,
        converged,
        burst_seconds,
        drain_seconds,
        rejected_webhooks,
    })
}

/// Waits until the service reports no pending work twice in a row and `done` holds.
async fn wait_until_drained(
    http: &reqwest::Client,
    process: &Process,
    done: impl Fn() -> bool,
) -> anyhow::Result<()> {
    let until = Instant::now() + DRAIN_DEADLINE;
    let mut quiet = 0;
    loop {
        let pending = world::work_items(http, &process.url(""), "pending").await?;
        quiet = if pending == 0 && done() { quiet + 1 } else { 0 };
        if quiet >= 2 {
            return Ok(());
        }
        if Instant::now() > until {
            anyhow::bail!(
                "work still pending after {DRAIN_DEADLINE:?} ({pending} items):\n{}",
                process.tail(10)
            );
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}
