//! ghl-holded-sync: keeps Holded in step with GoHighLevel sub-accounts.
pub mod app;
pub mod budget;
pub mod commands;
pub mod config;
pub mod demo;
pub mod domain;
pub mod ghl;
pub mod holded;
pub mod http;
pub mod metrics;
pub mod sim;
pub mod store;
pub mod sync;
pub mod telemetry;
pub mod tenants;
pub mod upstream;
pub mod webhook;
