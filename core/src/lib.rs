//! fieldbook-core: the library that runs on the phone.
//!
//! - [`model`]: areas, sites, templates, inspections, findings, workflow —
//!   pure types and rules, no I/O.
//! - [`doc`]: the Automerge layout of each record kind.
//! - [`store`]: the phone's SQLite store — documents, projections, outbox,
//!   photo table — and the public API the bindings wrap.
//!
//! Everything a caller does goes through [`store::Store`]; nothing else in
//! the crate opens a database.

pub mod doc;
pub mod model;
pub mod photo;
pub mod store;
pub mod sync;
