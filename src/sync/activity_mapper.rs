//! DESIGN.md's mapping of a contact's tasks, notes and appointments to Holded CRM events
//! on the contact. Every event's first tag is its GHL origin (`ghl-task-<id>` …) so it can
//! be recognised in Holded.
use chrono::{DateTime, NaiveDateTime};
use sha2::Digest;

use crate::ghl::{GhlAppointment, GhlNote, GhlTask};
use crate::holded::HoldedEventFields;

/// The Holded event a GHL activity maps to, with the hash that says whether it changed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MappedEvent {
    pub fields: HoldedEventFields,
    pub hash: String,
}

/// Holded shows an event by its name; a long first line is cut at this many characters.
const NAME_LIMIT: usize = 120;

/// A fresh task, note or appointment from GHL.
#[derive(Clone, Debug)]
pub enum GhlActivity {
    Task(GhlTask),
    Note(GhlNote),
    Appointment(GhlAppointment),
}

pub struct ActivityMapper;

impl ActivityMapper {
    pub fn map(activity: &GhlActivity, holded_contact_id: &str) -> MappedEvent {
        match activity {
            GhlActivity::Task(task) => Self::task(task, holded_contact_id),
            GhlActivity::Note(note) => Self::note(note, holded_contact_id),
            GhlActivity::Appointment(a) => Self::appointment(a, holded_contact_id),
        }
    }

    pub fn task(task: &GhlTask, holded_contact_id: &str) -> MappedEvent {
        let body = text(&task.body);
        mapped(HoldedEventFields {
            name: non_empty_or(text(&task.title), || first_line(&body), "Task"),
            contact_id: holded_contact_id.to_owned(),
            kind: "task".into(),
            desc: body,
            start_date: unix_seconds(task.due_date.as_deref()),
            duration: 0,
            status: i64::from(task.completed),
            tags: vec![format!("ghl-task-{}", task.id)],
            location_desc: String::new(),
        })
    }

    pub fn note(note: &GhlNote, holded_contact_id: &str) -> MappedEvent {
        let body = text(&note.body);
        mapped(HoldedEventFields {
            name: non_empty_or(first_line(&body), String::new, "Note"),
            contact_id: holded_contact_id.to_owned(),
            kind: "note".into(),
            desc: body,
            start_date: unix_seconds(note.date_added.as_deref()),
            duration: 0,
            status: 0,
            tags: vec![format!("ghl-note-{}", note.id)],
            location_desc: String::new(),
        })
    }

    /// `status` is 1 once the appointment took place (`showed`); GHL's own status word is
    /// kept as a `ghl-status-<status>` tag, since Holded's event status is only 0/1.
    pub fn appointment(appointment: &GhlAppointment, holded_contact_id: &str) -> MappedEvent {
        let start = unix_seconds(appointment.start_time.as_deref());
        let end = unix_seconds(appointment.end_time.as_deref());
        let status = text(&appointment.appointment_status).to_lowercase();
        let mut tags = vec![format!("ghl-appointment-{}", appointment.id)];
        if !status.is_empty() {
            tags.push(format!("ghl-status-{status}"));
        }
        mapped(HoldedEventFields {
            name: non_empty_or(text(&appointment.title), String::new, "Appointment"),
            contact_id: holded_contact_id.to_owned(),
            kind: "meeting".into(),
            desc: text(&appointment.notes),
            start_date: start,
            duration: (end - start).max(0),
            status: i64::from(status == "showed"),
            tags,
            location_desc: text(&appointment.address),
        })
    }
}

fn mapped(fields: HoldedEventFields) -> MappedEvent {
    let bytes = serde_json::to_vec(&fields).expect("plain struct serialises");
    let hash = format!("event-v1:{}", hex::encode(sha2::Sha256::digest(bytes)));
    MappedEvent { fields, hash }
}

fn text(value: &Option<String>) -> String {
    value
        .as_deref()
        .map(str::trim)
        .unwrap_or_default()
        .to_owned()
}

fn first_line(body: &str) -> String {
    body.lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or_default()
        .chars()
        .take(NAME_LIMIT)
        .collect()
}

fn non_empty_or(value: String, fallback: impl FnOnce() -> String, last: &str) -> String {
    if !value.is_empty() {
        return value;
    }
    let second = fallback();
    if second.is_empty() {
        last.to_owned()
    } else {
        second
    }
}

/// GHL writes ISO-8601 with an offset (`2021-12-22T06:55:00.000Z`, `2023-09-25T16:00:00+05:30`)
/// and, in a contact's appointment list, a bare `2021-07-16 11:00:00` (taken as UTC).
/// Holded v1 wants Unix seconds; an absent or unreadable time becomes 0.
pub fn unix_seconds(raw: Option<&str>) -> i64 {
    let Some(raw) = raw.map(str::trim).filter(|r| !r.is_empty()) else {
        return 0;
    };
    if let Ok(parsed) = DateTime::parse_from_rfc3339(raw) {
        return parsed.timestamp();
    }
    NaiveDateTime::parse_from_str(raw, "%Y-%m-%d %H:%M:%S")
        .map(|naive| naive.and_utc().timestamp())
        .unwrap_or_else(|_| {
            tracing::warn!(time = raw, "unreadable GHL time; sent as 0");
            0
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Utc;

    fn at(raw: &str) -> i64 {
        raw.parse::<DateTime<Utc>>().unwrap().timestamp()
    }

    #[test]
    fn task_fields_survive() {
        let task = GhlTask {
            id: "t1".into(),
            title: Some("Call back".into()),
            body: Some("About the quote".into()),
            due_date: Some("2021-12-22T06:55:00.000Z".into()),
            completed: true,
            contact_id: Some("c1".into()),
        };
        let f = ActivityMapper::task(&task, "h1").fields;
        assert_eq!(
            (f.name.as_str(), f.desc.as_str(), f.kind.as_str()),
            ("Call back", "About the quote", "task")
        );
        assert_eq!(f.start_date, at("2021-12-22T06:55:00Z"));
        assert_eq!((f.status, f.contact_id.as_str()), (1, "h1"));
        assert_eq!(f.tags, vec!["ghl-task-t1"]);
        let open = GhlTask {
            completed: false,
            ..task
        };
        assert_eq!(ActivityMapper::task(&open, "h1").fields.status, 0);
    }

    #[test]
    fn note_is_named_by_its_first_line() {
        let note = GhlNote {
            id: "n1".into(),
            body: Some("\n  Met at the fair\nWants a demo".into()),
            date_added: Some("2021-11-26T12:41:02.193Z".into()),
            contact_id: None,
        };
        let f = ActivityMapper::note(&note, "h1").fields;
        assert_eq!(f.name, "Met at the fair");
        assert_eq!(f.desc, "Met at the fair\nWants a demo");
        assert_eq!(f.start_date, at("2021-11-26T12:41:02Z"));
        assert_eq!(f.kind, "note");
    }

    #[test]
    fn appointment_keeps_times_status_and_address() {
        let appointment = GhlAppointment {
            id: "a1".into(),
            title: Some("Demo".into()),
            start_time: Some("2023-09-25T16:00:00+05:30".into()),
            end_time: Some("2023-09-25T16:45:00+05:30".into()),
            appointment_status: Some("confirmed".into()),
            address: Some("Calle Mayor 1".into()),
            notes: None,
            contact_id: Some("c1".into()),
        };
        let f = ActivityMapper::appointment(&appointment, "h1").fields;
        assert_eq!(f.start_date, at("2023-09-25T10:30:00Z"));
        assert_eq!(f.duration, 45 * 60);
        assert_eq!(
            (f.kind.as_str(), f.location_desc.as_str(), f.status),
            ("meeting", "Calle Mayor 1", 0)
        );
        assert!(f.tags.contains(&"ghl-status-confirmed".to_string()));
    }

    #[test]
    fn times_in_every_ghl_spelling() {
        assert_eq!(
            unix_seconds(Some("2021-07-16 11:00:00")),
            at("2021-07-16T11:00:00Z")
        );
        assert_eq!(unix_seconds(None), 0);
        assert_eq!(unix_seconds(Some("soon")), 0);
    }

    #[test]
    fn hash_follows_content() {
        let note = GhlNote {
            id: "n1".into(),
            body: Some("a".into()),
            ..Default::default()
        };
        let changed = GhlNote {
            body: Some("b".into()),
            ..note.clone()
        };
        assert_eq!(
            ActivityMapper::note(&note, "h").hash,
            ActivityMapper::note(&note, "h").hash
        );
        assert_ne!(
            ActivityMapper::note(&note, "h").hash,
            ActivityMapper::note(&changed, "h").hash
        );
    }
}
