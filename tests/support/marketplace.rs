//! The Marketplace-app side of a `World`: the service configured as an OAuth app, and a
//! browser walking the install → consent → callback → connect form round trip.
use reqwest::StatusCode;
use serde_json::{json, Value};

use ghl_holded_sync::sim::ghl::InstallGrant;
use ghl_holded_sync::sim::webhooks::{app_event, contact_event, SIM_CLIENT_ID};

use super::service::{Service, World};

pub const CLIENT_SECRET: &str = "sim-client-secret-5e1f0a";
pub const PUBLIC_URL: &str = "https://sync.example.test";
/// 32 bytes, base64: the test deployment's ENCRYPTION_KEY.
pub const ENCRYPTION_KEY: &str = "q83vEjRWeJq83vEjRWeJq83vEjRWeJq83vEjRWeJq8w=";
pub const ADMIN_TOKEN: &str = "admin-token-for-oauth-tests";

/// Configures the world's services as the simulator's registered Marketplace app.
pub fn enable(world: &mut World) {
    world.ghl.register_app(SIM_CLIENT_ID, CLIENT_SECRET);
    for (name, value) in [
        ("GHL_CLIENT_ID", SIM_CLIENT_ID),
        ("GHL_CLIENT_SECRET", CLIENT_SECRET),
        ("PUBLIC_URL", PUBLIC_URL),
        ("ENCRYPTION_KEY", ENCRYPTION_KEY),
        ("ADMIN_TOKEN", ADMIN_TOKEN),
    ] {
        world.env.insert(name.into(), value.into());
    }
}

/// A browser: it does not follow redirects, so the test sees where it is sent.
pub fn browser() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// `GET /oauth/install`: the consent URL the service redirects to.
pub async fn consent_url(service: &Service) -> url::Url {
    let answer = browser()
        .get(service.url("/oauth/install"))
        .send()
        .await
        .unwrap();
    assert!(answer.status().is_redirection(), "{}", answer.status());
    let location = answer.headers()["location"].to_str().unwrap();
    url::Url::parse(location).unwrap()
}

pub fn query_value(url: &url::Url, name: &str) -> Option<String> {
    url.query_pairs()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

/// `GET /oauth/callback?code&state`: status and page.
pub async fn callback(service: &Service, code: &str, state: &str) -> (StatusCode, String) {
    let answer = browser()
        .get(service.url("/oauth/callback"))
        .query(&[("code", code), ("state", state)])
        .send()
        .await
        .unwrap();
    (answer.status(), answer.text().await.unwrap())
}

/// The whole install as a user clicks through it; returns the connect page.
pub async fn install(world: &World, service: &Service, code: &str, grant: InstallGrant) -> String {
    let consent = consent_url(service).await;
    let state = query_value(&consent, "state").expect("state in the consent URL");
    world
        .ghl
        .issue_authorization_code(SIM_CLIENT_ID, code, grant);
    let (status, page) = callback(service, code, &state).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    page
}

pub async fn install_location(world: &World, service: &Service, location_id: &str) -> String {
    let code = format!("code-{location_id}-{}", rand::random::<u32>());
    let grant = InstallGrant::Location {
        location_id: location_id.into(),
    };
    install(world, service, &code, grant).await
}

/// The hidden `ticket` of the connect form of `location_id` on `page`.
pub fn ticket_for(page: &str, location_id: &str) -> String {
    let form_start = page
        .find(location_id)
        .unwrap_or_else(|| panic!("{location_id} not on the page: {page}"));
    let rest = &page[form_start..];
    let marker = r#"name="ticket" value=""#;
    let start = rest.find(marker).expect("a ticket field") + marker.len();
    let end = start + rest[start..].find('"').unwrap();
    rest[start..end].to_owned()
}

/// `POST /oauth/connect` as the form sends it.
pub async fn connect(service: &Service, ticket: &str, key: &str) -> (StatusCode, String) {
    let answer = browser()
        .post(service.url("/oauth/connect"))
        .form(&[("ticket", ticket), ("holded_api_key", key)])
        .send()
        .await
        .unwrap();
    (answer.status(), answer.text().await.unwrap())
}

/// Install a location and connect its Holded key, as a user would.
pub async fn install_and_connect(world: &World, service: &Service, location_id: &str, key: &str) {
    world.holded.add_api_key(key);
    let page = install_location(world, service, location_id).await;
    let (status, page) = connect(service, &ticket_for(&page, location_id), key).await;
    assert_eq!(status, StatusCode::OK, "{page}");
}

/// A GHL contact of `location_id` in the simulator.
pub fn seed_contact_in(world: &World, location_id: &str, id: &str, first_name: &str) {
    let mut contact = world.seed_contact(id);
    contact["locationId"] = json!(location_id);
    contact["firstName"] = json!(first_name);
    world.ghl.put_contact(contact);
}

pub async fn post_event(world: &World, service: &Service, event: &Value) -> StatusCode {
    let body = serde_json::to_vec(event).unwrap();
    world.post_signed(service, &body).await.status()
}

pub async fn contact_changed(world: &World, service: &Service, id: &str) {
    let contact = world.ghl.contact(id).expect("seeded contact");
    let status = post_event(world, service, &contact_event("ContactUpdate", &contact)).await;
    assert_eq!(status, StatusCode::OK);
}

pub async fn uninstall(
    world: &World,
    service: &Service,
    location: Option<&str>,
    company: Option<&str>,
) {
    let status = post_event(world, service, &app_event("UNINSTALL", location, company)).await;
    assert_eq!(status, StatusCode::OK);
}

/// `/admin/tenants` entries.
pub async fn tenants(service: &Service) -> Vec<Value> {
    let answer: Value = reqwest::Client::new()
        .get(service.url("/admin/tenants"))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    answer["tenants"].as_array().unwrap().clone()
}

pub async fn tenant_state(service: &Service, location_id: &str) -> Option<String> {
    tenants(service)
        .await
        .iter()
        .find(|t| t["location_id"] == location_id)
        .map(|t| t["state"].as_str().unwrap().to_owned())
}

/// `grant_type=refresh_token` requests GHL received.
pub fn refresh_requests(world: &World) -> usize {
    world
        .ghl
        .requests()
        .all()
        .iter()
        .filter(|r| r.path == "/oauth/token" && r.body.contains("grant_type=refresh_token"))
        .count()
}
