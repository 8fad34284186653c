use std::time::Duration;

use serde_json::{json, Value};

use super::HoldedSim;

const KEY: &str = "account-a";

struct Fixture {
    sim: HoldedSim,
    client: reqwest::Client,
}

impl Fixture {
    async fn new() -> Self {
        let sim = HoldedSim::start().await;
        sim.add_api_key(KEY);
        Self {
            sim,
            client: reqwest::Client::new(),
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.sim.base_url())
    }

    /// A request authenticated with the account's API key.
    fn keyed(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.client
            .request(method, self.url(path))
            .header("key", KEY)
    }

    async fn send(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> (u16, Value) {
        let mut request = self.keyed(method, path);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap())
    }

    async fn get(&self, path: &str) -> (u16, Value) {
        self.send(reqwest::Method::GET, path, None).await
    }

    async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        self.send(reqwest::Method::POST, path, Some(body)).await
    }

    async fn create_contact(&self, body: Value) -> String {
        let (status, envelope) = self.post("/api/invoicing/v1/contacts", body).await;
        assert_eq!(status, 201);
        envelope["id"].as_str().unwrap().to_owned()
    }
}

#[tokio::test]
async fn missing_or_unknown_key_is_401_json() {
    let f = Fixture::new().await;
    for key in [None, Some("not-a-key")] {
        let mut request = f.client.get(f.url("/api/invoicing/v1/contacts"));
        if let Some(key) = key {
            request = request.header("key", key);
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), 401);
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["status"], 0);
    }
}

#[tokio::test]
async fn unknown_routes_answer_html_with_200() {
    let f = Fixture::new().await;
    for path in ["/api/invoicing/v1/contacts/x/attachments", "/nothing"] {
        let response = f.keyed(reqwest::Method::POST, path).send().await.unwrap();
        assert_eq!(response.status(), 200);
        assert!(response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html"));
        assert!(response.text().await.unwrap().contains("<html"));
    }
    let patch = f
        .keyed(reqwest::Method::PATCH, "/api/invoicing/v1/contacts")
        .send()
        .await
        .unwrap();
    assert_eq!(patch.status(), 200);
    assert!(patch.text().await.unwrap().contains("<html"));
}

#[tokio::test]
async fn create_returns_created_envelope_and_reads_back_custom_id() {
    let f = Fixture::new().await;
    let (status, envelope) = f
        .post(
            "/api/invoicing/v1/contacts",
            json!({"CustomId": "ghl-1", "name": "Ana", "customId": "ignored"}),
        )
        .await;
    assert_eq!(status, 201);
    assert_eq!(envelope["status"], 1);
    assert_eq!(envelope["info"], "Created");
    let id = envelope["id"].as_str().unwrap();
    assert_eq!(id.len(), 24);
    assert!(id.chars().all(|c| c.is_ascii_hexdigit()));
    let (_, contact) = f.get(&format!("/api/invoicing/v1/contacts/{id}")).await;
    assert_eq!(contact["customId"], "ghl-1");
    assert!(contact["createdAt"].is_i64());
    assert!(contact["updatedAt"].is_i64());
    assert!(contact["updatedHash"].is_string());
    assert_eq!(f.sim.contacts_with_custom_id(KEY, "ghl-1").len(), 1);
}

#[tokio::test]
async fn custom_fields_are_decomposed_like_object_entries() {
    let f = Fixture::new().await;
    let id = f
        .create_contact(
            json!({"customFields": [{"field": "src", "value": "val"}, {"plan": "gold"}]}),
        )
        .await;
    let stored = f.sim.contact(KEY, &id).unwrap();
    assert_eq!(
        stored["customFields"],
        json!([
            {"field": "field", "value": "src"},
            {"field": "value", "value": "val"},
            {"field": "plan", "value": "gold"},
        ])
    );
}

#[tokio::test]
async fn list_filters_by_custom_id_list_and_phone() {
    let f = Fixture::new().await;
    for (custom, phone) in [("a", "+34 600"), ("b", "+34 601"), ("c", "+34 602")] {
        f.create_contact(json!({"CustomId": custom, "phone": phone}))
            .await;
    }
    let (_, listed) = f.get("/api/invoicing/v1/contacts?customId=a,c").await;
    let ids: Vec<&str> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["customId"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["a", "c"]);
    let (_, by_phone) = f.get("/api/invoicing/v1/contacts?phone=%2B34%20601").await;
    assert_eq!(by_phone.as_array().unwrap().len(), 1);
    assert_eq!(by_phone[0]["customId"], "b");
    let (_, inexact) = f.get("/api/invoicing/v1/contacts?phone=34601").await;
    assert_eq!(inexact, json!([]));
}

#[tokio::test]
async fn pages_end_with_an_empty_array() {
    let f = Fixture::new().await;
    f.sim.set_page_size(2);
    for n in 0..3 {
        f.sim.put_contact(KEY, json!({"name": format!("c{n}")}));
    }
    let mut sizes = Vec::new();
    for page in 1..=3 {
        let (_, listed) = f
            .get(&format!("/api/invoicing/v1/contacts?page={page}"))
            .await;
        sizes.push(listed.as_array().unwrap().len());
    }
    assert_eq!(sizes, [2, 1, 0]);
}

#[tokio::test]
async fn put_is_partial_ignores_social_networks_and_replaces_tags() {
    let f = Fixture::new().await;
    let id = f
        .create_contact(json!({
            "name": "Ana", "email": "a@x.es", "tags": ["one", "two"],
            "socialNetworks": {"website": "https://a.es"},
        }))
        .await;
    let path = format!("/api/invoicing/v1/contacts/{id}");
    let (status, envelope) = f
        .send(
            reqwest::Method::PUT,
            &path,
            Some(json!({"email": "b@x.es", "tags": ["three"], "socialNetworks": {"website": "https://b.es"}})),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(envelope, json!({"status": 1, "info": "Updated", "id": id}));
    let stored = f.sim.contact(KEY, &id).unwrap();
    assert_eq!(stored["name"], "Ana");
    assert_eq!(stored["email"], "b@x.es");
    assert_eq!(stored["tags"], json!(["three"]));
    assert_eq!(stored["socialNetworks"]["website"], "https://a.es");
}

#[tokio::test]
async fn delete_and_unknown_ids_use_the_status_envelopes() {
    let f = Fixture::new().await;
    let id = f.create_contact(json!({"name": "Ana"})).await;
    let path = format!("/api/invoicing/v1/contacts/{id}");
    let (status, deleted) = f.send(reqwest::Method::DELETE, &path, None).await;
    assert_eq!(status, 200);
    assert_eq!(
        deleted,
        json!({"status": 1, "info": "Successfully deleted", "id": id})
    );
    for method in [reqwest::Method::GET, reqwest::Method::DELETE] {
        let (status, missing) = f.send(method, &path, None).await;
        assert_eq!(status, 200);
        assert_eq!(missing, json!({"status": 0, "info": "Not found"}));
    }
}

#[tokio::test]
async fn bodies_must_be_json() {
    let f = Fixture::new().await;
    let response = f
        .keyed(reqwest::Method::POST, "/api/invoicing/v1/contacts")
        .header("content-type", "application/x-www-form-urlencoded")
        .body("name=Ana")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    assert!(f.sim.contacts(KEY).is_empty());
}

#[tokio::test]
async fn accounts_are_isolated_per_key() {
    let f = Fixture::new().await;
    f.sim.add_api_key("account-b");
    f.create_contact(json!({"name": "Ana"})).await;
    assert_eq!(f.sim.contacts(KEY).len(), 1);
    assert!(f.sim.contacts("account-b").is_empty());
}

#[tokio::test]
async fn events_store_spec_fields_drop_funnel_and_compute_end_date() {
    let f = Fixture::new().await;
    let (status, created) = f
        .post(
            "/api/crm/v1/events",
            json!({
                "name": "Call", "contactId": "c1", "kind": "task", "desc": "d",
                "startDate": 1_700_000_000, "duration": 3600, "status": 0,
                "funnelId": "f1", "userId": "u1",
            }),
        )
        .await;
    assert_eq!((status, created["info"].clone()), (201, json!("Created")));
    let path = format!("/api/crm/v1/events/{}", created["id"].as_str().unwrap());
    let (_, event) = f.get(&path).await;
    assert_eq!(event["endDate"], 1_700_003_600);
    assert!(event.get("funnelId").is_none());
    let (_, updated) = f
        .send(
            reqwest::Method::PUT,
            &path,
            Some(json!({"startDate": 1_700_100_000, "status": 1})),
        )
        .await;
    assert_eq!(updated["info"], "Updated");
    let stored = &f.sim.events(KEY)[0];
    assert_eq!(stored["endDate"], 1_700_103_600);
    assert_eq!(stored["status"], 1);
    let (_, deleted) = f.send(reqwest::Method::DELETE, &path, None).await;
    assert_eq!(deleted["info"], "Successfully deleted");
    assert!(f.sim.events(KEY).is_empty());
}

#[tokio::test]
async fn rate_limit_refuses_with_retry_after_when_enforced() {
    let f = Fixture::new().await;
    f.sim.enforce_rate_limit(Some((2, Duration::from_secs(60))));
    let mut statuses = Vec::new();
    let mut retry_after = None;
    for _ in 0..3 {
        let response = f
            .keyed(reqwest::Method::GET, "/api/invoicing/v1/contacts")
            .send()
            .await
            .unwrap();
        statuses.push(response.status().as_u16());
        retry_after = response.headers().get("retry-after").cloned();
    }
    assert_eq!(statuses, [200, 200, 429]);
    let secs: u64 = retry_after.unwrap().to_str().unwrap().parse().unwrap();
    assert!((1..=60).contains(&secs));
}
