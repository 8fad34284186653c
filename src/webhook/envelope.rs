//! The typed envelope of a GHL webhook: just enough to route it. Payload fields beyond
//! routing are not trusted: the worker re-reads the record from the API.
use chrono::{DateTime, Utc};
use serde::Deserialize;
use sha2::Digest;

use crate::domain::{EntityKey, EntityKind, GhlId, LocationId};

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum EnvelopeError {
    #[error("body is not a JSON object: {0}")]
    NotJson(String),
    #[error("missing or empty field `{0}`")]
    MissingField(&'static str),
    #[error("field `{field}` is invalid: {problem}")]
    InvalidField {
        field: &'static str,
        problem: String,
    },
}

/// The raw fields we read; everything else in the payload is ignored.
#[derive(Deserialize)]
struct RawEnvelope {
    #[serde(rename = "type")]
    event_type: Option<String>,
    #[serde(rename = "locationId")]
    location_id: Option<String>,
    #[serde(rename = "webhookId")]
    webhook_id: Option<String>,
    timestamp: Option<String>,
    id: Option<String>,
    #[serde(rename = "contactId")]
    contact_id: Option<String>,
    #[serde(rename = "appId")]
    app_id: Option<String>,
    #[serde(rename = "companyId")]
    company_id: Option<String>,
    /// Appointment events nest the record (specs/ghl/docs/webhook-events/Appointment*.md).
    appointment: Option<RawAppointment>,
}

#[derive(Deserialize)]
struct RawAppointment {
    id: Option<String>,
    #[serde(rename = "contactId")]
    contact_id: Option<String>,
}

/// What a verified webhook asks of us.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WebhookEnvelope {
    pub event_type: String,
    /// Absent only on agency-level `INSTALL` / `UNINSTALL` events.
    pub location_id: Option<LocationId>,
    /// The agency, on `INSTALL` / `UNINSTALL` events.
    pub company_id: Option<String>,
    pub webhook_id: Option<String>,
    pub timestamp: Option<DateTime<Utc>>,
    pub app_id: Option<String>,
    /// `webhookId`, else the SHA-256 of the exact body: GHL's 429 retries resend the same bytes.
    pub dedupe_key: String,
    pub action: WebhookAction,
}

/// How an event type maps onto the work queue.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WebhookAction {
    /// The record may be stale: sync it (`deleted` when the event itself says it is gone).
    Sync {
        key: EntityKey,
        /// The contact a task, note or appointment belongs to, when the payload says.
        /// Real `TaskCreate` payloads omit it; the worker then asks GHL.
        parent: Option<GhlId>,
        deleted: bool,
    },
    /// The app was installed (`INSTALL`, specs/ghl/docs/webhook-events/AppInstall.md): on a
    /// location (`location_id` set), or on an agency (only `company_id`).
    Install,
    /// The app was uninstalled (AppUninstall.md): from a location, or from an agency.
    Uninstall,
    /// An event type this service does not act on.
    Ignore,
}

fn non_empty(value: Option<String>, field: &'static str) -> Result<String, EnvelopeError> {
    value
        .filter(|v| !v.trim().is_empty())
        .ok_or(EnvelopeError::MissingField(field))
}

impl WebhookEnvelope {
    pub fn parse(body: &[u8]) -> Result<Self, EnvelopeError> {
        let value: serde_json::Value =
            serde_json::from_slice(body).map_err(|e| EnvelopeError::NotJson(e.to_string()))?;
        if !value.is_object() {
            return Err(EnvelopeError::NotJson("expected an object".into()));
        }
        let raw: RawEnvelope =
            serde_json::from_value(value).map_err(|e| EnvelopeError::InvalidField {
                field: "type/locationId/id/webhookId/timestamp",
                problem: format!("must be strings ({e})"),
            })?;
        let event_type = non_empty(raw.event_type, "type")?;
        let location_id = raw
            .location_id
            .filter(|l| !l.trim().is_empty())
            .map(|l| {
                LocationId::parse(&l).map_err(|e| EnvelopeError::InvalidField {
                    field: "locationId",
                    problem: e.0,
                })
            })
            .transpose()?;
        let company_id = raw.company_id.filter(|c| !c.trim().is_empty());
        let timestamp = raw
            .timestamp
            .map(|t| {
                DateTime::parse_from_rfc3339(&t)
                    .map(|t| t.with_timezone(&Utc))
                    .map_err(|e| EnvelopeError::InvalidField {
                        field: "timestamp",
                        problem: format!("not an RFC 3339 time: {e}"),
                    })
            })
            .transpose()?;
        let webhook_id = raw.webhook_id.filter(|w| !w.trim().is_empty());
        let dedupe_key = match &webhook_id {
            Some(id) => format!("webhook:{id}"),
            None => format!("sha256:{}", hex::encode(sha2::Sha256::digest(body))),
        };
        let action = match (event_type.as_str(), synced_event(&event_type)) {
            ("INSTALL" | "UNINSTALL", _) if location_id.is_none() && company_id.is_none() => {
                return Err(EnvelopeError::MissingField("locationId"));
            }
            ("INSTALL", _) => WebhookAction::Install,
            ("UNINSTALL", _) => WebhookAction::Uninstall,
            (_, None) => WebhookAction::Ignore,
            (_, Some((kind, deleted))) => {
                let location_id = location_id
                    .clone()
                    .ok_or(EnvelopeError::MissingField("locationId"))?;
                let (id, parent) = match (kind, raw.appointment) {
                    (EntityKind::Appointment, Some(appointment)) => {
                        (appointment.id, appointment.contact_id)
                    }
                    (EntityKind::Appointment, None) => (None, None),
                    (EntityKind::Contact, _) => (raw.id, None),
                    _ => (raw.id, raw.contact_id),
                };
                let field = if kind == EntityKind::Appointment {
                    "appointment.id"
                } else {
                    "id"
                };
                WebhookAction::Sync {
                    key: EntityKey {
                        location_id,
                        kind,
                        ghl_id: ghl_id(id, field)?,
                    },
                    parent: parent
                        .filter(|p| !p.trim().is_empty())
                        .map(|p| ghl_id(Some(p), "contactId"))
                        .transpose()?,
                    deleted,
                }
            }
        };
        Ok(WebhookEnvelope {
            event_type,
            location_id,
            company_id,
            webhook_id,
            timestamp,
            app_id: raw.app_id,
            dedupe_key,
            action,
        })
    }
}

fn ghl_id(value: Option<String>, field: &'static str) -> Result<GhlId, EnvelopeError> {
    GhlId::parse(&non_empty(value, field)?).map_err(|e| EnvelopeError::InvalidField {
        field,
        problem: e.0,
    })
}

/// The kind of record an event is about, and whether the event says it is gone.
/// GHL's docs show `"type":"AppointmentCreate"` on update and delete examples; either way
/// the worker re-reads the appointment, and a 404 takes the delete path.
fn synced_event(event_type: &str) -> Option<(EntityKind, bool)> {
    Some(match event_type {
        "ContactCreate" | "ContactUpdate" | "ContactTagUpdate" | "ContactDndUpdate" => {
            (EntityKind::Contact, false)
        }
        "ContactDelete" => (EntityKind::Contact, true),
        "TaskCreate" | "TaskComplete" => (EntityKind::Task, false),
        "TaskDelete" => (EntityKind::Task, true),
        "NoteCreate" | "NoteUpdate" => (EntityKind::Note, false),
        "NoteDelete" => (EntityKind::Note, true),
        "AppointmentCreate" | "AppointmentUpdate" => (EntityKind::Appointment, false),
        "AppointmentDelete" => (EntityKind::Appointment, true),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Verbatim from specs/ghl/docs/webhook-events/ContactCreate.md, plus the envelope fields.
    const CONTACT_CREATE: &str = r#"{"type":"ContactCreate","locationId":"ve9EPM428h8vShlRW1KT","id":"nmFmQEsNgz6AVpgLVUJ0","address1":"3535 1st St N","city":"ruDolomitebika","state":"AL","companyName":"Loram ipsum","country":"DE","source":"xyz form","dateAdded":"2021-11-26T12:41:02.193Z","dateOfBirth":"2000-01-05T00:00:00.000Z","dnd":true,"email":"JohnDeo@gmail.comm","name":"John Deo","firstName":"John","lastName":"Deo","phone":"+919509597501","postalCode":"452001","tags":["id magna sed Lorem","Duis dolor commodo aliqua"],"website":"https://www.google.com/","attachments":[],"assignedTo":"nmFmQEsNgz6AVpgLVUJ0","customFields":[{"id":"BcdmQEsNgz6AVpgLVUJ0","value":"XYZ Corp"}],"timestamp":"2025-01-28T14:35:00Z","webhookId":"abc123xyz"}"#;

    #[test]
    fn contact_create_from_the_docs() {
        let env = WebhookEnvelope::parse(CONTACT_CREATE.as_bytes()).unwrap();
        assert_eq!(env.event_type, "ContactCreate");
        assert_eq!(env.location_id.unwrap().as_str(), "ve9EPM428h8vShlRW1KT");
        assert_eq!(env.dedupe_key, "webhook:abc123xyz");
        assert_eq!(
            env.timestamp.unwrap().to_rfc3339(),
            "2025-01-28T14:35:00+00:00"
        );
        assert_eq!(
            env.action,
            WebhookAction::Sync {
                key: EntityKey {
                    location_id: LocationId::parse("ve9EPM428h8vShlRW1KT").unwrap(),
                    kind: EntityKind::Contact,
                    ghl_id: GhlId::parse("nmFmQEsNgz6AVpgLVUJ0").unwrap(),
                },
                parent: None,
                deleted: false
            }
        );
    }

    #[test]
    fn delete_is_flagged_and_unknown_types_are_ignored() {
        let del = br#"{"type":"ContactDelete","locationId":"l1","id":"c1"}"#;
        match WebhookEnvelope::parse(del).unwrap().action {
            WebhookAction::Sync { deleted, .. } => assert!(deleted),
            other => panic!("{other:?}"),
        }
        let other = br#"{"type":"OpportunityCreate","locationId":"l1","id":"o1"}"#;
        assert_eq!(
            WebhookEnvelope::parse(other).unwrap().action,
            WebhookAction::Ignore
        );
    }

    #[test]
    fn dedupe_falls_back_to_the_body_hash() {
        let a = WebhookEnvelope::parse(br#"{"type":"ContactUpdate","locationId":"l1","id":"c1"}"#)
            .unwrap();
        let b = WebhookEnvelope::parse(br#"{"type":"ContactUpdate","locationId":"l1","id":"c1" }"#)
            .unwrap();
        assert!(a.dedupe_key.starts_with("sha256:"));
        assert_ne!(a.dedupe_key, b.dedupe_key, "different bytes, different key");
    }

    /// The location and agency variants of specs/ghl/docs/webhook-events/App{Install,Uninstall}.md.
    #[test]
    fn install_and_uninstall_on_locations_and_agencies() {
        let location = WebhookEnvelope::parse(
            br#"{"type":"INSTALL","appId":"ve9EPM428h8vShlRW1KT","locationId":"otg8dTQqGLh3Q6iQI55w","companyId":"c1","userId":"u1","planId":"p1","trial":{},"isWhitelabelCompany":false,"whitelabelDetails":{},"companyName":"Example Company"}"#,
        )
        .unwrap();
        assert_eq!(
            location.location_id.unwrap().as_str(),
            "otg8dTQqGLh3Q6iQI55w"
        );
        assert_eq!(location.action, WebhookAction::Install);
        assert_eq!(location.company_id.as_deref(), Some("c1"));
        let agency =
            WebhookEnvelope::parse(br#"{"type":"UNINSTALL","appId":"a","companyId":"c1"}"#)
                .unwrap();
        assert_eq!(agency.location_id, None);
        assert_eq!(agency.action, WebhookAction::Uninstall);
        assert_eq!(agency.company_id.as_deref(), Some("c1"));
        assert_eq!(
            WebhookEnvelope::parse(br#"{"type":"UNINSTALL","appId":"a"}"#).unwrap_err(),
            EnvelopeError::MissingField("locationId")
        );
    }

    #[test]
    fn bad_envelopes_say_what_is_wrong() {
        let cases: [(&[u8], EnvelopeError); 5] = [
            (b"not json", EnvelopeError::NotJson(String::new())),
            (b"[1,2]", EnvelopeError::NotJson(String::new())),
            (
                br#"{"locationId":"l1"}"#,
                EnvelopeError::MissingField("type"),
            ),
            (
                br#"{"type":"ContactCreate"}"#,
                EnvelopeError::MissingField("locationId"),
            ),
            (
                br#"{"type":"ContactCreate","locationId":"l1"}"#,
                EnvelopeError::MissingField("id"),
            ),
        ];
        for (body, expected) in cases {
            let err = WebhookEnvelope::parse(body).unwrap_err();
            match (&err, &expected) {
                (EnvelopeError::NotJson(_), EnvelopeError::NotJson(_)) => {}
                _ => assert_eq!(err, expected),
            }
        }
        let err =
            WebhookEnvelope::parse(br#"{"type":"ContactCreate","locationId":"../x","id":"c"}"#)
                .unwrap_err();
        assert!(matches!(
            err,
            EnvelopeError::InvalidField {
                field: "locationId",
                ..
            }
        ));
        let err = WebhookEnvelope::parse(
            br#"{"type":"ContactCreate","locationId":"l","id":"c","timestamp":"yesterday"}"#,
        )
        .unwrap_err();
        assert!(matches!(
            err,
            EnvelopeError::InvalidField {
                field: "timestamp",
                ..
            }
        ));
    }

    #[test]
    fn tasks_notes_and_appointments_carry_their_contact() {
        let task =
            br#"{"type":"TaskComplete","locationId":"l1","id":"t1","contactId":"c1","title":"x"}"#;
        let note = br#"{"type":"NoteDelete","locationId":"l1","id":"n1","contactId":"c1"}"#;
        let appt = br#"{"type":"AppointmentUpdate","locationId":"l1","appointment":{"id":"a1","contactId":"c1"}}"#;
        let expect = |body: &[u8], kind, id: &str, deleted| {
            assert_eq!(
                WebhookEnvelope::parse(body).unwrap().action,
                WebhookAction::Sync {
                    key: EntityKey {
                        location_id: LocationId::parse("l1").unwrap(),
                        kind,
                        ghl_id: GhlId::parse(id).unwrap(),
                    },
                    parent: Some(GhlId::parse("c1").unwrap()),
                    deleted
                }
            );
        };
        expect(task, EntityKind::Task, "t1", false);
        expect(note, EntityKind::Note, "n1", true);
        expect(appt, EntityKind::Appointment, "a1", false);
    }

    #[test]
    fn task_create_without_contact_id_still_parses() {
        // Real payloads (highlevel-api-docs issue 332) omit contactId and body.
        let body = br#"{"type":"TaskCreate","locationId":"l1","id":"t1","title":"Call back"}"#;
        match WebhookEnvelope::parse(body).unwrap().action {
            WebhookAction::Sync {
                key:
                    EntityKey {
                        kind: EntityKind::Task,
                        ..
                    },
                parent: None,
                ..
            } => {}
            other => panic!("{other:?}"),
        }
        let no_id =
            br#"{"type":"AppointmentCreate","locationId":"l1","appointment":{"contactId":"c1"}}"#;
        assert_eq!(
            WebhookEnvelope::parse(no_id).unwrap_err(),
            EnvelopeError::MissingField("appointment.id")
        );
    }
}
