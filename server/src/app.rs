//! The HTTP surface: `app(state)` builds the router so tests drive it
//! in-process (`oneshot`) or on a real socket.
//!
//! Routes: `GET /healthz`, `GET /metrics`, `POST /v1/login`,
//! `POST /v1/sync` (binary, `docs/protocol.md`), tus photo uploads under
//! `/v1/photos`, and the admin API under
//! `/v1/admin/` (users, devices, site registry, audit log). Every route but
//! health, metrics and login needs `Authorization: Bearer <device token>`.

use crate::auth;
use crate::error::AppError;
use crate::metrics::Metrics;
use crate::storage::{AuditEntry, Outcome, Session, Storage, UserRecord};
use axum::body::{Body, Bytes};
use axum::extract::{FromRequestParts, Path, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use fieldbook_core::model::Role;
use fieldbook_core::sync::http::{LoginRequest, LoginResponse, SYNC_CONTENT_TYPE};
use fieldbook_core::sync::wire::{self, SyncRequest, SyncResponse};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::time::Instant;

/// Largest JSON body (login, admin), bytes.
pub const JSON_BYTES_MAX: usize = 64 << 10;
/// Largest registry CSV, bytes.
pub const CSV_BYTES_MAX: usize = 256 << 20;

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
    pub password_checks: Arc<tokio::sync::Semaphore>,
    /// Sync requests decoded and worked on at once. A request waits for a
    /// slot holding only its body as it came (compressed); a burst of
    /// phones then costs queued bytes, not decoded batches, documents and
    /// pages, and the work in progress is enough to keep the cores and the
    /// writer busy.
    pub sync_slots: Arc<tokio::sync::Semaphore>,
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
            password_checks: Arc::new(tokio::sync::Semaphore::new(2)),
            sync_slots: Arc::new(tokio::sync::Semaphore::new(sync_slots())),
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
}

/// Builds the router.
pub fn app(state: AppState) -> Router {
    let metrics = state.metrics.clone();
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/metrics", get(metrics_text))
        .route("/v1/login", post(login))
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
        .route("/v1/admin/users", get(list_users).post(create_user))
        .route("/v1/admin/devices", get(list_devices))
        .route("/v1/admin/devices/{id}/revoke", post(revoke_device))
        .route("/v1/admin/sites", post(import_sites))
        .route("/v1/admin/audit", get(audit_log))
        .merge(crate::export_http::routes())
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

async fn metrics_text(State(st): State<AppState>) -> Response {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        st.metrics.render(),
    )
        .into_response()
}

/// Reads a body up to `max` bytes, answering 413 beyond.
async fn read_body(headers: &HeaderMap, body: Body, max: usize) -> Result<Bytes, AppError> {
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > max) {
        return Err(AppError::TooLarge(format!(
            "body is {} bytes; the limit is {max}",
            declared.unwrap_or(0)
        )));
    }
    axum::body::to_bytes(body, max)
        .await
        .map_err(|_| AppError::TooLarge(format!("body is over the limit of {max} bytes")))
}

fn json_body<T: for<'de> Deserialize<'de>>(bytes: &[u8]) -> Result<T, AppError> {
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

pub(crate) fn require(s: &Session, roles: &[Role], what: &str) -> Result<(), AppError> {
    if roles.contains(&s.pusher.role) {
        Ok(())
    } else {
        Err(AppError::Forbidden(format!(
            "a {} may not {what}",
            s.pusher.role
        )))
    }
}

async fn login(
    State(st): State<AppState>,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<LoginResponse>, AppError> {
    let bytes = read_body(&headers, body, JSON_BYTES_MAX).await?;
    let req: LoginRequest = json_body(&bytes)?;
    if req.device.trim().is_empty() || req.device.len() > 200 {
        return Err(AppError::BadRequest(
            "device id must be 1–200 characters".into(),
        ));
    }
    if req.actor.len() != 32 || !req.actor.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(AppError::BadRequest("actor must be 32 hex digits".into()));
    }
    let name = req.username.clone();
    let user = st.db(move |s| s.user(&name)).await?;
    let password = req.password.clone();
    // Verify on the blocking pool: argon2 is deliberately slow.
    let ok = match &user {
        Some(u) => {
            let hash = u.password_hash.clone();
            let _permit = st
                .password_checks
                .acquire()
                .await
                .map_err(|e| AppError::Internal(e.to_string()))?;
            tokio::task::spawn_blocking(move || auth::verify_password(&password, &hash))
                .await
                .unwrap_or(false)
        }
        None => false,
    };
    let Some(user) = user.filter(|_| ok) else {
        Metrics::add(&st.metrics.login_failures, 1);
        st.audit(
            &req.username,
            Some(&req.device),
            "login_failed",
            String::new(),
        )
        .await?;
        return Err(AppError::Unauthorized("wrong user name or password".into()));
    };
    let (token, hash) = auth::new_token().map_err(AppError::Internal)?;
    let now = st.now();
    let expires_at = now + auth::TOKEN_TTL_MS;
    let (u, d, a) = (
        user.name.clone(),
        req.device.clone(),
        req.actor.to_ascii_lowercase(),
    );
    st.db(move |s| s.register_device(&u, &d, &a, &hash, expires_at, now))
        .await?;
    Metrics::add(&st.metrics.logins, 1);
    st.audit(
        &user.name,
        Some(&req.device),
        "login",
        format!("actor {}", req.actor),
    )
    .await?;
    Ok(Json(LoginResponse {
        token,
        expires_at,
        user: user.name,
        role: user.role.key().into(),
        areas: user.areas,
    }))
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
    let bytes = read_body(&headers, body, wire::MESSAGE_BYTES_MAX).await?;
    Metrics::add(&st.metrics.bytes_in, bytes.len() as u64);
    let _slot = st
        .sync_slots
        .acquire()
        .await
        .map_err(|e| AppError::Internal(e.to_string()))?;
    let req = SyncRequest::decode(&bytes)
        .map_err(|e| AppError::BadRequest(format!("malformed sync request: {e}")))?;
    drop(bytes);
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
    if n_items > 0 || !resp.page.is_empty() {
        let detail = format!(
            "pushed {n_items} (new {new}, duplicate {dup}, rejected {}), pulled {}",
            resp.rejected.len(),
            resp.page.len()
        );
        st.audit(
            &session.pusher.user,
            Some(&session.pusher.device),
            "sync",
            detail,
        )
        .await?;
    }
    let out = resp.encode();
    Metrics::add(&m.bytes_out, out.len() as u64);
    Ok(([(header::CONTENT_TYPE, SYNC_CONTENT_TYPE)], out).into_response())
}

/// A user as the admin API shows it (never the password hash).
#[derive(Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct UserInfo {
    pub name: String,
    pub role: String,
    pub areas: Vec<String>,
}

/// `POST /v1/admin/users`.
#[derive(Debug, Serialize, Deserialize)]
pub struct NewUser {
    pub name: String,
    pub password: String,
    pub role: String,
    pub areas: Vec<String>,
}

/// Validates and stores a new user (shared by the HTTP API and the CLI).
pub fn create_user_record(storage: &dyn Storage, u: &NewUser, now: i64) -> Result<(), AppError> {
    let role = Role::from_key(&u.role).ok_or_else(|| {
        AppError::BadRequest(format!(
            "unknown role {:?}; use inspector, supervisor, county_office or admin",
            u.role
        ))
    })?;
    if u.name.trim().is_empty() || u.name.len() > 100 || u.name.contains(char::is_whitespace) {
        return Err(AppError::BadRequest(
            "user name must be 1–100 characters without spaces".into(),
        ));
    }
    if u.areas.is_empty() {
        return Err(AppError::BadRequest(
            "give at least one area (division-code prefix)".into(),
        ));
    }
    for a in &u.areas {
        if a.is_empty() || a.len() > 12 || !a.bytes().all(|b| b.is_ascii_digit()) {
            return Err(AppError::BadRequest(format!(
                "area {a:?} is not a division-code prefix"
            )));
        }
    }
    let password_hash = auth::hash_password(&u.password).map_err(AppError::BadRequest)?;
    storage.create_user(&UserRecord {
        name: u.name.clone(),
        password_hash,
        role,
        areas: u.areas.clone(),
        created_at: now,
    })?;
    Ok(())
}

async fn create_user(
    State(st): State<AppState>,
    Auth(s): Auth,
    headers: HeaderMap,
    body: Body,
) -> Result<(StatusCode, Json<UserInfo>), AppError> {
    require(&s, &[Role::Admin], "manage users")?;
    let bytes = read_body(&headers, body, JSON_BYTES_MAX).await?;
    let u: NewUser = json_body(&bytes)?;
    let now = st.now();
    let storage = st.storage.clone();
    let info = UserInfo {
        name: u.name.clone(),
        role: u.role.clone(),
        areas: u.areas.clone(),
    };
    tokio::task::spawn_blocking(move || create_user_record(storage.as_ref(), &u, now))
        .await
        .map_err(|e| AppError::Internal(e.to_string()))??;
    st.audit(
        &s.pusher.user,
        Some(&s.pusher.device),
        "user_created",
        format!("{} ({})", info.name, info.role),
    )
    .await?;
    Ok((StatusCode::CREATED, Json(info)))
}

async fn list_users(
    State(st): State<AppState>,
    Auth(s): Auth,
) -> Result<Json<Vec<UserInfo>>, AppError> {
    require(&s, &[Role::Admin], "list users")?;
    let users = st.db(|s| s.users()).await?;
    Ok(Json(
        users
            .into_iter()
            .map(|u| UserInfo {
                name: u.name,
                role: u.role.key().into(),
                areas: u.areas,
            })
            .collect(),
    ))
}

/// A device as the admin API shows it.
#[derive(Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct DeviceInfo {
    pub id: String,
    pub user: String,
    pub registered_at: i64,
    pub last_seen: Option<i64>,
    pub revoked: bool,
}

async fn list_devices(
    State(st): State<AppState>,
    Auth(s): Auth,
) -> Result<Json<Vec<DeviceInfo>>, AppError> {
    require(&s, &[Role::Admin], "list devices")?;
    let devices = st.db(|s| s.devices()).await?;
    Ok(Json(
        devices
            .into_iter()
            .map(|d| DeviceInfo {
                id: d.id,
                user: d.user,
                registered_at: d.registered_at,
                last_seen: d.last_seen,
                revoked: d.revoked,
            })
            .collect(),
    ))
}

async fn revoke_device(
    State(st): State<AppState>,
    Auth(s): Auth,
    Path(id): Path<String>,
) -> Result<StatusCode, AppError> {
    require(&s, &[Role::Admin], "revoke devices")?;
    let id2 = id.clone();
    if !st.db(move |s| s.revoke_device(&id2)).await? {
        return Err(AppError::NotFound(format!("no device {id}")));
    }
    st.audit(&s.pusher.user, Some(&s.pusher.device), "device_revoked", id)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /v1/admin/sites` answer.
#[derive(Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct ImportResult {
    pub rows: usize,
    /// Sites created or changed; unchanged rows are not written again.
    pub written: usize,
}

async fn import_sites(
    State(st): State<AppState>,
    Auth(s): Auth,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<ImportResult>, AppError> {
    require(&s, &[Role::Admin], "import the site registry")?;
    let bytes = read_body(&headers, body, CSV_BYTES_MAX).await?;
    let now = st.now();
    let user = s.pusher.user.clone();
    let sites = crate::registry::parse(&bytes, &user, now)
        .map_err(|p| AppError::BadRequest(p.join("\n")))?;
    let rows = sites.len();
    let written = st.db(move |s| s.import_sites(&sites, &user, now)).await?;
    st.audit(
        &s.pusher.user,
        Some(&s.pusher.device),
        "sites_imported",
        format!("{rows} rows, {written} written"),
    )
    .await?;
    Ok(Json(ImportResult { rows, written }))
}

/// An audit line as the admin API shows it.
#[derive(Debug, Serialize, Deserialize)]
pub struct AuditInfo {
    pub at: i64,
    pub user: String,
    pub device: Option<String>,
    pub action: String,
    pub detail: String,
}

async fn audit_log(
    State(st): State<AppState>,
    Auth(s): Auth,
) -> Result<Json<Vec<AuditInfo>>, AppError> {
    require(&s, &[Role::Admin], "read the audit log")?;
    let log = st.db(|s| s.audit_log(1000)).await?;
    Ok(Json(
        log.into_iter()
            .map(|e| AuditInfo {
                at: e.at,
                user: e.user,
                device: e.device,
                action: e.action,
                detail: e.detail,
            })
            .collect(),
    ))
}
