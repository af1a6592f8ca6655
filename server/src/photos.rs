//! Photo uploads over tus 1.0 (core, creation, checksum), addressed by the
//! photo's BLAKE3 content hash, and photo downloads for users who may read
//! a record that references the photo.
//!
//! Files live in the data folder: `photos/<hash>.jpg` once complete,
//! `photos/partial/<hash>.part` (the bytes so far) and `<hash>.len` (the
//! declared length) while uploading. The offset is the partial file's
//! length, each chunk is flushed to disk before it is acknowledged, and a
//! completed upload whose bytes do not hash to its name is discarded. A
//! photo already complete is reported complete: it is never sent twice.

use crate::app::{AppState, Auth};
use crate::error::AppError;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use fieldbook_core::sync::tus::{PHOTO_UPLOAD_BYTES_MAX, TUS_VERSION, base64_decode};
use sha1::Digest;
use std::io::Write;
use std::path::PathBuf;

/// The photo folder of a data folder, with a lock that serialises writes.
pub struct PhotoStore {
    dir: PathBuf,
    lock: tokio::sync::Mutex<()>,
}

fn valid_hash(h: &str) -> bool {
    h.len() == 64
        && h.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

impl PhotoStore {
    pub fn new(dir: PathBuf) -> std::io::Result<PhotoStore> {
        std::fs::create_dir_all(dir.join("partial"))?;
        Ok(PhotoStore {
            dir,
            lock: tokio::sync::Mutex::new(()),
        })
    }

    fn final_path(&self, h: &str) -> PathBuf {
        self.dir.join(format!("{h}.jpg"))
    }

    fn part_path(&self, h: &str) -> PathBuf {
        self.dir.join("partial").join(format!("{h}.part"))
    }

    fn len_path(&self, h: &str) -> PathBuf {
        self.dir.join("partial").join(format!("{h}.len"))
    }

    /// (offset, length) of an upload, if the server knows it.
    ///
    /// An upload whose bytes have all arrived but that was never finished
    /// (the process died between the last write and keeping the photo) is
    /// finished here, so it is never reported complete while the photo is
    /// missing. Callers hold `lock`.
    fn state(&self, h: &str) -> std::io::Result<Option<(u64, u64)>> {
        if let Ok(m) = std::fs::metadata(self.final_path(h)) {
            return Ok(Some((m.len(), m.len())));
        }
        let Ok(len) = std::fs::read_to_string(self.len_path(h)) else {
            return Ok(None);
        };
        let Ok(length) = len.trim().parse::<u64>() else {
            return Ok(None);
        };
        let offset = std::fs::metadata(self.part_path(h))
            .map(|m| m.len())
            .unwrap_or(0);
        if offset >= length {
            return self.finish(h, length);
        }
        Ok(Some((offset, length)))
    }

    /// Keeps a fully uploaded photo under its final name if its bytes hash
    /// to that name; otherwise discards the upload, which then starts over.
    fn finish(&self, h: &str, length: u64) -> std::io::Result<Option<(u64, u64)>> {
        let part = self.part_path(h);
        let data = std::fs::read(&part)?;
        if data.len() as u64 == length && blake3::hash(&data).to_hex().as_str() == h {
            std::fs::rename(&part, self.final_path(h))?;
            sync_dir(&self.dir);
            let _ = std::fs::remove_file(self.len_path(h));
            return Ok(Some((length, length)));
        }
        let _ = std::fs::remove_file(&part);
        let _ = std::fs::remove_file(self.len_path(h));
        Ok(None)
    }

    /// The bytes of a complete photo.
    pub fn read(&self, h: &str) -> Option<Vec<u8>> {
        if !valid_hash(h) {
            return None;
        }
        std::fs::read(self.final_path(h)).ok()
    }

    /// Whether a complete photo is stored.
    pub fn has(&self, h: &str) -> bool {
        valid_hash(h) && self.final_path(h).exists()
    }
}

fn sync_dir(dir: &std::path::Path) {
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
}

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

/// `POST /v1/photos`: creates an upload. `Upload-Metadata` must carry
/// `blake3 <base64 of the hex hash>`; `Upload-Length` the size.
pub async fn create(
    State(st): State<AppState>,
    Auth(s): Auth,
    headers: HeaderMap,
) -> Result<Response, AppError> {
    let (length, hash) = creation_headers(&headers)?;
    let ps = &st.photos;
    let _guard = ps.lock.lock().await;
    match ps
        .state(&hash)
        .map_err(|e| AppError::Internal(e.to_string()))?
    {
        Some((_, l)) if l != length => {
            return Err(AppError::Conflict(format!(
                "an upload of {hash} with length {l} exists"
            )));
        }
        Some(_) => {}
        None => {
            let write = || -> std::io::Result<()> {
                let mut f = std::fs::File::create(ps.len_path(&hash))?;
                f.write_all(length.to_string().as_bytes())?;
                f.sync_all()?;
                std::fs::File::create(ps.part_path(&hash))?.sync_all()?;
                sync_dir(&ps.dir.join("partial"));
                Ok(())
            };
            write().map_err(|e| AppError::Internal(e.to_string()))?;
        }
    }
    drop(_guard);
    st.metrics
        .photo_uploads_started
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let _ = s;
    let mut r = StatusCode::CREATED.into_response();
    if let Ok(v) = HeaderValue::from_str(&format!("/v1/photos/{hash}")) {
        r.headers_mut().insert(header::LOCATION, v);
    }
    Ok(tus_headers(r))
}

/// `HEAD /v1/photos/<hash>`: the upload's offset and length.
pub async fn head(
    State(st): State<AppState>,
    Auth(_s): Auth,
    Path(hash): Path<String>,
) -> Result<Response, AppError> {
    check_hash(&hash)?;
    // `state` may finish an upload, which must not race a PATCH doing so.
    let _guard = st.photos.lock.lock().await;
    let Some((offset, length)) = st
        .photos
        .state(&hash)
        .map_err(|e| AppError::Internal(e.to_string()))?
    else {
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
    Auth(_s): Auth,
    Path(hash): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, AppError> {
    check_hash(&hash)?;
    if header_str(&headers, "content-type") != Some("application/offset+octet-stream") {
        return Err(AppError::UnsupportedMediaType(
            "PATCH bodies are application/offset+octet-stream".into(),
        ));
    }
    let (offset, checksum) = patch_headers(&headers)?;
    let bytes = axum::body::to_bytes(body, PHOTO_UPLOAD_BYTES_MAX as usize)
        .await
        .map_err(|_| {
            AppError::TooLarge(format!(
                "a chunk is over the limit of {PHOTO_UPLOAD_BYTES_MAX} bytes"
            ))
        })?;
    let ps = &st.photos;
    let _guard = ps.lock.lock().await;
    let Some((current, length)) = ps
        .state(&hash)
        .map_err(|e| AppError::Internal(e.to_string()))?
    else {
        return Err(AppError::NotFound(format!(
            "no upload for {hash}; create it first"
        )));
    };
    let new_offset = match patch_step(offset, current, length, bytes.len() as u64)? {
        PatchStep::Complete => {
            let mut r = StatusCode::NO_CONTENT.into_response();
            r.headers_mut()
                .insert("upload-offset", HeaderValue::from(current));
            return Ok(tus_headers(r));
        }
        PatchStep::Append { new_offset } => new_offset,
    };
    // 460 Checksum Mismatch (tus): the chunk is discarded.
    if let Some(sum) = checksum
        && sha1::Sha1::digest(&bytes).as_slice() != sum.as_slice()
    {
        let status = StatusCode::from_u16(460).unwrap_or(StatusCode::BAD_REQUEST);
        return Ok(tus_headers(
            (status, "checksum mismatch: chunk discarded").into_response(),
        ));
    }
    let part = ps.part_path(&hash);
    let append = || -> std::io::Result<()> {
        // `create`: a server that died creating the upload wrote the
        // declared length but not the empty file of bytes; the upload then
        // stands at offset 0 and must be able to start.
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&part)?;
        f.write_all(&bytes)?;
        f.sync_data()
    };
    append().map_err(|e| AppError::Internal(e.to_string()))?;
    if new_offset == length {
        let data = std::fs::read(&part).map_err(|e| AppError::Internal(e.to_string()))?;
        if blake3::hash(&data).to_hex().as_str() != hash {
            let _ = std::fs::remove_file(&part);
            let _ = std::fs::remove_file(ps.len_path(&hash));
            return Err(AppError::BadRequest(
                "the uploaded bytes do not match the photo's hash; upload discarded".into(),
            ));
        }
        std::fs::rename(&part, ps.final_path(&hash))
            .map_err(|e| AppError::Internal(e.to_string()))?;
        sync_dir(&ps.dir);
        let _ = std::fs::remove_file(ps.len_path(&hash));
        st.metrics
            .photos_completed
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
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
/// references it.
pub async fn get(
    State(st): State<AppState>,
    Auth(s): Auth,
    Path(hash): Path<String>,
) -> Result<Response, AppError> {
    check_hash(&hash)?;
    let (h2, areas) = (hash.clone(), s.pusher.areas.clone());
    let allowed = st.db(move |db| db.photo_readable(&h2, &areas)).await?;
    // Not found and not allowed look the same: no probing for photos.
    let data = if allowed { st.photos.read(&hash) } else { None };
    match data {
        Some(d) => Ok((
            [
                (header::CONTENT_TYPE, "image/jpeg"),
                (header::CACHE_CONTROL, "private, max-age=86400"),
            ],
            d,
        )
            .into_response()),
        None => Err(AppError::NotFound(format!(
            "no photo {hash} that this user may read"
        ))),
    }
}
