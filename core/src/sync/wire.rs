//! The sync wire format, shared by the phone and the server. Byte by byte
//! in `docs/protocol.md`; this module is its only implementation.
//!
//! A message is a 12-byte envelope — magic `FBSY`, version, message type,
//! compression, body length — followed by the body, raw or deflated. Bodies
//! use LEB128 varints and length-prefixed byte strings. Every length is
//! checked against a named limit before anything is allocated, so a hostile
//! message costs at most the limits.

use std::io::{Read, Write};

/// Envelope magic.
pub const MAGIC: [u8; 4] = *b"FBSY";
/// Protocol version this build speaks.
pub const VERSION: u8 = 1;
/// Largest envelope on the wire (compressed body + envelope), bytes.
pub const MESSAGE_BYTES_MAX: usize = 16 << 20;
/// Largest body after decompression, bytes: refuses decompression bombs.
pub const BODY_BYTES_MAX: usize = 64 << 20;
/// Most items in one request.
pub const REQUEST_ITEMS_MAX: usize = 20_000;
/// Largest single change or document save, bytes.
pub const ITEM_BYTES_MAX: usize = 4 << 20;
/// Page size the server uses when the phone asks for none, bytes.
pub const PAGE_BYTES_DEFAULT: u32 = 1 << 20;
/// Largest page a phone may ask for, bytes.
pub const PAGE_BYTES_MAX: u32 = 8 << 20;
/// Longest rejection message, bytes.
pub const MESSAGE_TEXT_BYTES_MAX: usize = 1024;

const ENVELOPE_BYTES: usize = 12;

/// Message types.
const TYPE_REQUEST: u8 = 1;
const TYPE_RESPONSE: u8 = 2;

/// Bodies smaller than this are sent raw: deflate would not pay.
const COMPRESS_FROM_BYTES: usize = 256;

/// Why bytes are not a valid message.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum WireError {
    #[error("not a Fieldbook sync message (bad magic)")]
    BadMagic,
    #[error("sync protocol version {0} is not supported; this side speaks version {VERSION}")]
    Version(u8),
    #[error("expected a sync {expected}, got message type {found}")]
    WrongType { expected: &'static str, found: u8 },
    #[error("unknown compression {0}")]
    Compression(u8),
    #[error("message is {0} bytes; the limit is {MESSAGE_BYTES_MAX}")]
    TooLarge(usize),
    #[error("message body would be {0} bytes; the limit is {BODY_BYTES_MAX}")]
    BodyTooLarge(u64),
    #[error("message is truncated")]
    Truncated,
    #[error("compressed body is corrupt")]
    Deflate,
    #[error("{what} is {n}; the limit is {max}")]
    Limit {
        what: &'static str,
        n: u64,
        max: u64,
    },
    #[error("invalid {0}")]
    Invalid(&'static str),
    #[error("{0} trailing bytes after the message")]
    Trailing(usize),
    #[error("the compressed body inflates to more than its declared {0} bytes")]
    LongerThanDeclared(usize),
}

/// What an item carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ItemKind {
    /// One Automerge change.
    Change = 1,
    /// One whole Automerge document save.
    Document = 2,
}

/// Record kinds on the wire.
pub fn record_kind_code(k: crate::doc::RecordKind) -> u8 {
    match k {
        crate::doc::RecordKind::Site => 1,
        crate::doc::RecordKind::Inspection => 2,
        crate::doc::RecordKind::Finding => 3,
    }
}

fn record_kind_from(code: u8) -> Result<crate::doc::RecordKind, WireError> {
    Ok(match code {
        1 => crate::doc::RecordKind::Site,
        2 => crate::doc::RecordKind::Inspection,
        3 => crate::doc::RecordKind::Finding,
        _ => return Err(WireError::Invalid("record kind")),
    })
}

/// One record's data: a change or a whole document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Item {
    pub kind: ItemKind,
    pub record: crate::doc::RecordKind,
    /// Record id (a UUID) as 16 bytes.
    pub doc_id: [u8; 16],
    pub data: Vec<u8>,
}

impl Item {
    /// The record id in its text form.
    pub fn doc_id_text(&self) -> String {
        uuid::Uuid::from_bytes(self.doc_id).to_string()
    }
}

/// Parses a record id; ids are UUIDs so they travel as 16 bytes.
pub fn doc_id_bytes(id: &str) -> Option<[u8; 16]> {
    uuid::Uuid::parse_str(id).ok().map(|u| *u.as_bytes())
}

/// Phone → server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncRequest {
    /// The last server sequence number the phone has fully applied.
    pub cursor: u64,
    /// Page size the phone wants (0 = server default).
    pub page_bytes: u32,
    pub items: Vec<Item>,
}

/// Why the server refused an item. The phone shows the message; the code
/// tells it what to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RejectCode {
    /// The change was written by another device's actor.
    ForeignActor = 1,
    /// The user's role may not change what the change touches.
    Forbidden = 2,
    /// The record lies outside the user's areas.
    OutOfScope = 3,
    /// The record breaks its template or the document layout.
    Invalid = 4,
    /// The bytes are not an Automerge change or document.
    Undecodable = 5,
    /// The server lacks the change's history: send the whole document.
    NeedDocument = 6,
}

impl RejectCode {
    fn from(code: u8) -> Result<RejectCode, WireError> {
        Ok(match code {
            1 => RejectCode::ForeignActor,
            2 => RejectCode::Forbidden,
            3 => RejectCode::OutOfScope,
            4 => RejectCode::Invalid,
            5 => RejectCode::Undecodable,
            6 => RejectCode::NeedDocument,
            _ => return Err(WireError::Invalid("rejection code")),
        })
    }

    pub fn key(self) -> &'static str {
        match self {
            RejectCode::ForeignActor => "foreign_actor",
            RejectCode::Forbidden => "forbidden",
            RejectCode::OutOfScope => "out_of_scope",
            RejectCode::Invalid => "invalid",
            RejectCode::Undecodable => "undecodable",
            RejectCode::NeedDocument => "need_document",
        }
    }
}

/// One refused item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    /// Index of the item in the request.
    pub index: u32,
    pub code: RejectCode,
    pub message: String,
}

/// One item of the pull page, with the server sequence number it came in at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageItem {
    pub seq: u64,
    pub item: Item,
}

/// Server → phone.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SyncResponse {
    /// Indices of request items now durably stored on the server (new or
    /// already there).
    pub acked: Vec<u32>,
    pub rejected: Vec<Rejection>,
    pub page: Vec<PageItem>,
    /// Cursor to send next time; apply it with the page.
    pub cursor: u64,
    /// More changes wait above `cursor`.
    pub more: bool,
}

// ---- encoding ---------------------------------------------------------------

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    loop {
        let byte = (v & 0x7f) as u8;
        v >>= 7;
        if v == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

fn put_bytes(out: &mut Vec<u8>, b: &[u8]) {
    put_varint(out, b.len() as u64);
    out.extend_from_slice(b);
}

fn put_item(out: &mut Vec<u8>, it: &Item) {
    out.push(it.kind as u8);
    out.push(record_kind_code(it.record));
    out.extend_from_slice(&it.doc_id);
    put_bytes(out, &it.data);
}

fn envelope(ty: u8, body: Vec<u8>) -> Vec<u8> {
    let (compression, payload) = if body.len() >= COMPRESS_FROM_BYTES {
        let mut enc = flate2::write::DeflateEncoder::new(
            Vec::with_capacity(body.len() / 2),
            flate2::Compression::new(6),
        );
        // Writing into a Vec cannot fail.
        let compressed = enc.write_all(&body).and_then(|()| enc.finish()).ok();
        match compressed {
            Some(c) if c.len() < body.len() => (1u8, c),
            _ => (0u8, body.clone()),
        }
    } else {
        (0u8, body.clone())
    };
    let mut out = Vec::with_capacity(ENVELOPE_BYTES + payload.len());
    out.extend_from_slice(&MAGIC);
    out.push(VERSION);
    out.push(ty);
    out.push(compression);
    out.push(0); // reserved
    out.extend_from_slice(&(body.len() as u32).to_le_bytes());
    out.extend_from_slice(&payload);
    out
}

impl SyncRequest {
    pub fn encode(&self) -> Vec<u8> {
        let mut b = Vec::new();
        put_varint(&mut b, self.cursor);
        put_varint(&mut b, u64::from(self.page_bytes));
        put_varint(&mut b, self.items.len() as u64);
        for it in &self.items {
            put_item(&mut b, it);
        }
        envelope(TYPE_REQUEST, b)
    }

    pub fn decode(bytes: &[u8]) -> Result<SyncRequest, WireError> {
        let body = open_envelope(bytes, TYPE_REQUEST, "request")?;
        let mut r = Reader { b: &body, pos: 0 };
        let cursor = r.varint()?;
        let page_bytes = r.varint_max("page size", u64::from(PAGE_BYTES_MAX))? as u32;
        let n = r.varint_max("item count", REQUEST_ITEMS_MAX as u64)? as usize;
        let mut items = Vec::with_capacity(n.min(1024));
        for _ in 0..n {
            items.push(r.item()?);
        }
        r.end()?;
        Ok(SyncRequest {
            cursor,
            page_bytes,
            items,
        })
    }
}

impl SyncResponse {
    pub fn encode(&self) -> Vec<u8> {
        let mut b = Vec::new();
        put_varint(&mut b, self.acked.len() as u64);
        for i in &self.acked {
            put_varint(&mut b, u64::from(*i));
        }
        put_varint(&mut b, self.rejected.len() as u64);
        for r in &self.rejected {
            put_varint(&mut b, u64::from(r.index));
            b.push(r.code as u8);
            let msg = truncate_utf8(&r.message, MESSAGE_TEXT_BYTES_MAX);
            put_bytes(&mut b, msg.as_bytes());
        }
        put_varint(&mut b, self.page.len() as u64);
        for p in &self.page {
            put_varint(&mut b, p.seq);
            put_item(&mut b, &p.item);
        }
        put_varint(&mut b, self.cursor);
        b.push(u8::from(self.more));
        envelope(TYPE_RESPONSE, b)
    }

    pub fn decode(bytes: &[u8]) -> Result<SyncResponse, WireError> {
        let body = open_envelope(bytes, TYPE_RESPONSE, "response")?;
        let mut r = Reader { b: &body, pos: 0 };
        let n = r.varint_max("acknowledgement count", REQUEST_ITEMS_MAX as u64)? as usize;
        let mut acked = Vec::with_capacity(n);
        for _ in 0..n {
            acked.push(r.varint_max("item index", REQUEST_ITEMS_MAX as u64)? as u32);
        }
        let n = r.varint_max("rejection count", REQUEST_ITEMS_MAX as u64)? as usize;
        let mut rejected = Vec::with_capacity(n);
        for _ in 0..n {
            let index = r.varint_max("item index", REQUEST_ITEMS_MAX as u64)? as u32;
            let code = RejectCode::from(r.byte()?)?;
            let msg = r.bytes_max("rejection message", MESSAGE_TEXT_BYTES_MAX)?;
            let message = String::from_utf8(msg.to_vec())
                .map_err(|_| WireError::Invalid("rejection message"))?;
            rejected.push(Rejection {
                index,
                code,
                message,
            });
        }
        let n = r.varint_max("page length", (BODY_BYTES_MAX / 19) as u64)? as usize;
        let mut page = Vec::with_capacity(n.min(1024));
        for _ in 0..n {
            let seq = r.varint()?;
            page.push(PageItem {
                seq,
                item: r.item()?,
            });
        }
        let cursor = r.varint()?;
        let more = match r.byte()? {
            0 => false,
            1 => true,
            _ => return Err(WireError::Invalid("more flag")),
        };
        r.end()?;
        Ok(SyncResponse {
            acked,
            rejected,
            page,
            cursor,
            more,
        })
    }
}

fn truncate_utf8(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// Checks the envelope and returns the (decompressed) body.
fn open_envelope(bytes: &[u8], ty: u8, expected: &'static str) -> Result<Vec<u8>, WireError> {
    if bytes.len() > MESSAGE_BYTES_MAX {
        return Err(WireError::TooLarge(bytes.len()));
    }
    if bytes.len() < ENVELOPE_BYTES {
        return Err(if bytes.get(..4).is_some_and(|m| m != MAGIC) {
            WireError::BadMagic
        } else {
            WireError::Truncated
        });
    }
    if bytes[..4] != MAGIC {
        return Err(WireError::BadMagic);
    }
    if bytes[4] != VERSION {
        return Err(WireError::Version(bytes[4]));
    }
    if bytes[5] != ty {
        return Err(WireError::WrongType {
            expected,
            found: bytes[5],
        });
    }
    if bytes[7] != 0 {
        return Err(WireError::Invalid("reserved byte (must be 0)"));
    }
    let len = u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize;
    if len > BODY_BYTES_MAX {
        return Err(WireError::BodyTooLarge(len as u64));
    }
    let payload = &bytes[ENVELOPE_BYTES..];
    match bytes[6] {
        0 => {
            if payload.len() != len {
                return Err(if payload.len() < len {
                    WireError::Truncated
                } else {
                    WireError::Trailing(payload.len() - len)
                });
            }
            Ok(payload.to_vec())
        }
        1 => {
            // Read one byte past the declared length to catch a body that
            // inflates to more than it claims. Memory grows with what
            // actually inflates: a few bytes claiming 64 MiB reserve little.
            let mut out = Vec::with_capacity(len.min(payload.len().saturating_mul(4)));
            flate2::read::DeflateDecoder::new(payload)
                .take(len as u64 + 1)
                .read_to_end(&mut out)
                .map_err(|e| {
                    if e.kind() == std::io::ErrorKind::UnexpectedEof {
                        WireError::Truncated
                    } else {
                        WireError::Deflate
                    }
                })?;
            if out.len() != len {
                return Err(if out.len() < len {
                    WireError::Truncated
                } else {
                    WireError::LongerThanDeclared(len)
                });
            }
            Ok(out)
        }
        c => Err(WireError::Compression(c)),
    }
}

struct Reader<'a> {
    b: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn byte(&mut self) -> Result<u8, WireError> {
        let v = *self.b.get(self.pos).ok_or(WireError::Truncated)?;
        self.pos += 1;
        Ok(v)
    }

    fn varint(&mut self) -> Result<u64, WireError> {
        let mut v: u64 = 0;
        for shift in (0..64).step_by(7) {
            let byte = self.byte()?;
            v |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                if shift == 63 && byte > 1 {
                    return Err(WireError::Invalid("varint"));
                }
                return Ok(v);
            }
        }
        Err(WireError::Invalid("varint"))
    }

    fn varint_max(&mut self, what: &'static str, max: u64) -> Result<u64, WireError> {
        let n = self.varint()?;
        if n > max {
            return Err(WireError::Limit { what, n, max });
        }
        Ok(n)
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], WireError> {
        let end = self.pos.checked_add(n).ok_or(WireError::Truncated)?;
        let s = self.b.get(self.pos..end).ok_or(WireError::Truncated)?;
        self.pos = end;
        Ok(s)
    }

    fn bytes_max(&mut self, what: &'static str, max: usize) -> Result<&'a [u8], WireError> {
        let n = self.varint_max(what, max as u64)? as usize;
        self.take(n)
    }

    fn item(&mut self) -> Result<Item, WireError> {
        let kind = match self.byte()? {
            1 => ItemKind::Change,
            2 => ItemKind::Document,
            _ => return Err(WireError::Invalid("item kind")),
        };
        let record = record_kind_from(self.byte()?)?;
        let mut doc_id = [0u8; 16];
        doc_id.copy_from_slice(self.take(16)?);
        let data = self.bytes_max("item size", ITEM_BYTES_MAX)?.to_vec();
        if data.is_empty() {
            return Err(WireError::Invalid("empty item"));
        }
        Ok(Item {
            kind,
            record,
            doc_id,
            data,
        })
    }

    fn end(&self) -> Result<(), WireError> {
        match self.b.len() - self.pos {
            0 => Ok(()),
            n => Err(WireError::Trailing(n)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::doc::RecordKind;

    fn item(n: u8, len: usize) -> Item {
        Item {
            kind: ItemKind::Change,
            record: RecordKind::Inspection,
            doc_id: [n; 16],
            data: vec![n; len],
        }
    }

    #[test]
    fn round_trips() {
        let req = SyncRequest {
            cursor: 300,
            page_bytes: 65536,
            items: vec![item(1, 10), item(2, 5000)],
        };
        assert_eq!(SyncRequest::decode(&req.encode()).unwrap(), req);
        let resp = SyncResponse {
            acked: vec![0, 1],
            rejected: vec![Rejection {
                index: 2,
                code: RejectCode::OutOfScope,
                message: "区域 410322 不在范围内".into(),
            }],
            page: vec![PageItem {
                seq: 99,
                item: item(3, 40),
            }],
            cursor: 99,
            more: true,
        };
        assert_eq!(SyncResponse::decode(&resp.encode()).unwrap(), resp);
    }

    /// The envelope and an empty request, byte by byte (see docs/protocol.md).
    #[test]
    fn golden_empty_request() {
        let bytes = SyncRequest {
            cursor: 1,
            page_bytes: 0,
            items: vec![],
        }
        .encode();
        assert_eq!(
            bytes,
            [b'F', b'B', b'S', b'Y', 1, 1, 0, 0, 3, 0, 0, 0, 1, 0, 0]
        );
    }

    #[test]
    fn bad_messages_are_named_errors() {
        let good = SyncRequest {
            cursor: 7,
            page_bytes: 0,
            items: vec![item(1, 600)],
        }
        .encode();
        assert_eq!(good[6], 1, "a 600-byte body is compressed");
        let check = |bytes: &[u8], want: WireError| {
            assert_eq!(SyncRequest::decode(bytes).unwrap_err(), want)
        };
        check(b"GET / HTTP/1.1\r\n", WireError::BadMagic);
        check(&good[..5], WireError::Truncated);
        let mut v = good.clone();
        v[4] = 9;
        check(&v, WireError::Version(9));
        let mut v = good.clone();
        v[5] = 2;
        check(
            &v,
            WireError::WrongType {
                expected: "request",
                found: 2,
            },
        );
        let mut v = good.clone();
        v[6] = 7;
        check(&v, WireError::Compression(7));
        check(&good[..good.len() - 3], WireError::Truncated);
        let mut v = good.clone();
        v[8..12].copy_from_slice(&(BODY_BYTES_MAX as u32 + 1).to_le_bytes());
        check(&v, WireError::BodyTooLarge(BODY_BYTES_MAX as u64 + 1));
        // Claims a small body but inflates to more: a decompression bomb.
        let mut v = good.clone();
        v[8..12].copy_from_slice(&10u32.to_le_bytes());
        check(&v, WireError::LongerThanDeclared(10));
        // The reserved byte is reserved.
        let mut v = good.clone();
        v[7] = 1;
        check(&v, WireError::Invalid("reserved byte (must be 0)"));
        // Item count over the limit, before any allocation.
        let mut body = Vec::new();
        put_varint(&mut body, 0);
        put_varint(&mut body, 0);
        put_varint(&mut body, REQUEST_ITEMS_MAX as u64 + 1);
        check(
            &envelope(TYPE_REQUEST, body),
            WireError::Limit {
                what: "item count",
                n: REQUEST_ITEMS_MAX as u64 + 1,
                max: REQUEST_ITEMS_MAX as u64,
            },
        );
        let mut body = Vec::new();
        put_varint(&mut body, 0);
        put_varint(&mut body, 0);
        put_varint(&mut body, 0);
        body.push(0);
        check(&envelope(TYPE_REQUEST, body), WireError::Trailing(1));
        check(
            &vec![0u8; MESSAGE_BYTES_MAX + 1],
            WireError::TooLarge(MESSAGE_BYTES_MAX + 1),
        );
    }

    #[test]
    fn every_truncation_is_an_error_not_a_panic() {
        let resp = SyncResponse {
            acked: vec![0],
            rejected: vec![Rejection {
                index: 1,
                code: RejectCode::Invalid,
                message: "x".into(),
            }],
            page: vec![PageItem {
                seq: 5,
                item: item(4, 30),
            }],
            cursor: 5,
            more: false,
        }
        .encode();
        for cut in 0..resp.len() {
            assert!(SyncResponse::decode(&resp[..cut]).is_err(), "cut at {cut}");
        }
    }
}
