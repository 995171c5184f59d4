//! `wix-elevator`: a reverse proxy that lets a Wix site's frontend make the
//! calls only the app may make, under YAML allowlist policies.
//!
//! One request goes through the phases of [`gateway`]: canonicalize, route,
//! authenticate ([`identity`]), authorize ([`policy`]), credential
//! ([`credentials`]), upstream request, forward, response filter, logging.
//! [`sandbox`] emulates the Wix side for development and tests.

#![forbid(unsafe_code)]

pub mod admin;
pub mod authoring;
pub mod body;
pub mod caller;
pub(crate) mod clock;
pub mod config;
pub mod credentials;
pub mod decision_log;
pub mod demo;
pub mod diagnostic;
pub mod error;
pub mod expiring_cache;
pub mod field_name;
pub mod gateway;
pub mod header_list;
pub(crate) mod http1;
pub mod identity;
pub mod metrics;
pub mod policy;
pub mod reload;
pub mod sandbox;
pub mod secret;
pub mod serve;
pub mod server;
pub mod tls;
pub mod wix;
