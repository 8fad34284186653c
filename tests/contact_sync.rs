//! Black-box: signed GHL contact webhooks become Holded contacts.
mod support;

use base64::Engine;
use ghl_holded_sync::sim::faults::{FaultAction, FaultRule};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use support::eventually;
use support::service::{has_tag, Service, World, GHL_TOKEN, HOLDED_KEY, LOCATION, SYNC};

/// Waits until the Holded contact of `ghl_id` carries the tag a GHL deletion leaves under
/// the default delete policy; returns it.
async fn holded_contact_tagged_deleted(world: &World, ghl_id: &str) -> Value {
    world
        .holded_contact_where(ghl_id, "the ghl-deleted tag", |c| has_tag(c, "ghl-deleted"))
        .await
}

async fn error_body(response: reqwest::Response, status: StatusCode) -> Value {
    assert_eq!(response.status(), status);
    let body: Value = response.json().await.expect("JSON error body");
    assert!(
        body["error"].is_string() && body["message"].is_string(),
        "{body}"
    );
    body
}

#[tokio::test]
async fn contact_create_lands_in_holded_field_by_field() {
    let world = World::new().await;
    let service = world.start_service().await;
    let answer = world.seed_contact_and_post_create(&service, "c1").await;
    assert_eq!(answer["status"], "stored");

    let holded = world
        .holded_contact_where("c1", "the contact in Holded", |_| true)
        .await;
    assert_eq!(holded["customId"], "c1");
    assert_eq!(holded["name"], "John Deo");
    assert_eq!(holded["email"], "c1@example.com");
    assert_eq!(holded["phone"], "+34600112233");
    assert_eq!(holded["type"], "client");
    assert_eq!(holded["billAddress"]["address"], "Calle Mayor 1");
    assert_eq!(holded["billAddress"]["city"], "Madrid");
    assert_eq!(holded["billAddress"]["postalCode"], "28013");
    assert_eq!(holded["billAddress"]["country"], "ES");
    assert_eq!(holded["tags"], json!(["b2b", "vip"]));
    // Authenticated with the configured token and key.
    let fetch = world.first_ghl_request("/contacts/c1");
    assert_eq!(
        fetch.headers["authorization"],
        format!("Bearer {GHL_TOKEN}").as_str()
    );
    assert_eq!(fetch.headers["version"], "2021-07-28");
}

#[tokio::test]
async fn update_changes_the_same_holded_contact() {
    let world = World::new().await;
    let service = world.start_with_synced_contact("c1", "created").await;

    world
        .ghl
        .patch_contact("c1", json!({ "email": "new@example.com", "tags": ["vip"] }));
    world
        .post_contact_event(&service, "ContactUpdate", "c1")
        .await;
    let holded = world
        .holded_contact_where("c1", "the new email in Holded", |c| {
            c["email"] == "new@example.com"
        })
        .await;
    assert_eq!(holded["tags"], json!(["vip"]));
    assert_eq!(world.holded.contacts(HOLDED_KEY).len(), 1);
}

#[tokio::test]
async fn unchanged_update_makes_zero_holded_writes() {
    let world = World::new().await;
    let service = world.start_with_synced_contact("c1", "created").await;
    service
        .wait_for_log("first sync logged", |l| {
            l["message"] == "sync" && l["outcome"] == "created"
        })
        .await;
    let writes_before = world.holded.requests().writes();

    for event_type in ["ContactUpdate", "ContactTagUpdate", "ContactDndUpdate"] {
        world.post_contact_event(&service, event_type, "c1").await;
    }
    eventually("the re-sync to finish", SYNC, || async {
        (service.outcome_count("c1", "unchanged") >= 1).then_some(())
    })
    .await;
    assert_eq!(
        world.holded.requests().writes(),
        writes_before,
        "no Holded write for unchanged data"
    );
}

/// Starts the service, syncs contact `c1` to Holded, then deletes it in GHL and delivers
/// `event_type` for it: the start of every test of what a GHL deletion does in Holded.
async fn sync_c1_then_delete_it_in_ghl(world: &World, event_type: &str) -> Service {
    let service = world.start_with_synced_contact("c1", "created").await;
    world
        .delete_in_ghl_then_post(&service, event_type, "c1")
        .await;
    service
}

#[tokio::test]
async fn contact_delete_tags_the_holded_contact_by_default() {
    let world = World::new().await;
    let service = sync_c1_then_delete_it_in_ghl(&world, "ContactDelete").await;
    let holded = holded_contact_tagged_deleted(&world, "c1").await;
    assert_eq!(holded["name"], "John Deo", "the record itself is kept");

    // Delivered again: already handled, no write.
    let writes = world.holded.requests().writes();
    let again = world.contact_webhook("ContactDelete", "c1");
    world.post_signed(&service, &again).await;
    eventually("the second delete to be processed", SYNC, || async {
        (service.outcome_count("c1", "unchanged") == 1).then_some(())
    })
    .await;
    assert_eq!(world.holded.requests().writes(), writes);
}

#[tokio::test]
async fn delete_policy_delete_removes_the_holded_contact() {
    let world = World::new().await.with_env("DELETE_POLICY", "delete");
    let _service = sync_c1_then_delete_it_in_ghl(&world, "ContactDelete").await;
    eventually("the Holded contact to be deleted", SYNC, || async {
        world.holded.contacts(HOLDED_KEY).is_empty().then_some(())
    })
    .await;
}

#[tokio::test]
async fn ghl_404_takes_the_delete_path() {
    let world = World::new().await;
    // An update webhook, but GHL no longer has the contact.
    let _service = sync_c1_then_delete_it_in_ghl(&world, "ContactUpdate").await;
    holded_contact_tagged_deleted(&world, "c1").await;
}

#[tokio::test]
async fn duplicate_webhook_is_acknowledged_without_new_work() {
    let world = World::new().await;
    let service = world.start_service().await;
    world.seed_contact("c1");
    let body = world.contact_webhook("ContactCreate", "c1");
    let first = world.post_signed(&service, &body).await;
    assert_eq!(first.json::<Value>().await.unwrap()["status"], "stored");
    world.holded_contact_where("c1", "created", |_| true).await;
    service
        .wait_for_log("first sync logged", |l| l["message"] == "sync")
        .await;

    let second = world.post_signed(&service, &body).await;
    assert_eq!(second.status(), StatusCode::OK);
    assert_eq!(second.json::<Value>().await.unwrap()["status"], "duplicate");
    // The same webhookId with different bytes (GHL re-signing) is a duplicate too.
    let mut resent: Value = serde_json::from_slice(&body).unwrap();
    resent["timestamp"] = json!(chrono::Utc::now().to_rfc3339());
    let third = world
        .post_signed(&service, &serde_json::to_vec(&resent).unwrap())
        .await;
    assert_eq!(third.json::<Value>().await.unwrap()["status"], "duplicate");

    assert_eq!(world.count_rows("events").await, 1);
    assert_eq!(world.ghl_fetches("c1"), 1, "no second fetch");
    assert_eq!(world.holded.contacts(HOLDED_KEY).len(), 1);
}

#[tokio::test]
async fn bad_or_missing_signatures_are_refused_and_store_nothing() {
    let world = World::new().await;
    let service = world.start_service().await;
    world.seed_contact("c1");
    let body = world.contact_webhook("ContactCreate", "c1");
    let b64 = |bytes: &[u8]| base64::engine::general_purpose::STANDARD.encode(bytes);
    let forged = ghl_holded_sync::sim::webhooks::WebhookSigner::generate();

    let cases: Vec<(&str, Vec<(&str, String)>)> = vec![
        ("missing", vec![]),
        (
            "signed by another key",
            vec![("x-ghl-signature", forged.sign_ed25519(&body))],
        ),
        ("not base64", vec![("x-ghl-signature", "%%%".into())]),
        ("wrong length", vec![("x-ghl-signature", b64(&[7u8; 12]))]),
        ("RSA garbage", vec![("x-wh-signature", b64(&[7u8; 256]))]),
        (
            "bad Ed25519 beside a good RSA",
            vec![
                ("x-ghl-signature", forged.sign_ed25519(&body)),
                ("x-wh-signature", world.signer.sign_rsa(&body).unwrap()),
            ],
        ),
    ];
    for (name, headers) in cases {
        let response = world.post_raw(&service, &headers, body.clone()).await;
        let error = error_body(response, StatusCode::UNAUTHORIZED).await;
        assert_eq!(error["error"], "invalid_signature", "{name}");
    }
    // A body changed after signing fails too.
    let mut tampered = body.clone();
    tampered.extend_from_slice(b" ");
    let response = world
        .post_raw(
            &service,
            &[("x-ghl-signature", world.signer.sign_ed25519(&body))],
            tampered,
        )
        .await;
    error_body(response, StatusCode::UNAUTHORIZED).await;

    assert_eq!(world.count_rows("events").await, 0);
    assert_eq!(world.count_rows("work").await, 0);
    assert_eq!(world.ghl.requests().all().len(), 0, "nothing fetched");

    // The legacy RSA header alone is accepted.
    let response = world
        .post_raw(
            &service,
            &[("x-wh-signature", world.signer.sign_rsa(&body).unwrap())],
            body,
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    world
        .holded_contact_where("c1", "created through the RSA path", |_| true)
        .await;
}

#[tokio::test]
async fn stale_timestamps_are_refused() {
    let world = World::new().await;
    let service = world.start_service().await;
    world.seed_contact("c1");
    let mut event: Value =
        serde_json::from_slice(&world.contact_webhook("ContactCreate", "c1")).unwrap();
    event["timestamp"] = json!((chrono::Utc::now() - chrono::Duration::hours(3)).to_rfc3339());
    let response = world
        .post_signed(&service, &serde_json::to_vec(&event).unwrap())
        .await;
    let error = error_body(response, StatusCode::UNAUTHORIZED).await;
    assert_eq!(error["error"], "stale_timestamp");
    assert_eq!(world.count_rows("events").await, 0);
}

#[tokio::test]
async fn malformed_and_oversized_bodies_are_refused_and_store_nothing() {
    let world = World::new().await;
    let service = world.start_service().await;
    let cases: [(&[u8], &str); 6] = [
        (b"not json at all", "invalid_payload"),
        (b"[1,2,3]", "invalid_payload"),
        (
            br#"{"locationId":"ve9EPM428h8vShlRW1KT","id":"c1"}"#,
            "invalid_payload",
        ),
        (br#"{"type":"ContactCreate","id":"c1"}"#, "invalid_payload"),
        (
            br#"{"type":"ContactCreate","locationId":"ve9EPM428h8vShlRW1KT"}"#,
            "invalid_payload",
        ),
        (
            br#"{"type":"ContactCreate","locationId":"../../etc","id":"c1"}"#,
            "invalid_payload",
        ),
    ];
    for (body, code) in cases {
        let response = world.post_signed(&service, body).await;
        let error = error_body(response, StatusCode::BAD_REQUEST).await;
        assert_eq!(error["error"], code, "{}", String::from_utf8_lossy(body));
    }
    let mut huge = br#"{"type":"ContactCreate","locationId":"l","id":"c","pad":""#.to_vec();
    huge.extend(std::iter::repeat_n(b'x', 1024 * 1024 + 1));
    huge.extend_from_slice(b"\"}");
    let response = world.post_signed(&service, &huge).await;
    let error = error_body(response, StatusCode::PAYLOAD_TOO_LARGE).await;
    assert_eq!(error["error"], "body_too_large");

    assert_eq!(world.count_rows("events").await, 0);
    assert_eq!(world.count_rows("work").await, 0);
}

#[tokio::test]
async fn event_types_we_do_not_handle_are_acknowledged_and_ignored() {
    let world = World::new().await;
    let service = world.start_service().await;
    let body = serde_json::to_vec(&json!({
        "type": "OpportunityCreate", "locationId": LOCATION, "id": "o1",
        "timestamp": chrono::Utc::now().to_rfc3339(), "webhookId": "wh-opp-1",
    }))
    .unwrap();
    let response = world.post_signed(&service, &body).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.json::<Value>().await.unwrap()["status"], "ignored");
    assert_eq!(world.count_rows("work").await, 0);
}

#[tokio::test]
async fn pending_work_survives_a_crash_and_restart() {
    let world = World::new().await;
    // Holded is down: the sync fails and the item waits for its retry.
    world.holded.faults().push(FaultRule::always(
        None,
        "",
        FaultAction::Status {
            code: 503,
            retry_after_secs: None,
        },
    ));
    let service = world.start_service().await;
    world.seed_contact_and_post_create(&service, "c1").await;
    service
        .wait_for_log("a failed attempt", |l| {
            l["message"] == "sync" && l["outcome"] == "retry"
        })
        .await;
    service.kill(); // SIGKILL: no graceful anything

    world.holded.faults().clear();
    let restarted = world.start_service().await;
    world
        .holded_contact_where("c1", "synced after the restart", |_| true)
        .await;
    drop(restarted);
}

#[tokio::test]
async fn webhook_acknowledged_before_a_crash_is_synced_after_restart() {
    let world = World::new().await;
    // GHL hangs on the fetch, so the item is leased and in flight when the process dies.
    let gate = world.hold_first_ghl_get("/contacts/c1");
    let service = world.start_service().await;
    world.seed_contact_and_post_create(&service, "c1").await;
    assert!(gate.wait_for_arrivals(1, SYNC).await);
    service.kill();
    gate.open();

    let _restarted = world.start_service().await;
    world
        .holded_contact_where("c1", "synced after the restart", |_| true)
        .await;
}

#[tokio::test]
async fn update_arriving_mid_sync_is_synced_again() {
    let world = World::new().await;
    let gate = world.hold_first_ghl_get("/contacts/c1");
    let service = world.start_service().await;
    world.seed_contact_and_post_create(&service, "c1").await;
    // The first fetch has read the old data and is held in flight.
    assert!(gate.wait_for_arrivals(1, SYNC).await);
    world
        .ghl
        .patch_contact("c1", json!({ "email": "latest@example.com" }));
    let answer = world
        .post_contact_event(&service, "ContactUpdate", "c1")
        .await;
    assert_eq!(answer["status"], "stored");
    gate.open();

    world
        .holded_contact_where("c1", "the latest email in Holded", |c| {
            c["email"] == "latest@example.com"
        })
        .await;
    assert!(
        world.ghl_fetches("c1") >= 2,
        "fetched again after the mid-sync update"
    );
    assert_eq!(world.holded.contacts(HOLDED_KEY).len(), 1);
}

#[tokio::test]
async fn existing_holded_contact_with_our_custom_id_is_reused_not_duplicated() {
    let world = World::new().await;
    // As if a previous run created it and crashed before recording the link.
    let existing = world
        .holded
        .put_contact(HOLDED_KEY, json!({ "name": "Old name", "customId": "c1" }));
    let service = world.start_service().await;
    world.seed_contact_and_post_create(&service, "c1").await;
    let holded = world
        .holded_contact_where("c1", "the update", |c| c["name"] == "John Deo")
        .await;
    assert_eq!(holded["id"], existing.as_str());
    assert_eq!(
        world
            .holded
            .requests()
            .count(&Method::POST, "/api/invoicing/v1/contacts"),
        0
    );
}

#[tokio::test]
async fn logs_say_what_happened_and_never_a_secret() {
    let world = World::new().await;
    let service = world.start_with_synced_contact("c1", "created").await;
    let sync = service
        .wait_for_log("a sync line", |l| l["message"] == "sync")
        .await;
    assert_eq!(sync["location"], LOCATION);
    assert_eq!(sync["kind"], "contact");
    assert_eq!(sync["ghl_id"], "c1");
    assert_eq!(sync["outcome"], "created");
    assert!(sync["duration_ms"].is_number() && sync["holded_id"].is_string());
    let webhook = service
        .wait_for_log("a webhook line", |l| l["message"] == "webhook")
        .await;
    assert_eq!(webhook["location"], LOCATION);
    assert_eq!(webhook["event_type"], "ContactCreate");
    assert!(webhook["duration_ms"].is_number());

    // A failing upstream logs its error too; still no secret.
    world.holded.faults().push(FaultRule::always(
        None,
        "",
        FaultAction::Status {
            code: 401,
            retry_after_secs: None,
        },
    ));
    world
        .ghl
        .patch_contact("c1", json!({ "email": "x@example.com" }));
    world
        .post_contact_event(&service, "ContactUpdate", "c1")
        .await;
    service
        .wait_for_log("a retry line", |l| l["outcome"] == "retry")
        .await;

    let everything = service.lines().join("\n");
    for secret in [GHL_TOKEN, HOLDED_KEY] {
        assert!(!everything.contains(secret), "a secret was logged");
    }
}

#[tokio::test]
async fn health_and_readiness() {
    let world = World::new().await;
    let service = world.start_service().await;
    for (path, status) in [("/healthz", "ok"), ("/readyz", "ready")] {
        let response = world.get(&service, path).await;
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(response.json::<Value>().await.unwrap()["status"], status);
    }
    let response = world.get(&service, "/nope").await;
    error_body(response, StatusCode::NOT_FOUND).await;
    let response = world.get(&service, "/webhooks/ghl").await;
    error_body(response, StatusCode::METHOD_NOT_ALLOWED).await;
}

#[tokio::test]
async fn starts_without_sync_settings_and_says_what_is_missing() {
    let world = World::new().await;
    let mut env = world.service_env();
    for name in ["GHL_LOCATION_ID", "GHL_PRIVATE_TOKEN", "HOLDED_API_KEY"] {
        env.remove(name);
    }
    let service = support::service::Service::spawn(env).await;
    let warning = service
        .wait_for_log("the missing-settings warning", |l| l["level"] == "WARN")
        .await;
    assert!(warning["message"]
        .as_str()
        .unwrap()
        .contains("GHL_LOCATION_ID"));
    let response = world.get(&service, "/healthz").await;
    assert_eq!(response.status(), StatusCode::OK);
    // Webhooks are still verified and stored, ready for when the settings arrive.
    let answer = world.seed_contact_and_post_create(&service, "c1").await;
    assert_eq!(answer["status"], "stored");
}

#[tokio::test]
async fn invalid_configuration_stops_start_up_naming_the_variable() {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_ghl-holded-sync"))
        .env_clear()
        .env("WORKERS", "lots")
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.lines().any(|l| l.contains("WORKERS")), "{stderr}");
}

#[tokio::test]
async fn a_wrong_ghl_base_url_never_reads_as_deleted_contacts() {
    let world = World::new().await;
    let wrong_base = format!("{}/wrong-prefix", world.ghl.base_url());
    let world = world.with_env("GHL_API_BASE", &wrong_base);
    let existing = world
        .holded
        .put_contact(HOLDED_KEY, json!({ "name": "Keep me", "customId": "c1" }));
    let service = world.start_service().await;
    world.seed_contact("c1");
    world
        .post_contact_event(&service, "ContactUpdate", "c1")
        .await;
    let (state, error) = world
        .wait_for_dead_work("c1", "the item to be dead-lettered")
        .await;
    assert_eq!(state, "dead");
    assert!(error.unwrap().contains("GHL_API_BASE"));
    assert_eq!(
        world.holded.requests().writes(),
        0,
        "nothing tagged or deleted"
    );
    let kept = world.holded.contact(HOLDED_KEY, &existing).unwrap();
    assert_eq!(kept["tags"], json!([]));
}

/// Holds the store's write lock from outside until dropped (the connection closes).
struct StoreLock {
    _connection: Box<dyn std::any::Any + Send>,
}

async fn lock_store(database_url: &str) -> StoreLock {
    use sqlx::Connection;
    let connection: Box<dyn std::any::Any + Send> = if database_url.starts_with("postgres") {
        let mut conn = sqlx::PgConnection::connect(database_url).await.unwrap();
        sqlx::query("BEGIN").execute(&mut conn).await.unwrap();
        sqlx::query("LOCK TABLE events IN ACCESS EXCLUSIVE MODE")
            .execute(&mut conn)
            .await
            .unwrap();
        Box::new(conn)
    } else {
        let mut conn = sqlx::SqliteConnection::connect(database_url).await.unwrap();
        sqlx::query("BEGIN EXCLUSIVE")
            .execute(&mut conn)
            .await
            .unwrap();
        Box::new(conn)
    };
    StoreLock {
        _connection: connection,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_that_cannot_commit_answers_429_with_retry_after() {
    let world = World::new().await;
    let service = world.start_service().await;
    world.seed_contact("c1");
    let body = world.contact_webhook("ContactCreate", "c1");
    let lock = lock_store(&service_database_url(&world)).await;
    let response = world.post_signed(&service, &body).await;
    assert_eq!(
        response.status(),
        StatusCode::TOO_MANY_REQUESTS,
        "the one status GHL retries"
    );
    assert!(response.headers().contains_key("retry-after"));
    let error = error_body(response, StatusCode::TOO_MANY_REQUESTS).await;
    assert_eq!(error["error"], "store_unavailable");
    assert!(
        !error["message"].as_str().unwrap().contains("database"),
        "no internals leak"
    );
    drop(lock);

    // GHL's retry of the same bytes is taken, once.
    let retry = world.post_signed(&service, &body).await;
    assert_eq!(retry.status(), StatusCode::OK);
    world
        .holded_contact_where("c1", "synced after the retry", |_| true)
        .await;
}

fn service_database_url(world: &World) -> String {
    world.service_env()["DATABASE_URL"].clone()
}

#[tokio::test]
async fn holded_html_and_status_zero_answers_are_errors_not_success() {
    let world = World::new().await;
    // Twice an HTML page with HTTP 200, then the real answer.
    world.holded.faults().push(
        FaultRule::always(
            Some(Method::POST),
            "/api/invoicing/v1/contacts",
            FaultAction::HtmlOk,
        )
        .times(2),
    );
    let service = world.start_service().await;
    world.seed_contact_and_post_create(&service, "c1").await;
    let holded = world
        .holded_contact_where("c1", "created after the HTML answers", |_| true)
        .await;
    assert_eq!(holded["name"], "John Deo");
    let outcomes = service.sync_outcomes("c1");
    assert_eq!(
        outcomes.iter().filter(|o| *o == "retry").count(),
        2,
        "{outcomes:?}"
    );
    assert_eq!(world.holded.contacts(HOLDED_KEY).len(), 1);
}
