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
        work: Some(WorkRequest {
            key: key(id),
            parent: None,
            deleted,
        }),
    }
}

const LEASE: Duration = Duration::from_secs(60);

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

macro_rules! contract_suite {
    ($open:expr) => {
        #[tokio::test]
        async fn dedupe_and_coalescing() {
            let (store, _guard) = $open;
            super::contract_tests::dedupe_and_coalescing(store).await;
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
    };
}
pub(crate) use contract_suite;
