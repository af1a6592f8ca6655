//! fieldbook-core: the library that runs on the phone.
//!
//! - [`model`]: areas, sites, templates, inspections, findings, workflow —
//!   pure types and rules, no I/O.
//! - [`doc`]: the Automerge layout of each record kind.
//! - [`store`]: the phone's SQLite store — documents, projections, outbox,
//!   photo table — and the public API the bindings wrap.
//! - [`photo`]: camera photo to upload-ready evidence.
//! - [`policy`]: what each role may change, in which status and area — the
//!   one rule set the store and the server both run.
//! - [`sync`]: the wire format and the phone's sync engine.
//! - [`session`]: a signed-in phone — store, saved login, sync — shared by
//!   the app's UI and its background sync.
//!
//! Everything a caller does goes through [`store::Store`]; nothing else in
//! the crate opens a database.

pub mod doc;
pub mod model;
pub mod photo;
pub mod policy;
pub mod session;
pub mod store;
pub mod sync;
