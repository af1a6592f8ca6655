//! The administrator's pages: users (add, disable, enable, reset the
//! password, change role and areas), devices (list, revoke), the registry
//! import (every problem listed by line, nothing written when any row is
//! bad) and the audit log (by user, action and date).
//!
//! Every action runs the admin API's own function
//! ([`crate::http::admin`]), with its role and area checks and its audit
//! lines; these pages only render and post.

use super::session::Web;
use super::{Frame, china_time, page_error, render};
use crate::error::AppError;
use crate::http::admin::{self, AuditInfo, DeviceInfo, NewUser, UserInfo};
use crate::http::body::read_body;
use crate::http::state::{AppState, CSV_BYTES_MAX};
use crate::storage::AuditQuery;
use askama::Template;
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use fieldbook_core::model::Role;
use fieldbook_core::model::workflow::china_day_start_ms;

/// Audit lines per page.
const AUDIT_ROWS: u32 = 100;

fn role_choices(current: &str, lang: super::Lang) -> Vec<(String, String, bool)> {
    Role::ALL
        .iter()
        .map(|r| {
            (
                r.key().to_owned(),
                format!("{} ({})", lang.t(super::role_zh(*r), r.key()), r.key()),
                r.key() == current,
            )
        })
        .collect()
}

fn areas_of(text: &str) -> Vec<String> {
    text.split([',', '，', ' ', '\n'])
        .map(str::trim)
        .filter(|a| !a.is_empty())
        .map(str::to_owned)
        .collect()
}

#[derive(Template)]
#[template(path = "console/users.html")]
struct UsersPage {
    frame: Frame,
    users: Vec<UserInfo>,
    roles: Vec<(String, String, bool)>,
    /// Role choices per user, in the order of `users`.
    user_roles: Vec<Vec<(String, String, bool)>>,
    done: String,
}

#[derive(serde::Deserialize, Default)]
pub struct Done {
    #[serde(default)]
    done: String,
}

/// `GET /admin/users`.
pub async fn users(State(st): State<AppState>, web: Web, Query(d): Query<Done>) -> Response {
    let lang = web.lang;
    match admin::users_for(&st, &web.session).await {
        Ok(users) => render(&UsersPage {
            frame: Frame::new(&web, "/admin/users"),
            roles: role_choices("inspector", lang),
            user_roles: users.iter().map(|u| role_choices(&u.role, lang)).collect(),
            users,
            done: d.done,
        }),
        Err(e) => page_error(e, lang),
    }
}

#[derive(serde::Deserialize)]
pub struct UserForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    role: String,
    #[serde(default)]
    areas: String,
}

/// `POST /admin/users`.
pub async fn add_user(
    State(st): State<AppState>,
    web: Web,
    axum::Form(f): axum::Form<UserForm>,
) -> Response {
    if let Err(e) = web.check_csrf(&f.csrf) {
        return page_error(e, web.lang);
    }
    let u = NewUser {
        name: f.name.trim().to_owned(),
        password: f.password,
        role: f.role,
        areas: areas_of(&f.areas),
    };
    match admin::add_user(&st, &web.session, u).await {
        Ok(info) => Redirect::to(&format!("/admin/users?done=added+{}", info.name)).into_response(),
        Err(e) => page_error(e, web.lang),
    }
}

/// `POST /admin/users/{name}/{disable|enable|password|role}`.
pub async fn user_action(
    State(st): State<AppState>,
    web: Web,
    Path((name, action)): Path<(String, String)>,
    axum::Form(f): axum::Form<UserForm>,
) -> Response {
    if let Err(e) = web.check_csrf(&f.csrf) {
        return page_error(e, web.lang);
    }
    let s = &web.session;
    let r = match action.as_str() {
        "disable" | "enable" => {
            admin::set_disabled(st.clone(), s.clone(), name.clone(), action == "disable")
                .await
                .map(|_| ())
        }
        "password" => admin::change_password(&st, s, &name, f.password).await,
        "role" => admin::change_role_areas(&st, s, &name, &f.role, areas_of(&f.areas)).await,
        _ => Err(AppError::NotFound(format!("no user action {action:?}"))),
    };
    match r {
        Ok(()) => Redirect::to(&format!("/admin/users?done={action}+{name}")).into_response(),
        Err(e) => page_error(e, web.lang),
    }
}

pub struct DeviceRow {
    pub id: String,
    pub user: String,
    pub web: bool,
    pub registered: String,
    pub last_seen: String,
    pub revoked: bool,
}

#[derive(Template)]
#[template(path = "console/devices.html")]
struct DevicesPage {
    frame: Frame,
    devices: Vec<DeviceRow>,
}

/// `GET /admin/devices`.
pub async fn devices(State(st): State<AppState>, web: Web) -> Response {
    match admin::devices_for(&st, &web.session).await {
        Ok(list) => render(&DevicesPage {
            frame: Frame::new(&web, "/admin/devices"),
            devices: list
                .into_iter()
                .map(|d: DeviceInfo| DeviceRow {
                    web: d.id.starts_with(super::session::WEB_DEVICE_PREFIX),
                    registered: china_time(d.registered_at),
                    last_seen: d.last_seen.map(china_time).unwrap_or_default(),
                    id: d.id,
                    user: d.user,
                    revoked: d.revoked,
                })
                .collect(),
        }),
        Err(e) => page_error(e, web.lang),
    }
}

/// `POST /admin/devices/{id}/revoke`.
pub async fn revoke(
    State(st): State<AppState>,
    web: Web,
    Path(id): Path<String>,
    axum::Form(f): axum::Form<super::CsrfForm>,
) -> Response {
    if let Err(e) = web.check_csrf(&f.csrf) {
        return page_error(e, web.lang);
    }
    match admin::revoke(&st, &web.session, &id).await {
        Ok(()) => Redirect::to("/admin/devices").into_response(),
        Err(e) => page_error(e, web.lang),
    }
}

#[derive(Template)]
#[template(path = "console/registry.html")]
struct RegistryPage {
    frame: Frame,
    /// `Some`: the result of an upload.
    result: Option<(usize, usize)>,
    problems: Vec<String>,
    refused: String,
}

/// `GET /admin/registry`.
pub async fn registry(web: Web) -> Response {
    if web.session.pusher.role != Role::Admin {
        return page_error(
            AppError::Forbidden(format!(
                "the role {} may not import the site registry",
                web.session.pusher.role
            )),
            web.lang,
        );
    }
    render(&RegistryPage {
        frame: Frame::new(&web, "/admin/registry"),
        result: None,
        problems: Vec::new(),
        refused: String::new(),
    })
}

/// `POST /admin/registry`: the CSV as the body (`text/csv`), the CSRF
/// token in `X-CSRF-Token` (the page's script sends the chosen file so).
pub async fn import(
    State(st): State<AppState>,
    web: Web,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let lang = web.lang;
    let token = headers
        .get("x-csrf-token")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if let Err(e) = web.check_csrf(token) {
        return page_error(e, lang);
    }
    let ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if !ct.starts_with("text/csv") {
        return page_error(
            AppError::UnsupportedMediaType(
                lang.t(
                    "请选择 CSV 文件后上传（需要启用浏览器脚本）",
                    "choose a CSV file to upload (the page's script sends it)",
                )
                .into(),
            ),
            lang,
        );
    }
    let body = match read_body(&st, &headers, body, CSV_BYTES_MAX).await {
        Ok(b) => b,
        Err(e) => return page_error(e, lang),
    };
    let frame = Frame::new(&web, "/admin/registry");
    match admin::import(&st, &web.session, &body.bytes).await {
        Ok(r) => render(&RegistryPage {
            frame,
            result: Some((r.rows, r.written)),
            problems: Vec::new(),
            refused: String::new(),
        }),
        Err(AppError::BadRequest(m)) => {
            let page = render(&RegistryPage {
                frame,
                result: None,
                problems: m.lines().map(str::to_owned).collect(),
                refused: String::new(),
            });
            (StatusCode::BAD_REQUEST, page).into_response()
        }
        Err(AppError::Forbidden(m)) => {
            let page = render(&RegistryPage {
                frame,
                result: None,
                problems: Vec::new(),
                refused: m,
            });
            (StatusCode::FORBIDDEN, page).into_response()
        }
        Err(e) => page_error(e, lang),
    }
}

#[derive(serde::Deserialize, serde::Serialize, Default, Clone)]
pub struct AuditFilter {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    user: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    action: String,
    /// China dates `YYYY-MM-DD`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    from: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    to: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    before: String,
}

pub struct AuditRow {
    pub at: String,
    pub user: String,
    pub device: String,
    pub action: String,
    pub detail: String,
    pub count: u64,
}

#[derive(Template)]
#[template(path = "console/audit.html")]
struct AuditPageView {
    frame: Frame,
    filter: AuditFilter,
    rows: Vec<AuditRow>,
    next: Option<String>,
}

/// `GET /admin/audit`.
pub async fn audit(State(st): State<AppState>, web: Web, Query(f): Query<AuditFilter>) -> Response {
    let lang = web.lang;
    let bad = |m: String| page_error(AppError::BadRequest(m), lang);
    let day = |d: &str| china_day_start_ms(d);
    let mut q = AuditQuery {
        limit: AUDIT_ROWS,
        users: (!f.user.is_empty()).then(|| vec![f.user.trim().to_owned()]),
        action: (!f.action.is_empty()).then(|| f.action.trim().to_owned()),
        ..Default::default()
    };
    if !f.from.is_empty() {
        match day(&f.from) {
            Some(t) => q.from = Some(t),
            None => return bad(format!("{:?} is not a date (YYYY-MM-DD)", f.from)),
        }
    }
    if !f.to.is_empty() {
        match day(&f.to) {
            Some(t) => q.until = Some(t + 86_400_000),
            None => return bad(format!("{:?} is not a date (YYYY-MM-DD)", f.to)),
        }
    }
    if !f.before.is_empty() {
        match f.before.parse() {
            Ok(b) => q.before = Some(b),
            Err(_) => return bad(format!("{:?} is not a page key", f.before)),
        }
    }
    match admin::audit_for(&st, &web.session, q).await {
        Ok(page) => {
            let next = page.next_before.map(|b| {
                let mut g = f.clone();
                g.before = b.to_string();
                serde_urlencoded::to_string(&g).unwrap_or_default()
            });
            render(&AuditPageView {
                frame: Frame::new(&web, "/admin/audit"),
                rows: page
                    .entries
                    .into_iter()
                    .map(|a: AuditInfo| AuditRow {
                        at: china_time(a.at),
                        user: a.user,
                        device: a.device.unwrap_or_default(),
                        action: a.action,
                        detail: a.detail,
                        count: a.count,
                    })
                    .collect(),
                next,
                filter: f,
            })
        }
        Err(e) => page_error(e, lang),
    }
}
