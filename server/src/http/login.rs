//! `POST /v1/login`: a password checked, a device registered, a token
//! issued — and password guessing made slow and quiet.
//!
//! - Every field is bounded before anything else happens.
//! - Failures back off per user name and per client address: a few free
//!   tries, then each further failure doubles the wait (429 with
//!   `Retry-After`), up to [`BACKOFF_MAX_S`]. A success clears the user's
//!   count.
//! - An unknown user costs the same argon2 check as a known one, so the
//!   answer's timing does not tell which names exist.
//! - Failures are written to the audit log, where repeats of one line are
//!   counted on it, not stored again.
//! - A disabled account is refused even with the right password.
//!
//! The failure counts live in this process: with several replicas each
//! keeps its own, which slows guessing per replica.

use super::backoff::{FREE_FAILURES_PER_ADDRESS, FREE_FAILURES_PER_USER};
use crate::auth;
use crate::error::AppError;
use crate::http::body::{json_body, read_body};
use crate::http::state::{AppState, JSON_BYTES_MAX};
use crate::metrics::Metrics;
use crate::storage::UserRecord;
use axum::Json;
use axum::body::Body;
use axum::extract::State;
use axum::http::HeaderMap;
use fieldbook_core::model::limits::{DEVICE_CHARS_MAX, USER_CHARS_MAX};
use fieldbook_core::sync::http::{LoginRequest, LoginResponse};

/// Longest password accepted, bytes (argon2 hashes any length; a megabyte
/// password only costs the server).
pub const PASSWORD_BYTES_MAX: usize = 1024;
fn bounded(what: &str, s: &str, max: usize) -> Result<(), AppError> {
    if s.trim().is_empty() || !fieldbook_core::model::limits::fits(s, max) {
        return Err(AppError::BadRequest(format!(
            "{what} must be 1 to {max} characters"
        )));
    }
    Ok(())
}

pub async fn login(
    State(st): State<AppState>,
    req_parts: axum::extract::Request,
) -> Result<Json<LoginResponse>, AppError> {
    let peer = crate::http::listen::peer(req_parts.extensions());
    let (parts, body): (axum::http::request::Parts, Body) = req_parts.into_parts();
    let headers: HeaderMap = parts.headers;
    let body = read_body(&st, &headers, body, JSON_BYTES_MAX).await?;
    let req: LoginRequest = json_body(&body.bytes)?;
    drop(body);
    bounded("device id", &req.device, DEVICE_CHARS_MAX)?;
    if req.actor.len() != 32 || !req.actor.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(AppError::BadRequest("actor must be 32 hex digits".into()));
    }
    let user = authenticate(&st, &req.username, &req.password, &req.device, peer).await?;
    let actor = req.actor.to_ascii_lowercase();
    let (token, expires_at) =
        issue_token(&st, &user.name, &req.device, &actor, auth::TOKEN_TTL_MS).await?;
    Ok(Json(LoginResponse {
        token,
        expires_at,
        user: user.name,
        role: user.role.key().into(),
        areas: user.areas,
    }))
}

/// Checks a user name and password under the backoff, for the phone's
/// login and the console's alike: the account if both are right and it is
/// enabled. Failures are counted and audited.
pub(crate) async fn authenticate(
    st: &AppState,
    username: &str,
    password: &str,
    device: &str,
    peer: Option<std::net::SocketAddr>,
) -> Result<UserRecord, AppError> {
    bounded("user name", username, USER_CHARS_MAX)?;
    if password.len() > PASSWORD_BYTES_MAX {
        return Err(AppError::BadRequest(format!(
            "a password is at most {PASSWORD_BYTES_MAX} bytes"
        )));
    }
    let user_key = format!("user:{username}");
    let mut keys = vec![(user_key.clone(), FREE_FAILURES_PER_USER)];
    if let Some(p) = peer {
        keys.push((format!("addr:{}", p.ip()), FREE_FAILURES_PER_ADDRESS));
    }
    let now = st.now();
    if let Some(wait) = st.logins.check(&keys, now) {
        return Err(AppError::TooManyRequests {
            message: format!("too many failed logins; try again in {wait} s"),
            retry_after_s: wait,
        });
    }
    let name = username.to_owned();
    let user = st.db(move |s| s.user(&name)).await?;
    // An unknown user is checked against a dummy hash, so that both answers
    // take one argon2 check.
    let hash = user.as_ref().map_or_else(
        || auth::dummy_hash().to_owned(),
        |u| u.password_hash.clone(),
    );
    let password = password.to_owned();
    let ok = {
        let _permit = st
            .password_checks
            .acquire()
            .await
            .map_err(|e| AppError::Internal(e.to_string()))?;
        tokio::task::spawn_blocking(move || auth::verify_password(&password, &hash))
            .await
            .unwrap_or(false)
    };
    let Some(user) = user.filter(|_| ok) else {
        st.logins.fail(&keys, now);
        Metrics::add(&st.metrics.login_failures, 1);
        st.audit(
            username,
            Some(device),
            "login_failed",
            peer.map(|p| format!("from {}", p.ip())).unwrap_or_default(),
        )
        .await?;
        return Err(AppError::Unauthorized("wrong user name or password".into()));
    };
    st.logins.succeed(&user_key);
    if user.disabled {
        st.audit(&user.name, Some(device), "login_disabled", String::new())
            .await?;
        return Err(AppError::Forbidden(
            "this account is disabled; ask an administrator".into(),
        ));
    }
    Ok(user)
}

/// Registers `device` of `user` with `actor` and issues a token living
/// `ttl_ms`: the token and when it expires.
pub(crate) async fn issue_token(
    st: &AppState,
    user: &str,
    device: &str,
    actor: &str,
    ttl_ms: i64,
) -> Result<(String, i64), AppError> {
    let now = st.now();
    let (token, hash) = auth::new_token().map_err(AppError::Internal)?;
    let expires_at = now + ttl_ms;
    let (u, d, a) = (user.to_owned(), device.to_owned(), actor.to_owned());
    st.db(move |s| s.register_device(&u, &d, &a, &hash, expires_at, now))
        .await?;
    Metrics::add(&st.metrics.logins, 1);
    st.audit(user, Some(device), "login", format!("actor {actor}"))
        .await?;
    Ok((token, expires_at))
}
