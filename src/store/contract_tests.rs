//! The semantics every backend must have; run against each one.
use std::time::Duration;

use chrono::Utc;

use super::*;
use crate::domain::{EntityKind, GhlId, LocationId};

fn key(id: &str) -> EntityKey {
    EntityKey {
        location_id: LocationId::parse("loc1").unwrap(),
        kind: EntityKind::Contact,
        ghl_id: GhlId::parse(id).unwrap(),
    }
}

fn event(dedupe: &str, id: &str, deleted: bool) -> NewEvent {
    NewEvent {
        location_id: "loc1".into(),
        event_type: "ContactUpdate".into(),
        dedupe_key: dedupe.into(),
        body: br#"{"type":"ContactUpdate"}"#.to_vec(),
        received_at: Utc::now(),
        settle: Duration::ZERO,
        work: Some(WorkRequest {
            key: key(id),
            parent: None,
            deleted,
        }),
    }
}

const LEASE: Duration = Duration::from_secs(60);

fn settling(dedupe: &str, id: &str, deleted: bool) -> NewEvent {
    NewEvent {
        settle: Duration::from_secs(60),
        ..event(dedupe, id, deleted)
    }
}

/// A record's first hint and a delete are due at once; an update to a record synced before
/// waits for more, and a whole batch of hints is one row, one generation per hint.
pub async fn updates_to_synced_records_settle(store: SharedStore) {
    store.ingest(settling("s1", "c1", false)).await.unwrap();
    let first = store.claim(10, LEASE).await.unwrap();
    assert_eq!(first.len(), 1, "a first hint is due at once");
    assert_eq!(
        store.finish(&first[0], LinkUpdate::Keep).await.unwrap(),
        Completion::Done
    );

    store.ingest(settling("s2", "c1", false)).await.unwrap();
    store.ingest(settling("s3", "c1", false)).await.unwrap();
    assert!(
        store.claim(10, LEASE).await.unwrap().is_empty(),
        "an update to a synced record waits"
    );
    store.ingest(settling("s4", "c1", true)).await.unwrap();
    let deleted = store.claim(10, LEASE).await.unwrap();
    assert_eq!(deleted.len(), 1, "a delete does not wait");
    assert!(deleted[0].deleted);
    assert_eq!(deleted[0].generation, first[0].generation + 3);
}

pub async fn dedupe_and_coalescing(store: SharedStore) {
    assert_eq!(
        store.ingest(event("w1", "c1", false)).await.unwrap(),
        IngestOutcome::Accepted
    );
    assert_eq!(
        store.ingest(event("w1", "c1", false)).await.unwrap(),
        IngestOutcome::Duplicate
    );
    assert_eq!(store.count_events().await.unwrap(), 1);
    for i in 2..=50 {
        store
            .ingest(event(&format!("w{i}"), "c1", false))
            .await
            .unwrap();
    }
    let claimed = store.claim(10, LEASE).await.unwrap();
    assert_eq!(
        claimed.len(),
        1,
        "50 hints for one contact are one work item"
    );
    assert_eq!(claimed[0].generation, 50);
    assert!(
        store.claim(10, LEASE).await.unwrap().is_empty(),
        "leased work is not claimed twice"
    );
}

pub async fn concurrent_ingest_commits_each_once(store: SharedStore) {
    let mut tasks = Vec::new();
    for i in 0..200 {
        let store = store.clone();
        // Every event twice, concurrently: the group commit must dedupe inside one batch too.
        for _ in 0..2 {
            let store = store.clone();
            tasks.push(tokio::spawn(async move {
                store
                    .ingest(event(&format!("e{i}"), &format!("c{}", i % 20), false))
                    .await
                    .unwrap()
            }));
        }
    }
    let mut accepted = 0;
    for task in tasks {
        if task.await.unwrap() == IngestOutcome::Accepted {
            accepted += 1;
        }
    }
    assert_eq!(accepted, 200);
    assert_eq!(store.count_events().await.unwrap(), 200);
    assert_eq!(store.claim(100, LEASE).await.unwrap().len(), 20);
}

pub async fn update_mid_sync_requeues(store: SharedStore) {
    store.ingest(event("a", "c1", false)).await.unwrap();
    let item = store.claim(1, LEASE).await.unwrap().remove(0);
    store.ingest(event("b", "c1", false)).await.unwrap();
    let link = LinkUpdate::Save {
        holded_id: "h1".into(),
        hash: "x".into(),
        parent: None,
    };
    assert_eq!(
        store.finish(&item, link).await.unwrap(),
        Completion::Requeued
    );
    assert_eq!(
        store.link(&key("c1")).await.unwrap().unwrap().holded_id,
        "h1"
    );
    let again = store.claim(1, LEASE).await.unwrap().remove(0);
    assert_eq!(again.generation, item.generation + 1);
    assert_eq!(
        store.finish(&again, LinkUpdate::Keep).await.unwrap(),
        Completion::Done
    );
    let status = store.work_status(&key("c1")).await.unwrap().unwrap();
    assert_eq!(status.state, WorkState::Done);
    assert!(store.claim(1, LEASE).await.unwrap().is_empty());
}

pub async fn retries_and_dead_letters(store: SharedStore) {
    store.ingest(event("a", "c1", false)).await.unwrap();
    let item = store.claim(1, LEASE).await.unwrap().remove(0);
    let later = Utc::now() + chrono::Duration::hours(1);
    assert_eq!(
        store.retry_later(&item, later, "Holded 503").await.unwrap(),
        Completion::Requeued
    );
    assert!(
        store.claim(1, LEASE).await.unwrap().is_empty(),
        "not due before its time"
    );
    let status = store.work_status(&key("c1")).await.unwrap().unwrap();
    assert_eq!(
        (status.attempts, status.last_error.as_deref()),
        (1, Some("Holded 503"))
    );

    // A new hint makes it due now.
    store.ingest(event("b", "c1", false)).await.unwrap();
    let item = store.claim(1, LEASE).await.unwrap().remove(0);
    assert_eq!(
        store.bury(&item, "mapping failed").await.unwrap(),
        Completion::Done
    );
    let status = store.work_status(&key("c1")).await.unwrap().unwrap();
    assert_eq!(status.state, WorkState::Dead);
    assert_eq!(status.last_error.as_deref(), Some("mapping failed"));
}

pub async fn released_work_is_claimable_at_once_without_an_attempt(store: SharedStore) {
    store.ingest(event("a", "c1", false)).await.unwrap();
    let item = store.claim(1, LEASE).await.unwrap().remove(0);
    store.release(&item).await.unwrap();
    let again = store.claim(1, LEASE).await.unwrap().remove(0);
    assert_eq!(
        (again.id, again.attempts, again.generation),
        (item.id, 0, item.generation)
    );
}

pub async fn stale_lease_cannot_finish(store: SharedStore) {
    store.ingest(event("a", "c1", false)).await.unwrap();
    let first = store
        .claim(1, Duration::from_millis(1))
        .await
        .unwrap()
        .remove(0);
    tokio::time::sleep(Duration::from_millis(5)).await; // let the 1 ms lease lapse
    let second = store.claim(1, LEASE).await.unwrap().remove(0);
    assert_ne!(first.lease_token, second.lease_token);
    assert_eq!(
        store.finish(&first, LinkUpdate::Keep).await.unwrap(),
        Completion::LeaseLost
    );
    assert_eq!(
        store.finish(&second, LinkUpdate::Keep).await.unwrap(),
        Completion::Done
    );
    // A late finish that wrote to Holded may have overwritten newer data: the record is
    // synced once more.
    let late = LinkUpdate::Save {
        holded_id: "h1".into(),
        hash: "old".into(),
        parent: None,
    };
    assert_eq!(
        store.finish(&first, late).await.unwrap(),
        Completion::LeaseLost
    );
    let again = store.claim(1, LEASE).await.unwrap();
    assert_eq!(again.len(), 1, "queued once more after a late write");
    assert!(again[0].generation > second.generation);
}

pub async fn deleted_is_sticky(store: SharedStore) {
    store.ingest(event("a", "c1", true)).await.unwrap();
    store.ingest(event("b", "c1", false)).await.unwrap();
    assert!(store.claim(1, LEASE).await.unwrap().remove(0).deleted);
}

pub async fn purge_keeps_recent_events(store: SharedStore) {
    store.ingest(event("a", "c1", false)).await.unwrap();
    assert_eq!(
        store
            .purge_events(Utc::now() - chrono::Duration::hours(1))
            .await
            .unwrap(),
        0
    );
    assert_eq!(
        store
            .purge_events(Utc::now() + chrono::Duration::seconds(1))
            .await
            .unwrap(),
        1
    );
    // Once purged, the dedupe key is gone too: that is why retention outlives the replay window.
    assert_eq!(
        store.ingest(event("a", "c1", false)).await.unwrap(),
        IngestOutcome::Accepted
    );
}

pub async fn children_are_linked_to_their_contact(store: SharedStore) {
    let task = EntityKey {
        kind: EntityKind::Task,
        ..key("t1")
    };
    let contact = GhlId::parse("c1").unwrap();
    store
        .enqueue(&[WorkRequest {
            key: task.clone(),
            parent: Some(contact.clone()),
            deleted: false,
        }])
        .await
        .unwrap();
    // A later hint without the parent (TaskCreate without contactId) keeps the known one.
    store
        .enqueue(&[WorkRequest {
            key: task.clone(),
            parent: None,
            deleted: false,
        }])
        .await
        .unwrap();
    let item = store.claim(1, LEASE).await.unwrap().remove(0);
    assert_eq!(item.parent.as_ref(), Some(&contact));
    assert_eq!(item.generation, 2);
    let saved = LinkUpdate::Save {
        holded_id: "ev1".into(),
        hash: "h".into(),
        parent: Some(contact.clone()),
    };
    store.finish(&item, saved).await.unwrap();
    let children = store
        .child_links(&task.location_id, &contact)
        .await
        .unwrap();
    assert_eq!(children.len(), 1);
    assert_eq!(
        (children[0].key.clone(), children[0].holded_id.as_str()),
        (task.clone(), "ev1")
    );
    store.remove_link(&task).await.unwrap();
    assert!(store
        .child_links(&task.location_id, &contact)
        .await
        .unwrap()
        .is_empty());
}

pub async fn operators_list_and_replay_dead_work(store: SharedStore) {
    for id in ["c1", "c2", "c3"] {
        store
            .ingest(event(&format!("e-{id}"), id, false))
            .await
            .unwrap();
    }
    let items = store.claim(3, LEASE).await.unwrap();
    for item in &items[..2] {
        store.bury(item, "Holded refused").await.unwrap();
    }
    let counts = store.work_counts().await.unwrap();
    assert!(counts.contains(&(WorkState::Dead, 2)) && counts.contains(&(WorkState::Pending, 1)));
    let dead = store.list_work(Some(WorkState::Dead), 10).await.unwrap();
    assert_eq!(dead.len(), 2);
    assert!(dead
        .iter()
        .all(|d| d.last_error.as_deref() == Some("Holded refused")));
    assert_eq!(store.list_work(None, 10).await.unwrap().len(), 3);
    assert_eq!(store.list_work(None, 1).await.unwrap().len(), 1);

    assert_eq!(store.replay_dead(Some(dead[0].id)).await.unwrap(), 1);
    assert_eq!(
        store.replay_dead(Some(dead[0].id)).await.unwrap(),
        0,
        "no longer dead"
    );
    assert_eq!(store.replay_dead(None).await.unwrap(), 1);
    let replayed = store.work_status(&dead[0].key).await.unwrap().unwrap();
    assert_eq!((replayed.state, replayed.attempts), (WorkState::Pending, 0));
    // The old lease cannot finish a replayed item as done: it belongs to a newer generation.
    assert_eq!(
        store.finish(&items[0], LinkUpdate::Keep).await.unwrap(),
        Completion::LeaseLost
    );
    assert_eq!(store.claim(10, LEASE).await.unwrap().len(), 2);
}

pub async fn sweep_and_backfill_positions_persist(store: SharedStore) {
    let location = LocationId::parse("loc1").unwrap();
    assert_eq!(store.sweep_watermark(&location).await.unwrap(), None);
    let at = chrono::DateTime::from_timestamp_millis(1_790_000_000_123).unwrap();
    store.set_sweep_watermark(&location, at).await.unwrap();
    store.set_sweep_watermark(&location, at).await.unwrap();
    assert_eq!(store.sweep_watermark(&location).await.unwrap(), Some(at));

    assert_eq!(store.backfill_progress(&location).await.unwrap(), None);
    let progress = BackfillProgress {
        cursor: Some(serde_json::json!([1_790_000_000_000i64, "c9"])),
        pages: 3,
        contacts: 250,
        finished: false,
    };
    store
        .save_backfill_progress(&location, &progress)
        .await
        .unwrap();
    assert_eq!(
        store.backfill_progress(&location).await.unwrap(),
        Some(progress.clone())
    );
    let done = BackfillProgress {
        finished: true,
        ..progress
    };
    store
        .save_backfill_progress(&location, &done)
        .await
        .unwrap();
    assert_eq!(
        store.backfill_progress(&location).await.unwrap(),
        Some(done)
    );
}

// ---- Installations ----

fn location(id: &str) -> LocationId {
    LocationId::parse(id).unwrap()
}

fn key_at(location_id: &str, id: &str) -> EntityKey {
    EntityKey {
        location_id: location(location_id),
        ..key(id)
    }
}

fn work_at(location_id: &str, id: &str) -> WorkRequest {
    WorkRequest {
        key: key_at(location_id, id),
        parent: None,
        deleted: false,
    }
}

fn owner(owner_type: OwnerType, id: &str) -> TokenOwner {
    TokenOwner {
        owner_type,
        id: id.into(),
    }
}

/// Now plus `offset`, whole milliseconds as the store keeps times.
fn at(offset: chrono::Duration) -> chrono::DateTime<Utc> {
    chrono::DateTime::from_timestamp_millis((Utc::now() + offset).timestamp_millis()).unwrap()
}

/// A token expiring in an hour; one minted from a company has no refresh token.
fn token(owner: TokenOwner, company_id: Option<&str>, access: &[u8]) -> TokenRecord {
    TokenRecord {
        refresh: company_id.is_none().then(|| b"refresh".to_vec()),
        owner,
        company_id: company_id.map(Into::into),
        access: access.to_vec(),
        expires_at: at(chrono::Duration::hours(1)),
        refreshed_at: at(chrono::Duration::zero()),
        scopes: "contacts.readonly".into(),
        version: 0,
    }
}

fn installed(location_id: &str, company_id: Option<&str>) -> InstalledLocation {
    InstalledLocation {
        location_id: location(location_id),
        company_id: company_id.map(Into::into),
    }
}

/// Installs one location on its own token.
async fn install_location(store: &SharedStore, location_id: &str) {
    let own = token(owner(OwnerType::Location, location_id), None, b"access");
    store
        .install(&[installed(location_id, None)], &[own])
        .await
        .unwrap();
}

/// Installs agency `co1` with `loc1` and `loc2`, whose tokens it minted; returns the
/// company's token and the minted ones.
async fn install_agency(store: &SharedStore) -> [TokenRecord; 3] {
    let tokens = [
        token(owner(OwnerType::Company, "co1"), None, b"company"),
        token(owner(OwnerType::Location, "loc1"), Some("co1"), b"loc1"),
        token(owner(OwnerType::Location, "loc2"), Some("co1"), b"loc2"),
    ];
    let locations = [
        installed("loc1", Some("co1")),
        installed("loc2", Some("co1")),
    ];
    store.install(&locations, &tokens).await.unwrap();
    tokens
}

async fn state_of(store: &SharedStore, location_id: &str) -> Option<TenantState> {
    let tenant = store.tenant(&location(location_id)).await.unwrap();
    tenant.map(|t| t.state)
}

async fn claimed_locations(store: &SharedStore) -> Vec<String> {
    let mut claimed: Vec<String> = store
        .claim(10, LEASE)
        .await
        .unwrap()
        .iter()
        .map(|item| item.key.location_id.to_string())
        .collect();
    claimed.sort();
    claimed
}

pub async fn a_holded_key_activates_an_installed_location(store: SharedStore) {
    install_agency(&store).await;
    let tenants = store.tenants().await.unwrap();
    assert_eq!(
        tenants
            .iter()
            .map(|t| (t.location_id.as_str(), t.company_id.as_deref(), t.state))
            .collect::<Vec<_>>(),
        [
            ("loc1", Some("co1"), TenantState::AwaitingKey),
            ("loc2", Some("co1"), TenantState::AwaitingKey)
        ]
    );
    assert!(tenants.iter().all(|t| t.holded_key.is_none()));
    assert_eq!(
        store.company_locations("co1").await.unwrap(),
        [location("loc1"), location("loc2")]
    );

    assert_eq!(
        store
            .set_holded_key(&location("loc1"), b"sealed\x00key")
            .await
            .unwrap(),
        Some(TenantState::Active)
    );
    let loc1 = store.tenant(&location("loc1")).await.unwrap().unwrap();
    assert_eq!(
        (loc1.state, loc1.holded_key.as_deref()),
        (TenantState::Active, Some(&b"sealed\x00key"[..]))
    );
    assert_eq!(
        store
            .set_holded_key(&location("elsewhere"), b"k")
            .await
            .unwrap(),
        None,
        "not installed"
    );
    let mut counts = store.tenant_counts().await.unwrap();
    counts.sort_by_key(|(state, _)| state.as_str());
    assert_eq!(
        counts,
        [(TenantState::Active, 1), (TenantState::AwaitingKey, 1)]
    );

    // A location that needs a re-install does not take a key (nor become active).
    store
        .set_tenant_state(&[location("loc1")], TenantState::NeedsReconnect)
        .await
        .unwrap();
    assert_eq!(
        store
            .set_holded_key(&location("loc1"), b"other")
            .await
            .unwrap(),
        Some(TenantState::NeedsReconnect)
    );
    let loc1 = store.tenant(&location("loc1")).await.unwrap().unwrap();
    assert_eq!(loc1.holded_key.as_deref(), Some(&b"sealed\x00key"[..]));
}

pub async fn tokens_round_trip(store: SharedStore) {
    let [company, minted, _] = install_agency(&store).await;
    assert!(company.refresh.is_some() && minted.refresh.is_none());
    assert_eq!(store.token(&company.owner).await.unwrap(), Some(company));
    assert_eq!(
        store.token(&minted.owner).await.unwrap(),
        Some(minted),
        "a minted token has no refresh token"
    );
    assert_eq!(
        store
            .token(&owner(OwnerType::Company, "loc1"))
            .await
            .unwrap(),
        None,
        "the owner type is part of the key"
    );
}

pub async fn claim_leaves_work_of_inactive_locations_pending(store: SharedStore) {
    store
        .enqueue(&[
            work_at("loc1", "c1"),
            work_at("loc2", "c1"),
            work_at("configured", "c1"),
        ])
        .await
        .unwrap();
    install_location(&store, "loc1").await;
    install_location(&store, "loc2").await;
    store.set_holded_key(&location("loc1"), b"k").await.unwrap();
    store
        .set_tenant_state(&[location("loc1")], TenantState::NeedsReconnect)
        .await
        .unwrap();
    assert_eq!(
        claimed_locations(&store).await,
        ["configured"],
        "only the location without a tenants row is claimed"
    );

    // A re-install resumes it: it still has its key.
    install_location(&store, "loc1").await;
    assert_eq!(state_of(&store, "loc1").await, Some(TenantState::Active));
    assert_eq!(claimed_locations(&store).await, ["loc1"]);
    assert!(
        claimed_locations(&store).await.is_empty(),
        "loc2 has no key"
    );
    assert_eq!(
        store
            .work_status(&key_at("loc2", "c1"))
            .await
            .unwrap()
            .unwrap()
            .state,
        WorkState::Pending
    );
}

pub async fn one_refresh_lease_per_token_version(store: SharedStore) {
    install_agency(&store).await;
    let company = owner(OwnerType::Company, "co1");
    let lease = store
        .lease_refresh(&company, 0, LEASE)
        .await
        .unwrap()
        .expect("an unleased token");
    assert_eq!(
        store.lease_refresh(&company, 0, LEASE).await.unwrap(),
        None,
        "leased"
    );
    assert_eq!(
        store
            .lease_refresh(&owner(OwnerType::Company, "nobody"), 0, LEASE)
            .await
            .unwrap(),
        None
    );

    let expires_at = at(chrono::Duration::hours(24));
    assert!(store
        .complete_refresh(&lease, b"access2", Some(b"refresh2"), expires_at, "s2")
        .await
        .unwrap());
    let renewed = store.token(&company).await.unwrap().unwrap();
    assert_eq!(
        (
            renewed.version,
            renewed.access.as_slice(),
            renewed.refresh.as_deref(),
            renewed.expires_at,
            renewed.scopes.as_str()
        ),
        (1, &b"access2"[..], Some(&b"refresh2"[..]), expires_at, "s2")
    );
    assert!(!store
        .complete_refresh(&lease, b"again", None, expires_at, "s2")
        .await
        .unwrap());

    assert_eq!(
        store.lease_refresh(&company, 0, LEASE).await.unwrap(),
        None,
        "a waiter at the old version sees the refresh happened"
    );
    let next = store
        .lease_refresh(&company, 1, LEASE)
        .await
        .unwrap()
        .expect("completing released the lease");
    store.abandon_refresh(&next).await.unwrap();
    assert!(
        store
            .lease_refresh(&company, 1, LEASE)
            .await
            .unwrap()
            .is_some(),
        "abandoning released the lease"
    );

    // A token minted from a company is renewed without a refresh token.
    let minted = owner(OwnerType::Location, "loc1");
    let lease = store
        .lease_refresh(&minted, 0, LEASE)
        .await
        .unwrap()
        .unwrap();
    assert!(store
        .complete_refresh(&lease, b"minted2", None, expires_at, "s")
        .await
        .unwrap());
    assert_eq!(store.token(&minted).await.unwrap().unwrap().refresh, None);
}

pub async fn a_lapsed_refresh_lease_is_taken_over(store: SharedStore) {
    install_agency(&store).await;
    let company = owner(OwnerType::Company, "co1");
    let lapsing = store
        .lease_refresh(&company, 0, Duration::from_millis(1))
        .await
        .unwrap()
        .unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    let taken = loop {
        if let Some(lease) = store.lease_refresh(&company, 0, LEASE).await.unwrap() {
            break lease;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "a lapsed lease is taken over"
        );
        tokio::time::sleep(Duration::from_millis(1)).await;
    };
    let expires_at = at(chrono::Duration::hours(24));
    assert!(
        !store
            .complete_refresh(&lapsing, b"lost", Some(b"lost"), expires_at, "lost")
            .await
            .unwrap(),
        "the lease was lost"
    );
    let untouched = store.token(&company).await.unwrap().unwrap();
    assert_eq!(
        (untouched.version, untouched.access.as_slice()),
        (0, &b"company"[..])
    );
    store.abandon_refresh(&lapsing).await.unwrap();
    assert_eq!(
        store.lease_refresh(&company, 0, LEASE).await.unwrap(),
        None,
        "a lost lease cannot release the new holder's"
    );
    assert!(store
        .complete_refresh(&taken, b"won", Some(b"won"), expires_at, "s")
        .await
        .unwrap());
    assert_eq!(store.token(&company).await.unwrap().unwrap().version, 1);
}

pub async fn reinstalling_renews_the_token_and_voids_its_lease(store: SharedStore) {
    install_location(&store, "loc1").await;
    let own = owner(OwnerType::Location, "loc1");
    let lease = store.lease_refresh(&own, 0, LEASE).await.unwrap().unwrap();
    let mut fresh = token(own.clone(), None, b"reinstalled");
    fresh.refresh = Some(b"refresh2".to_vec());
    store
        .install(&[installed("loc1", None)], std::slice::from_ref(&fresh))
        .await
        .unwrap();
    assert_eq!(
        store.token(&own).await.unwrap(),
        Some(TokenRecord {
            version: 1,
            ..fresh
        }),
        "the version keeps counting"
    );
    assert!(!store
        .complete_refresh(&lease, b"stale", None, at(chrono::Duration::hours(1)), "s")
        .await
        .unwrap());
    assert!(store.lease_refresh(&own, 1, LEASE).await.unwrap().is_some());
}

pub async fn uninstalling_a_company_uninstalls_its_locations(store: SharedStore) {
    install_agency(&store).await;
    install_location(&store, "loc3").await;
    for location_id in ["loc1", "loc3"] {
        store
            .set_holded_key(&location(location_id), b"k")
            .await
            .unwrap();
    }
    store.enqueue(&[work_at("loc1", "c1")]).await.unwrap();
    let item = store.claim(1, LEASE).await.unwrap().remove(0);
    let saved = LinkUpdate::Save {
        holded_id: "h1".into(),
        hash: "x".into(),
        parent: None,
    };
    store.finish(&item, saved).await.unwrap();
    store.enqueue(&[work_at("loc1", "c1")]).await.unwrap();

    assert_eq!(
        store
            .uninstall(&owner(OwnerType::Company, "co1"))
            .await
            .unwrap(),
        [location("loc1"), location("loc2")]
    );
    for gone in [
        owner(OwnerType::Company, "co1"),
        owner(OwnerType::Location, "loc1"),
        owner(OwnerType::Location, "loc2"),
    ] {
        assert_eq!(store.token(&gone).await.unwrap(), None, "{gone:?}");
    }
    let tenants = store.tenants().await.unwrap();
    assert_eq!(
        tenants
            .iter()
            .map(|t| (t.location_id.as_str(), t.state, t.holded_key.is_some()))
            .collect::<Vec<_>>(),
        [
            ("loc1", TenantState::Uninstalled, false),
            ("loc2", TenantState::Uninstalled, false),
            ("loc3", TenantState::Active, true)
        ]
    );
    assert!(store
        .token(&owner(OwnerType::Location, "loc3"))
        .await
        .unwrap()
        .is_some());
    // Links and work stay; the work waits for a re-install.
    assert!(store.link(&key_at("loc1", "c1")).await.unwrap().is_some());
    assert!(store.claim(10, LEASE).await.unwrap().is_empty());
    assert_eq!(
        store.set_holded_key(&location("loc1"), b"k").await.unwrap(),
        Some(TenantState::Uninstalled),
        "a key needs a re-install first"
    );

    install_agency(&store).await;
    assert_eq!(
        state_of(&store, "loc1").await,
        Some(TenantState::AwaitingKey)
    );
    store.set_holded_key(&location("loc1"), b"k").await.unwrap();
    assert_eq!(claimed_locations(&store).await, ["loc1"]);

    assert_eq!(
        store
            .uninstall(&owner(OwnerType::Location, "loc3"))
            .await
            .unwrap(),
        [location("loc3")]
    );
    assert_eq!(
        state_of(&store, "loc3").await,
        Some(TenantState::Uninstalled)
    );
    assert_eq!(
        state_of(&store, "loc2").await,
        Some(TenantState::AwaitingKey)
    );
    let mut counts = store.tenant_counts().await.unwrap();
    counts.sort_by_key(|(state, _)| state.as_str());
    assert_eq!(
        counts,
        [
            (TenantState::Active, 1),
            (TenantState::AwaitingKey, 1),
            (TenantState::Uninstalled, 1)
        ]
    );
}

pub async fn tokens_due_are_expiring_or_stale(store: SharedStore) {
    let mut expiring = token(owner(OwnerType::Location, "expiring"), None, b"a");
    expiring.expires_at = at(chrono::Duration::minutes(5));
    let mut stale = token(owner(OwnerType::Company, "stale"), None, b"a");
    stale.refreshed_at = at(-chrono::Duration::days(2));
    let fresh = token(owner(OwnerType::Location, "fresh"), None, b"a");
    store
        .install(&[], &[expiring.clone(), stale.clone(), fresh])
        .await
        .unwrap();
    let due = store
        .tokens_due(
            at(chrono::Duration::minutes(10)),
            at(-chrono::Duration::days(1)),
        )
        .await
        .unwrap();
    assert_eq!(due, [stale.owner, expiring.owner]);
}

pub async fn nonces_are_single_use(store: SharedStore) {
    let later = at(chrono::Duration::minutes(10));
    assert!(store.consume_nonce("n1", later).await.unwrap());
    assert!(!store.consume_nonce("n1", later).await.unwrap());
    assert!(store.consume_nonce("n2", later).await.unwrap());
    let past = at(-chrono::Duration::minutes(1));
    assert!(store.consume_nonce("old", past).await.unwrap());
    store
        .purge_events(Utc::now() - chrono::Duration::days(1))
        .await
        .unwrap();
    assert!(
        store.consume_nonce("old", past).await.unwrap(),
        "expired nonces are purged"
    );
    assert!(
        !store.consume_nonce("n1", later).await.unwrap(),
        "live ones are kept"
    );
}

macro_rules! contract_suite {
    ($open:expr) => {
        #[tokio::test]
        async fn dedupe_and_coalescing() {
            let (store, _guard) = $open;
            super::contract_tests::dedupe_and_coalescing(store).await;
        }
        #[tokio::test]
        async fn updates_to_synced_records_settle() {
            let (store, _guard) = $open;
            super::contract_tests::updates_to_synced_records_settle(store).await;
        }
        #[tokio::test]
        async fn concurrent_ingest_commits_each_once() {
            let (store, _guard) = $open;
            super::contract_tests::concurrent_ingest_commits_each_once(store).await;
        }
        #[tokio::test]
        async fn update_mid_sync_requeues() {
            let (store, _guard) = $open;
            super::contract_tests::update_mid_sync_requeues(store).await;
        }
        #[tokio::test]
        async fn retries_and_dead_letters() {
            let (store, _guard) = $open;
            super::contract_tests::retries_and_dead_letters(store).await;
        }
        #[tokio::test]
        async fn released_work_is_claimable_at_once_without_an_attempt() {
            let (store, _guard) = $open;
            super::contract_tests::released_work_is_claimable_at_once_without_an_attempt(store)
                .await;
        }
        #[tokio::test]
        async fn stale_lease_cannot_finish() {
            let (store, _guard) = $open;
            super::contract_tests::stale_lease_cannot_finish(store).await;
        }
        #[tokio::test]
        async fn deleted_is_sticky() {
            let (store, _guard) = $open;
            super::contract_tests::deleted_is_sticky(store).await;
        }
        #[tokio::test]
        async fn children_are_linked_to_their_contact() {
            let (store, _guard) = $open;
            super::contract_tests::children_are_linked_to_their_contact(store).await;
        }
        #[tokio::test]
        async fn operators_list_and_replay_dead_work() {
            let (store, _guard) = $open;
            super::contract_tests::operators_list_and_replay_dead_work(store).await;
        }
        #[tokio::test]
        async fn sweep_and_backfill_positions_persist() {
            let (store, _guard) = $open;
            super::contract_tests::sweep_and_backfill_positions_persist(store).await;
        }
        #[tokio::test]
        async fn purge_keeps_recent_events() {
            let (store, _guard) = $open;
            super::contract_tests::purge_keeps_recent_events(store).await;
        }
        #[tokio::test]
        async fn a_holded_key_activates_an_installed_location() {
            let (store, _guard) = $open;
            super::contract_tests::a_holded_key_activates_an_installed_location(store).await;
        }
        #[tokio::test]
        async fn tokens_round_trip() {
            let (store, _guard) = $open;
            super::contract_tests::tokens_round_trip(store).await;
        }
        #[tokio::test]
        async fn claim_leaves_work_of_inactive_locations_pending() {
            let (store, _guard) = $open;
            super::contract_tests::claim_leaves_work_of_inactive_locations_pending(store).await;
        }
        #[tokio::test]
        async fn one_refresh_lease_per_token_version() {
            let (store, _guard) = $open;
            super::contract_tests::one_refresh_lease_per_token_version(store).await;
        }
        #[tokio::test]
        async fn a_lapsed_refresh_lease_is_taken_over() {
            let (store, _guard) = $open;
            super::contract_tests::a_lapsed_refresh_lease_is_taken_over(store).await;
        }
        #[tokio::test]
        async fn reinstalling_renews_the_token_and_voids_its_lease() {
            let (store, _guard) = $open;
            super::contract_tests::reinstalling_renews_the_token_and_voids_its_lease(store).await;
        }
        #[tokio::test]
        async fn uninstalling_a_company_uninstalls_its_locations() {
            let (store, _guard) = $open;
            super::contract_tests::uninstalling_a_company_uninstalls_its_locations(store).await;
        }
        #[tokio::test]
        async fn tokens_due_are_expiring_or_stale() {
            let (store, _guard) = $open;
            super::contract_tests::tokens_due_are_expiring_or_stale(store).await;
        }
        #[tokio::test]
        async fn nonces_are_single_use() {
            let (store, _guard) = $open;
            super::contract_tests::nonces_are_single_use(store).await;
        }
    };
}
pub(crate) use contract_suite;
