//! The HTTP surface: `app(state)` builds the router so tests drive it
//! in-process (`oneshot`) or on a real socket (`listen::serve`).
//!
//! Routes: `GET /healthz`, `GET /metrics` (whole-deployment admins; or on
//! its own address, `serve --metrics-listen`), `POST /v1/login`,
//! `POST /v1/sync` (binary, `docs/protocol.md`), tus photo uploads under
//! `/v1/photos`, the admin API under `/v1/admin/` (`admin_http`) and the
//! exports under `/v1/exports/` (`export_http`). Every route but health,
//! metrics and login needs `Authorization: Bearer <device token>`.
//!
//! Every body is read through [`read_body`]: under a per-route limit
//! (413 beyond), inside a server-wide byte budget taken before the first
//! byte is read (503 when the budget stays taken), and with an idle
//! timeout between chunks (408), so slow or oversized bodies cannot pile
//! up memory or hold connections for ever.

use crate::auth;
use crate::error::AppError;
use crate::metrics::Metrics;
use crate::storage::{AuditEntry, Outcome, Session, Storage};
use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use fieldbook_core::model::Role;
use fieldbook_core::sync::http::SYNC_CONTENT_TYPE;
use fieldbook_core::sync::wire::{self, SyncRequest, SyncResponse, WireError};
use http_body_util::BodyExt;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

pub use crate::admin_http::{
    AuditInfo, AuditPage, DeviceInfo, ImportResult, NewPassword, NewUser, UserInfo,
    create_user_record,
};

/// Largest JSON body (login, admin), bytes.
pub const JSON_BYTES_MAX: usize = 64 << 10;
/// Largest registry CSV, bytes.
pub const CSV_BYTES_MAX: usize = 256 << 20;
/// Body bytes all requests together may hold while being read and worked
/// on, bytes: a hundred phones sending their largest sync at once queue
/// instead of costing gigabytes.
pub const BODY_BYTES_IN_FLIGHT_MAX: usize = 192 << 20;
/// How long a request waits for room in the byte budget before the server
/// answers 503 (retry later).
pub const BODY_BUDGET_WAIT: Duration = Duration::from_secs(20);
/// Longest pause between two chunks of a body.
pub const BODY_IDLE_TIMEOUT: Duration = Duration::from_secs(30);
/// Exports produced at once; more wait (they read whole areas).
pub const EXPORTS_AT_ONCE: usize = 2;
/// Rejected sync items written to the audit log per request, one line
/// each; the rest are counted on a summary line.
const REJECTIONS_AUDITED_MAX: usize = 20;

/// Shared state of every handler.
#[derive(Clone)]
pub struct AppState {
    pub storage: Arc<dyn Storage>,
    pub metrics: Arc<Metrics>,
    /// Unix milliseconds; injectable so tests can expire tokens.
    pub clock: Arc<dyn Fn() -> i64 + Send + Sync>,
    pub photos: Arc<crate::photos::PhotoStore>,
    /// Password checks allowed at once: argon2 takes 19 MiB and a core per
    /// check, so a burst of logins must queue, not multiply memory.
    pub password_checks: Arc<Semaphore>,
    /// Sync requests decoded and worked on at once. A request waits for a
    /// slot holding only its body as it came (compressed); a burst of
    /// phones then costs queued bytes, not decoded batches, documents and
    /// pages, and the work in progress is enough to keep the cores and the
    /// writer busy.
    pub sync_slots: Arc<Semaphore>,
    /// Body bytes in flight ([`read_body`]).
    pub body_budget: ByteBudget,
    /// Exports produced at once, apart from sync so that a queue of
    /// downloads never delays a phone.
    pub export_slots: Arc<Semaphore>,
    /// Failed logins per user and per address, for backoff.
    pub logins: Arc<crate::login::Limiter>,
    /// How long a body waits for room in `body_budget`
    /// ([`BODY_BUDGET_WAIT`]).
    pub body_budget_wait: Duration,
    /// Longest pause between two chunks of a body ([`BODY_IDLE_TIMEOUT`]).
    pub body_idle_timeout: Duration,
}

/// Sync requests worked on at once: two per core keeps one checking or
/// pulling while another stores, up to the storage's reader connections.
pub fn sync_slots() -> usize {
    std::thread::available_parallelism()
        .map_or(2, |n| n.get() * 2)
        .clamp(2, 4)
}

impl AppState {
    /// State over `storage`, keeping photos in `photo_dir`.
    pub fn new(
        storage: Arc<dyn Storage>,
        photo_dir: std::path::PathBuf,
    ) -> std::io::Result<AppState> {
        Ok(AppState {
            storage,
            metrics: Arc::new(Metrics::default()),
            clock: fieldbook_core::store::system_clock(),
            photos: Arc::new(crate::photos::PhotoStore::new(photo_dir)?),
            password_checks: Arc::new(Semaphore::new(2)),
            sync_slots: Arc::new(Semaphore::new(sync_slots())),
            body_budget: ByteBudget::new(BODY_BYTES_IN_FLIGHT_MAX),
            export_slots: Arc::new(Semaphore::new(EXPORTS_AT_ONCE)),
            logins: Arc::new(crate::login::Limiter::default()),
            body_budget_wait: BODY_BUDGET_WAIT,
            body_idle_timeout: BODY_IDLE_TIMEOUT,
        })
    }

    pub(crate) fn now(&self) -> i64 {
        (self.clock)()
    }

    /// Runs a storage call on the blocking pool.
    pub(crate) async fn db<T: Send + 'static>(
        &self,
        f: impl FnOnce(&dyn Storage) -> crate::storage::Result<T> + Send + 'static,
    ) -> Result<T, AppError> {
        let s = self.storage.clone();
        tokio::task::spawn_blocking(move || f(s.as_ref()))
            .await
            .map_err(|e| AppError::Internal(format!("storage task failed: {e}")))?
            .map_err(AppError::from)
    }

    /// Runs blocking work that reads and writes storage and answers with
    /// an [`AppError`] of its own, on the blocking pool.
    pub(crate) async fn db_app<T: Send + 'static>(
        &self,
        f: impl FnOnce(&dyn Storage) -> Result<T, AppError> + Send + 'static,
    ) -> Result<T, AppError> {
        let s = self.storage.clone();
        tokio::task::spawn_blocking(move || f(s.as_ref()))
            .await
            .map_err(|e| AppError::Internal(format!("storage task failed: {e}")))?
    }

    pub(crate) async fn audit(
        &self,
        user: &str,
        device: Option<&str>,
        action: &str,
        detail: String,
    ) -> Result<(), AppError> {
        let e = AuditEntry {
            at: self.now(),
            user: user.into(),
            device: device.map(str::to_owned),
            action: action.into(),
            detail,
        };
        self.db(move |s| s.audit(&e)).await
    }

    /// Refuses a request as forbidden, writing the refusal to the audit log.
    pub(crate) async fn forbid(&self, s: &Session, message: String) -> AppError {
        if let Err(e) = self
            .audit(
                &s.pusher.user,
                Some(&s.pusher.device),
                "refused",
                message.clone(),
            )
            .await
        {
            return e;
        }
        AppError::Forbidden(message)
    }

    /// Passes if the caller's role is one of `roles`; otherwise a 403 that
    /// the audit log records.
    pub(crate) async fn require(
        &self,
        s: &Session,
        roles: &[Role],
        what: &str,
    ) -> Result<(), AppError> {
        if roles.contains(&s.pusher.role) {
            Ok(())
        } else {
            Err(self
                .forbid(s, format!("the role {} may not {what}", s.pusher.role))
                .await)
        }
    }
}

/// Builds the router.
pub fn app(state: AppState) -> Router {
    let metrics = state.metrics.clone();
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/metrics", get(metrics_text))
        .route("/v1/login", post(crate::login::login))
        .route("/v1/sync", post(sync))
        .route(
            "/v1/photos",
            post(crate::photos::create).options(crate::photos::options),
        )
        .route(
            "/v1/photos/{hash}",
            get(crate::photos::get)
                .head(crate::photos::head)
                .patch(crate::photos::patch),
        )
        .merge(crate::admin_http::routes())
        .merge(crate::export_http::routes())
        .merge(crate::console::routes())
        .layer(axum::middleware::from_fn(
            move |req, next: axum::middleware::Next| {
                let metrics = metrics.clone();
                async move {
                    let start = Instant::now();
                    let resp = next.run(req).await;
                    Metrics::add(&metrics.requests, 1);
                    if resp.status().is_client_error() || resp.status().is_server_error() {
                        Metrics::add(&metrics.errors, 1);
                    }
                    metrics.observe_latency(start.elapsed().as_secs_f64());
                    resp
                }
            },
        ))
        .with_state(state)
}

/// `/metrics` alone, for `serve --metrics-listen`: an address the operator
/// keeps for the monitoring system, with no login.
pub fn metrics_app(metrics: Arc<Metrics>) -> Router {
    Router::new().route(
        "/metrics",
        get(move || {
            let m = metrics.clone();
            async move { prometheus(&m) }
        }),
    )
}

fn prometheus(m: &Metrics) -> Response {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        m.render(),
    )
        .into_response()
}

/// Counters for the whole deployment: its administrators only.
async fn metrics_text(State(st): State<AppState>, Auth(s): Auth) -> Result<Response, AppError> {
    st.require(&s, &[Role::Admin], "read the server's metrics")
        .await?;
    if !s.pusher.whole_deployment() {
        return Err(st
            .forbid(
                &s,
                "the metrics are the whole deployment's; an administrator of area * reads them"
                    .into(),
            )
            .await);
    }
    Ok(prometheus(&st.metrics))
}

/// Bytes all requests' bodies may hold together, one permit per byte.
#[derive(Clone)]
pub struct ByteBudget {
    permits: Arc<Semaphore>,
    total: usize,
}

impl ByteBudget {
    pub fn new(total: usize) -> ByteBudget {
        ByteBudget {
            permits: Arc::new(Semaphore::new(total)),
            total,
        }
    }
}

/// A body read under the byte budget; the budget is given back when this
/// is dropped, after the handler is done with the bytes.
pub struct Budgeted {
    pub bytes: Bytes,
    _permit: OwnedSemaphorePermit,
}

/// Reads a body of at most `max` bytes: 413 beyond (before reading, when
/// the declared length says so), 503 when the server's byte budget stays
/// full, 408 when the client pauses longer than [`BODY_IDLE_TIMEOUT`].
pub async fn read_body(
    st: &AppState,
    headers: &HeaderMap,
    body: Body,
    max: usize,
) -> Result<Budgeted, AppError> {
    let declared = match headers.get(header::CONTENT_LENGTH) {
        None => None,
        Some(v) => Some(
            v.to_str()
                .ok()
                .and_then(|v| v.parse::<usize>().ok())
                .ok_or_else(|| AppError::BadRequest("Content-Length is not a number".into()))?,
        ),
    };
    if let Some(n) = declared.filter(|&n| n > max) {
        return Err(AppError::TooLarge(format!(
            "body is {n} bytes; the limit is {max}"
        )));
    }
    // Room for the body is taken before its first byte is read; a body of
    // unknown length takes room for the largest allowed. A body larger than
    // the whole budget (a registry file) takes all of it: it then waits for
    // every other body, but never for ever.
    let want = declared.unwrap_or(max).clamp(1, st.body_budget.total);
    let permits = u32::try_from(want).unwrap_or(u32::MAX);
    let permit = tokio::time::timeout(
        st.body_budget_wait,
        st.body_budget.permits.clone().acquire_many_owned(permits),
    )
    .await
    .map_err(|_| {
        AppError::Busy("the server is receiving too much at once; try again shortly".into())
    })?
    .map_err(|e| AppError::Internal(e.to_string()))?;
    let mut body = body;
    let mut out = Vec::with_capacity(declared.unwrap_or(0).min(1 << 20));
    loop {
        let frame = tokio::time::timeout(st.body_idle_timeout, body.frame())
            .await
            .map_err(|_| {
                AppError::Timeout(format!(
                    "no part of the body arrived for {} s",
                    st.body_idle_timeout.as_secs()
                ))
            })?;
        let Some(frame) = frame else { break };
        let frame = frame.map_err(|e| AppError::BadRequest(format!("body cut short: {e}")))?;
        if let Ok(data) = frame.into_data() {
            if out.len() + data.len() > max {
                return Err(AppError::TooLarge(format!(
                    "body is over the limit of {max} bytes"
                )));
            }
            out.extend_from_slice(&data);
        }
    }
    Ok(Budgeted {
        bytes: Bytes::from(out),
        _permit: permit,
    })
}

pub(crate) fn json_body<T: for<'de> serde::Deserialize<'de>>(bytes: &[u8]) -> Result<T, AppError> {
    serde_json::from_slice(bytes).map_err(|e| AppError::BadRequest(format!("malformed JSON: {e}")))
}

/// The authenticated caller.
pub struct Auth(pub Session);

impl FromRequestParts<AppState> for Auth {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, st: &AppState) -> Result<Self, Self::Rejection> {
        let token = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .ok_or_else(|| AppError::Unauthorized("missing bearer token; log in first".into()))?;
        let hash = auth::token_hash(token.trim());
        let now = st.now();
        match st.db(move |s| s.session(&hash, now)).await? {
            Some(s) => Ok(Auth(s)),
            None => Err(AppError::Unauthorized(
                "token unknown, expired or revoked; log in again".into(),
            )),
        }
    }
}

/// What a limit on the wire answers: 413 for what is too large, 400 for
/// what is malformed.
fn wire_error(e: WireError) -> AppError {
    match e {
        WireError::TooLarge(_) | WireError::BodyTooLarge(_) | WireError::Limit { .. } => {
            AppError::TooLarge(format!("sync request over a limit: {e}"))
        }
        other => AppError::BadRequest(format!("malformed sync request: {other}")),
    }
}

async fn sync(
    State(st): State<AppState>,
    Auth(session): Auth,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, AppError> {
    let ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if ct != SYNC_CONTENT_TYPE {
        return Err(AppError::UnsupportedMediaType(format!(
            "sync bodies are {SYNC_CONTENT_TYPE}"
        )));
    }
    // The body is read before waiting for a slot: a phone on a slow link
    // must not hold a slot while its bytes trickle in.
    let body = read_body(&st, &headers, body, wire::MESSAGE_BYTES_MAX).await?;
    Metrics::add(&st.metrics.bytes_in, body.bytes.len() as u64);
    let _slot = st
        .sync_slots
        .acquire()
        .await
        .map_err(|e| AppError::Internal(e.to_string()))?;
    let req = SyncRequest::decode(&body.bytes).map_err(wire_error)?;
    drop(body);
    let page_bytes = if req.page_bytes == 0 {
        wire::PAGE_BYTES_DEFAULT
    } else {
        req.page_bytes.min(wire::PAGE_BYTES_MAX)
    } as usize;
    let now = st.now();
    let s2 = session.clone();
    let items = req.items;
    let n_items = items.len();
    let cursor = req.cursor;
    let ids: Vec<String> = items.iter().map(|i| i.doc_id_text()).collect();
    // Ingest commits durably before anything is acknowledged; the pull
    // then includes everything up to now.
    let (outcomes, page) = st
        .db(move |s| {
            let o = s.ingest(&s2, &items, now)?;
            let p = s.pull(&s2, cursor, page_bytes)?;
            Ok((o, p))
        })
        .await?;
    let mut resp = SyncResponse {
        cursor: page.cursor,
        more: page.more,
        page: page.items,
        ..Default::default()
    };
    let (mut new, mut dup) = (0u64, 0u64);
    for (i, o) in outcomes.into_iter().enumerate() {
        match o {
            Outcome::Stored { new: true } => {
                new += 1;
                resp.acked.push(i as u32);
            }
            Outcome::Stored { new: false } => {
                dup += 1;
                resp.acked.push(i as u32);
            }
            Outcome::Rejected(code, message) => resp.rejected.push(wire::Rejection {
                index: i as u32,
                code,
                message,
            }),
        }
    }
    let m = &st.metrics;
    Metrics::add(&m.sync_batches, 1);
    Metrics::add(&m.changes_accepted, new);
    Metrics::add(&m.changes_duplicate, dup);
    Metrics::add(&m.changes_rejected, resp.rejected.len() as u64);
    let (user, device) = (&session.pusher.user, Some(session.pusher.device.as_str()));
    if n_items > 0 || !resp.page.is_empty() {
        let detail = format!(
            "pushed {n_items} (new {new}, duplicate {dup}, rejected {}), pulled {}",
            resp.rejected.len(),
            resp.page.len()
        );
        st.audit(user, device, "sync", detail).await?;
    }
    // Every refusal is on record with its reason: a phone pushing what it
    // may not is something an administrator wants to see.
    for r in resp.rejected.iter().take(REJECTIONS_AUDITED_MAX) {
        let id = ids.get(r.index as usize).map_or("?", String::as_str);
        let detail = format!("record {id}: {}: {}", r.code.key(), r.message);
        st.audit(user, device, "sync_rejected", detail).await?;
    }
    if resp.rejected.len() > REJECTIONS_AUDITED_MAX {
        let detail = format!(
            "{} more rejected items in this request",
            resp.rejected.len() - REJECTIONS_AUDITED_MAX
        );
        st.audit(user, device, "sync_rejected", detail).await?;
    }
    let out = resp.encode();
    Metrics::add(&m.bytes_out, out.len() as u64);
    Ok(([(header::CONTENT_TYPE, SYNC_CONTENT_TYPE)], out).into_response())
}
