//! Photo uploads over tus 1.0 (core, creation, checksum), addressed by the
//! photo's BLAKE3 content hash, and photo downloads for users who may read
//! a record that references the photo.
//!
//! Files live in the data folder: `photos/<hash>.jpg` once complete, and
//! per uploading user `photos/partial/<user key>/<hash>.part` (the bytes so
//! far) and `<hash>.len` (the declared length). The offset is the partial
//! file's length, each chunk is flushed to disk before it is acknowledged,
//! and a completed upload whose bytes do not hash to its name, or are not a
//! JPEG within the photo limits, is discarded.
//!
//! Knowing a hash grants nothing: an upload is a user's own, and a user
//! owns a photo (`photo_owners`) only once they sent all of its bytes. A
//! photo the server already holds from someone else is uploaded again by a
//! new owner, and kept once. Only inspectors and supervisors upload; each
//! may have [`UPLOADS_PER_USER_MAX`] unfinished uploads of at most
//! [`UPLOAD_BYTES_PER_USER_MAX`] together, and an unfinished upload is
//! forgotten after [`UPLOAD_EXPIRY`].

use super::bearer::Auth;
use super::body::read_body;
use super::state::AppState;
use crate::error::AppError;
use crate::photo_store::{
    Finish, PhotoStore, UPLOAD_BYTES_PER_USER_MAX, UPLOADS_PER_USER_MAX, private_file, sync_dir,
    valid_hash,
};
use crate::storage::Session;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use fieldbook_core::sync::tus::{PHOTO_UPLOAD_BYTES_MAX, TUS_VERSION, base64_decode};
use sha1::Digest;
use std::io::Write;

fn tus_headers(mut r: Response) -> Response {
    r.headers_mut()
        .insert("tus-resumable", HeaderValue::from_static(TUS_VERSION));
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

fn check_hash(h: &str) -> Result<(), AppError> {
    if valid_hash(h) {
        Ok(())
    } else {
        Err(AppError::BadRequest(
            "a photo is addressed by its BLAKE3 hash: 64 lowercase hex digits".into(),
        ))
    }
}

fn io(e: std::io::Error) -> AppError {
    AppError::Internal(e.to_string())
}

/// `OPTIONS /v1/photos`: what this server supports.
pub async fn options() -> Response {
    let mut r = StatusCode::NO_CONTENT.into_response();
    let h = r.headers_mut();
    h.insert("tus-version", HeaderValue::from_static(TUS_VERSION));
    h.insert(
        "tus-extension",
        HeaderValue::from_static("creation,checksum"),
    );
    h.insert("tus-checksum-algorithm", HeaderValue::from_static("sha1"));
    if let Ok(v) = HeaderValue::from_str(&PHOTO_UPLOAD_BYTES_MAX.to_string()) {
        h.insert("tus-max-size", v);
    }
    tus_headers(r)
}

fn header_str<'a>(h: &'a HeaderMap, name: &str) -> Option<&'a str> {
    h.get(name).and_then(|v| v.to_str().ok())
}

async fn uploader(st: &AppState, s: &Session) -> Result<(), AppError> {
    st.require(
        s,
        fieldbook_core::policy::PHOTO_UPLOAD_ROLES,
        "upload photos",
    )
    .await
}

/// Whether the caller owns a complete photo `hash` on this server.
async fn owns(st: &AppState, s: &Session, hash: &str) -> Result<bool, AppError> {
    if !st.photos.has(hash) {
        return Ok(false);
    }
    let (h, u) = (hash.to_owned(), s.pusher.user.clone());
    st.db(move |db| db.photo_owned(&h, &u)).await
}

/// Records the caller as the photo's owner after a kept upload.
async fn own(st: &AppState, s: &Session, hash: &str) -> Result<(), AppError> {
    let (h, u, now) = (hash.to_owned(), s.pusher.user.clone(), st.now());
    st.db(move |db| db.add_photo_owner(&h, &u, now)).await?;
    st.metrics
        .photos_completed
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    Ok(())
}

/// `POST /v1/photos`: creates an upload. `Upload-Metadata` must carry
/// `blake3 <base64 of the hex hash>`; `Upload-Length` the size.
pub async fn create(
    State(st): State<AppState>,
    Auth(s): Auth,
    headers: HeaderMap,
) -> Result<Response, AppError> {
    uploader(&st, &s).await?;
    let (length, hash) = creation_headers(&headers)?;
    let user = &s.pusher.user;
    let owned = owns(&st, &s, &hash).await?;
    let ps = &st.photos;
    let _guard = ps.lock.lock().await;
    if !owned {
        match ps.partial(user, &hash) {
            Some((_, l)) if l != length => {
                return Err(AppError::Conflict(format!(
                    "an upload of {hash} with length {l} exists"
                )));
            }
            Some(_) => {}
            None => {
                let dir = ps.user_dir(user);
                PhotoStore::expire(&dir);
                let (n, bytes) = ps.usage(user);
                if n >= UPLOADS_PER_USER_MAX || bytes + length > UPLOAD_BYTES_PER_USER_MAX {
                    return Err(AppError::TooLarge(format!(
                        "{n} unfinished uploads of {bytes} bytes: finish them first (at most {UPLOADS_PER_USER_MAX} and {UPLOAD_BYTES_PER_USER_MAX} bytes)"
                    )));
                }
                let write = || -> std::io::Result<()> {
                    std::fs::create_dir_all(&dir)?;
                    let mut f = private_file(&ps.len_path(user, &hash), false)?;
                    f.write_all(length.to_string().as_bytes())?;
                    f.sync_all()?;
                    private_file(&ps.part_path(user, &hash), false)?.sync_all()?;
                    sync_dir(&dir);
                    Ok(())
                };
                write().map_err(io)?;
            }
        }
    }
    drop(_guard);
    st.metrics
        .photo_uploads_started
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let mut r = StatusCode::CREATED.into_response();
    if let Ok(v) = HeaderValue::from_str(&format!("/v1/photos/{hash}")) {
        r.headers_mut().insert(header::LOCATION, v);
    }
    Ok(tus_headers(r))
}

/// `HEAD /v1/photos/<hash>`: the caller's upload's offset and length; a
/// photo the caller owns is complete.
pub async fn head(
    State(st): State<AppState>,
    Auth(s): Auth,
    Path(hash): Path<String>,
) -> Result<Response, AppError> {
    uploader(&st, &s).await?;
    check_hash(&hash)?;
    let user = &s.pusher.user;
    let state = if owns(&st, &s, &hash).await? {
        std::fs::metadata(st.photos.final_path(&hash))
            .ok()
            .map(|m| (m.len(), m.len()))
    } else {
        // An upload whose bytes have all arrived but that was never
        // finished (the process died between the last write and keeping
        // the photo) is finished here, so it is never reported complete
        // while the photo is missing.
        let _guard = st.photos.lock.lock().await;
        match st.photos.partial(user, &hash) {
            Some((offset, length)) if offset >= length => {
                match st.photos.finish(user, &hash, length).map_err(io)? {
                    Finish::Kept => {
                        own(&st, &s, &hash).await?;
                        Some((length, length))
                    }
                    Finish::Discarded(_) => None,
                }
            }
            other => other,
        }
    };
    let Some((offset, length)) = state else {
        return Ok(tus_headers(StatusCode::NOT_FOUND.into_response()));
    };
    let mut r = StatusCode::OK.into_response();
    r.headers_mut()
        .insert("upload-offset", HeaderValue::from(offset));
    r.headers_mut()
        .insert("upload-length", HeaderValue::from(length));
    Ok(tus_headers(r))
}

/// `PATCH /v1/photos/<hash>`: appends a chunk at `Upload-Offset`.
pub async fn patch(
    State(st): State<AppState>,
    Auth(s): Auth,
    Path(hash): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, AppError> {
    uploader(&st, &s).await?;
    check_hash(&hash)?;
    if header_str(&headers, "content-type") != Some("application/offset+octet-stream") {
        return Err(AppError::UnsupportedMediaType(
            "PATCH bodies are application/offset+octet-stream".into(),
        ));
    }
    let (offset, checksum) = patch_headers(&headers)?;
    let body = read_body(&st, &headers, body, PHOTO_UPLOAD_BYTES_MAX as usize).await?;
    let bytes = &body.bytes;
    let user = &s.pusher.user;
    if owns(&st, &s, &hash).await? {
        let length = std::fs::metadata(st.photos.final_path(&hash))
            .map_err(io)?
            .len();
        patch_step(offset, length, length, bytes.len() as u64)?;
        let mut r = StatusCode::NO_CONTENT.into_response();
        r.headers_mut()
            .insert("upload-offset", HeaderValue::from(length));
        return Ok(tus_headers(r));
    }
    let ps = &st.photos;
    let _guard = ps.lock.lock().await;
    let Some((current, length)) = ps.partial(user, &hash) else {
        return Err(AppError::NotFound(format!(
            "no upload for {hash}; create it first"
        )));
    };
    let new_offset = match patch_step(offset, current, length, bytes.len() as u64)? {
        PatchStep::Complete => current,
        PatchStep::Append { new_offset } => {
            // 460 Checksum Mismatch (tus): the chunk is discarded.
            if let Some(sum) = checksum
                && sha1::Sha1::digest(bytes).as_slice() != sum.as_slice()
            {
                let status = StatusCode::from_u16(460).unwrap_or(StatusCode::BAD_REQUEST);
                return Ok(tus_headers(
                    (status, "checksum mismatch: chunk discarded").into_response(),
                ));
            }
            // A photo is a JPEG from its first bytes on: anything else is
            // refused before it takes room on disk.
            if current == 0 && !bytes.starts_with(&[0xff, 0xd8, 0xff]) {
                ps.discard(user, &hash);
                return Err(AppError::UnsupportedMediaType(
                    "a photo upload is a JPEG; these bytes are not".into(),
                ));
            }
            let append = || -> std::io::Result<()> {
                // `create`: a server that died creating the upload wrote the
                // declared length but not the empty file of bytes; the
                // upload then stands at offset 0 and must be able to start.
                let mut f = private_file(&ps.part_path(user, &hash), true)?;
                f.write_all(bytes)?;
                f.sync_data()
            };
            append().map_err(io)?;
            new_offset
        }
    };
    if new_offset == length {
        match ps.finish(user, &hash, length).map_err(io)? {
            Finish::Kept => own(&st, &s, &hash).await?,
            Finish::Discarded(why) => return Err(AppError::BadRequest(why.into())),
        }
    }
    let mut r = StatusCode::NO_CONTENT.into_response();
    r.headers_mut()
        .insert("upload-offset", HeaderValue::from(new_offset));
    Ok(tus_headers(r))
}

/// The length and photo hash a creation request declares (`Upload-Length`,
/// and `Upload-Metadata` with `blake3 <base64 of the hex hash>`), checked.
/// Separate from the handler so the header parsing can be exercised on its
/// own (the fuzz targets do).
pub fn creation_headers(headers: &HeaderMap) -> Result<(u64, String), AppError> {
    let length: u64 = header_str(headers, "upload-length")
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| AppError::BadRequest("Upload-Length is missing or not a number".into()))?;
    if length == 0 || length > PHOTO_UPLOAD_BYTES_MAX {
        return Err(AppError::TooLarge(format!(
            "a photo must be 1 to {PHOTO_UPLOAD_BYTES_MAX} bytes; Upload-Length is {length}"
        )));
    }
    let meta = header_str(headers, "upload-metadata").unwrap_or("");
    let hash = meta
        .split(',')
        .filter_map(|kv| kv.trim().split_once(' '))
        .find(|(k, _)| *k == "blake3")
        .and_then(|(_, v)| base64_decode(v))
        .and_then(|b| String::from_utf8(b).ok())
        .ok_or_else(|| {
            AppError::BadRequest(
                "Upload-Metadata must name the photo: blake3 <base64 of its hex hash>".into(),
            )
        })?;
    check_hash(&hash)?;
    Ok((length, hash))
}

/// The offset and optional SHA-1 checksum (`Upload-Offset`,
/// `Upload-Checksum: sha1 <base64>`) a PATCH declares.
pub fn patch_headers(headers: &HeaderMap) -> Result<(u64, Option<Vec<u8>>), AppError> {
    let offset: u64 = header_str(headers, "upload-offset")
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| AppError::BadRequest("Upload-Offset is missing or not a number".into()))?;
    let checksum = match header_str(headers, "upload-checksum") {
        None => None,
        Some(v) => match v.split_once(' ') {
            Some(("sha1", b64)) => Some(
                base64_decode(b64)
                    .ok_or_else(|| AppError::BadRequest("Upload-Checksum is not base64".into()))?,
            ),
            _ => {
                return Err(AppError::BadRequest(
                    "only sha1 checksums are supported".into(),
                ));
            }
        },
    };
    Ok((offset, checksum))
}

/// What a PATCH does to an upload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PatchStep {
    /// The upload is already complete: nothing is written.
    Complete,
    /// The chunk is appended; the upload then stands at `new_offset`.
    Append { new_offset: u64 },
}

/// Decides a PATCH of `chunk` bytes at the declared `offset` against an
/// upload holding `current` of `length` bytes, before anything is written.
pub fn patch_step(
    offset: u64,
    current: u64,
    length: u64,
    chunk: u64,
) -> Result<PatchStep, AppError> {
    if offset != current {
        return Err(AppError::Conflict(format!(
            "Upload-Offset is {offset} but the server has {current} bytes"
        )));
    }
    if current == length {
        return Ok(PatchStep::Complete);
    }
    let new_offset = offset.saturating_add(chunk);
    if new_offset > length {
        return Err(AppError::BadRequest(format!(
            "the chunk runs past Upload-Length {length}"
        )));
    }
    Ok(PatchStep::Append { new_offset })
}

/// `GET /v1/photos/<hash>`: the JPEG, for users who may read a record that
/// references it (and its uploader attached it there).
pub async fn get(
    State(st): State<AppState>,
    Auth(s): Auth,
    Path(hash): Path<String>,
) -> Result<Response, AppError> {
    readable(&st, &s.pusher.areas, &hash, false).await
}

/// A photo (or its thumbnail) if a record in `areas` holds it: the one
/// scope check of the phone API and the console.
pub async fn readable(
    st: &AppState,
    areas: &[String],
    hash: &str,
    thumbnail: bool,
) -> Result<Response, AppError> {
    check_hash(hash)?;
    let (h2, areas) = (hash.to_owned(), areas.to_vec());
    let allowed = st.db(move |db| db.photo_readable(&h2, &areas)).await?;
    // Not found and not allowed look the same: no probing for photos.
    let data = match (allowed, thumbnail) {
        (false, _) => None,
        (true, false) => st.photos.read(hash),
        (true, true) => {
            let (p, h) = (st.photos.clone(), hash.to_owned());
            tokio::task::spawn_blocking(move || p.thumbnail(&h))
                .await
                .ok()
                .flatten()
        }
    };
    match data {
        Some(d) => Ok((
            [
                (header::CONTENT_TYPE, "image/jpeg"),
                (header::CACHE_CONTROL, "private, max-age=86400"),
                (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            ],
            d,
        )
            .into_response()),
        None => Err(AppError::NotFound(format!(
            "no photo {hash} that this user may read"
        ))),
    }
}
