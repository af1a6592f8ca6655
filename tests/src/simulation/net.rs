//! The in-process network: phones' requests reach the real axum router
//! through `tower::ServiceExt::oneshot` on a runtime the simulation owns,
//! one request at a time, and the seeded generator decides what the
//! network does to each exchange.
//!
//! One request at a time makes the server's behaviour a function of the
//! order of requests alone, whatever threads tokio's blocking pool uses:
//! the storage call of a request has finished before the next request
//! starts. Faults per exchange: the request is lost; the request is held
//! and delivered later, after other traffic (the phone times out and
//! retries, so the late copy is a stale duplicate that arrives out of
//! order); the request's body reaches the server cut at a random byte
//! (the server must refuse it: a malformed sync message, a chunk failing
//! its checksum); the server handles it and the reply is lost; the reply
//! is cut at a random byte; the request is delivered twice. Photo chunks are
//! split into small pieces on the wire, each its own tus `PATCH` (the
//! phone's own chunk is 256 KiB, larger than a simulated photo), and an
//! upload may be cut after any piece: that is every chunk boundary the
//! server can see. A cut may also be the server dying while it wrote the
//! next piece, leaving a prefix of it on disk unacknowledged (written into
//! the server's partial-upload file, the server then restarted), so
//! uploads resume from arbitrary bytes too.

use super::crash::{CrashingStorage, Plan};
use super::{Rng, Trace};
use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, Request};
use fieldbook_core::store::{InspectionFilter, Store};
use fieldbook_core::sync::client::{Transport, TransportError};
use fieldbook_core::sync::http::{LoginRequest, LoginResponse, SYNC_CONTENT_TYPE};
use fieldbook_core::sync::tus::{self, PhotoTransport, UploadState};
use fieldbook_server::AppState;
use fieldbook_server::storage::sqlite::SqliteStorage;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use tower::ServiceExt;

/// Bytes per tus `PATCH` on the simulated wire.
pub const PIECE_BYTES: usize = 8 << 10;

/// A running server: storage, state and router over one data folder.
struct Live {
    storage: Arc<CrashingStorage>,
    state: AppState,
    router: Router,
}

/// The server process, restartable from its files.
pub struct Server {
    dir: PathBuf,
    pub plan: Arc<Mutex<Plan>>,
    /// Unix milliseconds of the server's clock.
    pub clock: Arc<AtomicI64>,
    live: Option<Live>,
    pub restarts: u32,
}

impl Server {
    pub fn open(dir: &Path, clock: Arc<AtomicI64>) -> Result<Server, String> {
        let mut s = Server {
            dir: dir.to_owned(),
            plan: Arc::new(Mutex::new(Plan::default())),
            clock,
            live: None,
            restarts: 0,
        };
        s.start()?;
        Ok(s)
    }

    fn start(&mut self) -> Result<(), String> {
        let sqlite = SqliteStorage::open(&self.database())
            .map_err(|e| format!("server storage does not open: {e}"))?;
        let storage = Arc::new(CrashingStorage::new(sqlite, self.plan.clone()));
        let mut state = AppState::new(storage.clone(), self.dir.join("photos"))
            .map_err(|e| format!("server photo folder: {e}"))?;
        let clock = self.clock.clone();
        state.clock = Arc::new(move || clock.load(Ordering::SeqCst));
        let router = fieldbook_server::app(state.clone());
        self.live = Some(Live {
            storage,
            state,
            router,
        });
        Ok(())
    }

    /// Kills the process (every handle of the old storage is dropped, so
    /// its connections close) and starts a new one on the same files.
    pub fn restart(&mut self) -> Result<(), String> {
        self.live = None;
        {
            let mut p = self.plan.lock().unwrap_or_else(|e| e.into_inner());
            p.crashed = false;
            p.crash_at = None;
        }
        self.restarts += 1;
        self.start()
    }

    /// The server's database file.
    pub fn database(&self) -> PathBuf {
        self.dir.join("server.db")
    }

    /// The bytes of an unfinished upload, where the server keeps them.
    pub fn partial_upload(&self, user: &str, hash: &str) -> Result<PathBuf, String> {
        Ok(self.state()?.photos.part_path(user, hash))
    }

    pub fn storage(&self) -> Result<&CrashingStorage, String> {
        self.live
            .as_ref()
            .map(|l| l.storage.as_ref())
            .ok_or_else(|| "the server is not running".to_owned())
    }

    pub fn state(&self) -> Result<&AppState, String> {
        self.live
            .as_ref()
            .map(|l| &l.state)
            .ok_or_else(|| "the server is not running".to_owned())
    }

    fn crashed(&self) -> Option<String> {
        let p = self.plan.lock().unwrap_or_else(|e| e.into_inner());
        if p.crashed {
            Some(p.what.clone().unwrap_or_default())
        } else {
            None
        }
    }
}

/// One call a phone makes.
#[derive(Debug, Clone)]
pub enum Call {
    Sync(Vec<u8>),
    Login(Vec<u8>),
    Head(String),
    Create(String, u64),
    Patch(String, u64, Vec<u8>),
}

impl Call {
    fn name(&self) -> &'static str {
        match self {
            Call::Sync(_) => "sync",
            Call::Login(_) => "login",
            Call::Head(_) => "head",
            Call::Create(..) => "create",
            Call::Patch(..) => "patch",
        }
    }

    fn request(&self, token: Option<&str>) -> Request<Body> {
        let b = Request::builder().header("tus-resumable", tus::TUS_VERSION);
        let b = match token {
            Some(t) => b.header("authorization", format!("Bearer {t}")),
            None => b,
        };
        let built = match self {
            Call::Sync(body) => b
                .method("POST")
                .uri("/v1/sync")
                .header("content-type", SYNC_CONTENT_TYPE)
                .body(Body::from(body.clone())),
            Call::Login(body) => b
                .method("POST")
                .uri("/v1/login")
                .header("content-type", "application/json")
                .body(Body::from(body.clone())),
            Call::Head(h) => b
                .method("HEAD")
                .uri(format!("/v1/photos/{h}"))
                .body(Body::empty()),
            Call::Create(h, len) => b
                .method("POST")
                .uri("/v1/photos")
                .header("upload-length", len.to_string())
                .header(
                    "upload-metadata",
                    format!("blake3 {}", tus::base64_encode(h.as_bytes())),
                )
                .body(Body::empty()),
            Call::Patch(h, offset, chunk) => b
                .method("PATCH")
                .uri(format!("/v1/photos/{h}"))
                .header("content-type", "application/offset+octet-stream")
                .header("upload-offset", offset.to_string())
                .header("upload-checksum", tus::checksum_header(chunk))
                .body(Body::from(chunk.clone())),
        };
        // Every part above is a valid header or URI.
        built.unwrap_or_else(|e| unreachable!("request: {e}"))
    }
}

/// A reply as the phone's HTTP stack would see it.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

/// A request held back by the network, delivered later.
struct Held {
    phone: usize,
    token: Option<String>,
    call: Call,
}

/// What the network did, for the report.
#[derive(Debug, Clone, Copy, Default)]
pub struct NetStats {
    pub exchanges: u64,
    pub requests_dropped: u64,
    /// Requests whose body reached the server cut short.
    pub requests_cut: u64,
    pub held: u64,
    pub stale_delivered: u64,
    pub replies_dropped: u64,
    pub replies_cut: u64,
    pub duplicated: u64,
    pub uploads_cut: u64,
    pub server_crashes: u64,
    pub token_expiries: u64,
}

/// The network and the server behind it.
pub struct Net {
    rt: tokio::runtime::Runtime,
    pub server: Server,
    pub rng: Rng,
    pub trace: Trace,
    /// Faults happen only while this is on; the final sync runs healed.
    pub faults: bool,
    /// Chance per exchange that something goes wrong, per mille.
    pub fault_per_mille: u64,
    held: Vec<Held>,
    pub stats: NetStats,
    /// Exchanges after which the server's clock jumps past every token's
    /// lifetime.
    pub expire_at: Vec<u64>,
    /// Cut the next photo chunk after this many pieces, faults or not
    /// (`usize::MAX`: all but the last).
    pub forced_cut: Option<usize>,
    /// With the forced cut, the server dies having written all of the next
    /// piece.
    pub forced_torn_whole: bool,
    /// The server dies in the next upload creation, faults or not.
    pub forced_create_crash: bool,
}

impl Net {
    pub fn new(server: Server, rng: Rng, trace: Trace) -> Result<Net, String> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| format!("runtime: {e}"))?;
        Ok(Net {
            rt,
            server,
            rng,
            trace,
            faults: false,
            fault_per_mille: 0,
            held: Vec::new(),
            stats: NetStats::default(),
            expire_at: Vec::new(),
            forced_cut: None,
            forced_torn_whole: false,
            forced_create_crash: false,
        })
    }

    /// Delivers one request to the server as it is now. `None`: the
    /// server died handling it (it was restarted; the phone sees a broken
    /// connection).
    fn deliver(&mut self, call: &Call, token: Option<&str>) -> Result<Option<Reply>, String> {
        let router = match &self.server.live {
            Some(l) => l.router.clone(),
            None => return Err("the server is not running".into()),
        };
        let req = call.request(token);
        let reply = self.rt.block_on(async move {
            let resp = match router.oneshot(req).await {
                Ok(r) => r,
                Err(never) => match never {},
            };
            let (parts, body) = resp.into_parts();
            let body = axum::body::to_bytes(body, usize::MAX)
                .await
                .map_err(|e| format!("reply body: {e}"))?;
            Ok::<_, String>(Reply {
                status: parts.status.as_u16(),
                headers: parts.headers,
                body: body.to_vec(),
            })
        })?;
        if let Some(what) = self.server.crashed() {
            self.stats.server_crashes += 1;
            self.trace.push(format!(
                "  server crashed {what} during {}; restart",
                call.name()
            ));
            self.server.restart()?;
            return Ok(None);
        }
        Ok(Some(reply))
    }

    /// Delivers some of the held requests (all when `all`), replies
    /// discarded: their senders gave up on them long ago.
    pub fn release_held(&mut self, all: bool) -> Result<(), String> {
        let mut i = 0;
        while i < self.held.len() {
            if all || self.rng.chance(300) {
                let h = self.held.remove(i);
                self.stats.stale_delivered += 1;
                let r = self.deliver(&h.call, h.token.as_deref())?;
                self.trace.push(format!(
                    "  stale {} of p{} delivered: {}",
                    h.call.name(),
                    h.phone,
                    r.map_or("server died".into(), |r| r.status.to_string())
                ));
            } else {
                i += 1;
            }
        }
        Ok(())
    }

    /// One exchange of `phone`, with the faults the generator picks.
    pub fn exchange(
        &mut self,
        phone: usize,
        token: Option<&str>,
        call: Call,
    ) -> Result<Result<Reply, TransportError>, String> {
        self.stats.exchanges += 1;
        if self.expire_at.first() == Some(&self.stats.exchanges) {
            self.expire_at.remove(0);
            self.stats.token_expiries += 1;
            self.server.clock.fetch_add(
                fieldbook_server::auth::TOKEN_TTL_MS + 3_600_000,
                Ordering::SeqCst,
            );
            self.trace
                .push("  server clock jumps past every token".into());
        }
        if !self.held.is_empty() {
            self.release_held(false)?;
        }
        let lost = |what: &str| {
            Ok(Err(TransportError::Unreachable(format!(
                "simulated: {what}"
            ))))
        };
        let name = call.name();
        let fault = if self.faults && self.rng.chance(self.fault_per_mille) {
            self.rng.below(6)
        } else {
            6
        };
        match fault {
            0 => {
                self.stats.requests_dropped += 1;
                self.trace.push(format!("p{phone} {name}: request lost"));
                return lost("request lost");
            }
            1 => {
                self.stats.held += 1;
                self.trace.push(format!("p{phone} {name}: request held"));
                self.held.push(Held {
                    phone,
                    token: token.map(str::to_owned),
                    call,
                });
                return lost("timed out");
            }
            5 => {
                // The connection broke while the body was on its way and
                // the server read what came: it must refuse it.
                let cut = match &call {
                    Call::Sync(b) | Call::Login(b) | Call::Patch(_, _, b) if !b.is_empty() => {
                        self.rng.below(b.len() as u64) as usize
                    }
                    _ => {
                        self.stats.requests_dropped += 1;
                        self.trace.push(format!("p{phone} {name}: request lost"));
                        return lost("request lost");
                    }
                };
                let short = match call {
                    Call::Sync(mut b) => {
                        b.truncate(cut);
                        Call::Sync(b)
                    }
                    Call::Login(mut b) => {
                        b.truncate(cut);
                        Call::Login(b)
                    }
                    Call::Patch(h, o, mut b) => {
                        b.truncate(cut);
                        Call::Patch(h, o, b)
                    }
                    other => other,
                };
                self.stats.requests_cut += 1;
                let status = self
                    .deliver(&short, token)?
                    .map_or("server died".to_owned(), |r| r.status.to_string());
                // A PATCH may meet an upload already complete, answered
                // 204 with nothing written; the photo checks judge those.
                if status.starts_with('2') && name != "patch" {
                    return Err(format!(
                        "p{phone} {name}: the server accepted a request cut short ({status})"
                    ));
                }
                self.trace.push(format!(
                    "p{phone} {name}: request cut short, server says {status}"
                ));
                return lost("connection broken while sending");
            }
            _ => {}
        }
        let Some(mut reply) = self.deliver(&call, token)? else {
            self.trace.push(format!("p{phone} {name}: server died"));
            return lost("connection reset");
        };
        if fault == 4 {
            self.stats.duplicated += 1;
            let second = self.deliver(&call, token)?;
            let keep_second = self.rng.chance(500);
            self.trace.push(format!(
                "p{phone} {name}: delivered twice ({} then {}), phone sees the {}",
                reply.status,
                second
                    .as_ref()
                    .map_or("died".into(), |r| r.status.to_string()),
                if keep_second { "second" } else { "first" }
            ));
            match second {
                Some(r) if keep_second => reply = r,
                None if keep_second => return lost("connection reset"),
                _ => {}
            }
            return Ok(Ok(reply));
        }
        match fault {
            2 => {
                self.stats.replies_dropped += 1;
                self.trace
                    .push(format!("p{phone} {name}: {} reply lost", reply.status));
                lost("reply lost")
            }
            3 => {
                self.stats.replies_cut += 1;
                let len = reply.body.len() as u64;
                let draw = self.rng.next_u64();
                let cut = draw.checked_rem(len).unwrap_or(0);
                // The position stays out of the trace: reply sizes vary
                // with the random ids inside them.
                self.trace
                    .push(format!("p{phone} {name}: {} reply cut", reply.status));
                // Only a sync body can reach the phone cut (the decoder
                // must notice); elsewhere a short body is a broken
                // connection.
                if matches!(call, Call::Sync(_)) && (200..300).contains(&reply.status) {
                    reply.body.truncate(cut as usize);
                    Ok(Ok(reply))
                } else {
                    lost("reply cut off")
                }
            }
            _ => {
                self.trace
                    .push(format!("p{phone} {name}: {}", reply.status));
                Ok(Ok(reply))
            }
        }
    }
}

/// The HTTP status rules of the real transport.
fn check_status(r: &Reply) -> Result<(), TransportError> {
    let message = || String::from_utf8_lossy(&r.body[..r.body.len().min(300)]).into_owned();
    match r.status {
        200..=299 => Ok(()),
        401 => Err(TransportError::Unauthorized),
        s @ 500..=599 => Err(TransportError::Server {
            status: s,
            message: message(),
        }),
        s => Err(TransportError::Refused {
            status: s,
            message: message(),
        }),
    }
}

/// A phone's connection: the transports the core's sync engine uses.
pub struct Link<'a> {
    pub net: &'a mut Net,
    pub phone: usize,
    /// The phone's user, whose uploads these are.
    pub name: String,
    pub token: Option<String>,
    /// A harness failure (not a network fault) seen inside a transport
    /// call, reported after the sync returns.
    pub broken: Option<String>,
    /// The phone's store and user, when the user may edit while the sync
    /// waits for the network (as the app allows).
    pub user: Option<(&'a Mutex<Store>, &'a str)>,
    /// What the user did meanwhile.
    pub edits: Vec<Edit>,
}

/// An edit made while a sync was on the wire.
#[derive(Debug, Clone)]
pub struct Edit {
    pub inspection: String,
    /// A comment (one more workflow event) rather than an answer.
    pub comment: bool,
    /// The outbox right after the edit: (record, change hash).
    pub queued: Vec<(String, String)>,
}

impl Link<'_> {
    /// The user comments on an inspection, or changes an answer of one of
    /// theirs that is still editable, between two exchanges of a sync.
    fn edit_meanwhile(&mut self) -> Result<(), String> {
        let Some((store, user)) = self.user else {
            return Ok(());
        };
        let mut s = store
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let listed = s
            .list_inspections(&InspectionFilter::default())
            .map_err(|e| e.to_string())?;
        if listed.is_empty() {
            return Ok(());
        }
        let editable: Vec<&String> = listed
            .iter()
            .filter(|i| i.inspector == user && i.status.editable())
            .map(|i| &i.id)
            .collect();
        let edit = if !editable.is_empty() && self.net.rng.chance(500) {
            let id = editable[self.net.rng.below(editable.len() as u64) as usize].clone();
            s.set_answer(&id, "satisfaction", "mostly_satisfied".into())
                .map_err(|e| format!("edit during a sync: {e}"))?;
            Edit {
                inspection: id,
                comment: false,
                queued: Vec::new(),
            }
        } else {
            let id = listed[self.net.rng.below(listed.len() as u64) as usize]
                .id
                .clone();
            s.comment(&id, "同步时备注")
                .map_err(|e| format!("comment during a sync: {e}"))?;
            Edit {
                inspection: id,
                comment: true,
                queued: Vec::new(),
            }
        };
        let queued = s
            .outbox_batch(1_000_000, usize::MAX)
            .map_err(|e| e.to_string())?
            .into_iter()
            .map(|o| (o.doc_id, o.hash))
            .collect();
        self.edits.push(Edit { queued, ..edit });
        Ok(())
    }

    fn call(&mut self, call: Call) -> Result<Reply, TransportError> {
        if self.user.is_some()
            && self.net.rng.chance(60)
            && let Err(e) = self.edit_meanwhile()
        {
            self.broken.get_or_insert(e);
        }
        match self.net.exchange(self.phone, self.token.as_deref(), call) {
            Ok(r) => r,
            Err(e) => {
                self.broken.get_or_insert(e);
                Err(TransportError::Unreachable("harness failure".into()))
            }
        }
    }

    /// `POST /v1/login`; keeps the new token.
    pub fn login(&mut self, req: &LoginRequest) -> Result<LoginResponse, TransportError> {
        let body = serde_json::to_vec(req).map_err(|e| TransportError::Refused {
            status: 0,
            message: e.to_string(),
        })?;
        let r = self.call(Call::Login(body))?;
        check_status(&r)?;
        let login: LoginResponse =
            serde_json::from_slice(&r.body).map_err(|e| TransportError::Server {
                status: r.status,
                message: format!("malformed login reply: {e}"),
            })?;
        self.token = Some(login.token.clone());
        Ok(login)
    }
}

impl Transport for Link<'_> {
    fn sync(&mut self, request: &[u8]) -> Result<Vec<u8>, TransportError> {
        let r = self.call(Call::Sync(request.to_vec()))?;
        check_status(&r)?;
        Ok(r.body)
    }
}

fn header_u64(r: &Reply, name: &str) -> Option<u64> {
    r.headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
}

impl PhotoTransport for Link<'_> {
    fn head(&mut self, hash: &str) -> Result<Option<UploadState>, TransportError> {
        let r = self.call(Call::Head(hash.to_owned()))?;
        if r.status == 404 {
            return Ok(None);
        }
        check_status(&r)?;
        match (
            header_u64(&r, "upload-offset"),
            header_u64(&r, "upload-length"),
        ) {
            (Some(offset), Some(length)) => Ok(Some(UploadState { offset, length })),
            _ => Err(TransportError::Server {
                status: r.status,
                message: "HEAD without Upload-Offset/Upload-Length".into(),
            }),
        }
    }

    fn create(&mut self, hash: &str, length: u64) -> Result<(), TransportError> {
        let r = self.call(Call::Create(hash.to_owned(), length))?;
        check_status(&r)?;
        let part = match self.net.server.partial_upload(&self.name, hash) {
            Ok(p) => p,
            Err(e) => {
                self.broken.get_or_insert(e);
                return Err(TransportError::Unreachable("harness failure".into()));
            }
        };
        let empty = std::fs::metadata(&part).is_ok_and(|m| m.len() == 0);
        let forced = std::mem::take(&mut self.net.forced_create_crash);
        if empty
            && (forced || (self.net.faults && self.net.rng.chance(self.net.fault_per_mille / 2)))
        {
            // The server died creating the upload: it had written the
            // declared length but not yet the (empty) file of the bytes.
            if let Err(e) = std::fs::remove_file(&part) {
                self.broken
                    .get_or_insert(format!("remove {}: {e}", part.display()));
            }
            self.net.stats.server_crashes += 1;
            self.net
                .trace
                .push("  server died creating an upload; restart".into());
            if let Err(e) = self.net.server.restart() {
                self.broken.get_or_insert(e);
            }
            return Err(TransportError::Unreachable(
                "simulated: connection reset".into(),
            ));
        }
        Ok(())
    }

    fn patch(&mut self, hash: &str, offset: u64, chunk: &[u8]) -> Result<u64, TransportError> {
        let pieces: Vec<&[u8]> = chunk.chunks(PIECE_BYTES).collect();
        // Cut after `k` pieces reached the server: 0 is before the first,
        // `pieces.len()` after the last (the server has it all, the phone
        // does not know).
        let cut = if let Some(k) = self.net.forced_cut.take() {
            // `usize::MAX`: just before the last piece.
            Some(k.min(pieces.len().saturating_sub(usize::from(k == usize::MAX))))
        } else if self.net.faults && self.net.rng.chance(self.net.fault_per_mille) {
            Some(self.net.rng.below(pieces.len() as u64 + 1) as usize)
        } else {
            None
        };
        let mut at = offset;
        for (i, piece) in pieces.iter().enumerate() {
            if cut == Some(i) {
                break;
            }
            let r = self.call(Call::Patch(hash.to_owned(), at, piece.to_vec()))?;
            check_status(&r)?;
            at = header_u64(&r, "upload-offset").ok_or_else(|| TransportError::Server {
                status: r.status,
                message: "PATCH without Upload-Offset".into(),
            })?;
        }
        if let Some(k) = cut {
            self.net.stats.uploads_cut += 1;
            self.net.trace.push(format!(
                "p{} upload cut after piece {k} of {}",
                self.phone,
                pieces.len()
            ));
            let forced = std::mem::take(&mut self.net.forced_torn_whole);
            if let Some(piece) = pieces.get(k)
                && (forced || (self.net.faults && self.net.rng.chance(400)))
            {
                // The server died while writing the next piece: part of it
                // reached the disk, unacknowledged. Resuming must start
                // from whatever byte that was. Up to the whole piece:
                // written and flushed, but the process died before it
                // answered (or, for the last piece, before it checked and
                // kept the finished photo).
                let torn = if forced || self.net.rng.chance(300) {
                    piece.len()
                } else {
                    1 + self.net.rng.below(piece.len() as u64) as usize
                };
                let part = match self.net.server.partial_upload(&self.name, hash) {
                    Ok(p) => p,
                    Err(e) => {
                        self.broken.get_or_insert(e);
                        return Err(TransportError::Unreachable("harness failure".into()));
                    }
                };
                let wrote = part.exists()
                    && std::fs::OpenOptions::new()
                        .append(true)
                        .open(&part)
                        .and_then(|mut f| std::io::Write::write_all(&mut f, &piece[..torn]))
                        .is_ok();
                if wrote {
                    self.net.stats.server_crashes += 1;
                    self.net.trace.push(format!(
                        "  server died writing piece {k}: {}‰ of it on disk; restart",
                        torn * 1000 / piece.len()
                    ));
                    if let Err(e) = self.net.server.restart() {
                        self.broken.get_or_insert(e);
                    }
                }
            }
            return Err(TransportError::Unreachable("simulated: upload cut".into()));
        }
        Ok(at)
    }
}
