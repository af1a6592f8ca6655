//! fieldbook-ffi: the core exposed to Kotlin, Swift and Python through uniffi.
//!
//! Only this crate knows uniffi. Every exported object wraps a core object and
//! delegates in one line; no business rule lives here. The uniffi surface is
//! added with the bindings work; until then the crate only re-exports the
//! core so the workspace builds as one.

pub use fieldbook_core as core;
