//! `sync <kind> <ghl-id>`: queue one record for a fresh sync.
use crate::domain::{EntityKey, EntityKind, GhlId, LocationId};
use crate::store::{SharedStore, WorkRequest};

pub async fn run(
    store: &SharedStore,
    location_id: LocationId,
    kind: &str,
    ghl_id: &str,
    parent: Option<&str>,
) -> anyhow::Result<()> {
    let kind = EntityKind::parse(kind)
        .map_err(|e| anyhow::anyhow!("kind: {e} (contact, task, note, appointment)"))?;
    let ghl_id = GhlId::parse(ghl_id).map_err(|e| anyhow::anyhow!("ghl id: {e}"))?;
    let parent = parent
        .map(GhlId::parse)
        .transpose()
        .map_err(|e| anyhow::anyhow!("--contact: {e}"))?;
    if matches!(kind, EntityKind::Note) && parent.is_none() {
        anyhow::bail!("a note needs --contact <ghl contact id>");
    }
    let key = EntityKey {
        location_id,
        kind,
        ghl_id,
    };
    store
        .enqueue(&[WorkRequest {
            key: key.clone(),
            parent,
            deleted: false,
        }])
        .await?;
    println!("queued {key}; the running service syncs it within a second or so");
    Ok(())
}
