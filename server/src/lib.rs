//! fieldbook-server: the sync server, its storage and the `fieldbook`
//! command's verbs.
//!
//! - [`app`]: the axum router (`app(state)`), handlers and extractors.
//! - [`storage`]: the `Storage` trait and its SQLite implementation.
//! - [`ingest`]: the trust boundary: every check a pushed record passes.
//! - [`auth`]: passwords and device tokens.
//! - [`console`]: the review console in the browser.
//! - [`coverage`]: coverage rates, site maps and the records export.
//! - [`registry`]: site registry CSV import.
//! - [`registry_gen`]: a generated registry for the demo and benchmarks.
//! - [`photos`]: tus photo uploads and downloads.
//! - [`metrics`]: Prometheus counters.
//! - [`sim`]: simulated phones (`fieldbook sim`), a tool.
//!
//! Only this crate knows HTTP routes and server SQL.

pub mod admin_http;
pub mod answers;
pub mod app;
pub mod auth;
pub mod console;
pub mod coverage;
pub mod error;
pub mod export;
pub mod export_http;
pub mod ingest;
pub mod listen;
pub mod login;
pub mod metrics;
pub mod photos;
pub mod registry;
pub mod registry_gen;
pub mod sim;
pub mod storage;

pub use app::{AppState, app};
