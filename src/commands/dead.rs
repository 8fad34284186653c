//! `dead list` and `dead replay [ID|--all]`.
use crate::store::{SharedStore, WorkState};

pub async fn list(store: &SharedStore) -> anyhow::Result<()> {
    let items = store.list_work(Some(WorkState::Dead), 1000).await?;
    if items.is_empty() {
        println!("no dead items");
        return Ok(());
    }
    println!(
        "{:>8}  {:<24} {:<12} {:<24} {:>8}  reason",
        "id", "location", "kind", "ghl id", "attempts"
    );
    for item in &items {
        println!(
            "{:>8}  {:<24} {:<12} {:<24} {:>8}  {}",
            item.id,
            item.key.location_id,
            item.key.kind,
            item.key.ghl_id,
            item.attempts,
            item.last_error.as_deref().unwrap_or("-")
        );
    }
    println!("{} dead item(s)", items.len());
    Ok(())
}

/// Replays one dead item (`Some(id)`) or all of them; the running service picks them up.
pub async fn replay(store: &SharedStore, id: Option<i64>) -> anyhow::Result<()> {
    let replayed = store.replay_dead(id).await?;
    match (id, replayed) {
        (Some(id), 0) => anyhow::bail!("no dead item with id {id}"),
        _ => println!("{replayed} item(s) queued again"),
    }
    Ok(())
}
