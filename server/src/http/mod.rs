//! The HTTP surface: `app(state)` builds the router so tests drive it
//! in-process (`oneshot`) or on a real socket (`listen::serve`).
//!
//! Submodules: [`state`] (what handlers share), [`body`] (bounded bodies),
//! [`bearer`] (the phone API's caller), [`sync`], [`login`] and
//! [`backoff`], [`photos`] (tus), [`exports`], [`admin`], [`listen`] (the
//! accept loop) and [`console`] (the review console in the browser).
//!
//! Routes: `GET /healthz`, `GET /metrics` (whole-deployment admins; or on
//! its own address, `serve --metrics-listen`), `POST /v1/login`,
//! `POST /v1/sync` (binary, `docs/protocol.md`), tus photo uploads under
//! `/v1/photos`, the admin API under `/v1/admin/` (`admin`) and the
//! exports under `/v1/exports/` (`exports`). Every route but health,
//! metrics and login needs `Authorization: Bearer <device token>`. The
//! console's pages (`/`, `/login`, `/queue`, …) take a session cookie
//! instead (`console::session`).
//!
//! Every body is read through [`read_body`]: under a per-route limit
//! (413 beyond), inside a server-wide byte budget taken before the first
//! byte is read (503 when the budget stays taken), and with an idle
//! timeout between chunks (408), so slow or oversized bodies cannot pile
//! up memory or hold connections for ever.

pub mod admin;
pub mod backoff;
pub mod bearer;
pub mod body;
pub mod console;
pub mod exports;
pub mod listen;
pub mod login;
pub mod photos;
pub mod state;
pub mod sync;

use crate::error::AppError;
use crate::metrics::Metrics;
use axum::Router;
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use bearer::Auth;
use fieldbook_core::model::Role;
use std::sync::Arc;
use std::time::Instant;

pub use admin::{
    AuditInfo, AuditPage, DeviceInfo, ImportResult, NewPassword, NewUser, UserInfo,
    create_user_record,
};
pub use body::{Budgeted, read_body};
pub use state::*;

/// Builds the router.
pub fn app(state: AppState) -> Router {
    let metrics = state.metrics.clone();
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/metrics", get(metrics_text))
        .route("/v1/login", post(login::login))
        .route("/v1/sync", post(sync::sync))
        .route("/v1/photos", post(photos::create).options(photos::options))
        .route(
            "/v1/photos/{hash}",
            get(photos::get).head(photos::head).patch(photos::patch),
        )
        .merge(admin::routes())
        .merge(exports::routes())
        .merge(console::routes(
            state.tiles.as_ref().map(|t| t.origin().to_owned()),
        ))
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
