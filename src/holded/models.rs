//! Contact bodies of specs/holded/invoice-api.json (v1, camelCase, `CustomId` on create).
use serde::{Deserialize, Serialize};

/// The contact fields this service owns. Every field is always sent (empty when GHL has
/// nothing), because PUT is partial: an omitted field would keep a stale value.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct HoldedContactFields {
    pub name: String,
    pub email: String,
    pub phone: String,
    /// `client` or `lead`; omitted when GHL has no type, so Holded keeps its own.
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    pub contact_type: Option<String>,
    pub isperson: bool,
    pub bill_address: BillAddress,
    pub tags: Vec<String>,
    pub social_networks: SocialNetworks,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BillAddress {
    pub address: String,
    pub city: String,
    pub postal_code: String,
    pub province: String,
    pub country: String,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct SocialNetworks {
    pub website: String,
}

/// `POST /contacts`: the fields plus `CustomId` (capital C on write, `customId` on read).
#[derive(Serialize)]
pub(super) struct CreateContactBody<'a> {
    #[serde(rename = "CustomId")]
    pub custom_id: &'a str,
    #[serde(flatten)]
    pub fields: &'a HoldedContactFields,
}

/// `PUT /contacts/{id}` carrying only the tags (the delete policy `tag`).
#[derive(Serialize)]
pub(super) struct TagsBody<'a> {
    pub tags: &'a [String],
}

/// What we read back from a Holded contact.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct HoldedContact {
    pub id: String,
    #[serde(default)]
    pub custom_id: Option<String>,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub tags: Vec<String>,
}

/// A CRM event (specs/holded/crm-api.json `/events`), the Holded home of GHL tasks, notes
/// and appointments. Always sent whole, so an update never keeps a stale field.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct HoldedEventFields {
    pub name: String,
    pub contact_id: String,
    /// `task`, `note` or `meeting`.
    pub kind: String,
    pub desc: String,
    /// Unix seconds.
    pub start_date: i64,
    /// Seconds.
    pub duration: i64,
    /// 1 done, 0 open.
    pub status: i64,
    pub tags: Vec<String>,
    pub location_desc: String,
}
