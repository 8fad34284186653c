//! A task, note or appointment, GHL → a Holded CRM event on its contact.
use std::time::Duration;

use super::activity_mapper::{ActivityMapper, GhlActivity};
use super::contact::Synced;
use super::error::SyncError;
use crate::domain::{EntityKey, EntityKind, GhlId};
use crate::ghl::GhlClient;
use crate::holded::{HoldedClient, HoldedError};
use crate::store::{Link, LinkUpdate, SharedStore, WorkItem, WorkRequest, WorkState};
use crate::tenants::Tenant;

/// How soon a child waiting for its contact looks again; the contact is queued meanwhile.
const PARENT_WAIT: Duration = Duration::from_secs(1);
/// Pages of Holded events searched for an event an interrupted attempt may have created.
const RECOVERY_PAGES: u32 = 20;

pub struct ActivitySync {
    store: SharedStore,
    ghl: GhlClient,
    holded: HoldedClient,
}

impl ActivitySync {
    pub fn new(store: SharedStore, ghl: GhlClient, holded: HoldedClient) -> Self {
        ActivitySync { store, ghl, holded }
    }

    pub async fn sync(&self, tenant: &Tenant, item: &WorkItem) -> Result<Synced, SyncError> {
        let link = self.store.link(&item.key).await?;
        if item.deleted {
            return self.remove(tenant, link).await;
        }
        let known_parent = item
            .parent
            .clone()
            .or_else(|| link.as_ref().and_then(|l| l.parent.clone()));
        let Some((parent, event)) = self.fetch(tenant, &item.key, known_parent).await? else {
            return self.remove(tenant, link).await;
        };
        let Some(holded_contact) = self.holded_contact(&item.key, &parent).await? else {
            return Err(SyncError::Transient {
                reason: format!("waiting for contact {parent} to sync first"),
                retry_after: Some(PARENT_WAIT),
            });
        };
        let mapped = ActivityMapper::map(&event, &holded_contact);
        if let Some(link) = link.as_ref().filter(|l| l.hash == mapped.hash) {
            return Ok(Synced::new(
                "unchanged",
                Some(link.holded_id.clone()),
                LinkUpdate::Keep,
            ));
        }
        let key = &tenant.holded_key;
        let saved = |holded_id: String| LinkUpdate::Save {
            holded_id,
            hash: mapped.hash.clone(),
            parent: Some(parent.clone()),
        };
        if let Some(link) = &link {
            match self
                .holded
                .update_event(key, &link.holded_id, &mapped.fields)
                .await
            {
                Ok(()) => {
                    let id = link.holded_id.clone();
                    return Ok(Synced::new("updated", Some(id.clone()), saved(id)));
                }
                Err(HoldedError::NotFound) => {
                    tracing::warn!(holded_id = %link.holded_id, key = %item.key, "linked Holded event is gone; recreating");
                }
                Err(other) => return Err(other.into()),
            }
        }
        // Events have no customId to look up. Only when an earlier attempt failed can a
        // create have reached Holded unrecorded (a timeout, a crash), so only then is it
        // worth walking the events for our origin tag.
        if link.is_none() && item.attempts > 0 {
            let origin = &mapped.fields.tags[0];
            if let Some(holded_id) = self
                .holded
                .find_event_tagged(key, origin, RECOVERY_PAGES)
                .await?
            {
                self.holded
                    .update_event(key, &holded_id, &mapped.fields)
                    .await?;
                return Ok(Synced::new(
                    "recovered",
                    Some(holded_id.clone()),
                    saved(holded_id),
                ));
            }
        }
        let holded_id = self.holded.create_event(key, &mapped.fields).await?;
        Ok(Synced::new(
            "created",
            Some(holded_id.clone()),
            saved(holded_id),
        ))
    }

    /// The fresh record and its contact, or `None` when GHL no longer has it.
    async fn fetch(
        &self,
        tenant: &Tenant,
        key: &EntityKey,
        parent: Option<GhlId>,
    ) -> Result<Option<(GhlId, GhlActivity)>, SyncError> {
        let token = tenant.ghl();
        let id = &key.ghl_id;
        let parent = match (key.kind, parent) {
            (EntityKind::Task, None) => self.ghl.find_task_contact(token, id).await?,
            (_, parent) => parent,
        };
        let require = |parent: Option<GhlId>| {
            parent.ok_or_else(|| {
                SyncError::Permanent(format!(
                    "the contact of {} {id} could not be found",
                    key.kind
                ))
            })
        };
        Ok(match key.kind {
            EntityKind::Task => {
                let parent = require(parent)?;
                let task = self.ghl.get_task(token, &parent, id).await?;
                task.map(|t| (parent, GhlActivity::Task(t)))
            }
            EntityKind::Note => {
                let parent = require(parent)?;
                let note = self.ghl.get_note(token, &parent, id).await?;
                note.map(|n| (parent, GhlActivity::Note(n)))
            }
            EntityKind::Appointment => match self.ghl.get_appointment(token, id).await? {
                None => None,
                Some(appointment) => {
                    // The appointment itself names its contact; trust it over the payload.
                    let named = appointment
                        .contact_id
                        .as_deref()
                        .and_then(|c| GhlId::parse(c).ok());
                    Some((
                        require(named.or(parent))?,
                        GhlActivity::Appointment(appointment),
                    ))
                }
            },
            EntityKind::Contact => {
                return Err(SyncError::Permanent("a contact is not an activity".into()))
            }
        })
    }

    /// The Holded id of the parent contact, queueing the contact when it has none yet:
    /// a child never creates an orphan in Holded.
    async fn holded_contact(
        &self,
        key: &EntityKey,
        parent: &GhlId,
    ) -> Result<Option<String>, SyncError> {
        let contact = EntityKey {
            location_id: key.location_id.clone(),
            kind: EntityKind::Contact,
            ghl_id: parent.clone(),
        };
        if let Some(link) = self.store.link(&contact).await? {
            return Ok(Some(link.holded_id));
        }
        match self.store.work_status(&contact).await?.map(|s| s.state) {
            Some(WorkState::Pending) => {}
            Some(WorkState::Dead) => {
                return Err(SyncError::Permanent(format!(
                    "its contact {parent} could not be synced (dead); replay the contact first"
                )))
            }
            Some(WorkState::Done) | None => {
                self.store
                    .enqueue(&[WorkRequest {
                        key: contact,
                        parent: None,
                        deleted: false,
                    }])
                    .await?
            }
        }
        Ok(None)
    }

    async fn remove(&self, tenant: &Tenant, link: Option<Link>) -> Result<Synced, SyncError> {
        let Some(link) = link else {
            return Ok(Synced::new(
                "deleted before its first sync; nothing in Holded",
                None,
                LinkUpdate::Keep,
            ));
        };
        match self
            .holded
            .delete_event(&tenant.holded_key, &link.holded_id)
            .await
        {
            Ok(()) | Err(HoldedError::NotFound) => Ok(Synced::new(
                "deleted",
                Some(link.holded_id),
                LinkUpdate::Remove,
            )),
            Err(other) => Err(other.into()),
        }
    }
}
