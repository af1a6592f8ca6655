//! The review console: pages for supervisors, county offices and
//! administrators, served by `fieldbook serve` on its own port.
//!
//! - Server-rendered HTML from askama templates (`server/templates/console`,
//!   checked at compile time, every value escaped), one stylesheet and one
//!   small script for the keyboard, all embedded in the binary: a county
//!   intranet without internet gets the whole console.
//! - [`session`]: web logins, cookies, CSRF.
//! - [`queue`]: the review queue.
//! - [`admin`]: users, devices, the registry import, the audit log.
//! - [`coverage`]: the county office's figures and downloads.
//! - [`findings`]: the findings board, a finding's steps, raising one.
//! - [`inspection`]: one inspection, and the review steps on it, written as
//!   Automerge changes through the same ingest path as a phone's push.
//!
//! Every response carries a Content-Security-Policy that allows no inline
//! script and no other origin, `frame-ancestors 'none'` and `nosniff`.

pub mod admin;
pub mod coverage;
pub mod findings;
pub mod inspection;
pub mod map;
pub mod queue;
pub mod session;
pub mod sites_map;

use crate::error::AppError;
use crate::http::state::AppState;
use askama::Template;
use axum::Router;
use axum::extract::Query;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use fieldbook_core::model::Role;
use session::Web;

/// The language of the page: Chinese unless the user chose English.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    Zh,
    En,
}

/// The cookie that keeps the chosen language.
pub const LANG_COOKIE: &str = "fb_lang";

impl Lang {
    pub fn of(headers: &HeaderMap) -> Lang {
        match session::cookie(headers, LANG_COOKIE) {
            Some("en") => Lang::En,
            _ => Lang::Zh,
        }
    }

    /// One of two texts.
    pub fn t<'a>(&self, zh: &'a str, en: &'a str) -> &'a str {
        match self {
            Lang::Zh => zh,
            Lang::En => en,
        }
    }

    pub fn code(&self) -> &'static str {
        self.t("zh-CN", "en")
    }
}

/// What every page's frame shows: the user, the menu, the logout form.
pub struct Frame {
    pub lang: Lang,
    pub user: String,
    pub role_label: String,
    pub csrf: String,
    /// `(href, label, current)`.
    pub menu: Vec<(&'static str, &'static str, bool)>,
}

impl Frame {
    pub fn new(web: &Web, current: &str) -> Frame {
        let lang = web.lang;
        let role = web.session.pusher.role;
        let menu = menu_for(role)
            .iter()
            .map(|(href, zh, en)| (*href, lang.t(zh, en), *href == current))
            .collect();
        Frame {
            lang,
            user: web.session.pusher.user.clone(),
            role_label: lang.t(role_zh(role), role.key()).to_owned(),
            csrf: web.csrf.clone(),
            menu,
        }
    }
}

fn role_zh(r: Role) -> &'static str {
    match r {
        Role::Inspector => "巡查员",
        Role::Supervisor => "审核员",
        Role::CountyOffice => "县级办公室",
        Role::Admin => "管理员",
    }
}

/// The menu of each role: only what the role works with.
fn menu_for(role: Role) -> &'static [(&'static str, &'static str, &'static str)] {
    const QUEUE: (&str, &str, &str) = ("/queue", "审核队列", "Review queue");
    const COVERAGE: (&str, &str, &str) = ("/coverage", "覆盖率与下载", "Coverage & downloads");
    const FINDINGS: (&str, &str, &str) = ("/findings", "问题整改", "Findings");
    match role {
        Role::Supervisor => &[QUEUE, FINDINGS],
        Role::CountyOffice => &[COVERAGE, QUEUE, FINDINGS],
        Role::Admin => &[
            ("/admin/users", "用户", "Users"),
            ("/admin/devices", "设备", "Devices"),
            ("/admin/registry", "点位登记导入", "Registry import"),
            ("/admin/audit", "审计日志", "Audit log"),
            COVERAGE,
        ],
        Role::Inspector => &[],
    }
}

/// A form that carries only the CSRF token.
#[derive(serde::Deserialize)]
pub struct CsrfForm {
    pub csrf: String,
}

const CSS: &str = include_str!("../../../assets/console.css");
const JS: &str = include_str!("../../../assets/console.js");

/// The console's routes; `tile_origin` is the one other origin images may
/// come from (the configured tile server), if any.
pub fn routes(tile_origin: Option<String>) -> Router<AppState> {
    let csp = format!(
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'{}; \
         connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'",
        tile_origin.map(|o| format!(" {o}")).unwrap_or_default()
    );
    let csp = HeaderValue::from_str(&csp)
        .unwrap_or_else(|_| HeaderValue::from_static("default-src 'none'"));
    Router::new()
        .route("/", get(home))
        .route("/login", get(login_form).post(session::login))
        .route("/logout", post(session::logout))
        .route("/lang", get(set_lang))
        .route("/queue", get(queue::page))
        .route("/coverage", get(coverage::page))
        .route("/admin/users", get(admin::users).post(admin::add_user))
        .route("/admin/users/{name}/{action}", post(admin::user_action))
        .route("/admin/devices", get(admin::devices))
        .route("/admin/devices/{id}/revoke", post(admin::revoke))
        .route("/admin/registry", get(admin::registry).post(admin::import))
        .route("/admin/audit", get(admin::audit))
        .route("/findings", get(findings::board))
        .route("/findings/{id}", get(findings::page))
        .route("/findings/{id}/{step}", post(findings::act))
        .route("/inspections/{id}/finding", post(findings::raise))
        .route("/console/exports/coverage", get(coverage::coverage_file))
        .route("/console/exports/records", get(coverage::records_file))
        .route("/console/exports/findings", get(coverage::findings_file))
        .route("/inspections/{id}", get(inspection::page))
        .route("/inspections/{id}/{step}", post(inspection::act))
        .route("/console/photos/{hash}", get(inspection::photo))
        .route("/console/photos/{hash}/thumb", get(inspection::thumb))
        .route("/assets/console.css", get(|| asset(CSS, "text/css")))
        .route(
            "/assets/console.js",
            get(|| asset(JS, "text/javascript; charset=utf-8")),
        )
        .layer(axum::middleware::from_fn(move |req, next| {
            headers(csp.clone(), req, next)
        }))
}

/// Headers on every console response: no inline script, no other origin,
/// no framing, no sniffing; pages are never cached.
async fn headers(
    csp: HeaderValue,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let mut r = next.run(req).await;
    let h = r.headers_mut();
    h.insert(header::CONTENT_SECURITY_POLICY, csp);
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    if !h.contains_key(header::CACHE_CONTROL) {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    r
}

async fn asset(body: &'static str, ct: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, ct),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        body,
    )
        .into_response()
}

/// Renders a template, or a 500 that says so.
pub fn render(t: &impl Template) -> Response {
    match t.render() {
        Ok(html) => Html(html).into_response(),
        Err(e) => page_error(AppError::Internal(format!("page: {e}")), Lang::Zh),
    }
}

#[derive(Template)]
#[template(path = "console/error.html")]
struct ErrorPage<'a> {
    lang: Lang,
    status: u16,
    title: &'a str,
    message: &'a str,
}

/// An error as a page, with the status the API would answer.
pub fn page_error(e: impl Into<AppError>, lang: Lang) -> Response {
    let e: AppError = e.into();
    let status = e.status();
    if status == StatusCode::UNAUTHORIZED {
        return Redirect::to("/login").into_response();
    }
    let message = match &e {
        AppError::Internal(detail) => {
            eprintln!("fieldbook console: internal error: {detail}");
            lang.t("服务器内部错误", "internal server error").to_owned()
        }
        other => other.to_string(),
    };
    let title = match status {
        StatusCode::FORBIDDEN => lang.t("无权操作", "Not allowed"),
        StatusCode::NOT_FOUND => lang.t("未找到", "Not found"),
        StatusCode::BAD_REQUEST => lang.t("输入有误", "Bad input"),
        StatusCode::TOO_MANY_REQUESTS => lang.t("请稍后再试", "Try again later"),
        _ => lang.t("出错了", "Something went wrong"),
    };
    let page = ErrorPage {
        lang,
        status: status.as_u16(),
        title,
        message: &message,
    };
    let html = page.render().unwrap_or_else(|_| message.clone());
    (status, Html(html)).into_response()
}

#[derive(Template)]
#[template(path = "console/login.html")]
struct LoginPage {
    lang: Lang,
    error: Option<String>,
}

/// The login page, with the reason of a failed try.
pub fn login_page(lang: Lang, error: Option<AppError>) -> Response {
    let status = error.as_ref().map_or(StatusCode::OK, AppError::status);
    let page = LoginPage {
        lang,
        error: error.map(|e| e.to_string()),
    };
    (status, render(&page)).into_response()
}

async fn login_form(headers: HeaderMap) -> Response {
    login_page(Lang::of(&headers), None)
}

#[derive(Template)]
#[template(path = "console/home.html")]
struct HomePage {
    frame: Frame,
}

/// `/`: the role's first screen.
async fn home(web: Web) -> Response {
    let role = web.session.pusher.role;
    match menu_for(role).first() {
        Some((href, _, _)) => Redirect::to(href).into_response(),
        None => render(&HomePage {
            frame: Frame::new(&web, "/"),
        }),
    }
}

#[derive(serde::Deserialize)]
struct LangQuery {
    to: String,
    #[serde(default)]
    back: Option<String>,
}

/// `/lang?to=en&back=/queue`: keeps the choice in a cookie and goes back
/// to `back`, or to the page the link was on (only ever to a path of this
/// server).
async fn set_lang(headers: HeaderMap, Query(q): Query<LangQuery>) -> Response {
    let lang = if q.to == "en" { "en" } else { "zh" };
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok());
    let from_referer = headers
        .get(header::REFERER)
        .and_then(|r| r.to_str().ok())
        .and_then(|r| r.split_once("://"))
        .and_then(|(_, rest)| {
            let (h, path) = rest.split_at(rest.find('/')?);
            (Some(h) == host).then(|| path.to_owned())
        });
    let back = q
        .back
        .or(from_referer)
        .filter(|b| b.starts_with('/') && !b.starts_with("//") && !b.contains('\\'))
        .unwrap_or_else(|| "/".into());
    let mut r = Redirect::to(&back).into_response();
    if let Ok(v) = HeaderValue::from_str(&format!(
        "{LANG_COOKIE}={lang}; Path=/; SameSite=Strict; Max-Age=31536000"
    )) {
        r.headers_mut().insert(header::SET_COOKIE, v);
    }
    r
}

/// Writes a step's outcome to the audit log and answers: to `Ok(page)` a
/// redirect there, to an error its page (the refusal audited with why).
pub async fn step_outcome(
    st: &AppState,
    web: &Web,
    result: Result<String, AppError>,
    action: &str,
    what: String,
) -> Response {
    let (user, device) = (&web.session.pusher.user, &web.session.pusher.device);
    match result {
        Ok(to) => {
            let _ = st.audit(user, Some(device), action, what).await;
            Redirect::to(&to).into_response()
        }
        Err(e) => {
            let detail = format!("{action} {what}: {e}");
            let _ = st.audit(user, Some(device), "refused", detail).await;
            page_error(e, web.lang)
        }
    }
}

/// A time as China wall-clock text, `YYYY-MM-DD HH:MM`.
pub fn china_time(ms: i64) -> String {
    let date = fieldbook_core::model::workflow::china_date(ms);
    let of_day = (ms + 8 * 3600 * 1000).rem_euclid(86_400_000) / 60_000;
    format!("{date} {:02}:{:02}", of_day / 60, of_day % 60)
}

/// The division path of a code (`栾川县 / 陶湾镇 / 协心村`), or the code.
pub fn place_name(code: &str) -> String {
    let d = fieldbook_core::model::Divisions::luoyang();
    match d.path_name(code) {
        Some(p) => p
            .split(" / ")
            .skip(1)
            .collect::<Vec<_>>()
            .join(" / ")
            .to_string(),
        None => code.to_owned(),
    }
}
