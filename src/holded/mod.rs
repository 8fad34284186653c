//! Holded API v1: client and models. Knows nothing of the store.
mod client;
mod models;

pub use client::{HoldedClient, HoldedEndpoints, HoldedError, DEFAULT_LIMIT};
pub use models::{
    BillAddress, HoldedContact, HoldedContactFields, HoldedEventFields, SocialNetworks,
};
