//! `cargo bench --bench service`: how fast and how frugal the service is, beside its limits,
//! in one run that stops by itself within five minutes, printed as one table.
//!
//! 1. Ingest: validly signed, distinct webhooks per second and p50/p99 latency at 64
//!    keep-alive HTTP/1.1 connections, on SQLite and on PostgreSQL, each beside a bare axum
//!    handler (a process of its own) measured in alternating 5 s slices, so that both see the
//!    same machine; then the service's p99 when paced at half the rate it sustained.
//! 2. Coalescing: 1,000 updates to 10 contacts within a second → GHL fetches, Holded writes.
//! 3. Sync against the budget: 2,000 contacts queued, GHL simulator enforcing 100 calls/10 s.
//! 4. Resident memory of the service: idle, and its high-water mark through 1.
//!
//! Everything under test is a separate process started from the release build (the service
//! with `LOG_FORMAT=json` and the default `info` level, logging to a file); the GHL and Holded
//! simulators and the load generator run in this process.
mod bare;
mod budget;
mod coalesce;
mod ingest;
mod load;
mod procs;
mod report;
mod world;

use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ghl_holded_sync::sim::webhooks::WebhookSigner;

use ingest::{Baseline, Bodies, ServiceIngest, Store};
use report::{megabytes, micros, ms, percent, thousands, Table, Verdict};

/// The whole run, start to table, stops within this (the issue allows five minutes).
const DEADLINE: Duration = Duration::from_secs(290);
/// Distinct signed webhooks made before the first run (more are made between runs if needed).
const INITIAL_BODIES: usize = 120_000;
/// Comma-separated sections to run (e.g. to profile one): `ingest-sqlite`, `ingest-postgres`,
/// `coalesce`, `budget`. Unset: all of them.
const SECTIONS_VARIABLE: &str = "BENCH_SECTIONS";

fn selected(section: &str) -> bool {
    match std::env::var(SECTIONS_VARIABLE) {
        Ok(list) if !list.trim().is_empty() => list.split(',').any(|s| s.trim() == section),
        _ => true,
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|a| a == bare::FLAG) {
        return bare::serve();
    }
    // `cargo bench` passes `--bench`; `cargo test --benches` does not, and should not spend
    // minutes here.
    if !args.iter().any(|a| a == "--bench") {
        println!("benchmark skipped: run it with `cargo bench --bench service`");
        return ExitCode::SUCCESS;
    }
    watchdog(DEADLINE);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let code = runtime.block_on(run());
    drop(runtime);
    procs::kill_started();
    world::drop_created_databases();
    code
}

/// Ends the run, whatever it is doing, once `deadline` has passed.
fn watchdog(deadline: Duration) {
    std::thread::spawn(move || {
        std::thread::sleep(deadline);
        eprintln!("benchmark deadline of {deadline:?} exceeded: stopping");
        procs::kill_started();
        world::drop_created_databases();
        std::process::exit(3);
    });
}

async fn run() -> ExitCode {
    let started = Instant::now();
    let load_before = procs::load_average();
    let logs = match tempfile::Builder::new().prefix("ghs-bench-").tempdir() {
        Ok(dir) => dir,
        Err(error) => {
            eprintln!("no temporary folder for the logs: {error}");
            return ExitCode::FAILURE;
        }
    };
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    eprintln!(
        "ghl-holded-sync benchmark: {cores} cores, load average {load_before}, logs in {}",
        logs.path().display()
    );
    let signer = Arc::new(WebhookSigner::generate());
    let mut bodies = Bodies::new(signer.clone());
    if selected("ingest-sqlite") || selected("ingest-postgres") {
        let signing = Instant::now();
        bodies.ensure(INITIAL_BODIES);
        eprintln!(
            "signed {} distinct webhooks in {:.1} s (not measured)",
            bodies.len(),
            signing.elapsed().as_secs_f64()
        );
    }

    let mut table = Table::default();
    let mut notes = Vec::new();

    // 1 and 4: each store beside a bare-axum process, measured in alternating slices.
    let mut ingests: Vec<(Store, anyhow::Result<(Baseline, ServiceIngest)>)> = Vec::new();
    for store in [Store::Sqlite, Store::Postgres] {
        if !selected(&format!("ingest-{}", store.key())) {
            continue;
        }
        eprintln!(
            "1. ingest: the service on {} beside bare axum",
            store.label()
        );
        if let Some((_, Ok((_, previous)))) = ingests.last() {
            // Enough fresh bodies for a store up to 1.5× faster than the previous one.
            let used = previous.full.ok as f64 * 1.2 * 1.5;
            bodies.ensure(used as usize);
        }
        let measured = ingest::run(store, &mut bodies, logs.path()).await;
        ingests.push((store, measured));
    }
    for (store, measured) in &ingests {
        ingest_rows(&mut table, &mut notes, *store, measured);
    }

    if selected("coalesce") {
        eprintln!(
            "2. coalescing: {} updates to {} contacts",
            coalesce::UPDATES,
            coalesce::CONTACTS
        );
        let coalescing = coalesce::run(&signer, logs.path()).await;
        coalescing_rows(&mut table, &mut notes, &coalescing);
    }
    if selected("budget") {
        eprintln!(
            "3. budget: {} contacts queued against 100 calls / 10 s",
            budget::CONTACTS
        );
        let budget = budget::run(&signer, logs.path()).await;
        budget_rows(&mut table, &mut notes, &budget);
    }

    for (_, measured) in &ingests {
        memory_rows(&mut table, measured);
    }

    println!();
    println!("{}", table.render());
    for note in &notes {
        println!("- {note}");
    }
    println!(
        "- run: {:.0} s in all, {cores} cores shared by the load generator, the simulators and \
         the process under test; load average {load_before} before, {} after",
        started.elapsed().as_secs_f64(),
        procs::load_average()
    );
    if table.has(Verdict::Error) {
        keep_logs(logs);
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}

/// A scenario failed: its processes' logs are kept for a look.
fn keep_logs(logs: tempfile::TempDir) {
    let path = logs.keep();
    println!("- logs of the processes kept in {}", path.display());
}

fn ingest_rows(
    table: &mut Table,
    notes: &mut Vec<String>,
    store: Store,
    measured: &anyhow::Result<(Baseline, ServiceIngest)>,
) {
    let label = store.label();
    let (baseline, service) = match measured {
        Ok((baseline, service)) => (baseline, service),
        Err(error) => {
            table.error(format!("1. ingest {label}"), error);
            return;
        }
    };
    let bare = &baseline.outcome;
    table.row(
        format!(
            "1. bare axum 200, {} conns (beside {label})",
            ingest::CONNECTIONS
        ),
        format!("{} req/s", thousands(bare.rate())),
        "—",
        format!(
            "p50 {} · p99 {}",
            ms(bare.percentile(50.0)),
            ms(bare.percentile(99.0))
        ),
        Verdict::Info,
    );
    let full = &service.full;
    let ratio = full.rate() / bare.rate().max(1.0);
    let (target, verdict) = match service.store {
        Store::Sqlite => (
            format!("{} (target ≥ 25 %)", percent(ratio)),
            Verdict::of(ratio >= 0.25),
        ),
        Store::Postgres => (percent(ratio), Verdict::Info),
    };
    table.row(
        format!(
            "1. ingest {label}, {}, {} conns",
            service.durability,
            ingest::CONNECTIONS
        ),
        format!("{} webhooks/s", thousands(full.rate())),
        format!("{} req/s bare axum", thousands(bare.rate())),
        target,
        verdict,
    );
    table.row(
        format!("1. ingest {label} latency, {} conns", ingest::CONNECTIONS),
        format!(
            "p50 {} · p99 {}",
            ms(full.percentile(50.0)),
            ms(full.percentile(99.0))
        ),
        format!(
            "bare axum p50 {} · p99 {}",
            ms(bare.percentile(50.0)),
            ms(bare.percentile(99.0))
        ),
        "—",
        Verdict::Info,
    );
    let half = &service.half;
    let p99 = half.percentile(99.0);
    let (target, verdict) = match service.store {
        Store::Sqlite => (
            "target < 20 ms".to_owned(),
            Verdict::of(p99 < Duration::from_millis(20)),
        ),
        Store::Postgres => ("—".to_owned(), Verdict::Info),
    };
    table.row(
        format!(
            "1. ingest {label} at half that rate ({}/s offered)",
            thousands(half.offered_rate.unwrap_or_default())
        ),
        format!("p99 {} (p50 {})", ms(p99), ms(half.percentile(50.0))),
        format!("{} webhooks/s served", thousands(half.rate())),
        target,
        verdict,
    );
    if let (Some(cpu), Some(bare_cpu)) = (full.cpu_per_request(), bare.cpu_per_request()) {
        table.row(
            format!("1. service CPU per webhook ({label})"),
            micros(cpu),
            format!("bare axum {}", micros(bare_cpu)),
            format!(
                "{:.1}×",
                cpu.as_secs_f64() / bare_cpu.as_secs_f64().max(1e-9)
            ),
            Verdict::Info,
        );
    }
    for (what, outcome) in [("full", full), ("half-rate", half), ("bare axum", bare)] {
        if outcome.failed() > 0 || outcome.exhausted || outcome.lost_connections > 0 {
            notes.push(format!(
                "{label} {what} run: {} failed answers {:?}, {} connections lost{}",
                outcome.failed(),
                outcome.failures,
                outcome.lost_connections,
                if outcome.exhausted {
                    format!("; ran out of signed bodies after {:.1} s", outcome.seconds)
                } else {
                    String::new()
                }
            ));
        }
    }
    notes.push(format!(
        "{label}: while ingesting, the service's 4 workers synced in the background at the \
         default GHL budget (100 calls / 10 s): {} GHL calls, {} Holded creates in {:.0} s; \
         {} ERROR log lines",
        service.ghl_calls, service.background_syncs, service.seconds, service.errors_logged
    ));
}

fn memory_rows(table: &mut Table, measured: &anyhow::Result<(Baseline, ServiceIngest)>) {
    let Ok((baseline, service)) = measured else {
        return;
    };
    let label = service.store.label();
    let bare = |f: fn(&Baseline) -> u64| format!("bare axum {}", megabytes(f(baseline)));
    let idle = service.idle.rss_kib;
    table.row(
        format!("4. idle RSS, {label}"),
        megabytes(idle),
        bare(|b| b.idle.rss_kib),
        "target < 30 MB",
        Verdict::of(report::mb(idle) < 30.0),
    );
    let peak = service.after.peak_kib;
    table.row(
        format!("4. peak RSS through ingest, {label}"),
        format!(
            "{} (after: {})",
            megabytes(peak),
            megabytes(service.after.rss_kib)
        ),
        bare(|b| b.peak.peak_kib),
        "target < 100 MB",
        Verdict::of(report::mb(peak) < 100.0),
    );
}

fn coalescing_rows(
    table: &mut Table,
    notes: &mut Vec<String>,
    result: &anyhow::Result<coalesce::Coalescing>,
) {
    let result = match result {
        Ok(result) => result,
        Err(error) => {
            table.error("2. coalescing", error);
            return;
        }
    };
    let max = |v: &[usize]| v.iter().copied().max().unwrap_or(0);
    let total = |v: &[usize]| v.iter().sum::<usize>();
    let scenario = format!(
        "{} updates to {} contacts in {:.2} s",
        thousands(coalesce::UPDATES as f64),
        coalesce::CONTACTS,
        result.burst_seconds
    );
    table.row(
        format!("2. GHL fetches per contact ({scenario})"),
        format!(
            "max {} (total {})",
            max(&result.fetches),
            total(&result.fetches)
        ),
        "—",
        "target ≤ 2",
        Verdict::of(max(&result.fetches) <= 2),
    );
    let writes_max = max(&result.writes) + usize::from(result.stray_writes > 0);
    table.row(
        "2. Holded writes per contact (same burst)",
        format!(
            "max {} (total {})",
            max(&result.writes),
            total(&result.writes) + result.stray_writes
        ),
        "—",
        "target ≤ 1",
        Verdict::of(writes_max <= 1),
    );
    notes.push(format!(
        "coalescing: per contact, GHL fetches {:?}, Holded writes {:?}{}; {} GHL calls in all \
         (each sync also lists the contact's tasks); Holded ended on the last GHL state for \
         {}/{} contacts; queue drained {:.1} s after the burst; {} webhooks refused",
        result.fetches,
        result.writes,
        if result.stray_writes > 0 {
            format!(" (+{} not tied to a contact)", result.stray_writes)
        } else {
            String::new()
        },
        result.ghl_calls,
        result.converged,
        coalesce::CONTACTS,
        result.drain_seconds,
        result.rejected_webhooks
    ));
}

fn budget_rows(
    table: &mut Table,
    notes: &mut Vec<String>,
    result: &anyhow::Result<budget::Budget>,
) {
    let result = match result {
        Ok(result) => result,
        Err(error) => {
            table.error("3. sync against the GHL budget", error);
            return;
        }
    };
    let measured = result.measured();
    let counts: Vec<String> = measured.iter().map(|w| w.calls.to_string()).collect();
    let min_ratio = measured
        .iter()
        .map(|w| f64::from(w.calls) / f64::from(budget::LIMIT))
        .fold(f64::INFINITY, f64::min);
    let complete = measured.len() == budget::MEASURED;
    table.row(
        format!(
            "3. GHL calls per 10 s window, windows 2–{} ({} contacts queued)",
            budget::MEASURED + 1,
            thousands(budget::CONTACTS as f64)
        ),
        if complete {
            counts.join(", ")
        } else {
            format!("{} (only {} windows)", counts.join(", "), measured.len())
        },
        format!("{} allowed each", budget::LIMIT),
        format!("min {min_ratio:.2} (target ≥ 0.9)"),
        if complete {
            Verdict::of(min_ratio >= 0.9)
        } else {
            Verdict::Miss
        },
    );
    let allowed = budget::LIMIT * budget::MEASURED as u32;
    let span_ratio = f64::from(result.span_calls) / f64::from(allowed);
    table.row(
        format!(
            "3. GHL calls in {} s of wall time from window 2",
            10 * budget::MEASURED
        ),
        result.span_calls.to_string(),
        format!("{allowed} allowed"),
        format!("{span_ratio:.2} (target ≥ 0.9)"),
        Verdict::of(span_ratio >= 0.9),
    );
    table.row(
        "3. GHL 429s while draining the backlog",
        result.refused_total.to_string(),
        "—",
        "target 0",
        Verdict::of(result.refused_total == 0),
    );
    let detail: Vec<String> = result
        .windows
        .iter()
        .enumerate()
        .map(|(i, w)| {
            format!(
                "w{} at +{:.2} s: {} calls{}{}",
                i + 1,
                w.start.as_secs_f64(),
                w.calls,
                w.full_after
                    .map(|d| format!(" (100th after {:.2} s)", d.as_secs_f64()))
                    .unwrap_or_default(),
                if w.refused > 0 {
                    format!(", {} refused", w.refused)
                } else {
                    String::new()
                }
            )
        })
        .collect();
    let gaps: Vec<String> = result
        .gaps()
        .iter()
        .map(|g| format!("{:.2} s", g.as_secs_f64()))
        .collect();
    notes.push(format!(
        "budget ({} workers, Holded limit raised so only GHL paces): simulator windows {}; idle \
         between a measured window's end and the next one's first call: {}; {} contacts \
         synced in the measured span ({:.1}/min)",
        result.workers,
        detail.join("; "),
        gaps.join(", "),
        result.contacts_synced_in_span,
        result.contacts_synced_in_span as f64 * 60.0 / (10.0 * budget::MEASURED as f64)
    ));
}
