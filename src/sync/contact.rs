//! One contact, GHL → Holded: fetch fresh, map, write only what changed, and keep its
//! tasks, notes and appointments in view.
use std::collections::HashMap;

use secrecy::SecretString;

use super::activity_mapper::ActivityMapper;
use super::error::SyncError;
use super::mapper::ContactMapper;
use crate::domain::{DeletePolicy, EntityKey, EntityKind, GhlId};
use crate::ghl::{GhlClient, GhlTask};
use crate::holded::{HoldedClient, HoldedError};
use crate::store::{Link, LinkUpdate, SharedStore, WorkItem, WorkRequest};
use crate::tenants::Tenant;

/// Tag the `tag` delete policy puts on a Holded contact whose GHL contact is gone.
pub const DELETED_TAG: &str = "ghl-deleted";
/// The link hash of a contact already handled by the `tag` policy.
const TAGGED_AS_DELETED: &str = "deleted:tagged";

/// What a sync did, for the log line, and what the link becomes.
#[derive(Debug)]
pub struct Synced {
    pub outcome: &'static str,
    pub holded_id: Option<String>,
    pub link: LinkUpdate,
}

impl Synced {
    pub(super) fn new(outcome: &'static str, holded_id: Option<String>, link: LinkUpdate) -> Self {
        Synced {
            outcome,
            holded_id,
            link,
        }
    }
}

/// What GHL holds under a contact, read before any Holded write so a failed read leaves
/// nothing half done.
struct Children {
    tasks: Vec<GhlTask>,
    /// Notes and appointments, listed only on the contact's first sync (its history);
    /// afterwards their own webhooks keep them current.
    history: Vec<(EntityKind, GhlId)>,
}

pub struct ContactSync {
    store: SharedStore,
    ghl: GhlClient,
    holded: HoldedClient,
}

impl ContactSync {
    pub fn new(store: SharedStore, ghl: GhlClient, holded: HoldedClient) -> Self {
        ContactSync { store, ghl, holded }
    }

    pub async fn sync(&self, tenant: &Tenant, item: &WorkItem) -> Result<Synced, SyncError> {
        let link = self.store.link(&item.key).await?;
        if item.deleted {
            return self.apply_delete_policy(tenant, &item.key, link).await;
        }
        let token = tenant.ghl();
        let Some(contact) = self.ghl.get_contact(token, &item.key.ghl_id).await? else {
            return self.apply_delete_policy(tenant, &item.key, link).await;
        };
        let children = self
            .read_children(tenant, &item.key.ghl_id, link.is_none())
            .await?;
        let mapped = ContactMapper::map(&contact);
        let synced = self.write_contact(tenant, &item.key, link, &mapped).await?;
        if let Some(holded_id) = &synced.holded_id {
            self.enqueue_children(&item.key, holded_id, children)
                .await?;
        }
        Ok(synced)
    }

    async fn write_contact(
        &self,
        tenant: &Tenant,
        entity: &EntityKey,
        link: Option<Link>,
        mapped: &super::MappedContact,
    ) -> Result<Synced, SyncError> {
        if let Some(link) = link.as_ref().filter(|l| l.hash == mapped.hash) {
            return Ok(Synced::new(
                "unchanged",
                Some(link.holded_id.clone()),
                LinkUpdate::Keep,
            ));
        }
        let key = &tenant.holded_key;
        let known = match link {
            Some(link) => Some(link.holded_id),
            None => self.find_by_custom_id(key, entity).await?,
        };
        let saved = |holded_id: String| LinkUpdate::Save {
            holded_id,
            hash: mapped.hash.clone(),
            parent: None,
        };
        if let Some(holded_id) = known {
            match self
                .holded
                .update_contact(key, &holded_id, &mapped.fields)
                .await
            {
                Ok(()) => {
                    return Ok(Synced::new(
                        "updated",
                        Some(holded_id.clone()),
                        saved(holded_id),
                    ))
                }
                // Removed by hand in Holded: GHL is the source, so the contact comes back.
                Err(HoldedError::NotFound) => {
                    tracing::warn!(%holded_id, key = %entity, "linked Holded contact is gone; recreating");
                }
                Err(other) => return Err(other.into()),
            }
        }
        let holded_id = self
            .holded
            .create_contact(key, entity.ghl_id.as_str(), &mapped.fields)
            .await?;
        Ok(Synced::new(
            "created",
            Some(holded_id.clone()),
            saved(holded_id),
        ))
    }

    async fn read_children(
        &self,
        tenant: &Tenant,
        contact: &GhlId,
        first_sync: bool,
    ) -> Result<Children, SyncError> {
        let token = tenant.ghl();
        let tasks = self.ghl.list_tasks(token, contact).await?;
        let mut history = Vec::new();
        if first_sync {
            let notes = self.ghl.list_notes(token, contact).await?;
            let appointments = self.ghl.list_appointments(token, contact).await?;
            let ids = notes.into_iter().map(|n| (EntityKind::Note, n.id)).chain(
                appointments
                    .into_iter()
                    .map(|a| (EntityKind::Appointment, a.id)),
            );
            for (kind, id) in ids {
                match GhlId::parse(&id) {
                    Ok(id) => history.push((kind, id)),
                    Err(e) => {
                        tracing::warn!(%kind, id, error = %e, "skipping a record with an unusable id")
                    }
                }
            }
        }
        Ok(Children { tasks, history })
    }

    /// Queues every task whose Holded event differs from what it should be, every task
    /// GHL no longer lists (its sync takes the delete path), and on a first sync the
    /// contact's history. GHL has no TaskUpdate event, so this is how task edits arrive.
    async fn enqueue_children(
        &self,
        contact: &EntityKey,
        holded_contact: &str,
        children: Children,
    ) -> Result<(), SyncError> {
        let linked: HashMap<EntityKey, Link> = self
            .store
            .child_links(&contact.location_id, &contact.ghl_id)
            .await?
            .into_iter()
            .map(|l| (l.key.clone(), l))
            .collect();
        let child = |kind, ghl_id| EntityKey {
            location_id: contact.location_id.clone(),
            kind,
            ghl_id,
        };
        let mut listed = Vec::new();
        let mut stale = Vec::new();
        for task in &children.tasks {
            let Ok(id) = GhlId::parse(&task.id) else {
                continue;
            };
            let key = child(EntityKind::Task, id);
            let hash = ActivityMapper::task(task, holded_contact).hash;
            if linked.get(&key).is_none_or(|l| l.hash != hash) {
                stale.push(key.clone());
            }
            listed.push(key);
        }
        stale.extend(
            linked
                .keys()
                .filter(|k| k.kind == EntityKind::Task && !listed.contains(k))
                .cloned(),
        );
        stale.extend(
            children
                .history
                .into_iter()
                .map(|(kind, id)| child(kind, id)),
        );
        if stale.is_empty() {
            return Ok(());
        }
        let requests: Vec<WorkRequest> = stale
            .into_iter()
            .map(|key| WorkRequest {
                key,
                parent: Some(contact.ghl_id.clone()),
                deleted: false,
            })
            .collect();
        tracing::info!(key = %contact, queued = requests.len(), "queued the contact's tasks, notes and appointments");
        Ok(self.store.enqueue(&requests).await?)
    }

    /// The Holded contact carrying this GHL id as `customId`, found before any create so a
    /// crash between create and commit never makes a duplicate.
    async fn find_by_custom_id(
        &self,
        key: &SecretString,
        entity: &EntityKey,
    ) -> Result<Option<String>, SyncError> {
        let found = self
            .holded
            .find_contacts_by_custom_id(key, entity.ghl_id.as_str())
            .await?;
        if found.len() > 1 {
            tracing::warn!(key = %entity, count = found.len(), "several Holded contacts carry this customId; using the first");
        }
        Ok(found.into_iter().next().map(|c| c.id))
    }

    async fn apply_delete_policy(
        &self,
        tenant: &Tenant,
        entity: &EntityKey,
        link: Option<Link>,
    ) -> Result<Synced, SyncError> {
        if tenant.delete_policy == DeletePolicy::Ignore {
            return Ok(Synced::new(
                "deleted in GHL; ignored by policy",
                None,
                LinkUpdate::Keep,
            ));
        }
        if let Some(link) = link.as_ref().filter(|l| l.hash == TAGGED_AS_DELETED) {
            return Ok(Synced::new(
                "unchanged",
                Some(link.holded_id.clone()),
                LinkUpdate::Keep,
            ));
        }
        let key = &tenant.holded_key;
        let holded_id = match link {
            Some(link) => Some(link.holded_id),
            None => self.find_by_custom_id(key, entity).await?,
        };
        let Some(holded_id) = holded_id else {
            return Ok(Synced::new(
                "deleted in GHL; nothing in Holded",
                None,
                LinkUpdate::Remove,
            ));
        };
        if tenant.delete_policy == DeletePolicy::Delete {
            self.delete_events(key, entity).await?;
            return match self.holded.delete_contact(key, &holded_id).await {
                Ok(()) | Err(HoldedError::NotFound) => {
                    Ok(Synced::new("deleted", Some(holded_id), LinkUpdate::Remove))
                }
                Err(other) => Err(other.into()),
            };
        }
        let mut tags = match self.holded.get_contact(key, &holded_id).await {
            Ok(contact) => contact.tags,
            Err(HoldedError::NotFound) => {
                return Ok(Synced::new(
                    "deleted in GHL; gone from Holded",
                    Some(holded_id),
                    LinkUpdate::Remove,
                ));
            }
            Err(other) => return Err(other.into()),
        };
        if !tags.iter().any(|t| t == DELETED_TAG) {
            tags.push(DELETED_TAG.to_owned());
            self.holded.set_contact_tags(key, &holded_id, &tags).await?;
        }
        Ok(Synced::new(
            "tagged as deleted",
            Some(holded_id.clone()),
            LinkUpdate::Save {
                holded_id,
                hash: TAGGED_AS_DELETED.to_owned(),
                parent: None,
            },
        ))
    }

    /// The contact's events go first, so none is left pointing at a deleted contact.
    /// Each link goes as soon as its event does: a retry resumes where this stopped.
    async fn delete_events(
        &self,
        key: &SecretString,
        contact: &EntityKey,
    ) -> Result<(), SyncError> {
        for link in self
            .store
            .child_links(&contact.location_id, &contact.ghl_id)
            .await?
        {
            match self.holded.delete_event(key, &link.holded_id).await {
                Ok(()) | Err(HoldedError::NotFound) => self.store.remove_link(&link.key).await?,
                Err(other) => return Err(other.into()),
            }
        }
        Ok(())
    }
}
