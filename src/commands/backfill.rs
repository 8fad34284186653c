//! `backfill --location <id>`: every GHL contact of a location into the work queue, with a
//! progress bar. Resumable: the search cursor is saved after each page is queued, so a
//! rerun continues where the last one stopped. The running service does the syncing.
use std::time::Instant;

use indicatif::{ProgressBar, ProgressStyle};

use crate::domain::GhlId;
use crate::ghl::GhlClient;
use crate::store::{BackfillProgress, SharedStore};
use crate::sync::contact_work;
use crate::tenants::Tenant;

const PAGE_LIMIT: u32 = 100;

pub async fn run(
    store: &SharedStore,
    ghl: &GhlClient,
    tenant: &Tenant,
    restart: bool,
) -> anyhow::Result<()> {
    let location = &tenant.location_id;
    let mut progress = match store.backfill_progress(location).await? {
        Some(saved) if !restart && !saved.finished => {
            println!(
                "resuming after {} contacts ({} pages)",
                saved.contacts, saved.pages
            );
            saved
        }
        _ => BackfillProgress::default(),
    };
    let bar = ProgressBar::new_spinner();
    bar.set_style(
        ProgressStyle::with_template(
            "{spinner} [{elapsed_precise}] {bar:30} {pos}/{len} contacts · {msg} · ETA {eta}",
        )
        .expect("valid template"),
    );
    bar.set_position(progress.contacts as u64);
    let started = Instant::now();
    let mut queued_now = 0u64;
    let since = chrono::DateTime::UNIX_EPOCH;
    loop {
        let page = ghl
            .search_updated_since(tenant.ghl(), since, progress.cursor.as_ref(), PAGE_LIMIT)
            .await?;
        if let Some(total) = page.total {
            bar.set_length(total.max(progress.contacts as u64));
        }
        let requests: Vec<_> = page
            .contacts
            .iter()
            .filter_map(|hit| GhlId::parse(&hit.id).ok())
            .map(|id| contact_work(location, id))
            .collect();
        store.enqueue(&requests).await?;
        queued_now += requests.len() as u64;
        progress.pages += 1;
        progress.contacts += requests.len() as i64;
        progress.cursor = page.contacts.last().and_then(|h| h.search_after.clone());
        progress.finished = page.contacts.len() < PAGE_LIMIT as usize || progress.cursor.is_none();
        store.save_backfill_progress(location, &progress).await?;
        let rate = queued_now as f64 / started.elapsed().as_secs_f64().max(0.001);
        bar.set_position(progress.contacts as u64);
        bar.set_message(format!("page {} · {rate:.0} contacts/s", progress.pages));
        if progress.finished {
            break;
        }
    }
    bar.finish_with_message(format!("{} pages", progress.pages));
    println!(
        "queued {} contacts of {location} in {} pages; the service syncs them at GHL's pace",
        progress.contacts, progress.pages
    );
    Ok(())
}
