//! Our GHL and Holded HTTP clients against Prism serving the official OpenAPI specs
//! (`prism mock --errors`): every request the clients make must pass Prism's request
//! validation (path, method, parameters, headers, security, body schema).
//!
//! Prism is installed on first use into `<target>/tools/prism` (see `support/prism.rs`);
//! that needs node and npm. Each test starts its own Prism (a few seconds of Node start-up)
//! behind a recording proxy, so a violation is reported with Prism's own message even when
//! the client turns Prism's answer into an opaque error.
//!
//! Each test also runs negative controls: hand-made requests that break the spec and must be
//! refused, proving that Prism validates and that the checks here would notice.

mod support {
    #[path = "prism.rs"]
    pub mod prism;
}

use std::time::Duration;

use ghl_holded_sync::domain::{GhlId, LocationId};
use ghl_holded_sync::ghl::{
    FixedToken, GhlAccess, GhlClient, GhlError, OAuthApp, OAuthClient, OAuthError, TokenGrant,
    UserType,
};
use ghl_holded_sync::holded::{
    BillAddress, HoldedClient, HoldedContactFields, HoldedEndpoints, HoldedError,
    HoldedEventFields, SocialNetworks,
};
use secrecy::SecretString;
use serde_json::{json, Value};
use support::prism::{self, check_conformance, Exchange, MockApi};

const GHL_CONTACTS_SPEC: &str = "ghl/apps/contacts.json";
const GHL_CALENDARS_SPEC: &str = "ghl/apps/calendars.json";
const GHL_OAUTH_SPEC: &str = "ghl/apps/oauth.json";
const HOLDED_INVOICE_SPEC: &str = "holded/invoice-api.json";
const HOLDED_CRM_SPEC: &str = "holded/crm-api.json";
const TIMEOUT: Duration = Duration::from_secs(10);

#[tokio::test]
async fn ghl_client_requests_conform_to_the_contacts_spec() {
    let spec = prism::spec(GHL_CONTACTS_SPEC);
    let mock = MockApi::start(&spec).await;
    let client = GhlClient::new(mock.url(), TIMEOUT);
    let (token, location) = ghl_credentials();
    let access = GhlAccess {
        location_id: &location,
        tokens: &token,
    };
    let id = GhlId::parse("nmFmQEsNgz6AVpgLVUJ0").expect("valid id");

    // --- GET /contacts/{contactId}
    let result = client.get_contact(access, &id).await;
    let sent = mock.assert_conformant("GhlClient::get_contact", 1);
    assert_eq!(sent[0].method, "GET");
    assert_eq!(sent[0].target, "/contacts/nmFmQEsNgz6AVpgLVUJ0");
    assert_eq!(sent[0].request_header("version"), Some("2021-07-28"));
    let contact = result
        .expect("GhlClient::get_contact failed against the spec's example")
        .expect("Prism serves the example contact, so the client must not report it gone");
    // Prism answers with the spec's example whatever id we ask for.
    assert_eq!(contact.id, "seD4PfOuKoVMLkEZqohJ");
    assert_eq!(contact.email.as_deref(), Some("rubika@deos.com"));

    // --- The contact's tasks, notes and appointments (same spec, same `Version`).
    let task_id = GhlId::parse("sv2ZiGUTnmaTSTl4VbZ2").expect("valid id");
    let note_id = GhlId::parse("ITjFGK9SdmnYLsW2GgfW").expect("valid id");

    let result = client.get_task(access, &id, &task_id).await;
    let sent = mock.assert_conformant("GhlClient::get_task", 1);
    assert_eq!(
        (sent[0].method.as_str(), sent[0].target.as_str()),
        (
            "GET",
            "/contacts/nmFmQEsNgz6AVpgLVUJ0/tasks/sv2ZiGUTnmaTSTl4VbZ2"
        )
    );
    let task = result.expect("GhlClient::get_task failed against the spec's example");
    assert!(task.is_some(), "Prism serves the example task");

    let result = client.list_tasks(access, &id).await;
    let sent = mock.assert_conformant("GhlClient::list_tasks", 1);
    assert_eq!(sent[0].target, "/contacts/nmFmQEsNgz6AVpgLVUJ0/tasks");
    let tasks = result.expect("GhlClient::list_tasks failed against the spec's example");
    assert!(!tasks.is_empty(), "Prism serves the example task list");

    let result = client.get_note(access, &id, &note_id).await;
    let sent = mock.assert_conformant("GhlClient::get_note", 1);
    assert_eq!(
        sent[0].target,
        "/contacts/nmFmQEsNgz6AVpgLVUJ0/notes/ITjFGK9SdmnYLsW2GgfW"
    );
    let note = result.expect("GhlClient::get_note failed against the spec's example");
    assert!(note.is_some(), "Prism serves the example note");

    let result = client.list_notes(access, &id).await;
    let sent = mock.assert_conformant("GhlClient::list_notes", 1);
    assert_eq!(sent[0].target, "/contacts/nmFmQEsNgz6AVpgLVUJ0/notes");
    let notes = result.expect("GhlClient::list_notes failed against the spec's example");
    assert!(!notes.is_empty(), "Prism serves the example note list");

    let result = client.list_appointments(access, &id).await;
    let sent = mock.assert_conformant("GhlClient::list_appointments", 1);
    assert_eq!(
        sent[0].target,
        "/contacts/nmFmQEsNgz6AVpgLVUJ0/appointments"
    );
    let appointments =
        result.expect("GhlClient::list_appointments failed against the spec's example");
    assert!(
        !appointments.is_empty(),
        "Prism serves the example appointment list"
    );

    // The sweeper's and the backfill's search (the spec's body schema is an empty object).
    let since = chrono::DateTime::from_timestamp(1_790_000_000, 0).expect("time");
    let result = client.search_updated_since(access, since, None, 100).await;
    let sent = mock.assert_conformant("GhlClient::search_updated_since", 1);
    assert_eq!(sent[0].target, "/contacts/search");
    // The spec documents no response body for search, so Prism answers 200 with none;
    // what matters here is that the request passed validation.
    assert!(
        matches!(result, Ok(_) | Err(GhlError::BadBody(_))),
        "unexpected answer: {result:?}"
    );

    // --- Negative controls: requests that break the spec must be refused and detected.
    let raw = raw_client();
    let url = mock
        .url()
        .join("/contacts/nmFmQEsNgz6AVpgLVUJ0")
        .expect("URL");

    // No `Version` header. The spec documents a 422, so Prism answers with its example and
    // only the `sl-violations` header says why.
    let response = raw
        .get(url.clone())
        .bearer_auth("any-token")
        .send()
        .await
        .expect("Prism answers");
    assert_eq!(response.status().as_u16(), 422);
    expect_refused(&mock.take(), "required property 'version'");

    // A `Version` the Contacts API does not accept.
    let response = raw
        .get(url.clone())
        .bearer_auth("any-token")
        .header("Version", "2021-04-15")
        .send()
        .await
        .expect("Prism answers");
    assert_eq!(response.status().as_u16(), 422);
    expect_refused(
        &mock.take(),
        "must be equal to one of the allowed values: 2021-07-28",
    );

    // No bearer token: the spec's 401 example, with the violation in the header.
    let response = raw
        .get(url.clone())
        .header("Version", "2021-07-28")
        .send()
        .await
        .expect("Prism answers");
    assert_eq!(response.status().as_u16(), 401);
    expect_refused(&mock.take(), "Invalid security scheme used");

    // A wrong base path: a "no such route" 404 must not read as "contact deleted" (the
    // delete policy would then act on every contact), but as a refusal naming the setting.
    let misrouted = GhlClient::new(mock.url().join("/v1/").expect("URL"), TIMEOUT);
    let result = misrouted.get_contact(access, &id).await;
    assert!(
        matches!(&result, Err(GhlError::Rejected { status: 404, message }) if message.contains("GHL_API_BASE")),
        "expected a 404 refusal naming GHL_API_BASE, got {result:?}"
    );
    expect_refused(&mock.take(), "NO_PATH_MATCHED_ERROR");
}

#[tokio::test]
async fn ghl_client_requests_conform_to_the_calendars_spec() {
    let spec = prism::spec(GHL_CALENDARS_SPEC);
    let mock = MockApi::start(&spec).await;
    let client = GhlClient::new(mock.url(), TIMEOUT);
    let (token, location) = ghl_credentials();
    let access = GhlAccess {
        location_id: &location,
        tokens: &token,
    };
    let event_id = GhlId::parse("ocQHyuzHvysMo5N5VsXc").expect("valid id");

    // --- GET /calendars/events/appointments/{eventId} (Calendars family: its own `Version`)
    let result = client.get_appointment(access, &event_id).await;
    let sent = mock.assert_conformant("GhlClient::get_appointment", 1);
    assert_eq!(
        (sent[0].method.as_str(), sent[0].target.as_str()),
        ("GET", "/calendars/events/appointments/ocQHyuzHvysMo5N5VsXc")
    );
    assert_eq!(sent[0].request_header("version"), Some("2021-04-15"));
    if sent[0].response_violations().is_empty() {
        let appointment =
            result.expect("GhlClient::get_appointment failed against the spec's example");
        assert!(
            appointment.is_some(),
            "Prism serves the example appointment"
        );
    } else {
        // The request passed, but calendars.json's own example for this operation breaks its
        // schema (`CalendarEventDTO` types startTime/endTime/dateAdded/dateUpdated as
        // `object` with date-string examples, and isRecurring's example is the string
        // "true"), so with `--errors` Prism replaces it with a 500 problem. Our client reads
        // that as an outage, which is right for a 500; it is not a request violation.
        assert!(
            matches!(result, Err(GhlError::Unavailable { status: 500, .. })),
            "expected Unavailable(500) for Prism's response-violation 500, got {result:?}"
        );
    }

    // --- Negative control: the Contacts `Version` is not accepted by the Calendars API.
    let response = raw_client()
        .get(
            mock.url()
                .join("/calendars/events/appointments/ocQHyuzHvysMo5N5VsXc")
                .expect("URL"),
        )
        .bearer_auth("any-token")
        .header("Version", "2021-07-28")
        .send()
        .await
        .expect("Prism answers");
    assert!(
        response.status().is_client_error(),
        "got {}",
        response.status()
    );
    expect_refused(
        &mock.take(),
        "must be equal to one of the allowed values: 2021-04-15",
    );
}

#[tokio::test]
async fn holded_client_requests_conform_to_the_crm_spec() {
    let spec = prism::spec(HOLDED_CRM_SPEC);
    let spec_json = read_json(&spec);
    let mock = MockApi::start(&spec).await;
    let client = holded_client(&mock);
    let key = SecretString::from("any-api-key");
    let id = "5ab11f1a3697ac00cd0a6423";
    let fields = HoldedEventFields {
        name: "Call back".into(),
        contact_id: "5ab390311d6d820051631f1a".into(),
        kind: "task".into(),
        desc: "Ask about the invoice".into(),
        start_date: 1_522_228_026,
        duration: 3600,
        status: 0,
        tags: vec!["ghl".into()],
        location_desc: "Carrer del Mar 1".into(),
    };

    // --- POST /events
    let result = client.create_event(&key, &fields).await;
    let sent = mock.assert_conformant("HoldedClient::create_event", 1);
    assert_eq!(
        (sent[0].method.as_str(), sent[0].target.as_str()),
        ("POST", "/events")
    );
    let body = sent[0].request_json().expect("a JSON body");
    assert_eq!(
        undeclared_fields(&spec_json, "/events", "post", &body),
        Vec::<String>::new(),
        "create_event sends fields the spec does not declare: {body}"
    );
    assert_eq!(
        result.expect("create_event failed against the spec's example"),
        "5ac4f2cec839ea004e18a463"
    );

    // --- PUT /events/{eventId}
    let result = client.update_event(&key, id, &fields).await;
    let sent = mock.assert_conformant("HoldedClient::update_event", 1);
    assert_eq!(
        (sent[0].method.as_str(), sent[0].target.as_str()),
        ("PUT", "/events/5ab11f1a3697ac00cd0a6423")
    );
    let body = sent[0].request_json().expect("a JSON body");
    assert_eq!(
        undeclared_fields(&spec_json, "/events/{eventId}", "put", &body),
        Vec::<String>::new(),
        "update_event sends fields the spec does not declare: {body}"
    );
    result.expect("update_event failed against the spec's example");

    // --- DELETE /events/{eventId}
    let result = client.delete_event(&key, id).await;
    let sent = mock.assert_conformant("HoldedClient::delete_event", 1);
    assert_eq!(
        (sent[0].method.as_str(), sent[0].target.as_str()),
        ("DELETE", "/events/5ab11f1a3697ac00cd0a6423")
    );
    assert_eq!(sent[0].request_body, "", "DELETE must not carry a body");
    result.expect("delete_event failed against the spec's example");

    // --- Negative control: a body of the wrong types.
    let response = raw_client()
        .post(mock.url().join("/events").expect("URL"))
        .header("key", "any-api-key")
        .json(&json!({ "name": "x", "startDate": "tomorrow" }))
        .send()
        .await
        .expect("Prism answers");
    assert_eq!(response.status().as_u16(), 422);
    expect_refused(&mock.take(), "startDate must be integer");
}

#[tokio::test]
async fn holded_client_requests_conform_to_the_invoice_spec() {
    let spec = prism::spec(HOLDED_INVOICE_SPEC);
    let spec_json = read_json(&spec);
    let mock = MockApi::start(&spec).await;
    let client = holded_client(&mock);
    let key = SecretString::from("any-api-key");
    let id = "5ab390311d6d820051631f1a";
    let fields = HoldedContactFields {
        name: "Ada Lovelace".into(),
        email: "ada@example.com".into(),
        phone: "+34600000000".into(),
        contact_type: Some("client".into()),
        isperson: true,
        bill_address: BillAddress {
            address: "Carrer del Mar 1".into(),
            city: "Barcelona".into(),
            postal_code: "08001".into(),
            province: "Barcelona".into(),
            country: "Spain".into(),
        },
        tags: vec!["ghl".into(), "vip".into()],
        social_networks: SocialNetworks {
            website: "https://example.com".into(),
        },
    };

    // --- GET /contacts?customId=
    let result = client.find_contacts_by_custom_id(&key, "ghl-123").await;
    let sent = mock.assert_conformant("HoldedClient::find_contacts_by_custom_id", 1);
    assert_eq!(sent[0].method, "GET");
    assert_eq!(sent[0].target, "/contacts?customId=ghl-123");
    assert!(
        sent[0].request_header("key").is_some(),
        "no `key` header sent"
    );
    let found = result.expect("find_contacts_by_custom_id failed against the spec's example");
    // Prism does not filter: it serves the spec's one-item example list.
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].id, "5aaa43d35b7064002613c048");
    assert_eq!(found[0].custom_id.as_deref(), Some("myReferenceId"));

    // --- GET /contacts/{contactId}
    let result = client.get_contact(&key, id).await;
    let sent = mock.assert_conformant("HoldedClient::get_contact", 1);
    assert_eq!(
        (sent[0].method.as_str(), sent[0].target.as_str()),
        ("GET", "/contacts/5ab390311d6d820051631f1a")
    );
    let contact = result.expect("get_contact failed against the spec's example");
    assert_eq!(contact.id, "5aaa43d35b7064002613c048");

    // --- POST /contacts
    let result = client.create_contact(&key, "ghl-123", &fields).await;
    let sent = mock.assert_conformant("HoldedClient::create_contact", 1);
    assert_eq!(
        (sent[0].method.as_str(), sent[0].target.as_str()),
        ("POST", "/contacts")
    );
    let body = sent[0].request_json().expect("a JSON body");
    assert_eq!(
        body["CustomId"], "ghl-123",
        "create must write `CustomId` (capital C)"
    );
    assert_eq!(
        undeclared_fields(&spec_json, "/contacts", "post", &body),
        Vec::<String>::new(),
        "create sends fields the spec does not declare: {body}"
    );
    assert_eq!(
        result.expect("create_contact failed against the spec's example"),
        "5ac4f2cec839ea004e18a463"
    );

    // --- PUT /contacts/{contactId} (all the fields we own)
    let result = client.update_contact(&key, id, &fields).await;
    let sent = mock.assert_conformant("HoldedClient::update_contact", 1);
    assert_eq!(
        (sent[0].method.as_str(), sent[0].target.as_str()),
        ("PUT", "/contacts/5ab390311d6d820051631f1a")
    );
    let body = sent[0].request_json().expect("a JSON body");
    // The PUT schema does not list `tags` (only POST does). Prism accepts it, because the
    // schema allows additional properties; whether live Holded honours `tags` on PUT is
    // undocumented (shared/reference/holded-api.md, "PUT /contacts/{id}"). Pinned here so
    // that any *other* undeclared (e.g. misspelt) field fails this test.
    assert_eq!(
        undeclared_fields(&spec_json, "/contacts/{contactId}", "put", &body),
        vec!["tags".to_owned()],
        "update sends fields the spec does not declare: {body}"
    );
    result.expect("update_contact failed against the spec's example");

    // --- PUT /contacts/{contactId} with only the tags (delete policy `tag`)
    let result = client
        .set_contact_tags(&key, id, &["ghl-deleted".to_string()])
        .await;
    let sent = mock.assert_conformant("HoldedClient::set_contact_tags", 1);
    assert_eq!(
        (sent[0].method.as_str(), sent[0].target.as_str()),
        ("PUT", "/contacts/5ab390311d6d820051631f1a")
    );
    let body = sent[0].request_json().expect("a JSON body");
    assert_eq!(body, json!({ "tags": ["ghl-deleted"] }));
    // Same caveat as above: `tags` is not in the PUT schema.
    assert_eq!(
        undeclared_fields(&spec_json, "/contacts/{contactId}", "put", &body),
        vec!["tags".to_owned()]
    );
    result.expect("set_contact_tags failed against the spec's example");

    // --- DELETE /contacts/{contactId}
    let result = client.delete_contact(&key, id).await;
    let sent = mock.assert_conformant("HoldedClient::delete_contact", 1);
    assert_eq!(
        (sent[0].method.as_str(), sent[0].target.as_str()),
        ("DELETE", "/contacts/5ab390311d6d820051631f1a")
    );
    assert_eq!(sent[0].request_body, "", "DELETE must not carry a body");
    result.expect("delete_contact failed against the spec's example");

    // --- Negative controls
    let raw = raw_client();

    // No `key` header. The spec documents no 401, so Prism makes one up (problem+json).
    let response = raw
        .get(mock.url().join("/contacts?customId=ghl-123").expect("URL"))
        .send()
        .await
        .expect("Prism answers");
    assert_eq!(response.status().as_u16(), 401);
    expect_refused(&mock.take(), "does not fullfil the security requirements");
    // The same for a write.
    let response = raw
        .delete(
            mock.url()
                .join("/contacts/5ab390311d6d820051631f1a")
                .expect("URL"),
        )
        .send()
        .await
        .expect("Prism answers");
    assert_eq!(response.status().as_u16(), 401);
    expect_refused(&mock.take(), "prism/errors#UNAUTHORIZED");

    // A body of the wrong types.
    let response = raw
        .post(mock.url().join("/contacts").expect("URL"))
        .header("key", "any-api-key")
        .json(&json!({ "CustomId": 123, "isperson": "yes" }))
        .send()
        .await
        .expect("Prism answers");
    assert_eq!(response.status().as_u16(), 422);
    expect_refused(
        &mock.take(),
        "Request body property isperson must be boolean",
    );

    // The production base path (`…/api/invoicing/v1`) is not where Prism serves the spec:
    // its "no such route" 404 must not read as "no such contact" (we would recreate it).
    let misrouted = HoldedClient::new(HoldedEndpoints::from_base(&mock.url()), TIMEOUT);
    let result = misrouted.get_contact(&key, id).await;
    assert!(
        matches!(result, Err(HoldedError::Rejected { status: 404, .. })),
        "expected a 404 refusal, got {result:?}"
    );
    expect_refused(&mock.take(), "NO_PATH_MATCHED_ERROR");
}

#[tokio::test]
async fn oauth_client_requests_conform_to_the_oauth_spec() {
    let spec = prism::spec(GHL_OAUTH_SPEC);
    let mock = MockApi::start(&spec).await;
    let app = OAuthApp {
        client_id: "66f1c0ffee5a1e0000000001-sim0client".into(),
        client_secret: SecretString::from("client-secret"),
    };
    let client = OAuthClient::new(mock.url(), app, TIMEOUT);

    // --- POST /oauth/token, both grants the service uses: form-encoded, no `Version`.
    let result = client
        .exchange_code("the-code", "https://sync.example.test/oauth/callback")
        .await;
    let sent = mock.assert_conformant("OAuthClient::exchange_code", 1);
    assert_eq!(
        (sent[0].method.as_str(), sent[0].target.as_str()),
        ("POST", "/oauth/token")
    );
    assert!(sent[0]
        .request_header("content-type")
        .is_some_and(|t| t.starts_with("application/x-www-form-urlencoded")));
    assert_eq!(sent[0].request_header("version"), None);
    if let Some(grant) = served_grant(&sent[0], result) {
        assert!(grant.refresh_token.is_some());
    }

    let result = client
        .refresh(&SecretString::from("old-refresh-token"), UserType::Company)
        .await;
    let sent = mock.assert_conformant("OAuthClient::refresh", 1);
    served_grant(&sent[0], result);

    // --- POST /oauth/locationToken: the agency token as bearer, `Version`, form body.
    let result = client
        .location_token(
            &SecretString::from("agency-token"),
            "company-1",
            "location-1",
        )
        .await;
    let sent = mock.assert_conformant("OAuthClient::location_token", 1);
    assert_eq!(sent[0].target, "/oauth/locationToken");
    assert_eq!(sent[0].request_header("version"), Some("2021-07-28"));
    if let Some(minted) = served_grant(&sent[0], result) {
        assert_eq!(minted.user_type, UserType::Location);
    }

    // --- Negative control: a JSON body (v3 style) is not what the v2 spec declares.
    let response = raw_client()
        .post(mock.url().join("/oauth/token").expect("URL"))
        .json(&json!({ "client_id": "x", "client_secret": "y", "grant_type": "refresh_token" }))
        .send()
        .await
        .expect("Prism answers");
    assert!(
        response.status().is_client_error(),
        "got {}",
        response.status()
    );
    expect_refused(&mock.take(), "content type");
}

/// The grant the client read from Prism's example answer. oauth.json's own token example breaks
/// its schema (`isBulkInstallation`, typed boolean, has the example "Bearer"), so
/// with `--errors` Prism replaces it with a 500 problem: the client must then report GHL as
/// unavailable, not invent a grant. That is a response violation, not a request one.
fn served_grant(exchange: &Exchange, result: Result<TokenGrant, OAuthError>) -> Option<TokenGrant> {
    if exchange.response_violations().is_empty() {
        return Some(result.expect("the spec's example grant"));
    }
    match result {
        Err(OAuthError::Unavailable(message)) if message.contains("500") => None,
        other => panic!(
            "expected Unavailable(500) for Prism's response-violation 500, got {:?}",
            other.map(|g| g.scope)
        ),
    }
}

/// A Holded client with both modules at Prism's root: each spec serves one module, and every
/// call of that module goes to it.
fn holded_client(mock: &MockApi) -> HoldedClient {
    HoldedClient::new(
        HoldedEndpoints {
            invoicing: mock.url(),
            crm: mock.url(),
        },
        TIMEOUT,
    )
}

/// Any token and the location of the specs' examples.
fn ghl_credentials() -> (FixedToken, LocationId) {
    (
        FixedToken(SecretString::from("any-token")),
        LocationId::parse("ve9EPM428h8vShlRW1KT").expect("location id"),
    )
}

/// A plain client for the hand-made negative controls (no default headers of ours).
fn raw_client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .timeout(TIMEOUT)
        .build()
        .expect("HTTP client")
}

/// The exchanges hold exactly one request, which the conformance check flags, quoting
/// Prism's `needle`.
fn expect_refused(exchanges: &[Exchange], needle: &str) {
    assert_eq!(
        exchanges.len(),
        1,
        "expected one request, saw {exchanges:#?}"
    );
    match check_conformance(exchanges) {
        Ok(()) => panic!(
            "negative control passed the conformance check, so the check cannot fail:\n{}",
            exchanges[0].describe()
        ),
        Err(report) => assert!(
            report.contains(needle),
            "negative control was refused, but not with {needle:?}:\n{report}"
        ),
    }
}

fn read_json(path: &std::path::Path) -> Value {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{} is not JSON: {e}", path.display()))
}

/// Body properties (dotted paths) that the operation's JSON request schema does not declare.
/// Prism cannot flag these: the Holded schemas do not say `additionalProperties: false`, so a
/// misspelt field passes validation (and the live API would silently ignore it).
fn undeclared_fields(spec: &Value, path: &str, method: &str, body: &Value) -> Vec<String> {
    let pointer = format!(
        "/paths/{}/{method}/requestBody/content/application~1json/schema",
        path.replace('~', "~0").replace('/', "~1")
    );
    let schema = spec
        .pointer(&pointer)
        .unwrap_or_else(|| panic!("the spec has no JSON request body for {method} {path}"));
    let mut undeclared = Vec::new();
    walk_schema(spec, schema, body, "", &mut undeclared);
    undeclared
}

fn walk_schema(
    spec: &Value,
    schema: &Value,
    value: &Value,
    at: &str,
    undeclared: &mut Vec<String>,
) {
    let schema = resolve_ref(spec, schema);
    match value {
        Value::Object(members) => {
            let declared = schema.get("properties");
            for (name, member) in members {
                let here = if at.is_empty() {
                    name.clone()
                } else {
                    format!("{at}.{name}")
                };
                match declared.and_then(|d| d.get(name)) {
                    Some(member_schema) => {
                        walk_schema(spec, member_schema, member, &here, undeclared)
                    }
                    None => undeclared.push(here),
                }
            }
        }
        Value::Array(items) => {
            if let Some(item_schema) = schema.get("items") {
                for (i, item) in items.iter().enumerate() {
                    walk_schema(spec, item_schema, item, &format!("{at}[{i}]"), undeclared);
                }
            }
        }
        _ => {}
    }
}

/// Follows local `$ref`s (`#/components/...`).
fn resolve_ref<'a>(spec: &'a Value, schema: &'a Value) -> &'a Value {
    match schema
        .get("$ref")
        .and_then(Value::as_str)
        .and_then(|r| r.strip_prefix('#'))
    {
        Some(pointer) => resolve_ref(
            spec,
            spec.pointer(pointer)
                .unwrap_or_else(|| panic!("unresolvable $ref #{pointer}")),
        ),
        None => schema,
    }
}
