//! Sync: the wire format shared with the server, and the phone's sync
//! engine.
//!
//! The engine runs the batched cursor protocol of `docs/protocol.md` until nothing is
//! left either way: push a bounded batch of the outbox with the cursor, apply
//! the returned page and the new cursor in one store transaction, clear what
//! the server acknowledged, repeat. It does no I/O itself: it talks through a
//! [`Transport`], so tests can drop, cut or delay messages; [`http`] is the
//! real transport.

pub mod client;
pub mod faults;
pub mod http;
pub mod tus;
pub mod wire;

pub use client::{
    Progress, SyncError, SyncOptions, SyncSummary, Transport, TransportError, run, run_all,
};
