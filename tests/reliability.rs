//! Black-box reliability: crashes, upstream faults, lost webhooks, rate budgets, admin.
mod support;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ghl_holded_sync::sim::faults::{FaultAction, FaultRule};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use support::eventually;
use support::service::{Service, World, HOLDED_KEY};

/// Every contact of `expected` (id → email) in Holded exactly once, with that email.
async fn converged(world: &World, expected: &HashMap<String, String>, deadline: Duration) {
    eventually(
        "every contact in Holded with its latest data",
        deadline,
        || async {
            let contacts = world.holded.contacts(HOLDED_KEY);
            let mut seen: HashMap<String, Vec<String>> = HashMap::new();
            for c in &contacts {
                if let Some(id) = c["customId"].as_str() {
                    seen.entry(id.to_owned())
                        .or_default()
                        .push(c["email"].as_str().unwrap_or_default().to_owned());
                }
            }
            for (id, emails) in &seen {
                assert_eq!(
                    emails.len(),
                    1,
                    "duplicate Holded contacts for {id}: {emails:?}"
                );
            }
            expected
                .iter()
                .all(|(id, email)| seen.get(id).is_some_and(|e| &e[0] == email))
                .then_some(())
        },
    )
    .await;
}

/// Posts until the service answers 200, as GHL's retries would; counts the refusals.
async fn deliver(world: &World, service_url: &str, body: &[u8]) -> u32 {
    let mut refused = 0;
    let until = Instant::now() + Duration::from_secs(120);
    loop {
        let sent = world.signer.post(&world.http, service_url, body).await;
        if sent.as_ref().is_ok_and(|r| r.status() == StatusCode::OK) {
            return refused;
        }
        refused += 1;
        assert!(Instant::now() < until, "never acknowledged");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// `deliver` for the `ContactCreate` of contact `id` as GHL holds it now.
async fn deliver_contact_create(world: &World, service_url: &str, id: &str) -> u32 {
    deliver(
        world,
        service_url,
        &world.contact_webhook("ContactCreate", id),
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn crash_twice_under_load_loses_nothing_and_duplicates_nothing() {
    let mut world = World::new().await;
    world.without_rate_limits();
    // The service restarts on the same port, so the senders need not know it died.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    world
        .env
        .insert("LISTEN_ADDR".into(), format!("127.0.0.1:{port}"));
    let url = format!("http://127.0.0.1:{port}/webhooks/ghl");
    world.seed_contacts((0..500).map(|i| format!("c{i}")));
    let world = Arc::new(world);
    let mut service = Some(world.start_service().await);

    // 2,000 webhooks for 500 contacts: each changes the contact in GHL first.
    let mut senders = tokio::task::JoinSet::new();
    for lane in 0..8 {
        let world = world.clone();
        let url = url.clone();
        senders.spawn(async move {
            let mut latest = HashMap::new();
            for n in (lane..2000).step_by(8) {
                let id = format!("c{}", n % 500);
                let email = format!("v{n}-{id}@example.com");
                world.ghl.patch_contact(&id, json!({ "email": email }));
                let body = world.contact_webhook("ContactUpdate", &id);
                deliver(&world, &url, &body).await;
                latest.insert(id, (n, email));
            }
            latest
        });
    }
    for _ in 0..2 {
        let before = world.holded.requests().writes();
        eventually(
            "some progress before the kill",
            Duration::from_secs(60),
            || async { (world.holded.requests().writes() > before + 50).then_some(()) },
        )
        .await;
        service.take().unwrap().kill();
        service = Some(world.start_service().await);
    }
    let mut expected: HashMap<String, (usize, String)> = HashMap::new();
    while let Some(lane) = senders.join_next().await {
        for (id, (n, email)) in lane.unwrap() {
            if expected.get(&id).is_none_or(|(m, _)| *m < n) {
                expected.insert(id, (n, email));
            }
        }
    }
    let expected: HashMap<String, String> =
        expected.into_iter().map(|(id, (_, e))| (id, e)).collect();
    assert_eq!(expected.len(), 500);
    converged(&world, &expected, Duration::from_secs(120)).await;
    drop(service);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn twenty_percent_upstream_faults_still_converge() {
    let mut world = World::new().await;
    world.without_rate_limits();
    world.env.insert("UPSTREAM_TIMEOUT".into(), "2s".into());
    // The property here is convergence, not the backoff curve (unit-tested): a short cap
    // keeps the unlucky tail of a 20 % fault rate from waiting minutes.
    world.env.insert("RETRY_BASE_DELAY".into(), "50ms".into());
    world.env.insert("RETRY_MAX_DELAY".into(), "2s".into());
    world.env.insert("SYNC_MAX_ATTEMPTS".into(), "200".into());
    world.env.insert("WORKERS".into(), "16".into());
    let faults = [
        FaultAction::Status {
            code: 429,
            retry_after_secs: Some(1),
        },
        FaultAction::Status {
            code: 500,
            retry_after_secs: None,
        },
        FaultAction::Latency(Duration::from_secs(5)),
        FaultAction::Drop,
    ];
    for sim_faults in [world.ghl.faults(), world.holded.faults()] {
        for action in faults.clone() {
            sim_faults.push(FaultRule::always(None, "", action).with_probability(0.05));
        }
    }
    // One permanent error, injected on purpose: GHL refuses this contact outright.
    world.ghl.faults().push(FaultRule::always(
        Some(Method::GET),
        "/contacts/broken",
        FaultAction::Status {
            code: 422,
            retry_after_secs: None,
        },
    ));
    let service = world.start_service().await;
    let mut expected = HashMap::new();
    for i in 0..100 {
        let id = format!("c{i}");
        world.seed_contact(&id);
        deliver_contact_create(&world, &service.url("/webhooks/ghl"), &id).await;
        expected.insert(id.clone(), format!("{id}@example.com"));
    }
    world.seed_contact("broken");
    deliver_contact_create(&world, &service.url("/webhooks/ghl"), "broken").await;

    converged(&world, &expected, Duration::from_secs(240)).await;
    let dead = world.dead_ghl_ids().await;
    assert_eq!(
        dead,
        vec!["broken".to_string()],
        "dead letters only for the injected permanent error"
    );
    let (_, reason) = world.work_row("broken").await.unwrap();
    assert!(
        reason.unwrap().contains("422"),
        "the reason keeps the upstream answer"
    );
    drop(service);
}

#[tokio::test]
async fn a_change_without_a_webhook_is_synced_by_the_next_sweep() {
    let world = World::new().await.with_env("SWEEP_INTERVAL", "1s");
    // Kept running: its sweep is what syncs the change.
    let _service = world
        .start_with_synced_contact("c1", "synced by its webhook")
        .await;

    // GHL changes both contacts but never delivers a webhook (lost).
    world
        .ghl
        .patch_contact("c1", json!({ "email": "changed@example.com" }));
    world.seed_contact("quiet");
    world
        .holded_contact_where("c1", "the change swept in", |c| {
            c["email"] == "changed@example.com"
        })
        .await;
    world
        .holded_contact_where("quiet", "the new contact swept in", |_| true)
        .await;
    assert!(
        world
            .ghl
            .requests()
            .count(&Method::POST, "/contacts/search")
            >= 1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_backlog_never_exceeds_the_ghl_budget_and_draws_no_429() {
    let mut world = World::new().await;
    world
        .ghl
        .enforce_rate_limit(Some((100, Duration::from_secs(10))));
    world
        .env
        .insert("HOLDED_RATE_LIMIT".into(), "100000/1s".into());
    world.env.insert("WORKERS".into(), "16".into());
    let service = world.start_service().await;
    world.seed_contacts((0..1000).map(|i| format!("c{i}")));
    let url = service.url("/webhooks/ghl");
    for i in 0..1000 {
        deliver_contact_create(&world, &url, &format!("c{i}")).await;
    }
    // Enough calls for more than two full windows at the limit; whether they were paced is
    // judged on the simulator's own timestamps below, never on this test's clock.
    eventually(
        "two windows' worth of GHL calls",
        Duration::from_secs(90),
        || async { (world.ghl.requests().all().len() >= 250).then_some(()) },
    )
    .await;

    let calls: Vec<(Instant, u16)> = world
        .ghl
        .requests()
        .all()
        .iter()
        .map(|r| (r.at, r.status))
        .collect();
    assert!(
        calls.iter().all(|(_, status)| *status != 429),
        "no 429 once the limit is known"
    );
    let window = Duration::from_secs(10);
    let busiest = calls
        .iter()
        .map(|(start, _)| {
            calls
                .iter()
                .filter(|(t, _)| *t >= *start && t.duration_since(*start) < window)
                .count()
        })
        .max()
        .unwrap();
    assert!(busiest <= 100, "{busiest} GHL calls in one 10 s window");
    drop(service);
}

async fn admin(
    service: &Service,
    method: Method,
    path: &str,
    token: Option<&str>,
) -> reqwest::Response {
    let mut request = reqwest::Client::new().request(method, service.url(path));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    request.send().await.unwrap()
}

#[tokio::test]
async fn admin_api_needs_its_token_and_replays_dead_items() {
    const TOKEN: &str = "admin-token-for-tests-0123456789";
    let mut world = World::new().await;
    world.env.insert("ADMIN_TOKEN".into(), TOKEN.into());
    let service = world.start_service().await;
    for (token, what) in [
        (None, "no token"),
        (Some("wrong-token"), "wrong token"),
        (Some(""), "empty token"),
    ] {
        let response = admin(&service, Method::GET, "/admin/work", token).await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{what}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"], "unauthorized");
    }

    // Holded refuses the contact for good: it goes to the dead state.
    world.holded.faults().push(FaultRule::always(
        Some(Method::POST),
        "/api/invoicing/v1/contacts",
        FaultAction::StatusZeroOk("invalid email".into()),
    ));
    world.seed_contact_and_post_create(&service, "c1").await;
    let dead = eventually("a dead item", support::service::SYNC, || async {
        let response = admin(&service, Method::GET, "/admin/dead", Some(TOKEN)).await;
        let body: Value = response.json().await.unwrap();
        body["items"]
            .as_array()
            .filter(|i| !i.is_empty())
            .map(|i| i[0].clone())
    })
    .await;
    assert_eq!(dead["ghl_id"], "c1");
    assert!(dead["last_error"]
        .as_str()
        .unwrap()
        .contains("invalid email"));
    let work: Value = admin(&service, Method::GET, "/admin/work", Some(TOKEN))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(work["counts"]["dead"], 1);

    world.holded.faults().clear();
    let path = format!("/admin/dead/{}/replay", dead["id"]);
    let response = admin(&service, Method::POST, &path, Some(TOKEN)).await;
    assert_eq!(response.status(), StatusCode::OK);
    world
        .holded_contact_where("c1", "the replayed contact", |_| true)
        .await;
    let response = admin(&service, Method::POST, &path, Some(TOKEN)).await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND, "no longer dead");

    let tenants: Value = admin(&service, Method::GET, "/admin/tenants", Some(TOKEN))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        tenants["tenants"][0]["location_id"],
        support::service::LOCATION
    );
}

#[tokio::test]
async fn admin_api_is_disabled_without_a_token() {
    let world = World::new().await;
    let service = world.start_service().await;
    let response = admin(&service, Method::GET, "/admin/work", Some("anything")).await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
}
