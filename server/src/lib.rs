//! fieldbook-server: the sync server, its storage and the `fieldbook`
//! command's verbs.
//!
//! - [`http`]: everything on the wire: the router (`app(state)`), sync,
//!   login, tus photos, exports, the admin API, the accept loop, and the
//!   review console in the browser (`http::console`).
//! - [`storage`]: the `Storage` trait and its SQLite implementation.
//! - [`ingest`]: the trust boundary: every check a pushed record passes.
//! - [`auth`]: passwords and device tokens.
//! - [`coverage`] and [`export`]: coverage rates, site maps, the records
//!   and findings exports, and their file formats.
//! - [`registry`]: site registry CSV import.
//! - [`photo_store`]: the photo folder (complete photos, unfinished
//!   uploads, thumbnails).
//! - [`metrics`]: Prometheus counters.
//! - [`devtools`]: simulated phones (`fieldbook sim`), the generated
//!   registry and plausible answers of the demo and benchmarks.
//!
//! The verbs of the `fieldbook` binary live in `src/cli/`. Only this crate
//! knows HTTP routes and server SQL.

pub mod auth;
pub mod coverage;
pub mod devtools;
pub mod error;
pub mod export;
pub mod http;
pub mod ingest;
pub mod metrics;
pub mod photo_store;
pub mod registry;
pub mod storage;

pub use http::{AppState, app};
