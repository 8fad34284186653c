//! Black-box: what operators rely on — metrics and a graceful shutdown.
mod support;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::Value;
use support::eventually;
use support::service::World;

#[tokio::test]
async fn metrics_count_what_happened() {
    let world = World::new().await;
    let service = world.start_with_synced_contact("c1", "created").await;
    let forged = world
        .post_raw(
            &service,
            &[("x-ghl-signature", "AAAA".into())],
            b"{}".to_vec(),
        )
        .await;
    assert_eq!(forged.status(), StatusCode::UNAUTHORIZED);

    let text = eventually(
        "the sync in the metrics",
        support::service::SYNC,
        || async {
            let response = world.get(&service, "/metrics").await;
            assert_eq!(response.status(), StatusCode::OK);
            let content_type = response.headers()["content-type"]
                .to_str()
                .unwrap()
                .to_owned();
            assert!(
                content_type.starts_with("application/openmetrics-text"),
                "{content_type}"
            );
            let text = response.text().await.unwrap();
            text.contains(r#"ghl_holded_sync_work_items{state="done"} 1"#)
                .then_some(text)
        },
    )
    .await;
    for expected in [
        r#"ghl_holded_sync_webhooks_total{event_type="ContactCreate",outcome="stored"} 1"#,
        r#"ghl_holded_sync_webhooks_total{event_type="unverified",outcome="invalid_signature"} 1"#,
        r#"ghl_holded_sync_sync_duration_seconds_count{kind="contact",outcome="created"} 1"#,
        r#"ghl_holded_sync_upstream_calls_total{api="ghl",status="200"}"#,
        r#"ghl_holded_sync_upstream_calls_total{api="holded",status="201"} 1"#,
        r#"ghl_holded_sync_work_items{state="dead"} 0"#,
    ] {
        assert!(text.contains(expected), "missing {expected}:\n{text}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigterm_under_load_keeps_every_acknowledged_webhook() {
    let mut world = World::new().await;
    world.without_rate_limits();
    world.seed_contacts((0..50).map(|i| format!("c{i}")));
    let world = Arc::new(world);
    let service = world.start_service().await;
    let url = service.url("/webhooks/ghl");
    let acknowledged = Arc::new(Mutex::new(Vec::<Vec<u8>>::new()));
    let mut senders = tokio::task::JoinSet::new();
    for lane in 0..8 {
        let (world, url, acknowledged) = (world.clone(), url.clone(), acknowledged.clone());
        senders.spawn(async move {
            for n in 0.. {
                let body =
                    world.contact_webhook("ContactUpdate", &format!("c{}", (lane + n * 8) % 50));
                match world.signer.post(&world.http, &url, &body).await {
                    Ok(response) if response.status() == StatusCode::OK => {
                        acknowledged.lock().unwrap().push(body)
                    }
                    Ok(response) => panic!("refused while up: {}", response.status()),
                    // Shutting down: it no longer accepts connections.
                    Err(_) => return,
                }
            }
        });
    }
    eventually("some load", Duration::from_secs(30), || async {
        (acknowledged.lock().unwrap().len() >= 300).then_some(())
    })
    .await;
    let status = service.terminate(Duration::from_secs(30));
    assert!(status.success(), "clean exit after SIGTERM: {status}");
    while senders.join_next().await.is_some() {}

    let acknowledged = acknowledged.lock().unwrap().clone();
    let restarted = world.start_service().await;
    for body in &acknowledged {
        let response = world.post_signed(&restarted, body).await;
        let answer: Value = response.json().await.unwrap();
        assert_eq!(
            answer["status"], "duplicate",
            "an acknowledged webhook was not kept"
        );
    }
}
