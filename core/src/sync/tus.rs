//! Resumable photo uploads: the client side of tus 1.0 (core, creation and
//! checksum extensions), and the small codecs both sides share.
//!
//! A photo is addressed by its BLAKE3 content hash: `HEAD /v1/photos/<hash>`
//! tells how much the server has, so a photo the server already holds is
//! never sent again and a broken upload resumes from the server's offset.
//! Each chunk carries a SHA-1 checksum (the algorithm tus requires); the
//! server checks the whole file against the hash at the end.

use super::client::TransportError;
use sha1::Digest;
use std::sync::atomic::{AtomicBool, Ordering};

/// The tus protocol version spoken.
pub const TUS_VERSION: &str = "1.0.0";
/// Bytes per PATCH.
pub const CHUNK_BYTES: usize = 256 << 10;
/// Largest photo the server takes, bytes (compressed photos are far smaller).
pub const PHOTO_UPLOAD_BYTES_MAX: u64 = 16 << 20;

/// Exchanges one upload run allows beyond two per chunk (see
/// `upload_pending`).
const EXCHANGES_SPARE: u64 = 4;

/// The server's side of one upload, as `HEAD` reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UploadState {
    pub offset: u64,
    pub length: u64,
}

/// What the uploader needs from the network; the HTTP transport implements
/// it, tests wrap it to cut uploads anywhere.
pub trait PhotoTransport {
    /// `None` when the server has no upload for this hash.
    fn head(&mut self, hash: &str) -> Result<Option<UploadState>, TransportError>;
    /// Creates the upload (tus creation).
    fn create(&mut self, hash: &str, length: u64) -> Result<(), TransportError>;
    /// Appends `chunk` at `offset`; returns the server's new offset.
    /// `Err(Refused{status: 409})` means the offset was wrong.
    fn patch(&mut self, hash: &str, offset: u64, chunk: &[u8]) -> Result<u64, TransportError>;
}

/// What an upload run did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct UploadSummary {
    /// Photos now complete on the server.
    pub uploaded: u32,
    /// Photos the server already had.
    pub already_there: u32,
    /// Photo references whose file is not on this phone.
    pub missing_files: u32,
    /// Photo files whose content no longer matches their hash (a torn
    /// write, a damaged card): never sent, so the server gets no bad
    /// evidence; the app asks for the photo to be retaken.
    pub damaged_files: u32,
    pub bytes_sent: u64,
}

/// Uploads every pending photo of `store`, resuming each from the server's
/// offset. Stops at the first transport failure (the caller retries later;
/// progress is kept in the store).
pub fn upload_pending<S: super::client::StoreAccess + ?Sized>(
    store: &mut S,
    t: &mut dyn PhotoTransport,
    cancel: &AtomicBool,
) -> Result<UploadSummary, super::SyncError> {
    let mut summary = UploadSummary::default();
    let (pending, folder) = store.with(|s| -> Result<_, crate::store::StoreError> {
        Ok((s.pending_photos()?, s.photo_dir()))
    })?;
    for p in pending {
        if cancel.load(Ordering::Relaxed) {
            return Err(super::SyncError::Cancelled);
        }
        let path = crate::store::photo_file(&folder, &p.hash);
        // Read once: the photo is checked and sent from memory (compressed
        // photos are a few hundred kilobytes, at most PHOTO_UPLOAD_BYTES_MAX).
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(_) => {
                summary.missing_files += 1;
                continue;
            }
        };
        // The name is the content hash: a file that no longer hashes to it
        // was damaged after it was written, and uploading it would put bad
        // evidence on the server (which would refuse it at the end anyway,
        // after the whole upload).
        if crate::photo::hash::content_hash(&bytes) != p.hash {
            summary.damaged_files += 1;
            continue;
        }
        let length = bytes.len() as u64;
        let mut offset = match t.head(&p.hash)? {
            Some(s) if s.length == length => s.offset,
            Some(_) | None => {
                t.create(&p.hash, length)?;
                t.head(&p.hash)?.map_or(0, |s| s.offset)
            }
        };
        if offset >= length {
            summary.already_there += 1;
        } else {
            // A server that never lets the upload end (409 after 409, or
            // offsets that go back and forth) would keep this loop going for
            // ever. An honest one needs a PATCH per chunk and the odd
            // resynchronisation: past twice that, give up on this run; the
            // caller retries later from the server's offset.
            let exchanges_max = 2 * length.div_ceil(CHUNK_BYTES as u64) + EXCHANGES_SPARE;
            let mut exchanges = 0;
            while offset < length {
                exchanges += 1;
                if exchanges > exchanges_max {
                    store.with(|s| s.set_photo_upload(&p.hash, "uploading", offset))?;
                    return Err(TransportError::Server {
                        status: 502,
                        message: format!(
                            "the upload of {} is still at offset {offset} after {exchanges_max} exchanges",
                            p.hash
                        ),
                    }
                    .into());
                }
                if cancel.load(Ordering::Relaxed) {
                    store.with(|s| s.set_photo_upload(&p.hash, "uploading", offset))?;
                    return Err(super::SyncError::Cancelled);
                }
                let start = usize::try_from(offset)
                    .unwrap_or(usize::MAX)
                    .min(bytes.len());
                let chunk = &bytes[start..(start + CHUNK_BYTES).min(bytes.len())];
                let n = chunk.len();
                if n == 0 {
                    break;
                }
                match t.patch(&p.hash, offset, chunk) {
                    // An offset past the file would end the loop as if the
                    // upload were complete: the server's answer is wrong.
                    Ok(next) if next > length => {
                        store.with(|s| s.set_photo_upload(&p.hash, "uploading", offset))?;
                        return Err(TransportError::Server {
                            status: 502,
                            message: format!(
                                "PATCH answered Upload-Offset {next} for a {length}-byte photo"
                            ),
                        }
                        .into());
                    }
                    Ok(next) => {
                        summary.bytes_sent += n as u64;
                        offset = next;
                    }
                    // Our idea of the offset was stale: ask the server.
                    Err(TransportError::Refused { status: 409, .. }) => {
                        offset = t.head(&p.hash)?.map_or(0, |s| s.offset);
                    }
                    Err(e) => {
                        store.with(|s| s.set_photo_upload(&p.hash, "uploading", offset))?;
                        return Err(e.into());
                    }
                }
            }
            summary.uploaded += 1;
        }
        store.with(|s| s.set_photo_upload(&p.hash, "done", length))?;
    }
    Ok(summary)
}

/// `Upload-Checksum` value for a chunk: `sha1 <base64>`.
pub fn checksum_header(chunk: &[u8]) -> String {
    format!("sha1 {}", base64_encode(&sha1::Sha1::digest(chunk)))
}

const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Standard base64 with padding (tus metadata and checksums use it).
pub fn base64_encode(data: &[u8]) -> String {
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(B64[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Decodes standard base64 with padding; `None` on any malformed input.
pub fn base64_decode(s: &str) -> Option<Vec<u8>> {
    let s = s.trim().as_bytes();
    if !s.len().is_multiple_of(4) {
        return None;
    }
    let val = |c: u8| B64.iter().position(|&x| x == c).map(|p| p as u32);
    let mut out = Vec::with_capacity(s.len() / 4 * 3);
    for (i, q) in s.chunks(4).enumerate() {
        let last = i == s.len() / 4 - 1;
        let pad = q.iter().rev().take_while(|&&c| c == b'=').count();
        if pad > 2 || (pad > 0 && !last) {
            return None;
        }
        let mut n = 0u32;
        for &c in &q[..4 - pad] {
            n = (n << 6) | val(c)?;
        }
        n <<= 6 * pad as u32;
        let bytes = [(n >> 16) as u8, (n >> 8) as u8, n as u8];
        out.extend_from_slice(&bytes[..3 - pad]);
    }
    Some(out)
}

impl PhotoTransport for super::http::HttpTransport {
    fn head(&mut self, hash: &str) -> Result<Option<UploadState>, TransportError> {
        let resp = self.request("HEAD", &format!("/v1/photos/{hash}"), &[])?;
        if resp.status == 404 {
            return Ok(None);
        }
        super::http::check_status(resp.status, &resp.body)?;
        let num = |h: &str| resp.header(h).and_then(|v| v.parse::<u64>().ok());
        match (num("upload-offset"), num("upload-length")) {
            (Some(offset), Some(length)) => Ok(Some(UploadState { offset, length })),
            _ => Err(TransportError::Server {
                status: resp.status,
                message: "HEAD without Upload-Offset/Upload-Length".into(),
            }),
        }
    }

    fn create(&mut self, hash: &str, length: u64) -> Result<(), TransportError> {
        let meta = format!("blake3 {}", base64_encode(hash.as_bytes()));
        let resp = self.request(
            "POST",
            "/v1/photos",
            &[
                ("upload-length", &length.to_string()),
                ("upload-metadata", &meta),
            ],
        )?;
        super::http::check_status(resp.status, &resp.body)
    }

    fn patch(&mut self, hash: &str, offset: u64, chunk: &[u8]) -> Result<u64, TransportError> {
        let resp = self.request_body(
            "PATCH",
            &format!("/v1/photos/{hash}"),
            &[
                ("content-type", "application/offset+octet-stream"),
                ("upload-offset", &offset.to_string()),
                ("upload-checksum", &checksum_header(chunk)),
            ],
            chunk,
        )?;
        super::http::check_status(resp.status, &resp.body)?;
        resp.header("upload-offset")
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| TransportError::Server {
                status: resp.status,
                message: "PATCH without Upload-Offset".into(),
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_round_trips_and_refuses_garbage() {
        for data in [
            &b""[..],
            b"f",
            b"fo",
            b"foo",
            b"foob",
            b"fooba",
            b"foobar",
            &[0xff, 0x00, 0x10],
        ] {
            let e = base64_encode(data);
            assert_eq!(base64_decode(&e).as_deref(), Some(data), "{e}");
        }
        assert_eq!(base64_encode(b"foobar"), "Zm9vYmFy");
        assert_eq!(base64_encode(b"fo"), "Zm8=");
        for bad in ["Zm9", "Z===", "Zm=8", "Zm9v!mFy", "=Zm8"] {
            assert_eq!(base64_decode(bad), None, "{bad}");
        }
    }

    #[test]
    fn checksum_is_sha1_base64() {
        // SHA-1("abc") = a9993e364706816aba3e25717850c26c9cd0d89d
        assert_eq!(checksum_header(b"abc"), "sha1 qZk+NkcGgWq6PiVxeFDCbJzQ2J0=");
    }
}
