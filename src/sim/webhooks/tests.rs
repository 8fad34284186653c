use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use ed25519_dalek::pkcs8::DecodePublicKey;
use ed25519_dalek::{Signature, Verifier, VerifyingKey};
use rsa::pkcs1v15;
use rsa::RsaPublicKey;
use serde_json::json;
use sha2::Sha256;

use super::*;
use crate::sim::holded::HoldedSim;

#[test]
fn ed25519_signature_verifies_with_the_published_pem() {
    let signer = WebhookSigner::generate();
    let body = br#"{"type":"ContactCreate"}"#;
    let key = VerifyingKey::from_public_key_pem(&signer.ed25519_public_pem()).unwrap();
    let raw = BASE64.decode(signer.sign_ed25519(body)).unwrap();
    assert_eq!(raw.len(), 64);
    let signature = Signature::from_slice(&raw).unwrap();
    assert!(key.verify(body, &signature).is_ok());
    assert!(key.verify(b"tampered", &signature).is_err());
    assert!(signer.sign_rsa(body).is_none());
}

#[test]
fn rsa_signature_verifies_with_the_published_pem() {
    let signer = WebhookSigner::generate().with_rsa_pem(TEST_ONLY_RSA_PRIVATE_KEY_PEM);
    let body = br#"{"type":"NoteCreate"}"#;
    let public = RsaPublicKey::from_public_key_pem(&signer.rsa_public_pem().unwrap()).unwrap();
    let key = pkcs1v15::VerifyingKey::<Sha256>::new(public);
    let raw = BASE64.decode(signer.sign_rsa(body).unwrap()).unwrap();
    let signature = pkcs1v15::Signature::try_from(raw.as_slice()).unwrap();
    use rsa::signature::Verifier as _;
    assert!(key.verify(body, &signature).is_ok());
    assert!(key.verify(b"tampered", &signature).is_err());
}

#[tokio::test]
async fn post_sends_both_signature_headers_over_the_exact_bytes() {
    // Any HTTP server that records requests will do; the Holded simulator records everything.
    let receiver = HoldedSim::start().await;
    let signer = WebhookSigner::generate().with_rsa_pem(TEST_ONLY_RSA_PRIVATE_KEY_PEM);
    let body = serde_json::to_vec(&json!({"type": "ContactDelete", "id": "c1"})).unwrap();
    signer
        .post(
            &reqwest::Client::new(),
            &format!("{}/hook", receiver.base_url()),
            &body,
        )
        .await
        .unwrap();
    let recorded = &receiver.requests().all()[0];
    assert_eq!(recorded.body.as_bytes(), body.as_slice());
    assert_eq!(recorded.headers["content-type"], "application/json");
    assert_eq!(
        recorded.headers["x-ghl-signature"],
        signer.sign_ed25519(&body).as_str()
    );
    assert!(recorded.headers.contains_key("x-wh-signature"));
}

#[test]
fn contact_event_is_flat_with_envelope_fields() {
    let contact = json!({"id": "c1", "locationId": "L1", "email": "a@x.es", "dateUpdated": "x",
                         "dndSettings": {"SMS": {"status": "active"}}});
    let event = contact_event("ContactUpdate", &contact);
    assert_eq!(event["type"], "ContactUpdate");
    assert_eq!(event["locationId"], "L1");
    assert_eq!(event["email"], "a@x.es");
    assert_eq!(event["attachments"], json!([]));
    assert!(event.get("dateUpdated").is_none());
    assert!(event.get("dndSettings").is_none());
    assert!(contact_event("ContactDndUpdate", &contact)
        .get("dndSettings")
        .is_some());
    assert_eq!(event["appId"], SIM_APP_ID);
    assert_eq!(SIM_CLIENT_ID.split('-').next(), Some(SIM_APP_ID));
    let timestamp = event["timestamp"].as_str().unwrap();
    assert!(chrono::DateTime::parse_from_rfc3339(timestamp).is_ok() && timestamp.ends_with('Z'));
    assert_ne!(
        event["webhookId"],
        contact_event("ContactUpdate", &contact)["webhookId"]
    );
}

#[test]
fn task_create_lacks_contact_id_and_body_like_the_live_api() {
    let task =
        json!({"id": "t1", "title": "Call", "body": "b", "contactId": "c1", "completed": false});
    let created = task_event("TaskCreate", "L1", &task);
    assert!(created.get("contactId").is_none() && created.get("body").is_none());
    let completed = task_event("TaskComplete", "L1", &task);
    assert_eq!(completed["contactId"], "c1");
    assert!(completed.get("completed").is_none());
    let note = note_event(
        "NoteCreate",
        "L1",
        &json!({"id": "n1", "body": "hi", "contactId": "c1"}),
    );
    assert_eq!(
        (note["body"].clone(), note["locationId"].clone()),
        (json!("hi"), json!("L1"))
    );
    assert!(note["dateAdded"].is_string());
}

#[test]
fn appointment_event_nests_the_appointment() {
    let appointment = json!({"id": "a1", "locationId": "L1", "contactId": "c1", "title": "Meet",
                             "createdBy": {"userId": "u", "source": "booking_widget"}});
    let event = appointment_event("AppointmentUpdate", &appointment);
    assert_eq!(event["locationId"], "L1");
    assert_eq!(event["appointment"]["title"], "Meet");
    assert_eq!(event["appointment"]["source"], "booking_widget");
    assert!(event.get("title").is_none());
}
