//! Black-box: the service as a GHL Marketplace app — installs of a location and of an agency,
//! the signed `state`, the connect form, tokens that refresh once and never lapse, a refused
//! refresh that pauses only its location, uninstall and re-install without duplicates, and
//! credentials that are never stored in plaintext.
mod support;

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::Value;

use ghl_holded_sync::secrets::SecretSealer;
use ghl_holded_sync::sim::ghl::InstallGrant;
use ghl_holded_sync::sim::webhooks::{app_event, contact_event, SIM_CLIENT_ID};
use secrecy::SecretString;
use support::eventually;
use support::marketplace::{self as app, PUBLIC_URL};
use support::service::{Service, World, SYNC};

const LOC_A: &str = "LocAAAAAAAAAAAAAAAA1";
const LOC_B: &str = "LocBBBBBBBBBBBBBBBB2";
const KEY_A: &str = "holded-key-of-location-a-0001";
const KEY_B: &str = "holded-key-of-location-b-0002";

async fn marketplace_world() -> World {
    let mut world = World::new().await;
    app::enable(&mut world);
    world
}

/// The single Holded contact synced from `ghl_id` under `key`, once `ready` holds.
async fn holded_contact(
    world: &World,
    key: &str,
    ghl_id: &str,
    ready: impl Fn(&Value) -> bool,
) -> Value {
    eventually(&format!("{ghl_id} in Holded"), SYNC, || async {
        match world.holded.contacts_with_custom_id(key, ghl_id).as_slice() {
            [one] if ready(one) => Some(one.clone()),
            [] | [_] => None,
            many => panic!("{} Holded contacts for {ghl_id}", many.len()),
        }
    })
    .await
}

/// Contact `ca1` of location A and `cb1` of location B, each synced into its own Holded.
async fn sync_a_contact_in_a_and_b(world: &World, service: &Service) {
    app::seed_contact_in(world, LOC_A, "ca1", "Ana");
    app::seed_contact_in(world, LOC_B, "cb1", "Bea");
    app::contact_changed(world, service, "ca1").await;
    app::contact_changed(world, service, "cb1").await;
    holded_contact(world, KEY_A, "ca1", |_| true).await;
    holded_contact(world, KEY_B, "cb1", |_| true).await;
}

#[tokio::test]
async fn location_install_connects_through_the_form_and_syncs() {
    let world = marketplace_world().await;
    let service = world.start_service().await;

    let consent = app::consent_url(&service).await;
    assert_eq!(consent.host_str(), Some("marketplace.gohighlevel.com"));
    assert_eq!(consent.path(), "/v2/oauth/chooselocation");
    assert_eq!(
        app::query_value(&consent, "response_type").as_deref(),
        Some("code")
    );
    assert_eq!(
        app::query_value(&consent, "client_id").as_deref(),
        Some(SIM_CLIENT_ID)
    );
    assert_eq!(
        app::query_value(&consent, "redirect_uri"),
        Some(format!("{PUBLIC_URL}/oauth/callback"))
    );
    let scopes = app::query_value(&consent, "scope").unwrap();
    for needed in [
        "contacts.readonly",
        "calendars/events.readonly",
        "locations/tasks.readonly",
    ] {
        assert!(scopes.split(' ').any(|s| s == needed), "{scopes}");
    }

    world.holded.add_api_key(KEY_A);
    let page = app::install_location(&world, &service, LOC_A).await;
    assert!(page.contains(LOC_A), "{page}");
    assert!(
        !page.contains("<script"),
        "no JavaScript on the connect page"
    );
    let ticket = app::ticket_for(&page, LOC_A);
    // The exchange was form-encoded, as the spec declares.
    let exchange = world
        .ghl
        .requests()
        .all()
        .into_iter()
        .find(|r| r.path == "/oauth/token")
        .expect("a code exchange");
    assert!(exchange.headers["content-type"]
        .to_str()
        .unwrap()
        .starts_with("application/x-www-form-urlencoded"));
    assert!(exchange.body.contains("grant_type=authorization_code"));

    // Nothing syncs before a Holded key is connected.
    assert_eq!(
        app::tenant_state(&service, LOC_A).await.as_deref(),
        Some("awaiting_key")
    );

    let (status, page) = app::connect(&service, &ticket, "not-the-right-key").await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(page.contains("Holded refused this API key"), "{page}");
    assert!(
        page.contains(r#"name="holded_api_key""#),
        "the form is shown again: {page}"
    );
    assert!(
        !page.contains("not-the-right-key"),
        "the key is never echoed"
    );
    let (status, page) = app::connect(&service, &ticket, "").await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{page}");
    let (status, page) = app::connect(&service, "forged.ticket", KEY_A).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{page}");
    assert_eq!(
        app::tenant_state(&service, LOC_A).await.as_deref(),
        Some("awaiting_key")
    );

    let (status, page) = app::connect(&service, &ticket, KEY_A).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert!(page.contains(LOC_A));
    assert_eq!(
        app::tenant_state(&service, LOC_A).await.as_deref(),
        Some("active")
    );
    // A ticket connects once: replayed, it cannot point the location at another account.
    world.holded.add_api_key(KEY_B);
    let (status, page) = app::connect(&service, &ticket, KEY_B).await;
    assert_eq!(status, StatusCode::CONFLICT, "{page}");
    assert!(page.contains("already used"), "{page}");

    app::seed_contact_in(&world, LOC_A, "ca1", "Ana");
    app::contact_changed(&world, &service, "ca1").await;
    let synced = holded_contact(&world, KEY_A, "ca1", |_| true).await;
    assert!(synced["name"].as_str().unwrap().contains("Ana"), "{synced}");

    // No credential is stored in plaintext, nor logged.
    let columns = world.stored_secret_columns().await;
    assert_eq!(columns.len(), 3, "access + refresh token, Holded key");
    let mut secrets = world.ghl.issued_tokens();
    secrets.push(KEY_A.to_owned());
    for column in &columns {
        for secret in &secrets {
            assert!(
                !column.windows(secret.len()).any(|w| w == secret.as_bytes()),
                "a stored column holds a secret in plaintext"
            );
        }
    }
    let logs = service.lines().join("\n");
    for secret in &secrets {
        assert!(!logs.contains(secret.as_str()), "a secret was logged");
    }
}

#[tokio::test]
async fn agency_install_mints_a_token_for_every_approved_location() {
    let world = marketplace_world().await;
    let service = world.start_service().await;
    let grant = InstallGrant::Company {
        company_id: "CompanyAgency000001".into(),
        approved_locations: vec![LOC_A.into(), LOC_B.into()],
    };
    let page = app::install(&world, &service, "agency-code", grant).await;
    let minted = world
        .ghl
        .requests()
        .count(&reqwest::Method::POST, "/oauth/locationToken");
    assert_eq!(minted, 2, "one location token per approved location");
    for (location, key) in [(LOC_A, KEY_A), (LOC_B, KEY_B)] {
        world.holded.add_api_key(key);
        let (status, body) = app::connect(&service, &app::ticket_for(&page, location), key).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(
            world.tenant_row(location).await,
            Some(("active".into(), Some("CompanyAgency000001".into())))
        );
    }
    sync_a_contact_in_a_and_b(&world, &service).await;
    assert!(world
        .holded
        .contacts_with_custom_id(KEY_A, "cb1")
        .is_empty());

    // Location tokens minted from the agency's have no refresh token: when one is refused,
    // a new one is minted with the agency token.
    let minted = || {
        world
            .ghl
            .requests()
            .all()
            .iter()
            .filter(|r| r.path == "/oauth/locationToken" && r.status == 200)
            .count()
    };
    let minted_before = minted();
    world.ghl.expire_access_tokens();
    world
        .ghl
        .patch_contact("ca1", serde_json::json!({ "firstName": "Anabel" }));
    app::contact_changed(&world, &service, "ca1").await;
    holded_contact(&world, KEY_A, "ca1", |c| {
        c["name"].as_str().unwrap().contains("Anabel")
    })
    .await;
    assert_eq!(minted(), minted_before + 1, "one new location token");
    assert_eq!(
        app::refresh_requests(&world),
        1,
        "the expired agency token refreshed once"
    );

    // A location the agency adds later arrives as an INSTALL webhook; one of an agency we do
    // not hold a token for is not ours to add.
    const LOC_C: &str = "LocCCCCCCCCCCCCCCCC3";
    let added = app_event("INSTALL", Some(LOC_C), Some("CompanyAgency000001"));
    assert_eq!(
        app::post_event(&world, &service, &added).await,
        StatusCode::OK
    );
    assert_eq!(
        world.tenant_row(LOC_C).await,
        Some(("awaiting_key".into(), Some("CompanyAgency000001".into())))
    );
    let stranger = app_event(
        "INSTALL",
        Some("LocDDDDDDDDDDDDDDDD4"),
        Some("OtherAgency0000001"),
    );
    assert_eq!(
        app::post_event(&world, &service, &stranger).await,
        StatusCode::OK
    );
    assert_eq!(world.tenant_row("LocDDDDDDDDDDDDDDDD4").await, None);

    // The agency uninstalls: every location of it stops, every token and key goes.
    app::uninstall(&world, &service, None, Some("CompanyAgency000001")).await;
    for location in [LOC_A, LOC_B, LOC_C] {
        assert_eq!(
            app::tenant_state(&service, location).await.as_deref(),
            Some("uninstalled")
        );
    }
    assert!(world.stored_secret_columns().await.is_empty());
}

#[tokio::test]
async fn forged_expired_and_replayed_states_are_refused() {
    let world = marketplace_world().await;
    let service = world.start_service().await;
    let grant = || InstallGrant::Location {
        location_id: LOC_A.into(),
    };
    let consent = app::consent_url(&service).await;
    let state = app::query_value(&consent, "state").unwrap();

    // Forged: one character of the signature changed.
    let mut forged = state.clone().into_bytes();
    let last = forged.len() - 1;
    forged[last] = if forged[last] == b'A' { b'B' } else { b'A' };
    let forged = String::from_utf8(forged).unwrap();
    // Expired: signed with the deployment's key, but its lifetime is over.
    let sealer = SecretSealer::from_base64_key(&SecretString::from(app::ENCRYPTION_KEY)).unwrap();
    let expired = sealer
        .signer("oauth-state")
        .issue("install", Duration::ZERO);
    // Signed with the right key for another purpose (a connect ticket).
    let other_purpose = sealer
        .signer("connect-ticket")
        .issue("install", Duration::from_secs(600));
    for (what, bad) in [
        ("forged", &forged),
        ("expired", &expired),
        ("other purpose", &other_purpose),
    ] {
        world
            .ghl
            .issue_authorization_code(SIM_CLIENT_ID, "code-1", grant());
        let (status, page) = app::callback(&service, "code-1", bad).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{what}: {page}");
        assert!(page.contains("start the install again"), "{what}: {page}");
    }
    let exchanges = || {
        world
            .ghl
            .requests()
            .count(&reqwest::Method::POST, "/oauth/token")
    };
    assert_eq!(exchanges(), 0, "no code was exchanged on a bad state");
    assert_eq!(world.tenant_row(LOC_A).await, None);

    world
        .ghl
        .issue_authorization_code(SIM_CLIENT_ID, "code-1", grant());
    let (status, _) = app::callback(&service, "code-1", &state).await;
    assert_eq!(status, StatusCode::OK);
    world
        .ghl
        .issue_authorization_code(SIM_CLIENT_ID, "code-2", grant());
    let (status, page) = app::callback(&service, "code-2", &state).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "replayed: {page}");
    assert!(page.contains("already used"), "{page}");
    assert_eq!(exchanges(), 1, "the replay exchanged nothing");

    let (status, page) = app::callback(&service, "", "").await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{page}");
}

#[tokio::test]
async fn fifty_concurrent_syncs_with_an_expired_token_refresh_it_once() {
    let mut world = marketplace_world().await;
    world.without_rate_limits();
    world.env.insert("WORKERS".into(), "16".into());
    let service = world.start_service().await;
    app::install_and_connect(&world, &service, LOC_A, KEY_A).await;
    let ids: Vec<String> = (0..50).map(|i| format!("bulk{i:02}")).collect();
    for id in &ids {
        app::seed_contact_in(&world, LOC_A, id, "Bulk");
    }
    world.ghl.expire_access_tokens();

    let mut posts = tokio::task::JoinSet::new();
    for id in &ids {
        let body = serde_json::to_vec(&contact_event(
            "ContactCreate",
            &world.ghl.contact(id).unwrap(),
        ))
        .unwrap();
        let signature = world.signer.sign_ed25519(&body);
        let request = world
            .http
            .post(service.url("/webhooks/ghl"))
            .header("content-type", "application/json")
            .header("x-ghl-signature", signature)
            .body(body);
        posts.spawn(async move { request.send().await.unwrap().status() });
    }
    let statuses = posts.join_all().await;
    assert!(
        statuses.iter().all(|s| *s == StatusCode::OK),
        "{statuses:?}"
    );
    for id in &ids {
        holded_contact(&world, KEY_A, id, |_| true).await;
    }
    assert_eq!(app::refresh_requests(&world), 1, "exactly one refresh");
    assert_eq!(world.ghl.token_requests(), 1);
    let refused = world
        .ghl
        .requests()
        .all()
        .iter()
        .filter(|r| r.status == 401 && r.path.starts_with("/contacts/"))
        .count();
    assert!(refused >= 1, "the expired token was refused at least once");
    assert_eq!(world.count_work("dead").await, 0);
}

#[tokio::test]
async fn a_token_near_expiry_is_refreshed_before_it_is_used() {
    let world = marketplace_world().await;
    // Four minutes left: inside the five-minute margin from the first use on.
    world.ghl.set_access_token_ttl(Duration::from_secs(240));
    let service = world.start_service().await;
    app::install_and_connect(&world, &service, LOC_A, KEY_A).await;
    app::seed_contact_in(&world, LOC_A, "ca1", "Ana");
    app::contact_changed(&world, &service, "ca1").await;
    holded_contact(&world, KEY_A, "ca1", |_| true).await;
    assert!(
        app::refresh_requests(&world) >= 1,
        "refreshed ahead of expiry"
    );
    let refused = world
        .ghl
        .requests()
        .all()
        .iter()
        .filter(|r| r.status == 401)
        .count();
    assert_eq!(refused, 0, "GHL never saw an expired token");
}

#[tokio::test]
async fn an_idle_install_is_refreshed_without_any_traffic() {
    let mut world = marketplace_world().await;
    world
        .env
        .insert("TOKEN_CHECK_INTERVAL".into(), "200ms".into());
    world.ghl.set_access_token_ttl(Duration::from_secs(240));
    let service = world.start_service().await;
    app::install_and_connect(&world, &service, LOC_A, KEY_A).await;
    eventually("a refresh with no webhook at all", SYNC, || async {
        (app::refresh_requests(&world) >= 1).then_some(())
    })
    .await;
    let contact_calls = world
        .ghl
        .requests()
        .all()
        .iter()
        .filter(|r| r.path.starts_with("/contacts"))
        .count();
    assert_eq!(contact_calls, 0, "nothing but the token was asked for");
    let refreshed = service
        .wait_for_log("token refreshed", |l| l["message"] == "token refreshed")
        .await;
    assert_eq!(refreshed["owner"], LOC_A);
}

#[tokio::test]
async fn a_refused_refresh_pauses_only_that_location_until_it_is_reinstalled() {
    let world = marketplace_world().await;
    let service = world.start_service().await;
    app::install_and_connect(&world, &service, LOC_A, KEY_A).await;
    app::install_and_connect(&world, &service, LOC_B, KEY_B).await;
    sync_a_contact_in_a_and_b(&world, &service).await;

    world.ghl.revoke_refresh_tokens(LOC_A);
    world.ghl.expire_access_tokens();
    world
        .ghl
        .patch_contact("ca1", serde_json::json!({ "firstName": "Anabel" }));
    world
        .ghl
        .patch_contact("cb1", serde_json::json!({ "firstName": "Beatriz" }));
    app::contact_changed(&world, &service, "ca1").await;
    app::contact_changed(&world, &service, "cb1").await;

    holded_contact(&world, KEY_B, "cb1", |c| {
        c["name"].as_str().unwrap().contains("Beatriz")
    })
    .await;
    eventually("location A needs a reconnect", SYNC, || async {
        (app::tenant_state(&service, LOC_A).await.as_deref() == Some("needs_reconnect"))
            .then_some(())
    })
    .await;
    assert_eq!(
        app::tenant_state(&service, LOC_B).await.as_deref(),
        Some("active")
    );
    let metrics = reqwest::get(service.url("/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains(r#"ghl_holded_sync_tenants{state="needs_reconnect"} 1"#),
        "{metrics}"
    );
    assert!(
        metrics.contains(r#"ghl_holded_sync_token_refreshes_total{outcome="refused"}"#),
        "{metrics}"
    );
    // A's change waits: pending, not dead, and not retried against GHL meanwhile.
    assert_eq!(
        world.work_row("ca1").await.map(|(s, _)| s),
        Some("pending".into())
    );
    assert_eq!(world.count_work("dead").await, 0);
    let a = world.holded.contacts_with_custom_id(KEY_A, "ca1");
    assert!(
        a[0]["name"].as_str().unwrap().contains("Ana")
            && !a[0]["name"].as_str().unwrap().contains("Anabel")
    );
    let fetches = world.ghl_fetches("ca1");
    let more_work = serde_json::to_vec(&contact_event(
        "ContactUpdate",
        &world.ghl.contact("ca1").unwrap(),
    ))
    .unwrap();
    assert_eq!(
        world.post_signed(&service, &more_work).await.status(),
        StatusCode::OK
    );
    holded_contact(&world, KEY_B, "cb1", |_| true).await;
    assert_eq!(
        world.ghl_fetches("ca1"),
        fetches,
        "a paused location is not fetched"
    );

    // Re-installing resumes it, with the Holded key it had.
    app::install_location(&world, &service, LOC_A).await;
    holded_contact(&world, KEY_A, "ca1", |c| {
        c["name"].as_str().unwrap().contains("Anabel")
    })
    .await;
    assert_eq!(
        app::tenant_state(&service, LOC_A).await.as_deref(),
        Some("active")
    );
}

#[tokio::test]
async fn uninstall_then_reinstall_creates_no_duplicate() {
    let world = marketplace_world().await;
    let service = world.start_service().await;
    app::install_and_connect(&world, &service, LOC_A, KEY_A).await;
    app::seed_contact_in(&world, LOC_A, "ca1", "Ana");
    app::contact_changed(&world, &service, "ca1").await;
    let first = holded_contact(&world, KEY_A, "ca1", |_| true).await;

    app::uninstall(&world, &service, Some(LOC_A), None).await;
    assert_eq!(
        world.tenant_row(LOC_A).await,
        Some(("uninstalled".into(), None))
    );
    assert!(
        world.stored_secret_columns().await.is_empty(),
        "tokens and key deleted"
    );
    assert_eq!(world.count_rows("links").await, 1, "links kept");

    world
        .ghl
        .patch_contact("ca1", serde_json::json!({ "firstName": "Anabel" }));
    let fetches = world.ghl_fetches("ca1");
    app::contact_changed(&world, &service, "ca1").await;
    eventually("the change is queued", SYNC, || async {
        (world.work_row("ca1").await.map(|(s, _)| s).as_deref() == Some("pending")).then_some(())
    })
    .await;
    assert_eq!(
        world.ghl_fetches("ca1"),
        fetches,
        "nothing synced while uninstalled"
    );

    // Re-install: the key was deleted with the install, so the form asks for it again.
    let page = app::install_location(&world, &service, LOC_A).await;
    assert_eq!(
        app::tenant_state(&service, LOC_A).await.as_deref(),
        Some("awaiting_key")
    );
    let (status, body) = app::connect(&service, &app::ticket_for(&page, LOC_A), KEY_A).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let updated = holded_contact(&world, KEY_A, "ca1", |c| {
        c["name"].as_str().unwrap().contains("Anabel")
    })
    .await;
    assert_eq!(
        updated["id"], first["id"],
        "the same Holded contact, updated"
    );
    assert_eq!(world.holded.contacts(KEY_A).len(), 1);

    // An agency-level UNINSTALL names only the company.
    let event = app_event("UNINSTALL", None, Some("NoSuchCompany00001"));
    assert_eq!(
        app::post_event(&world, &service, &event).await,
        StatusCode::OK
    );
    assert_eq!(
        app::tenant_state(&service, LOC_A).await.as_deref(),
        Some("active")
    );
}
