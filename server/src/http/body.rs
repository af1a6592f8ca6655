//! Request bodies: every body is read under a per-route limit (413
//! beyond), inside the server-wide byte budget taken before the first byte
//! is read (503 when it stays taken), and with an idle timeout between
//! chunks (408).

use super::state::AppState;
use crate::error::AppError;
use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, header};
use http_body_util::BodyExt;
use tokio::sync::OwnedSemaphorePermit;

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
