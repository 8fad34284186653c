//! GHL as the webhook sender: payloads per `specs/ghl/docs/webhook-events/*.md` and both
//! signature schemes of reference §4.6, computed over the exact bytes that are posted.

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use ed25519_dalek::pkcs8::spki::der::pem::LineEnding;
use ed25519_dalek::pkcs8::EncodePublicKey;
use ed25519_dalek::{Signer, SigningKey};
use rand::rngs::OsRng;
use rsa::pkcs1v15;
use rsa::pkcs8::DecodePrivateKey;
use rsa::signature::SignatureEncoding;
use rsa::RsaPrivateKey;
use serde_json::{json, Map, Value};
use sha2::Sha256;

use super::ids;

/// Signs simulator webhooks only: a throw-away 2048-bit key generated with
/// `openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048`. GHL's real key is 4096-bit
/// and private to GHL; never trust this key outside tests.
pub const TEST_ONLY_RSA_PRIVATE_KEY_PEM: &str = include_str!("test-only-rsa-key.pem");

/// `appId` carried by every simulated webhook. GHL clients keep events whose `appId` equals
/// `CLIENT_ID.split('-')[0]` (reference §4.3), so the simulated app's client id is
/// [`SIM_CLIENT_ID`].
pub const SIM_APP_ID: &str = "66f1c0ffee5a1e0000000001";
/// A client id whose part before the first `-` is [`SIM_APP_ID`].
pub const SIM_CLIENT_ID: &str = "66f1c0ffee5a1e0000000001-sim0client";
/// `versionId` carried by every simulated webhook (format as in ISSUE#264: an ObjectId).
pub const SIM_VERSION_ID: &str = "66f1c0ffee5a1e0000000002";

pub struct WebhookSigner {
    ed25519: SigningKey,
    rsa: Option<pkcs1v15::SigningKey<Sha256>>,
}

impl WebhookSigner {
    /// A fresh Ed25519 key and no RSA key (only `x-ghl-signature` is sent).
    pub fn generate() -> Self {
        Self {
            ed25519: SigningKey::generate(&mut OsRng),
            rsa: None,
        }
    }

    /// Also signs with this RSA key in the legacy `x-wh-signature` header.
    ///
    /// Panics on a PEM that is not a PKCS#8 RSA private key: that is a bug in the test calling it.
    pub fn with_rsa_pem(self, rsa_private_pkcs8_pem: &str) -> Self {
        let key = RsaPrivateKey::from_pkcs8_pem(rsa_private_pkcs8_pem)
            .expect("with_rsa_pem needs a PKCS#8 PEM RSA private key");
        Self {
            rsa: Some(pkcs1v15::SigningKey::new(key)),
            ..self
        }
    }

    /// SPKI PEM of the Ed25519 key, the format of `GHL_WEBHOOK_ED25519_KEY`.
    pub fn ed25519_public_pem(&self) -> String {
        self.ed25519
            .verifying_key()
            .to_public_key_pem(LineEnding::LF)
            .expect("an Ed25519 public key always encodes as SPKI PEM")
    }

    /// SPKI PEM of the RSA key, the format of `GHL_WEBHOOK_RSA_KEY`.
    pub fn rsa_public_pem(&self) -> Option<String> {
        self.rsa.as_ref().map(|key| {
            key.as_ref()
                .to_public_key()
                .to_public_key_pem(LineEnding::LF)
                .expect("an RSA public key always encodes as SPKI PEM")
        })
    }

    /// Value of `x-ghl-signature`: base64 of the 64-byte pure Ed25519 signature of `body`.
    pub fn sign_ed25519(&self, body: &[u8]) -> String {
        BASE64.encode(self.ed25519.sign(body).to_bytes())
    }

    /// Value of `x-wh-signature`: base64 RSASSA-PKCS1-v1_5 / SHA-256 of `body`.
    pub fn sign_rsa(&self, body: &[u8]) -> Option<String> {
        self.rsa
            .as_ref()
            .map(|key| BASE64.encode(key.sign(body).to_vec()))
    }

    /// Posts `body` as GHL does: JSON content type, `x-ghl-signature`, and `x-wh-signature`
    /// when an RSA key is configured (GHL sends both while the legacy header lives).
    pub async fn post(
        &self,
        client: &reqwest::Client,
        url: &str,
        body: &[u8],
    ) -> reqwest::Result<reqwest::Response> {
        let mut request = client
            .post(url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header("x-ghl-signature", self.sign_ed25519(body));
        if let Some(signature) = self.sign_rsa(body) {
            request = request.header("x-wh-signature", signature);
        }
        request.body(body.to_vec()).send().await
    }
}

/// Contact fields of the ContactCreate/Update/Delete/TagUpdate schema (identical for all four).
const CONTACT_FIELDS: &[&str] = &[
    "id",
    "address1",
    "city",
    "companyName",
    "country",
    "source",
    "dateAdded",
    "dateOfBirth",
    "dnd",
    "email",
    "name",
    "firstName",
    "lastName",
    "phone",
    "postalCode",
    "state",
    "tags",
    "website",
    "assignedTo",
    "customFields",
];

const TASK_FIELDS: &[&str] = &["id", "assignedTo", "body", "contactId", "title", "dueDate"];

const NOTE_FIELDS: &[&str] = &["id", "body", "contactId"];

const APPOINTMENT_FIELDS: &[&str] = &[
    "id",
    "address",
    "title",
    "calendarId",
    "contactId",
    "groupId",
    "appointmentStatus",
    "assignedUserId",
    "users",
    "notes",
    "startTime",
    "endTime",
    "dateAdded",
    "dateUpdated",
];

/// Flat contact payload from a simulator contact. `ContactDndUpdate` also carries
/// `dndSettings`. `attachments` is always `[]`: GHL never populates it (ISSUE#324).
pub fn contact_event(event_type: &str, contact: &Value) -> Value {
    let mut fields = pick(contact, CONTACT_FIELDS);
    fields.insert("attachments".into(), json!([]));
    if event_type == "ContactDndUpdate" {
        fields.extend(pick(contact, &["dndSettings"]));
    }
    envelope(event_type, &contact["locationId"], fields)
}

/// Flat task payload. Real `TaskCreate` events arrive without `contactId` and `body`
/// (ISSUE#332, reference §4.4), so those two are left out of `TaskCreate` only.
pub fn task_event(event_type: &str, location_id: &str, task: &Value) -> Value {
    let mut fields = pick(task, TASK_FIELDS);
    if event_type == "TaskCreate" {
        fields.remove("contactId");
        fields.remove("body");
    }
    fields.insert("dateAdded".into(), date_added(task));
    envelope(event_type, &json!(location_id), fields)
}

pub fn note_event(event_type: &str, location_id: &str, note: &Value) -> Value {
    let mut fields = pick(note, NOTE_FIELDS);
    fields.insert("dateAdded".into(), date_added(note));
    envelope(event_type, &json!(location_id), fields)
}

/// Appointment payload, nested under `appointment`. `type` is `event_type` as given; pass
/// `"AppointmentCreate"` for an update to mimic the documented examples (reference §4.2).
pub fn appointment_event(event_type: &str, appointment: &Value) -> Value {
    let mut nested = pick(appointment, APPOINTMENT_FIELDS);
    // The webhook has a flat `source`; the calendar API nests it as `createdBy.source`.
    let source = appointment
        .get("source")
        .or_else(|| appointment.pointer("/createdBy/source"));
    if let Some(source) = source {
        nested.insert("source".into(), source.clone());
    }
    let mut fields = Map::new();
    fields.insert("appointment".into(), Value::Object(nested));
    envelope(event_type, &appointment["locationId"], fields)
}

fn pick(record: &Value, names: &[&str]) -> Map<String, Value> {
    names
        .iter()
        .filter_map(|name| {
            let value = record.get(*name).filter(|v| !v.is_null())?;
            Some(((*name).to_owned(), value.clone()))
        })
        .collect()
}

fn date_added(record: &Value) -> Value {
    record
        .get("dateAdded")
        .cloned()
        .unwrap_or_else(|| json!(now_rfc3339()))
}

/// An `INSTALL` or `UNINSTALL` event (AppInstall.md / AppUninstall.md): of a location
/// (`location_id` set) or of an agency (only `company_id`).
pub fn app_event(event_type: &str, location_id: Option<&str>, company_id: Option<&str>) -> Value {
    let mut fields = Map::new();
    if let Some(company_id) = company_id {
        fields.insert("companyId".into(), json!(company_id));
    }
    match location_id {
        Some(location_id) => envelope(event_type, &json!(location_id), fields),
        None => {
            let mut event = envelope(event_type, &Value::Null, fields);
            event.as_object_mut().map(|e| e.remove("locationId"));
            event
        }
    }
}

/// Adds the fields every event carries: `type`, `locationId`, and the envelope fields real
/// payloads have beyond the docs (`appId`, `versionId`, `timestamp`, `webhookId`, §4.3).
fn envelope(event_type: &str, location_id: &Value, fields: Map<String, Value>) -> Value {
    let mut payload = Map::new();
    payload.insert("type".into(), json!(event_type));
    payload.insert("locationId".into(), location_id.clone());
    payload.extend(fields);
    payload.insert("appId".into(), json!(SIM_APP_ID));
    payload.insert("versionId".into(), json!(SIM_VERSION_ID));
    payload.insert("timestamp".into(), json!(now_rfc3339()));
    payload.insert("webhookId".into(), json!(ids::ghl_id()));
    Value::Object(payload)
}

fn now_rfc3339() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

#[cfg(test)]
mod tests;
