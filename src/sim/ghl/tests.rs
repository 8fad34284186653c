use std::time::Duration;

use serde_json::{json, Value};

use super::{GhlSim, InstallGrant};

const LOCATION: &str = "ve9EPM428h8vShlRW1KT";
const TOKEN: &str = "pit-location-a";
const CONTACTS_VERSION: &str = "2021-07-28";
/// The Marketplace app the OAuth tests install.
const APP_CLIENT: &str = "app-client";
const APP_SECRET: &str = "secret";

/// A Sub-Account install of the seeded location.
fn location_install() -> InstallGrant {
    InstallGrant::Location {
        location_id: LOCATION.into(),
    }
}

struct Fixture {
    sim: GhlSim,
    client: reqwest::Client,
}

impl Fixture {
    async fn new() -> Self {
        let sim = GhlSim::start().await;
        sim.add_private_token(LOCATION, TOKEN);
        sim.put_contact(json!({"id": "c1", "locationId": LOCATION, "firstName": "Ana"}));
        Self {
            sim,
            client: reqwest::Client::new(),
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.sim.base_url())
    }

    fn request(
        &self,
        method: reqwest::Method,
        path: &str,
        token: &str,
        version: &str,
    ) -> reqwest::RequestBuilder {
        self.client
            .request(method, self.url(path))
            .bearer_auth(token)
            .header("Version", version)
    }

    async fn send_as(
        &self,
        method: reqwest::Method,
        path: &str,
        token: &str,
        version: &str,
    ) -> reqwest::Response {
        self.request(method, path, token, version)
            .send()
            .await
            .unwrap()
    }

    /// `GET /contacts/c1` as `token`, the read the tests use to see whether a token works.
    async fn get_seeded_contact_as(&self, token: &str) -> reqwest::Response {
        self.send_as(
            reqwest::Method::GET,
            "/contacts/c1",
            token,
            CONTACTS_VERSION,
        )
        .await
    }

    async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> (u16, Value) {
        let mut request = self.request(method, path, TOKEN, CONTACTS_VERSION);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        (response.status().as_u16(), response.json().await.unwrap())
    }

    async fn oauth(&self, form: &[(&str, &str)]) -> (u16, Value) {
        let response = self
            .client
            .post(self.url("/oauth/token"))
            .form(form)
            .send()
            .await
            .unwrap();
        (response.status().as_u16(), response.json().await.unwrap())
    }

    /// Registers the test app and issues it the authorization code `code` for `grant`.
    fn issue_code(&self, code: &str, grant: InstallGrant) {
        self.sim.register_app(APP_CLIENT, APP_SECRET);
        self.sim.issue_authorization_code(APP_CLIENT, code, grant);
    }

    /// Exchanges `code` at `/oauth/token` as the test app.
    async fn redeem_code(&self, code: &str) -> (u16, Value) {
        self.oauth(&[
            ("client_id", APP_CLIENT),
            ("client_secret", APP_SECRET),
            ("grant_type", "authorization_code"),
            ("code", code),
        ])
        .await
    }
}

#[tokio::test]
async fn token_and_version_are_required() {
    let f = Fixture::new().await;
    let bad_token = f.get_seeded_contact_as("wrong").await;
    assert_eq!(bad_token.status(), 401);
    let body: Value = bad_token.json().await.unwrap();
    assert_eq!(
        body,
        json!({"statusCode": 401, "message": "Invalid token: access token is invalid", "error": "Unauthorized"})
    );
    let wrong_version = f
        .send_as(reqwest::Method::GET, "/contacts/c1", TOKEN, "2021-04-15")
        .await;
    assert_eq!(wrong_version.status(), 400);
    let body: Value = wrong_version.json().await.unwrap();
    assert_eq!(body["statusCode"], 400);
    let missing_version = f
        .client
        .get(f.url("/contacts/c1"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(missing_version.status(), 400);
    let (status, body) = f.call(reqwest::Method::GET, "/contacts/c1", None).await;
    assert_eq!(status, 200);
    assert_eq!(body["contact"]["firstName"], "Ana");
    assert!(body["contact"]["dateUpdated"].is_string());
}

#[tokio::test]
async fn other_locations_are_forbidden_and_unknown_ids_are_404() {
    let f = Fixture::new().await;
    f.sim.add_private_token("otherLocation", "pit-other");
    let foreign = f.get_seeded_contact_as("pit-other").await;
    assert_eq!(foreign.status(), 403);
    let (status, body) = f.call(reqwest::Method::GET, "/contacts/nope", None).await;
    assert_eq!(
        (status, body),
        (
            404,
            json!({"statusCode": 404, "message": "Contact not found"})
        )
    );
    let (status, _) = f
        .call(reqwest::Method::GET, "/contacts/c1/tasks/nope", None)
        .await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn rate_headers_count_down_and_429_when_enforced() {
    let f = Fixture::new().await;
    let remaining = |r: &reqwest::Response| -> u32 {
        r.headers()["x-ratelimit-remaining"]
            .to_str()
            .unwrap()
            .parse()
            .unwrap()
    };
    let first = f.get_seeded_contact_as(TOKEN).await;
    for name in [
        "x-ratelimit-limit-daily",
        "x-ratelimit-daily-remaining",
        "x-ratelimit-interval-milliseconds",
        "x-ratelimit-max",
    ] {
        assert!(first.headers().contains_key(name), "{name}");
    }
    assert_eq!(first.headers()["x-ratelimit-max"], "100");
    assert_eq!(
        first.headers()["x-ratelimit-interval-milliseconds"],
        "10000"
    );
    assert_eq!(remaining(&first), 99);
    let second = f.get_seeded_contact_as(TOKEN).await;
    assert_eq!(remaining(&second), 98);

    f.sim.enforce_rate_limit(Some((2, Duration::from_secs(10))));
    let mut statuses = Vec::new();
    for _ in 0..3 {
        let r = f.get_seeded_contact_as(TOKEN).await;
        statuses.push(r.status().as_u16());
    }
    assert_eq!(statuses, [200, 200, 429]);
    f.sim.advance_time(Duration::from_secs(10));
    let (status, _) = f.call(reqwest::Method::GET, "/contacts/c1", None).await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn search_validates_filters_by_date_updated_and_pages_with_search_after() {
    let f = Fixture::new().await;
    for (id, updated) in [
        ("s1", "2024-01-01T00:00:00.000Z"),
        ("s2", "2024-01-02T00:00:00.000Z"),
        ("s3", "2024-01-03T00:00:00.000Z"),
    ] {
        f.sim
            .put_contact(json!({"id": id, "locationId": LOCATION, "dateUpdated": updated}));
    }
    let search = |body: Value| f.call(reqwest::Method::POST, "/contacts/search", Some(body));
    let (status, body) = search(json!({"locationId": LOCATION})).await;
    assert_eq!(status, 422);
    assert!(body["message"].is_array());
    let query = |after: Option<Value>| {
        let mut body = json!({
            "locationId": LOCATION, "pageLimit": 1,
            "filters": [{"field": "dateUpdated", "operator": "range", "value": {"gt": "2024-01-01T00:00:00.000Z", "lte": "2025-01-01T00:00:00.000Z"}}],
            "sort": [{"field": "dateUpdated", "direction": "asc"}],
        });
        if let Some(after) = after {
            body["searchAfter"] = after;
        }
        body
    };
    let (status, page1) = search(query(None)).await;
    assert_eq!(status, 200);
    assert_eq!(page1["total"], 2);
    assert_eq!(page1["contacts"][0]["id"], "s2");
    let cursor = page1["contacts"][0]["searchAfter"].clone();
    let (_, page2) = search(query(Some(cursor))).await;
    assert_eq!(page2["contacts"][0]["id"], "s3");
    let cursor = page2["contacts"][0]["searchAfter"].clone();
    let (_, page3) = search(query(Some(cursor))).await;
    assert_eq!(page3["contacts"], json!([]));
}

#[tokio::test]
async fn contact_writes_follow_the_spec_envelopes() {
    let f = Fixture::new().await;
    let (status, created) = f
        .call(
            reqwest::Method::POST,
            "/contacts/",
            Some(json!({"locationId": LOCATION, "firstName": "Bo",
            "customFields": [{"key": "plan", "field_value": "gold"}]})),
        )
        .await;
    assert_eq!(status, 201);
    let id = created["contact"]["id"].as_str().unwrap().to_owned();
    assert_eq!(
        created["contact"]["customFields"],
        json!([{"id": "plan", "value": "gold"}])
    );
    let (status, updated) = f
        .call(
            reqwest::Method::PUT,
            &format!("/contacts/{id}"),
            Some(json!({"lastName": "Li"})),
        )
        .await;
    assert_eq!((status, updated["succeded"].clone()), (200, json!(true)));
    assert_eq!(f.sim.contact(&id).unwrap()["lastName"], "Li");
    let (status, deleted) = f
        .call(reqwest::Method::DELETE, &format!("/contacts/{id}"), None)
        .await;
    assert_eq!((status, deleted), (200, json!({"succeded": true})));
    assert!(f.sim.contact(&id).is_none());
}

#[tokio::test]
async fn tasks_notes_and_appointments() {
    let f = Fixture::new().await;
    f.sim.put_task(
        "c1",
        json!({"id": "t1", "title": "Call", "dueDate": "2024-01-01T10:00:00Z", "completed": false}),
    );
    f.sim.put_note("c1", json!({"id": "n1", "body": "hello"}));
    f.sim.put_appointment(
        json!({"id": "a1", "locationId": LOCATION, "contactId": "c1", "title": "Meet"}),
    );
    let (_, tasks) = f
        .call(reqwest::Method::GET, "/contacts/c1/tasks", None)
        .await;
    assert_eq!(tasks["tasks"][0]["contactId"], "c1");
    let (status, done) = f
        .call(
            reqwest::Method::PUT,
            "/contacts/c1/tasks/t1/completed",
            Some(json!({"completed": true})),
        )
        .await;
    assert_eq!(
        (status, done["task"]["completed"].clone()),
        (200, json!(true))
    );
    let (status, invalid) = f
        .call(
            reqwest::Method::POST,
            "/contacts/c1/tasks",
            Some(json!({"title": "x"})),
        )
        .await;
    assert_eq!(status, 422);
    assert_eq!(invalid["message"].as_array().unwrap().len(), 2);
    let (_, note) = f
        .call(reqwest::Method::GET, "/contacts/c1/notes/n1", None)
        .await;
    assert!(note["note"]["dateAdded"].is_string());
    let (status, created) = f
        .call(
            reqwest::Method::POST,
            "/contacts/c1/notes",
            Some(json!({"body": "new"})),
        )
        .await;
    assert_eq!(
        (status, created["note"]["body"].clone()),
        (201, json!("new"))
    );
    f.sim.delete_note("c1", "n1");
    let (status, _) = f
        .call(reqwest::Method::GET, "/contacts/c1/notes/n1", None)
        .await;
    assert_eq!(status, 404);
    let (_, events) = f
        .call(reqwest::Method::GET, "/contacts/c1/appointments", None)
        .await;
    assert_eq!(events["events"][0]["id"], "a1");
    let wrong = f
        .send_as(
            reqwest::Method::GET,
            "/calendars/events/appointments/a1",
            TOKEN,
            CONTACTS_VERSION,
        )
        .await;
    assert_eq!(wrong.status(), 400);
    let event: Value = f
        .send_as(
            reqwest::Method::GET,
            "/calendars/events/appointments/a1",
            TOKEN,
            "2021-04-15",
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(event["event"]["title"], "Meet");
    let (_, found) = f
        .call(
            reqwest::Method::POST,
            &format!("/locations/{LOCATION}/tasks/search"),
            Some(json!({"taskIds": ["t1"]})),
        )
        .await;
    assert_eq!(found["tasks"][0]["contactId"], "c1");
}

#[tokio::test]
async fn refresh_tokens_rotate_with_a_30_second_identical_request_grace() {
    let f = Fixture::new().await;
    f.issue_code("code-1", location_install());
    let (status, first) = f.redeem_code("code-1").await;
    assert_eq!(status, 200);
    assert_eq!(first["expires_in"], 86399);
    assert_eq!(first["userType"], "Location");
    assert_eq!(first["locationId"], LOCATION);
    let (status, _) = f.redeem_code("code-1").await;
    assert_eq!(status, 401, "codes are single-use");

    let old = first["refresh_token"].as_str().unwrap();
    let refresh = [
        ("client_id", APP_CLIENT),
        ("client_secret", APP_SECRET),
        ("grant_type", "refresh_token"),
        ("refresh_token", old),
    ];
    let (status, rotated) = f.oauth(&refresh).await;
    assert_eq!(status, 200);
    assert_ne!(rotated["refresh_token"], first["refresh_token"]);
    f.sim.advance_time(Duration::from_secs(29));
    let (status, replay) = f.oauth(&refresh).await;
    assert_eq!(status, 200);
    assert_eq!(
        replay, rotated,
        "identical refresh within 30 s returns the same pair"
    );
    assert_eq!(f.sim.token_requests(), 2);
    f.sim.advance_time(Duration::from_secs(2));
    let (status, refused) = f.oauth(&refresh).await;
    assert_eq!(status, 401);
    assert_eq!(refused["statusCode"], 401);
    assert_eq!(f.sim.token_requests(), 2);

    let access = rotated["access_token"].as_str().unwrap();
    let ok = f.get_seeded_contact_as(access).await;
    assert_eq!(ok.status(), 200);
    f.sim.expire_access_tokens();
    let expired = f.get_seeded_contact_as(access).await;
    assert_eq!(expired.status(), 401);
    let pit = f.get_seeded_contact_as(TOKEN).await;
    assert_eq!(pit.status(), 200);
}

#[tokio::test]
async fn token_endpoint_is_form_only_and_access_tokens_expire_with_ttl() {
    let f = Fixture::new().await;
    f.sim.register_app(APP_CLIENT, APP_SECRET);
    let json_body = f
        .client
        .post(f.url("/oauth/token"))
        .json(&json!({"client_id": APP_CLIENT, "client_secret": APP_SECRET, "grant_type": "authorization_code"}))
        .send()
        .await
        .unwrap();
    assert_eq!(json_body.status(), 400);
    f.sim.set_access_token_ttl(Duration::from_secs(60));
    f.issue_code("c", location_install());
    let (_, pair) = f.redeem_code("c").await;
    assert_eq!(pair["expires_in"], 60);
    let access = pair["access_token"].as_str().unwrap();
    f.sim.advance_time(Duration::from_secs(61));
    let expired = f.get_seeded_contact_as(access).await;
    assert_eq!(expired.status(), 401);
}

#[tokio::test]
async fn company_tokens_mint_location_tokens_for_approved_locations() {
    let f = Fixture::new().await;
    let grant = InstallGrant::Company {
        company_id: "co1".into(),
        approved_locations: vec![LOCATION.into()],
    };
    f.issue_code("cc", grant);
    let (_, company) = f.redeem_code("cc").await;
    assert_eq!(company["userType"], "Company");
    assert_eq!(company["approvedLocations"], json!([LOCATION]));
    let company_token = company["access_token"].as_str().unwrap();
    let on_contacts = f.get_seeded_contact_as(company_token).await;
    assert_eq!(on_contacts.status(), 401);
    let mint = |location: &str| {
        f.request(
            reqwest::Method::POST,
            "/oauth/locationToken",
            company_token,
            CONTACTS_VERSION,
        )
        .form(&[("companyId", "co1"), ("locationId", location)])
        .send()
    };
    assert_eq!(mint("unapproved").await.unwrap().status(), 400);
    let minted: Value = mint(LOCATION).await.unwrap().json().await.unwrap();
    assert_eq!(minted["locationId"], LOCATION);
    assert!(minted.get("refresh_token").is_none());
    let location_token = minted["access_token"].as_str().unwrap();
    let ok = f.get_seeded_contact_as(location_token).await;
    assert_eq!(ok.status(), 200);
}
