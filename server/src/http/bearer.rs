//! The phone API's caller: `Authorization: Bearer <device token>`.

use super::state::AppState;
use crate::auth;
use crate::error::AppError;
use crate::storage::Session;
use axum::extract::FromRequestParts;
use axum::http::header;
use axum::http::request::Parts;

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
