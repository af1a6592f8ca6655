//! Web sessions: a login in the browser registers a device of its own, with
//! its own Automerge actor, exactly as a phone's login does. The device's
//! token travels in an HttpOnly, SameSite=Strict cookie; it expires after
//! [`IDLE_MS`] without a request and at the latest [`LIFETIME_MS`] after
//! login. Logging out revokes the device.
//!
//! Every state change carries a CSRF token derived from the session token
//! (BLAKE3 in key-derivation mode): a page of another site can neither
//! read it nor compute it, and no replica needs to remember it.

use super::{Lang, page_error};
use crate::auth;
use crate::error::AppError;
use crate::http::state::AppState;
use crate::storage::Session;
use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Redirect, Response};

/// The session cookie's name.
pub const COOKIE: &str = "fb_session";
/// A console session ends after this long without a request.
pub const IDLE_MS: i64 = 30 * 60 * 1000;
/// And at the latest this long after login.
pub const LIFETIME_MS: i64 = 12 * 3600 * 1000;
/// An idle expiry is pushed forward only when at least this much of it has
/// passed, so that a page with ten photos writes once, not ten times.
const EXTEND_AFTER_MS: i64 = 60 * 1000;

/// The value of cookie `name` in the request, if any.
pub fn cookie<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// The CSRF token of a session token.
pub fn csrf_token(session_token: &str) -> String {
    blake3::derive_key("fieldbook console 2026 csrf", session_token.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Whether the request came through TLS (a reverse proxy says so); the
/// cookie is then marked Secure.
fn over_tls(headers: &HeaderMap) -> bool {
    headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("https"))
}

/// A `Set-Cookie` value for the session cookie (`None`: clear it).
pub fn session_cookie(token: Option<&str>, headers: &HeaderMap) -> HeaderValue {
    let secure = if over_tls(headers) { "; Secure" } else { "" };
    let v = match token {
        Some(t) => format!("{COOKIE}={t}; Path=/; HttpOnly; SameSite=Strict{secure}"),
        None => format!("{COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0{secure}"),
    };
    // Hex tokens and fixed text: always a valid header value.
    HeaderValue::from_str(&v).unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// The logged-in console user of a request.
pub struct Web {
    pub session: Session,
    /// The CSRF token forms must carry.
    pub csrf: String,
    pub lang: Lang,
}

impl Web {
    /// Passes when `form_token` is this session's CSRF token.
    pub fn check_csrf(&self, form_token: &str) -> Result<(), AppError> {
        let a = self.csrf.as_bytes();
        let b = form_token.as_bytes();
        // Compared in full whatever the first difference.
        let same = a.len() == b.len() && a.iter().zip(b).fold(0u8, |d, (x, y)| d | (x ^ y)) == 0;
        if same {
            Ok(())
        } else {
            Err(AppError::Forbidden(
                "this form is stale or from elsewhere (CSRF token); reload the page".into(),
            ))
        }
    }
}

/// What a console page answers when there is no session: the login page.
pub struct LoginFirst(Response);

impl IntoResponse for LoginFirst {
    fn into_response(self) -> Response {
        self.0
    }
}

impl FromRequestParts<AppState> for Web {
    type Rejection = LoginFirst;

    async fn from_request_parts(parts: &mut Parts, st: &AppState) -> Result<Self, Self::Rejection> {
        let lang = Lang::of(&parts.headers);
        let to_login = || LoginFirst(Redirect::to("/login").into_response());
        let Some(token) = cookie(&parts.headers, COOKIE).filter(|t| !t.is_empty()) else {
            return Err(to_login());
        };
        let hash = auth::token_hash(token);
        let now = st.now();
        let h2 = hash.clone();
        let session = match st.db(move |s| s.session(&h2, now)).await {
            Ok(Some(s)) if s.pusher.device.starts_with(WEB_DEVICE_PREFIX) => s,
            Ok(_) => return Err(to_login()),
            Err(e) => return Err(LoginFirst(page_error(e, lang))),
        };
        if session.expires_at - now < IDLE_MS - EXTEND_AFTER_MS {
            let r = st
                .db(move |s| s.extend_token(&hash, now + IDLE_MS, LIFETIME_MS))
                .await;
            if let Err(e) = r {
                return Err(LoginFirst(page_error(e, lang)));
            }
        }
        Ok(Web {
            csrf: csrf_token(token),
            session,
            lang,
        })
    }
}

/// Device ids of console logins start with this; a phone's token is never
/// accepted as a console cookie, nor a console's as a bearer token.
pub const WEB_DEVICE_PREFIX: &str = "web-";

fn random_hex(bytes: usize) -> Result<String, AppError> {
    let mut raw = vec![0u8; bytes];
    getrandom::fill(&mut raw).map_err(|e| AppError::Internal(format!("no randomness: {e}")))?;
    Ok(raw.iter().map(|b| format!("{b:02x}")).collect())
}

#[derive(serde::Deserialize)]
pub struct LoginForm {
    pub username: String,
    pub password: String,
}

/// `POST /login`: the same password check and backoff as the phone's
/// login; a new web device and actor; the cookie.
pub async fn login(
    State(st): State<AppState>,
    req: axum::extract::Request,
) -> Result<Response, Response> {
    let peer = crate::http::listen::peer(req.extensions());
    let (parts, body) = req.into_parts();
    let lang = Lang::of(&parts.headers);
    let fail = |e: AppError| super::login_page(lang, Some(e)).into_response();
    let body = crate::http::read_body(&st, &parts.headers, body, crate::http::JSON_BYTES_MAX)
        .await
        .map_err(fail)?;
    let form: LoginForm = serde_urlencoded_form(&body.bytes).map_err(fail)?;
    let device = format!("{WEB_DEVICE_PREFIX}{}", random_hex(8).map_err(fail)?);
    let user = crate::http::login::authenticate(&st, &form.username, &form.password, &device, peer)
        .await
        .map_err(fail)?;
    let actor = random_hex(16).map_err(fail)?;
    let (token, _) = crate::http::login::issue_token(&st, &user.name, &device, &actor, IDLE_MS)
        .await
        .map_err(fail)?;
    let mut r = Redirect::to("/").into_response();
    r.headers_mut().insert(
        header::SET_COOKIE,
        session_cookie(Some(&token), &parts.headers),
    );
    Ok(r)
}

/// `POST /logout`: the device is revoked, the cookie cleared.
pub async fn logout(
    State(st): State<AppState>,
    web: Web,
    headers: HeaderMap,
    axum::Form(form): axum::Form<super::CsrfForm>,
) -> Response {
    if let Err(e) = web.check_csrf(&form.csrf) {
        return page_error(e, web.lang);
    }
    let device = web.session.pusher.device.clone();
    let user = web.session.pusher.user.clone();
    let d2 = device.clone();
    if let Err(e) = st.db(move |s| s.revoke_device(&d2)).await {
        return page_error(e, web.lang);
    }
    let _ = st
        .audit(&user, Some(&device), "logout", String::new())
        .await;
    let mut r = Redirect::to("/login").into_response();
    r.headers_mut()
        .insert(header::SET_COOKIE, session_cookie(None, &headers));
    r
}

/// A form body, with a clear error when it is not one.
pub fn serde_urlencoded_form<T: for<'de> serde::Deserialize<'de>>(
    bytes: &[u8],
) -> Result<T, AppError> {
    serde_urlencoded::from_bytes(bytes)
        .map_err(|e| AppError::BadRequest(format!("malformed form: {e}")))
}
