//! The AEAD context of each sealed column: a ciphertext only opens in the row and column it
//! was written for, so rows cannot be swapped to hand one tenant another's credentials.
use crate::domain::LocationId;
use crate::store::TokenOwner;

pub fn access_context(owner: &TokenOwner) -> String {
    format!("tokens.access:{}:{}", owner.owner_type.as_str(), owner.id)
}

pub fn refresh_context(owner: &TokenOwner) -> String {
    format!("tokens.refresh:{}:{}", owner.owner_type.as_str(), owner.id)
}

pub fn holded_key_context(location_id: &LocationId) -> String {
    format!("tenants.holded_key:{location_id}")
}
