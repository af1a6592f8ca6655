//! The phone's sync engine.

use super::wire::{ItemKind, RejectCode, SyncRequest, SyncResponse, WireError};
use crate::store::{IncomingRecord, Store, StoreError};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// Store setting holding the server cursor.
pub const CURSOR_KEY: &str = "sync.cursor";

/// What went wrong getting a message to the server and back.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum TransportError {
    /// No connection, timeout, connection cut: try again later.
    #[error("server unreachable: {0}")]
    Unreachable(String),
    /// The token is missing, expired or revoked: log in again.
    #[error("not logged in or the session expired; log in again")]
    Unauthorized,
    /// The server refused the request itself (4xx other than 401).
    #[error("server refused the request ({status}): {message}")]
    Refused { status: u16, message: String },
    /// The server failed (5xx): try again later.
    #[error("server error ({status}): {message}")]
    Server { status: u16, message: String },
}

impl TransportError {
    fn retryable(&self) -> bool {
        matches!(
            self,
            TransportError::Unreachable(_) | TransportError::Server { .. }
        )
    }
}

/// How the engine reaches the store. It borrows the store only between
/// network calls, so an app sharing its store behind a mutex keeps editing
/// while a slow exchange is on the wire.
pub trait StoreAccess {
    fn with<R>(&mut self, f: impl FnOnce(&mut Store) -> R) -> R;
}

impl StoreAccess for Store {
    fn with<R>(&mut self, f: impl FnOnce(&mut Store) -> R) -> R {
        f(self)
    }
}

impl StoreAccess for &std::sync::Mutex<Store> {
    fn with<R>(&mut self, f: impl FnOnce(&mut Store) -> R) -> R {
        // A panic while holding the lock cannot leave the store half
        // written: every write is one SQLite transaction.
        let mut guard = self
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        f(&mut guard)
    }
}

/// Carries one encoded request to the server and returns the encoded
/// response.
pub trait Transport {
    fn sync(&mut self, request: &[u8]) -> Result<Vec<u8>, TransportError>;
}

/// Why a sync run stopped before finishing.
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    /// The caller cancelled; everything applied so far is kept.
    #[error("sync cancelled")]
    Cancelled,
    /// The server could not be reached after every retry.
    #[error("{0}")]
    Transport(#[from] TransportError),
    /// The server's reply is not a valid message.
    #[error("the server's reply is malformed: {0}")]
    Wire(#[from] WireError),
    /// The local store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The exchange did not converge within the round limit.
    #[error("sync did not finish within {0} rounds")]
    TooManyRounds(u32),
}

/// Bounds and pacing of a sync run.
#[derive(Debug, Clone)]
pub struct SyncOptions {
    /// Most items per request.
    pub batch_items_max: usize,
    /// About this many item bytes per request.
    pub batch_bytes_max: usize,
    /// Page size to ask the server for (0 = server default).
    pub page_bytes: u32,
    /// Attempts per request for retryable failures.
    pub attempts_max: u32,
    /// First backoff; doubled each retry, with jitter, capped at `backoff_max`.
    pub backoff_base: Duration,
    pub backoff_max: Duration,
    /// Requests per run before giving up (a guard, far above normal).
    pub rounds_max: u32,
    /// Seed for the backoff jitter.
    pub jitter_seed: u64,
}

impl Default for SyncOptions {
    fn default() -> Self {
        SyncOptions {
            batch_items_max: 2_000,
            batch_bytes_max: 4 << 20,
            page_bytes: 0,
            attempts_max: 6,
            backoff_base: Duration::from_millis(500),
            backoff_max: Duration::from_secs(30),
            rounds_max: 10_000,
            jitter_seed: 0x5eed,
        }
    }
}

/// Running totals, reported after every request.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Progress {
    pub requests: u32,
    /// Items the server acknowledged.
    pub records_up: u64,
    pub bytes_up: u64,
    /// Page items applied.
    pub records_down: u64,
    pub bytes_down: u64,
    /// Outbox changes still waiting.
    pub pending: u64,
}

/// The result of a finished run.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SyncSummary {
    pub progress: Progress,
    /// Items refused this run: (record id, code, message).
    pub rejected: Vec<(String, String, String)>,
    pub cursor: u64,
    /// Failed attempts that were retried.
    pub retries: u32,
    /// What the photo upload after the record exchange did.
    pub photos: super::tus::UploadSummary,
}

/// Runs the protocol until both directions are empty. Progress is reported
/// after every exchange; `cancel` is checked between exchanges and while
/// waiting to retry.
pub fn run<S: StoreAccess + ?Sized>(
    store: &mut S,
    transport: &mut dyn Transport,
    opts: &SyncOptions,
    progress: &mut dyn FnMut(&Progress),
    cancel: &AtomicBool,
) -> Result<SyncSummary, SyncError> {
    let mut summary = SyncSummary::default();
    let mut jitter = opts.jitter_seed | 1;
    for _ in 0..opts.rounds_max {
        if cancel.load(Ordering::Relaxed) {
            return Err(SyncError::Cancelled);
        }
        let (items, cursor) = store.with(|s| -> Result<_, SyncError> {
            let items = s.outgoing_items(opts.batch_items_max, opts.batch_bytes_max)?;
            let cursor: u64 = s
                .setting(CURSOR_KEY)?
                .and_then(|c| c.parse().ok())
                .unwrap_or(0);
            Ok((items, cursor))
        })?;
        let request = SyncRequest {
            cursor,
            page_bytes: opts.page_bytes,
            items: items.iter().map(|o| o.item.clone()).collect(),
        }
        .encode();

        // Every request is idempotent, so a failed or garbled exchange is
        // simply repeated; a reply cut off mid-way looks like a network
        // failure and is treated as one.
        let mut attempt = 0;
        let (reply, resp) = loop {
            attempt += 1;
            let failure = match transport.sync(&request) {
                Ok(r) => match SyncResponse::decode(&r) {
                    Ok(resp) => break (r, resp),
                    Err(e) => SyncError::Wire(e),
                },
                Err(e) if e.retryable() => SyncError::Transport(e),
                Err(e) => return Err(e.into()),
            };
            if attempt >= opts.attempts_max {
                return Err(failure);
            }
            summary.retries += 1;
            jitter ^= jitter << 13;
            jitter ^= jitter >> 7;
            jitter ^= jitter << 17;
            let exp = opts
                .backoff_base
                .saturating_mul(1 << (attempt - 1).min(16))
                .min(opts.backoff_max);
            // Jitter: somewhere in [exp/2, exp].
            let wait = exp / 2 + exp.mul_f64((jitter % 1000) as f64 / 2000.0);
            sleep_cancellable(wait, cancel)?;
        };
        summary.progress.requests += 1;
        summary.progress.bytes_up += request.len() as u64;
        summary.progress.bytes_down += reply.len() as u64;

        // The page and the cursor land together, or not at all.
        let page: Vec<IncomingRecord> = resp
            .page
            .iter()
            .map(|p| IncomingRecord {
                doc_id: p.item.doc_id_text(),
                kind: p.item.record,
                data: p.item.data.clone(),
            })
            .collect();
        store.with(|s| -> Result<(), SyncError> {
            let cursor_text = resp.cursor.to_string();
            let report = s.apply_remote(&page, &[(CURSOR_KEY, &cursor_text)])?;
            summary.progress.records_down += page.len() as u64;
            for (doc, reason) in report.rejected {
                summary.rejected.push((doc, "undecodable".into(), reason));
            }

            let mut acked = Vec::new();
            for &i in &resp.acked {
                if let Some(o) = items.get(i as usize) {
                    acked.extend(o.covers.iter().cloned());
                    summary.progress.records_up += 1;
                }
            }
            s.acknowledge_items(&acked)?;
            for r in &resp.rejected {
                let Some(o) = items.get(r.index as usize) else {
                    continue;
                };
                let doc = o.item.doc_id_text();
                let one_by_one = s.sent_change_by_change()?.contains(&doc);
                if r.code == RejectCode::NeedDocument
                    && o.item.kind == ItemKind::Change
                    && !one_by_one
                {
                    s.send_whole(&doc)?;
                } else if o.item.kind == ItemKind::Document && o.covers.len() > 1 {
                    // The server may hold some of these changes already:
                    // each gets its own verdict next round.
                    s.send_changes(&doc)?;
                } else {
                    // Refused one by one (a change that needs history the
                    // server refused is refused too): the server's version
                    // stands, and the refused changes and those built on
                    // them leave the record.
                    s.record_rejection(&doc, &o.covers, r.code.key(), &r.message)?;
                    s.drop_refused(&doc, &o.covers)?;
                    summary
                        .rejected
                        .push((doc, r.code.key().into(), r.message.clone()));
                }
            }
            summary.cursor = resp.cursor;
            summary.progress.pending = s.pending_counts()?.changes;
            Ok(())
        })?;
        progress(&summary.progress);
        if items.is_empty() && !resp.more {
            return Ok(summary);
        }
    }
    Err(SyncError::TooManyRounds(opts.rounds_max))
}

/// Runs the record exchange ([`run`]), then uploads pending photos,
/// resuming partial uploads from the server's offset.
pub fn run_all<S: StoreAccess + ?Sized, T: Transport + super::tus::PhotoTransport>(
    store: &mut S,
    transport: &mut T,
    opts: &SyncOptions,
    progress: &mut dyn FnMut(&Progress),
    cancel: &AtomicBool,
) -> Result<SyncSummary, SyncError> {
    let mut summary = run(store, transport, opts, progress, cancel)?;
    // Photo uploads retry like requests: a failed chunk is resumed from the
    // server's offset on the next attempt.
    let mut attempt = 0;
    loop {
        attempt += 1;
        match super::tus::upload_pending(store, transport, cancel) {
            Ok(p) => {
                summary.photos.uploaded += p.uploaded;
                summary.photos.already_there += p.already_there;
                summary.photos.missing_files += p.missing_files;
                summary.photos.damaged_files += p.damaged_files;
                summary.photos.bytes_sent += p.bytes_sent;
                summary.progress.bytes_up += p.bytes_sent;
                summary.progress.pending = store.with(|s| s.pending_counts())?.changes;
                progress(&summary.progress);
                return Ok(summary);
            }
            Err(SyncError::Transport(e)) if e.retryable() && attempt < opts.attempts_max => {
                summary.retries += 1;
                let exp = opts
                    .backoff_base
                    .saturating_mul(1 << (attempt - 1).min(16))
                    .min(opts.backoff_max);
                sleep_cancellable(exp, cancel)?;
            }
            Err(e) => return Err(e),
        }
    }
}

fn sleep_cancellable(total: Duration, cancel: &AtomicBool) -> Result<(), SyncError> {
    let step = Duration::from_millis(50);
    let mut left = total;
    while !left.is_zero() {
        if cancel.load(Ordering::Relaxed) {
            return Err(SyncError::Cancelled);
        }
        let s = left.min(step);
        std::thread::sleep(s);
        left -= s;
    }
    Ok(())
}
