//! `ghl-holded-sync demo`: the whole path on a machine with no account and no network.
//! GHL and Holded simulators, the real service, a signed ContactCreate then ContactUpdate.
use std::collections::HashMap;
use std::time::{Duration, Instant};

use anyhow::Context;
use serde_json::{json, Value};

use crate::app::App;
use crate::config::Config;
use crate::sim::ghl::GhlSim;
use crate::sim::holded::HoldedSim;
use crate::sim::webhooks::{contact_event, WebhookSigner};

const LOCATION: &str = "demoLocation0000001";
const CONTACT: &str = "demoContact00000001";
const GHL_TOKEN: &str = "pit-demo-token";
const HOLDED_KEY: &str = "holded-demo-key";

pub async fn run() -> anyhow::Result<()> {
    let ghl = GhlSim::start().await;
    ghl.add_private_token(LOCATION, GHL_TOKEN);
    let holded = HoldedSim::start().await;
    holded.add_api_key(HOLDED_KEY);
    let signer = WebhookSigner::generate();
    let data = tempfile::tempdir().context("temporary folder for the demo database")?;

    let vars: HashMap<String, String> = [
        ("LISTEN_ADDR", "127.0.0.1:0".to_owned()),
        (
            "DATABASE_URL",
            format!("sqlite://{}/demo.db", data.path().display()),
        ),
        ("GHL_API_BASE", ghl.base_url()),
        ("HOLDED_API_BASE", holded.base_url()),
        ("GHL_WEBHOOK_ED25519_KEY", signer.ed25519_public_pem()),
        ("GHL_LOCATION_ID", LOCATION.to_owned()),
        ("GHL_PRIVATE_TOKEN", GHL_TOKEN.to_owned()),
        ("HOLDED_API_KEY", HOLDED_KEY.to_owned()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    let app = App::start(Config::from_vars(vars)?).await?;
    let webhook_url = format!("http://{}/webhooks/ghl", app.local_addr());
    let http = reqwest::Client::new();
    println!("GHL simulator    {}", ghl.base_url());
    println!("Holded simulator {}", holded.base_url());
    println!("service          http://{}\n", app.local_addr());

    ghl.put_contact(json!({
        "id": CONTACT, "locationId": LOCATION,
        "firstName": "Lucía", "lastName": "García", "email": "lucia@example.es",
        "phone": "+34 612 34 56 78", "type": "lead",
        "address1": "Calle de Alcalá 42", "city": "Madrid", "state": "Madrid",
        "postalCode": "28014", "country": "ES", "tags": ["webinar"],
    }));
    let step = |title: &str| println!("── {title}");

    step("1. GHL sends a signed ContactCreate");
    post(&signer, &http, &webhook_url, &ghl, "ContactCreate").await?;
    let created = wait_for(&holded, |c| c["email"] == "lucia@example.es").await?;
    print_contact(&created);

    step("2. The contact changes in GHL; GHL sends a signed ContactUpdate");
    ghl.patch_contact(
        CONTACT,
        json!({ "type": "customer", "tags": ["webinar", "customer"], "city": "Sevilla" }),
    );
    post(&signer, &http, &webhook_url, &ghl, "ContactUpdate").await?;
    let updated = wait_for(&holded, |c| {
        c["type"] == "client" && c["billAddress"]["city"] == "Sevilla"
    })
    .await?;
    print_contact(&updated);
    println!(
        "Holded contacts for this GHL id: {} (created once, then updated in place)",
        holded.contacts_with_custom_id(HOLDED_KEY, CONTACT).len()
    );
    app.shutdown().await;
    Ok(())
}

async fn post(
    signer: &WebhookSigner,
    http: &reqwest::Client,
    url: &str,
    ghl: &GhlSim,
    event_type: &str,
) -> anyhow::Result<()> {
    let contact = ghl.contact(CONTACT).context("demo contact exists")?;
    let body = serde_json::to_vec(&contact_event(event_type, &contact))?;
    let response = signer.post(http, url, &body).await?;
    println!(
        "   POST /webhooks/ghl → {} {}",
        response.status(),
        response.text().await?
    );
    Ok(())
}

async fn wait_for(holded: &HoldedSim, ready: impl Fn(&Value) -> bool) -> anyhow::Result<Value> {
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(15) {
        if let Some(contact) = holded
            .contacts_with_custom_id(HOLDED_KEY, CONTACT)
            .into_iter()
            .find(|c| ready(c))
        {
            println!(
                "   synced to Holded in {} ms",
                started.elapsed().as_millis()
            );
            return Ok(contact);
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    anyhow::bail!("the contact did not reach the Holded simulator within 15 s")
}

fn print_contact(contact: &Value) {
    println!("   Holded simulator record:");
    let fields = [
        ("id", &contact["id"]),
        ("customId", &contact["customId"]),
        ("name", &contact["name"]),
        ("email", &contact["email"]),
        ("phone", &contact["phone"]),
        ("type", &contact["type"]),
        ("isperson", &contact["isperson"]),
        ("billAddress", &contact["billAddress"]),
        ("tags", &contact["tags"]),
    ];
    for (name, value) in fields {
        println!("     {name:<12} {value}");
    }
    println!();
}
