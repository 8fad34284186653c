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
