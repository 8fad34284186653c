//! The fields we read from `GetContectByIdSchema` (specs/ghl/apps/contacts.json). Every
//! field is optional and unknown fields are ignored: GHL payloads drift from the docs.
use serde::Deserialize;

#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct GhlContact {
    pub id: String,
    pub location_id: Option<String>,
    pub name: Option<String>,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub company_name: Option<String>,
    pub email: Option<String>,
    pub phone: Option<String>,
    /// `lead` or `customer` in GHL.
    #[serde(rename = "type")]
    pub contact_type: Option<String>,
    pub address1: Option<String>,
    pub city: Option<String>,
    pub state: Option<String>,
    pub postal_code: Option<String>,
    pub country: Option<String>,
    pub website: Option<String>,
    #[serde(default)]
    pub tags: Vec<String>,
    pub date_updated: Option<String>,
}

/// `GET /contacts/{contactId}` → `{ "contact": … }`.
#[derive(Deserialize)]
pub(super) struct ContactEnvelope {
    pub contact: GhlContact,
}

/// `TaskSchema`.
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct GhlTask {
    pub id: String,
    pub title: Option<String>,
    pub body: Option<String>,
    pub due_date: Option<String>,
    #[serde(default)]
    pub completed: bool,
    pub contact_id: Option<String>,
}

/// `GetNoteSchema`.
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct GhlNote {
    pub id: String,
    pub body: Option<String>,
    pub date_added: Option<String>,
    pub contact_id: Option<String>,
}

/// `CalendarEventDTO` (by id) and `GetEventSchema` (a contact's list) share these fields.
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct GhlAppointment {
    pub id: String,
    pub title: Option<String>,
    pub start_time: Option<String>,
    pub end_time: Option<String>,
    pub appointment_status: Option<String>,
    pub address: Option<String>,
    pub notes: Option<String>,
    pub contact_id: Option<String>,
}

#[derive(Deserialize)]
pub(super) struct TaskEnvelope {
    pub task: GhlTask,
}

#[derive(Deserialize)]
pub(super) struct TaskList {
    #[serde(default)]
    pub tasks: Vec<GhlTask>,
}

#[derive(Deserialize)]
pub(super) struct NoteEnvelope {
    pub note: GhlNote,
}

#[derive(Deserialize)]
pub(super) struct NoteList {
    #[serde(default)]
    pub notes: Vec<GhlNote>,
}

#[derive(Deserialize)]
pub(super) struct AppointmentEnvelope {
    pub event: GhlAppointment,
}

#[derive(Deserialize)]
pub(super) struct AppointmentList {
    #[serde(default)]
    pub events: Vec<GhlAppointment>,
}

/// One hit of `POST /contacts/search` (`ContactsSearchSchema`, plus the cursor).
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct SearchHit {
    pub id: String,
    pub date_updated: Option<String>,
    /// The cursor to continue after this hit (`searchAfter`, UNVERIFIED mirror).
    pub search_after: Option<serde_json::Value>,
}

/// One page of `POST /contacts/search`.
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
pub struct SearchPage {
    #[serde(default)]
    pub contacts: Vec<SearchHit>,
    /// How many contacts match in all (UNVERIFIED mirror).
    pub total: Option<u64>,
}
