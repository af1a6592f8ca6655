//! The admin API under `/v1/admin/`: users, devices, the site registry and
//! the audit log, each inside the administrator's areas.
//!
//! An administrator sees and manages only users whose every area lies
//! inside their own, hands out only areas they hold, and imports only
//! sites inside them (where a site is and where it would move to). The
//! whole deployment's things — users of any area, the audit lines of
//! unknown names and of the command line, `*` itself — belong to
//! administrators whose area is `*`. Every refusal is written to the audit
//! log.

use crate::auth;
use crate::error::AppError;
use crate::http::bearer::Auth;
use crate::http::body::{json_body, read_body};
use crate::http::state::{AppState, CSV_BYTES_MAX, JSON_BYTES_MAX};
use crate::storage::{AuditQuery, Identity, Session, Storage, UserRecord};
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post};
use axum::{Json, Router};
use fieldbook_core::model::Role;
use fieldbook_core::model::limits::USER_CHARS_MAX;
use fieldbook_core::policy::WHOLE_DEPLOYMENT;
use serde::{Deserialize, Serialize};

/// Audit lines per page at most.
pub const AUDIT_PAGE_MAX: u32 = 1000;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/admin/users", get(list_users).post(create_user))
        .route("/v1/admin/users/{name}/disable", post(disable_user))
        .route("/v1/admin/users/{name}/enable", post(enable_user))
        .route("/v1/admin/users/{name}/password", post(reset_password))
        .route("/v1/admin/users/{name}/role", post(set_role))
        .route("/v1/admin/devices", get(list_devices))
        .route("/v1/admin/devices/{id}/revoke", post(revoke_device))
        .route("/v1/admin/sites", post(import_sites))
        .route("/v1/admin/audit", get(audit_log))
}

/// A user as the admin API shows it (never the password hash).
#[derive(Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct UserInfo {
    pub name: String,
    pub role: String,
    pub areas: Vec<String>,
    #[serde(default)]
    pub disabled: bool,
}

/// `POST /v1/admin/users`.
#[derive(Debug, Serialize, Deserialize)]
pub struct NewUser {
    pub name: String,
    pub password: String,
    pub role: String,
    pub areas: Vec<String>,
}

/// Validates and stores a new user (the HTTP API and the CLI). `by` is the
/// administrator creating it; `None` is the operator at the server's
/// command line, who holds the whole deployment.
pub fn create_user_record(
    storage: &dyn Storage,
    u: &NewUser,
    by: Option<&Identity>,
    now: i64,
) -> Result<(), AppError> {
    let role = checked_role_areas(&u.role, &u.areas, by)?;
    if u.name.trim().is_empty()
        || u.name.chars().count() > USER_CHARS_MAX
        || u.name.contains(char::is_whitespace)
        || u.name.chars().any(char::is_control)
    {
        return Err(AppError::BadRequest(format!(
            "user name must be 1–{USER_CHARS_MAX} characters without spaces"
        )));
    }
    let password_hash = auth::hash_password(&u.password).map_err(AppError::BadRequest)?;
    storage.create_user(&UserRecord {
        name: u.name.clone(),
        password_hash,
        role,
        areas: u.areas.clone(),
        created_at: now,
        disabled: false,
    })?;
    Ok(())
}

/// A role and areas an administrator (`by`; `None`: the command line) may
/// give: a known role, division-code prefixes inside `by`'s areas, `*`
/// only for administrators.
fn checked_role_areas(
    role: &str,
    areas: &[String],
    by: Option<&Identity>,
) -> Result<Role, AppError> {
    let key = role;
    let role = Role::from_key(key).ok_or_else(|| {
        AppError::BadRequest(format!(
            "unknown role {key:?}; use inspector, supervisor, county_office or admin"
        ))
    })?;
    if areas.is_empty() {
        return Err(AppError::BadRequest(
            "give at least one area (division-code prefix)".into(),
        ));
    }
    for a in areas {
        if a == WHOLE_DEPLOYMENT {
            if role != Role::Admin {
                return Err(AppError::BadRequest(
                    "only an administrator's area may be * (the whole deployment)".into(),
                ));
            }
        } else if a.is_empty() || a.len() > 12 || !a.bytes().all(|b| b.is_ascii_digit()) {
            return Err(AppError::BadRequest(format!(
                "area {a:?} is not a division-code prefix"
            )));
        }
        if let Some(admin) = by
            && !admin.contains_area(a)
        {
            return Err(AppError::Forbidden(format!(
                "area {a} is outside administrator {}'s areas",
                admin.user
            )));
        }
    }
    Ok(role)
}

async fn admin(st: &AppState, s: &Session, what: &str) -> Result<(), AppError> {
    st.require(s, &[Role::Admin], what).await
}

/// A user the administrator may manage, or a 403 (audited) / 404.
async fn managed_user(st: &AppState, s: &Session, name: &str) -> Result<UserRecord, AppError> {
    let n = name.to_owned();
    let user = st.db(move |db| db.user(&n)).await?;
    match user {
        Some(u) if u.within(&s.pusher) => Ok(u),
        Some(_) => Err(st
            .forbid(s, format!("user {name} has areas outside yours"))
            .await),
        None => Err(AppError::NotFound(format!("no user {name}"))),
    }
}

async fn create_user(
    State(st): State<AppState>,
    Auth(s): Auth,
    headers: HeaderMap,
    body: Body,
) -> Result<(StatusCode, Json<UserInfo>), AppError> {
    admin(&st, &s, "manage users").await?;
    let body = read_body(&st, &headers, body, JSON_BYTES_MAX).await?;
    let u: NewUser = json_body(&body.bytes)?;
    Ok((StatusCode::CREATED, Json(add_user(&st, &s, u).await?)))
}

/// Adds a user inside the administrator's areas (API and console).
pub(crate) async fn add_user(st: &AppState, s: &Session, u: NewUser) -> Result<UserInfo, AppError> {
    admin(st, s, "manage users").await?;
    let now = st.now();
    let storage = st.storage.clone();
    let info = UserInfo {
        name: u.name.clone(),
        role: u.role.clone(),
        areas: u.areas.clone(),
        disabled: false,
    };
    let by = s.pusher.clone();
    let made = tokio::task::spawn_blocking(move || {
        create_user_record(storage.as_ref(), &u, Some(&by), now)
    })
    .await
    .map_err(|e| AppError::Internal(e.to_string()))?;
    if let Err(AppError::Forbidden(m)) = made {
        return Err(st.forbid(s, m).await);
    }
    made?;
    st.audit(
        &s.pusher.user,
        Some(&s.pusher.device),
        "user_created",
        format!("{} ({}) in {}", info.name, info.role, info.areas.join(",")),
    )
    .await?;
    Ok(info)
}

/// Gives a user another role and areas, inside the administrator's areas
/// (both the user's old areas and the new ones).
pub(crate) async fn change_role_areas(
    st: &AppState,
    s: &Session,
    name: &str,
    role: &str,
    areas: Vec<String>,
) -> Result<(), AppError> {
    admin(st, s, "change users' roles and areas").await?;
    managed_user(st, s, name).await?;
    let role = match checked_role_areas(role, &areas, Some(&s.pusher)) {
        Err(AppError::Forbidden(m)) => return Err(st.forbid(s, m).await),
        other => other?,
    };
    if name == s.pusher.user {
        return Err(AppError::BadRequest(
            "an administrator cannot change their own role or areas".into(),
        ));
    }
    let (n, a) = (name.to_owned(), areas.clone());
    st.db(move |db| db.set_role_areas(&n, role, &a)).await?;
    st.audit(
        &s.pusher.user,
        Some(&s.pusher.device),
        "user_changed",
        format!("{name}: {} in {}", role.key(), areas.join(",")),
    )
    .await
}

async fn list_users(
    State(st): State<AppState>,
    Auth(s): Auth,
) -> Result<Json<Vec<UserInfo>>, AppError> {
    Ok(Json(users_for(&st, &s).await?))
}

/// The users the administrator manages.
pub(crate) async fn users_for(st: &AppState, s: &Session) -> Result<Vec<UserInfo>, AppError> {
    admin(st, s, "list users").await?;
    let users = st.db(|s| s.users()).await?;
    Ok(users
        .into_iter()
        .filter(|u| u.within(&s.pusher))
        .map(|u| UserInfo {
            name: u.name,
            role: u.role.key().into(),
            areas: u.areas,
            disabled: u.disabled,
        })
        .collect())
}

/// Disables or enables a user the administrator manages.
pub(crate) async fn set_disabled(
    st: AppState,
    s: Session,
    name: String,
    disabled: bool,
) -> Result<StatusCode, AppError> {
    admin(&st, &s, "disable or enable users").await?;
    managed_user(&st, &s, &name).await?;
    if disabled && name == s.pusher.user {
        return Err(AppError::BadRequest(
            "an administrator cannot disable their own account".into(),
        ));
    }
    let n = name.clone();
    st.db(move |db| db.set_user_disabled(&n, disabled)).await?;
    let action = if disabled {
        "user_disabled"
    } else {
        "user_enabled"
    };
    st.audit(&s.pusher.user, Some(&s.pusher.device), action, name)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn disable_user(
    State(st): State<AppState>,
    Auth(s): Auth,
    Path(name): Path<String>,
) -> Result<StatusCode, AppError> {
    set_disabled(st, s, name, true).await
}

async fn enable_user(
    State(st): State<AppState>,
    Auth(s): Auth,
    Path(name): Path<String>,
) -> Result<StatusCode, AppError> {
    set_disabled(st, s, name, false).await
}

/// `POST /v1/admin/users/{name}/password`.
#[derive(Debug, Serialize, Deserialize)]
pub struct NewPassword {
    pub password: String,
}

async fn reset_password(
    State(st): State<AppState>,
    Auth(s): Auth,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Result<StatusCode, AppError> {
    admin(&st, &s, "reset passwords").await?;
    let body = read_body(&st, &headers, body, JSON_BYTES_MAX).await?;
    let p: NewPassword = json_body(&body.bytes)?;
    change_password(&st, &s, &name, p.password).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Sets a new password for a user the administrator manages; their
/// devices' tokens are revoked.
pub(crate) async fn change_password(
    st: &AppState,
    s: &Session,
    name: &str,
    password: String,
) -> Result<(), AppError> {
    admin(st, s, "reset passwords").await?;
    managed_user(st, s, name).await?;
    let hash = tokio::task::spawn_blocking(move || auth::hash_password(&password))
        .await
        .map_err(|e| AppError::Internal(e.to_string()))?
        .map_err(AppError::BadRequest)?;
    let n = name.to_owned();
    st.db(move |db| db.set_password(&n, &hash)).await?;
    st.audit(
        &s.pusher.user,
        Some(&s.pusher.device),
        "password_reset",
        name.to_owned(),
    )
    .await
}

/// `POST /v1/admin/users/{name}/role`.
#[derive(Debug, Serialize, Deserialize)]
pub struct NewRole {
    pub role: String,
    pub areas: Vec<String>,
}

async fn set_role(
    State(st): State<AppState>,
    Auth(s): Auth,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Result<StatusCode, AppError> {
    admin(&st, &s, "change users' roles and areas").await?;
    let body = read_body(&st, &headers, body, JSON_BYTES_MAX).await?;
    let r: NewRole = json_body(&body.bytes)?;
    change_role_areas(&st, &s, &name, &r.role, r.areas).await?;
    Ok(StatusCode::NO_CONTENT)
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
    Ok(Json(devices_for(&st, &s).await?))
}

/// The devices of the users the administrator manages.
pub(crate) async fn devices_for(st: &AppState, s: &Session) -> Result<Vec<DeviceInfo>, AppError> {
    admin(st, s, "list devices").await?;
    let (users, devices) = st.db(|db| Ok((db.users()?, db.devices()?))).await?;
    let mine: std::collections::HashSet<String> = users
        .into_iter()
        .filter(|u| u.within(&s.pusher))
        .map(|u| u.name)
        .collect();
    Ok(devices
        .into_iter()
        .filter(|d| mine.contains(&d.user))
        .map(|d| DeviceInfo {
            id: d.id,
            user: d.user,
            registered_at: d.registered_at,
            last_seen: d.last_seen,
            revoked: d.revoked,
        })
        .collect())
}

async fn revoke_device(
    State(st): State<AppState>,
    Auth(s): Auth,
    Path(id): Path<String>,
) -> Result<StatusCode, AppError> {
    revoke(&st, &s, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Revokes a device of a user the administrator manages.
pub(crate) async fn revoke(st: &AppState, s: &Session, id: &str) -> Result<(), AppError> {
    admin(st, s, "revoke devices").await?;
    let id2 = id.to_owned();
    let Some(device) = st.db(move |db| db.device(&id2)).await? else {
        return Err(AppError::NotFound(format!("no device {id}")));
    };
    managed_user(st, s, &device.user).await?;
    let id2 = id.to_owned();
    st.db(move |db| db.revoke_device(&id2)).await?;
    st.audit(
        &s.pusher.user,
        Some(&s.pusher.device),
        "device_revoked",
        id.to_owned(),
    )
    .await
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
    admin(&st, &s, "import the site registry").await?;
    let body = read_body(&st, &headers, body, CSV_BYTES_MAX).await?;
    Ok(Json(import(&st, &s, &body.bytes).await?))
}

/// Imports a registry CSV: every problem, by line, in one 400 (one line
/// each) and nothing written; or every row checked and stored.
pub(crate) async fn import(
    st: &AppState,
    s: &Session,
    csv: &[u8],
) -> Result<ImportResult, AppError> {
    admin(st, s, "import the site registry").await?;
    let now = st.now();
    let sites = crate::registry::parse(csv, &s.pusher.user, now)
        .map_err(|p| AppError::BadRequest(p.join("\n")))?;
    let rows = sites.len();
    let who = s.pusher.clone();
    let written = match st.db(move |db| db.import_sites(&sites, &who, now)).await {
        Err(AppError::Forbidden(m)) => return Err(st.forbid(s, m).await),
        other => other?,
    };
    st.audit(
        &s.pusher.user,
        Some(&s.pusher.device),
        "sites_imported",
        format!("{rows} rows, {written} written"),
    )
    .await?;
    Ok(ImportResult { rows, written })
}

/// An audit line as the admin API shows it.
#[derive(Debug, Serialize, Deserialize)]
pub struct AuditInfo {
    pub id: i64,
    pub at: i64,
    pub user: String,
    pub device: Option<String>,
    pub action: String,
    pub detail: String,
    /// How many times the line happened (repeats within ten minutes are
    /// counted on one line), and when last.
    pub count: u64,
    pub last_at: i64,
}

/// `GET /v1/admin/audit` answer: a page, newest first.
#[derive(Debug, Serialize, Deserialize)]
pub struct AuditPage {
    pub entries: Vec<AuditInfo>,
    /// Pass as `before` for the next (older) page; absent on the last.
    pub next_before: Option<i64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AuditParams {
    before: Option<i64>,
    limit: Option<u32>,
}

async fn audit_log(
    State(st): State<AppState>,
    Auth(s): Auth,
    Query(q): Query<AuditParams>,
) -> Result<Json<AuditPage>, AppError> {
    let query = AuditQuery {
        before: q.before,
        limit: q.limit.unwrap_or(200),
        ..Default::default()
    };
    Ok(Json(audit_for(&st, &s, query).await?))
}

/// A page of the audit lines the administrator may read, newest first:
/// a scoped administrator reads the lines of the users they manage; the
/// rest (other areas, unknown names, the command line) are the whole
/// deployment's. `q.users` narrows further, never widens.
pub(crate) async fn audit_for(
    st: &AppState,
    s: &Session,
    mut q: AuditQuery,
) -> Result<AuditPage, AppError> {
    admin(st, s, "read the audit log").await?;
    q.limit = q.limit.clamp(1, AUDIT_PAGE_MAX);
    if !s.pusher.whole_deployment() {
        let all = st.db(|db| db.users()).await?;
        let mine: Vec<String> = all
            .into_iter()
            .filter(|u| u.within(&s.pusher))
            .map(|u| u.name)
            .collect();
        q.users = Some(match q.users.take() {
            Some(asked) => asked.into_iter().filter(|u| mine.contains(u)).collect(),
            None => mine,
        });
    }
    let limit = q.limit;
    let lines = st.db(move |db| db.audit_log(&q)).await?;
    let next_before = (lines.len() == limit as usize)
        .then(|| lines.last().map(|l| l.id))
        .flatten();
    Ok(AuditPage {
        entries: lines
            .into_iter()
            .map(|l| AuditInfo {
                id: l.id,
                at: l.entry.at,
                user: l.entry.user,
                device: l.entry.device,
                action: l.entry.action,
                detail: l.entry.detail,
                count: l.count,
                last_at: l.last_at,
            })
            .collect(),
        next_before,
    })
}
