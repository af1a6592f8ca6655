//! `POST /v1/sync`: the binary sync exchange (`docs/protocol.md`): pushed
//! items through ingest, then a page of the pull, in one request.

use super::bearer::Auth;
use super::body::read_body;
use super::state::AppState;
use crate::error::AppError;
use crate::metrics::Metrics;
use crate::storage::Outcome;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use fieldbook_core::sync::http::SYNC_CONTENT_TYPE;
use fieldbook_core::sync::wire::{self, SyncRequest, SyncResponse, WireError};

/// Rejected sync items written to the audit log per request, one line
/// each; the rest are counted on a summary line.
const REJECTIONS_AUDITED_MAX: usize = 20;

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

pub async fn sync(
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
