//! Entry points of the fuzz targets: one function per decoder that takes
//! bytes from outside (sync payloads, Automerge records as the phone store
//! and the server ingest them, photos, templates, indicator definitions,
//! registry CSV, tus headers).
//!
//! They live here, in the end-to-end crate, rather than in the fuzz crate,
//! so that `tests/tests/fuzz_regressions.rs` replays every crash fixture
//! and seed through exactly the code the fuzzer ran, under plain
//! `cargo test` on stable. The fuzz crate (`fuzz/`, nightly, outside the
//! workspace) depends on this crate by path and its targets are one-line
//! calls into [`run`]. This crate already depends on the core and the
//! server, so the fuzz build compiles nothing a test build does not.
//!
//! Every entry takes arbitrary bytes and may get errors back from the code
//! under test; those are fine. A panic, a hang or an unbounded allocation
//! is the bug. Beyond "no panic" each entry asserts a property that must
//! hold for any input: re-encoding a decoded message decodes to the same
//! value, a refused record leaves the store as it was, the server's
//! projections stay consistent with its documents, and so on. These
//! assertions are deliberate panics: they are how a fuzzer reports them.
//!
//! The store and server entries split their input into items with a small
//! framing of their own (see [`split_items`]) instead of the wire format,
//! so the fuzzer mutates Automerge bytes directly; the wire decoders have
//! their own targets.

// A failed property must abort the run loudly: that is what a fuzzer sees.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use automerge::{Automerge, Change};
use fieldbook_core::doc::{self, RecordKind};
use fieldbook_core::model::indicator::Indicators;
use fieldbook_core::model::{Role, Template};
use fieldbook_core::photo::{Limits, PhotoOptions};
use fieldbook_core::policy::Identity as Pusher;
use fieldbook_core::store::{Identity, IncomingRecord, Store, untrusted};
use fieldbook_core::sync::wire::{self, Item, ItemKind, SyncRequest, SyncResponse};
use fieldbook_server::storage::prelude::*;
use fieldbook_server::storage::sqlite::SqliteStorage;
use fieldbook_server::storage::{Outcome, Session};
use std::collections::BTreeSet;

/// Every fuzz target, by name (the name of its `fuzz/fuzz_targets/*.rs`,
/// of its seed folder `fuzz/seeds/<name>/` and of its fixture folder
/// `tests/fuzz-fixtures/<name>/`).
pub const TARGETS: &[&str] = &[
    "wire_request",
    "wire_response",
    "automerge_doc",
    "store_apply",
    "server_ingest",
    "photo",
    "template",
    "indicator",
    "registry_csv",
    "tus_headers",
    "tus_client",
];

/// Runs the entry of `target` on `data`. Unknown names panic: a typo in a
/// target must not pass silently.
pub fn run(target: &str, data: &[u8]) {
    match target {
        "wire_request" => wire_request(data),
        "wire_response" => wire_response(data),
        "automerge_doc" => automerge_doc(data),
        "store_apply" => store_apply(data),
        "server_ingest" => server_ingest(data),
        "photo" => photo(data),
        "template" => template(data),
        "indicator" => indicator(data),
        "registry_csv" => registry_csv(data),
        "tus_headers" => tus_headers(data),
        "tus_client" => tus_client(data),
        other => panic!("unknown fuzz target {other}"),
    }
}

/// `POST /v1/sync` body as the server decodes it.
pub fn wire_request(data: &[u8]) {
    if let Ok(req) = SyncRequest::decode(data) {
        let again = SyncRequest::decode(&req.encode()).expect("a re-encoded request decodes");
        assert_eq!(again, req, "a request survives re-encoding");
    }
}

/// The sync reply as the phone decodes it.
pub fn wire_response(data: &[u8]) {
    if let Ok(resp) = SyncResponse::decode(data) {
        let again = SyncResponse::decode(&resp.encode()).expect("a re-encoded response decodes");
        assert_eq!(again, resp, "a response survives re-encoding");
    }
}

/// One Automerge document save or change, read as each record kind the way
/// the store, the server and the review UI read records.
pub fn automerge_doc(data: &[u8]) {
    // The scan that bounds what loading costs reads any bytes without
    // panicking; what it passes must still be refused or read cleanly below.
    let scan =
        fieldbook_core::doc::budget::check(data, &fieldbook_core::doc::budget::Budget::RECORD);
    let doc = match untrusted(|| Change::try_from(data))
        .ok()
        .and_then(Result::ok)
        .ok_or(())
    {
        // Refused by the store and the server before anything else.
        Ok(change) if !fieldbook_core::store::change_checksum_valid(data, &change) => return,
        // Through `untrusted`, as the store and the server apply changes.
        Ok(change) => {
            let mut d = Automerge::new();
            match untrusted(|| d.apply_changes([change])) {
                Ok(Ok(_)) => d,
                _ => return,
            }
        }
        Err(_) => match untrusted(|| Automerge::load(data)) {
            Ok(Ok(d)) => d,
            _ => return,
        },
    };
    read_every_kind(&doc);
    for kind in [
        RecordKind::Site,
        RecordKind::Inspection,
        RecordKind::Finding,
    ] {
        let _ =
            fieldbook_core::doc::layout::check(&doc, kind, "0190f000-0000-7000-8000-000000000001");
    }
    let _ = scan;
    // What the store keeps is a save of what it read; reading that back
    // must give the same records.
    let saved = doc.save();
    let reloaded = Automerge::load(&saved).expect("a save loads");
    assert_eq!(
        doc::site::read(&doc),
        doc::site::read(&reloaded),
        "a site reads the same after save and load"
    );
    assert_eq!(
        doc::finding::read(&doc),
        doc::finding::read(&reloaded),
        "a finding reads the same after save and load"
    );
    let _ = doc.get_heads();
}

fn read_every_kind(doc: &Automerge) {
    let _ = doc::read_header(doc);
    let _ = doc::site::read(doc);
    let _ = doc::inspection::read_head(doc);
    let _ = doc::inspection::read(doc);
    let _ = doc::finding::read(doc);
    let _ = fieldbook_core::doc::Record::read(RecordKind::Inspection, doc);
}

/// Record ids the framing addresses: a few, so that items of one input
/// meet in the same record.
pub const DOC_IDS: [&str; 4] = [
    "01900000-0000-7000-8000-000000000001",
    "01900000-0000-7000-8000-000000000002",
    "01900000-0000-7000-8000-000000000003",
    "01900000-0000-7000-8000-000000000004",
];

/// Most items taken from one input.
const ITEMS_MAX: usize = 32;

/// Splits fuzz input into sync items. Each item is a tag byte, a 16-bit
/// little-endian length and that many data bytes (fewer if the input ends).
/// Tag bit 0 is the item kind (0 change, 1 document), bits 1–2 the record
/// kind (site, inspection, finding; 3 is a site), bits 3–4 which of
/// [`DOC_IDS`] it belongs to. Empty items are dropped, as the wire drops
/// them.
pub fn split_items(mut data: &[u8]) -> Vec<Item> {
    let mut items = Vec::new();
    while items.len() < ITEMS_MAX {
        let [tag, lo, hi, rest @ ..] = data else {
            break;
        };
        let len = usize::from(u16::from_le_bytes([*lo, *hi])).min(rest.len());
        let (body, tail) = rest.split_at(len);
        data = tail;
        if body.is_empty() {
            continue;
        }
        items.push(Item {
            kind: if tag & 1 == 0 {
                ItemKind::Change
            } else {
                ItemKind::Document
            },
            record: match (tag >> 1) & 3 {
                1 => RecordKind::Inspection,
                2 => RecordKind::Finding,
                _ => RecordKind::Site,
            },
            doc_id: wire::doc_id_bytes(DOC_IDS[usize::from((tag >> 3) & 3)])
                .expect("fixed ids are UUIDs"),
            data: body.to_vec(),
        });
    }
    items
}

/// The inverse of [`split_items`], for writing seeds.
pub fn join_items(items: &[Item]) -> Vec<u8> {
    let mut out = Vec::new();
    for it in items {
        let record = match it.record {
            RecordKind::Site => 0u8,
            RecordKind::Inspection => 1,
            RecordKind::Finding => 2,
        };
        let slot = DOC_IDS
            .iter()
            .position(|d| wire::doc_id_bytes(d) == Some(it.doc_id))
            .unwrap_or(0) as u8;
        out.push(u8::from(it.kind == ItemKind::Document) | record << 1 | slot << 3);
        let len = u16::try_from(it.data.len()).expect("seed items fit the framing");
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(&it.data);
    }
    out
}

/// A temporary folder in memory when the system has one: the store and the
/// server sync every commit to disk, which would make each run cost
/// milliseconds of I/O.
fn scratch_dir() -> tempfile::TempDir {
    let shm = std::path::Path::new("/dev/shm");
    if shm.is_dir()
        && let Ok(d) = tempfile::tempdir_in(shm)
    {
        return d;
    }
    tempfile::tempdir().expect("temp dir")
}

/// A page of remote records applied to a fresh phone store, as the sync
/// client applies the page of a reply.
pub fn store_apply(data: &[u8]) {
    let items = split_items(data);
    if items.is_empty() {
        return;
    }
    let dir = scratch_dir();
    let identity = Identity {
        user: "fuzz".into(),
        role: Role::Supervisor,
        areas: vec!["41".into()],
        device: "fuzz-phone".into(),
    };
    let mut store = Store::open(dir.path(), identity.clone()).expect("open store");
    let records: Vec<IncomingRecord> = items
        .iter()
        .map(|it| IncomingRecord {
            doc_id: it.doc_id_text(),
            kind: it.record,
            data: it.data.clone(),
        })
        .collect();
    let report = store
        .apply_remote(&records, &[("sync.cursor", "7")])
        .expect("a page applies, bad records are rejected alone");
    // What landed is exactly the records accepted: a rejected part leaves
    // nothing behind, and its record is stored only if another part of it
    // was accepted after it.
    let landed: BTreeSet<&String> = report.applied.iter().collect();
    let stored = store.document_count().expect("count");
    assert_eq!(
        stored,
        landed.len() as u64,
        "records stored are the records accepted: {report:?}"
    );
    assert_eq!(
        store.setting("sync.cursor").expect("cursor").as_deref(),
        Some("7"),
        "the cursor lands with the page"
    );
    assert_eq!(store.integrity_check().expect("integrity"), "ok");
    drop(store);
    // Everything stored loads again from SQLite alone.
    let mut store = Store::open(dir.path(), identity).expect("reopen store");
    for id in DOC_IDS {
        match store.record_kind(id) {
            Ok(RecordKind::Site) => {
                let _ = store.site(id);
            }
            Ok(RecordKind::Inspection) => {
                let _ = store.inspection_view(id);
            }
            Ok(RecordKind::Finding) => {
                let _ = store.finding_view(id);
            }
            Err(_) => {}
        }
    }
    let _ = store.list_sites(&Default::default());
    let _ = store.list_inspections(&Default::default());
    let _ = store.list_findings(&Default::default());
}

/// The actor of the first item that decodes: the fuzzed batch is pushed by
/// the device that wrote it, so the server's checks go past the actor test.
fn first_actor(items: &[Item]) -> Option<String> {
    items.iter().find_map(|it| {
        if let Ok(Ok(c)) = untrusted(|| Change::try_from(it.data.as_slice())) {
            return Some(c.actor_id().to_hex_string());
        }
        let d = untrusted(|| Automerge::load(&it.data)).ok()?.ok()?;
        d.get_changes_meta(&[])
            .first()
            .map(|m| m.actor.to_hex_string())
    })
}

/// A batch of pushed items checked and stored by the server, then pulled.
/// The first input byte picks the pusher's role; the rest are items.
pub fn server_ingest(data: &[u8]) {
    let Some((&role, rest)) = data.split_first() else {
        return;
    };
    let items = split_items(rest);
    if items.is_empty() {
        return;
    }
    let actor = first_actor(&items).unwrap_or_else(|| "00".repeat(16));
    let dir = scratch_dir();
    let storage = SqliteStorage::open(&dir.path().join("server.db")).expect("open server storage");
    let session = Session {
        pusher: Pusher {
            // The user the seeds' records name, so they pass the checks.
            user: "li.wei".into(),
            role: Role::ALL[usize::from(role) % Role::ALL.len()],
            areas: vec!["41".into()],
            device: "fuzz-phone".into(),
        },
        actor,
        expires_at: i64::MAX,
    };
    let outcomes = storage
        .ingest(&session, &items, 1_700_000_000_000)
        .expect("a batch is checked, bad items are rejected alone");
    assert_eq!(outcomes.len(), items.len(), "one outcome per item");
    let stored_new = outcomes
        .iter()
        .any(|o| matches!(o, Outcome::Stored { new: true }));
    let counts = storage.counts().expect("counts");
    if !stored_new {
        assert_eq!(counts.documents, 0, "refused items store nothing");
    }
    assert_eq!(
        storage.verify_projections().expect("verify"),
        Vec::<String>::new(),
        "projections match the stored documents"
    );
    let page = storage
        .pull(&session, 0, wire::PAGE_BYTES_DEFAULT as usize)
        .expect("pull");
    let resp = SyncResponse {
        page: page.items,
        cursor: page.cursor,
        more: page.more,
        ..Default::default()
    };
    assert_eq!(
        SyncResponse::decode(&resp.encode()).as_ref(),
        Ok(&resp),
        "what the server sends decodes on the phone"
    );
}

/// Long edge asked of the photo pipeline: small, to keep each run quick.
const PHOTO_EDGE_PX: u32 = 256;
/// Declared pixels allowed while fuzzing: the pipeline's limit logic is the
/// same as with the defaults (50 MP), which would make every large but
/// legitimate header cost a second.
const PHOTO_PIXELS: u64 = 1 << 20;

/// Untrusted photo bytes through the whole pipeline (header, limits,
/// decode, resize, orientation, encode, hashes, EXIF).
pub fn photo(data: &[u8]) {
    let options = PhotoOptions {
        edge_px_max: PHOTO_EDGE_PX,
        limits: Limits {
            pixels_max: PHOTO_PIXELS,
            ..Limits::default()
        },
        ..PhotoOptions::default()
    };
    if let Ok(c) = fieldbook_core::photo::compress(data, &options) {
        assert!(!c.jpeg.is_empty(), "a compressed photo has bytes");
        assert!(
            c.width.max(c.height) <= PHOTO_EDGE_PX && c.width > 0 && c.height > 0,
            "{}×{} fits the requested edge",
            c.width,
            c.height
        );
        let h = fieldbook_core::photo::decode::read_header(&c.jpeg, &Limits::default())
            .expect("the output reads as a JPEG");
        assert_eq!((h.width, h.height), (c.width, c.height));
    }
}

/// A template file as `Template::parse` reads it, then used the way the
/// app uses one: validating answers and evaluating rules.
pub fn template(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(t) = Template::parse(text) else {
        return;
    };
    let empty = Default::default();
    let _ = t.validate(&empty, &Default::default());
    let _ = t.rule_outcomes(&empty);
    for f in &t.fields {
        let _ = t.is_visible(&f.key, &empty);
        let _ = t.photos_needed(&f.key, &empty);
    }
}

/// An indicator definitions file as `Indicators::parse` reads it.
pub fn indicator(data: &[u8]) {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = Indicators::parse(text);
    }
}

/// A registry CSV import.
pub fn registry_csv(data: &[u8]) {
    if let Ok(sites) = fieldbook_server::registry::parse(data, "fuzz", 0) {
        for s in &sites {
            assert_eq!(s.village_code.len(), 12, "imported sites have villages");
            assert!(uuid_like(&s.id), "imported site id {} is a UUID", s.id);
        }
    }
}

fn uuid_like(s: &str) -> bool {
    wire::doc_id_bytes(s).is_some()
}

/// tus request headers as the photo upload handlers read them, and the
/// PATCH offset decision. The input is header lines (`name: value`); a
/// final line `state: <current> <length> <chunk>` gives the upload's state
/// for the PATCH decision.
pub fn tus_headers(data: &[u8]) {
    use axum::http::{HeaderMap, HeaderName, HeaderValue};
    use fieldbook_server::http::photos::{PatchStep, creation_headers, patch_headers, patch_step};
    let mut headers = HeaderMap::new();
    let mut state = (0u64, 0u64, 0u64);
    for line in data.split(|&b| b == b'\n') {
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            continue;
        };
        let (name, value) = (&line[..colon], line[colon + 1..].trim_ascii());
        if name == b"state" {
            let mut n = value
                .split(|&b| b == b' ')
                .map(|v| std::str::from_utf8(v).ok().and_then(|v| v.parse().ok()));
            state = (
                n.next().flatten().unwrap_or(0),
                n.next().flatten().unwrap_or(0),
                n.next().flatten().unwrap_or(0),
            );
            continue;
        }
        if let (Ok(n), Ok(v)) = (HeaderName::from_bytes(name), HeaderValue::from_bytes(value)) {
            headers.append(n, v);
        }
    }
    if let Ok((length, hash)) = creation_headers(&headers) {
        assert!(length > 0 && length <= fieldbook_core::sync::tus::PHOTO_UPLOAD_BYTES_MAX);
        assert_eq!(hash.len(), 64);
    }
    if let Ok((offset, _)) = patch_headers(&headers) {
        let (current, length, chunk) = state;
        if let Ok(PatchStep::Append { new_offset }) = patch_step(offset, current, length, chunk) {
            assert!(new_offset <= length, "an append stays within the upload");
            assert_eq!(new_offset, offset + chunk);
        }
    }
    if let Ok(text) = std::str::from_utf8(data) {
        use fieldbook_core::sync::tus::{base64_decode, base64_encode};
        if let Some(bytes) = base64_decode(text) {
            assert_eq!(
                base64_decode(&base64_encode(&bytes)).as_deref(),
                Some(bytes.as_slice())
            );
        }
    }
}

/// Most transport calls one photo upload may make before the run counts as
/// a hang: an honest server needs a handful per chunk.
const TUS_CALLS_MAX: usize = 1000;

/// A tus server scripted by fuzz input: each call takes its answer from
/// the next bytes, and the script starts over when it ends, so a short
/// input is a server that keeps misbehaving the same way. An empty script
/// is an honest server.
struct ScriptedTus<'a> {
    data: &'a [u8],
    pos: usize,
    calls: usize,
    /// Length and offset of the one upload, as an honest server keeps them.
    length: Option<u64>,
    offset: u64,
}

impl ScriptedTus<'_> {
    fn byte(&mut self) -> Option<u8> {
        if self.data.is_empty() {
            return None;
        }
        let b = self.data[self.pos % self.data.len()];
        self.pos += 1;
        Some(b)
    }

    fn number(&mut self) -> u64 {
        let mut n = 0u64;
        for _ in 0..4 {
            n = n << 8 | u64::from(self.byte().unwrap_or(0));
        }
        n
    }

    fn count(&mut self) {
        self.calls += 1;
        assert!(
            self.calls <= TUS_CALLS_MAX,
            "the uploader made {} calls for one photo: it does not give up",
            self.calls
        );
    }

    fn failure(&mut self, b: u8) -> fieldbook_core::sync::TransportError {
        use fieldbook_core::sync::TransportError;
        match b % 4 {
            0 => TransportError::Unreachable("scripted".into()),
            1 => TransportError::Refused {
                status: 409,
                message: "scripted".into(),
            },
            2 => TransportError::Server {
                status: 500,
                message: "scripted".into(),
            },
            _ => TransportError::Refused {
                status: 460,
                message: "scripted".into(),
            },
        }
    }
}

impl fieldbook_core::sync::tus::PhotoTransport for ScriptedTus<'_> {
    fn head(
        &mut self,
        _hash: &str,
    ) -> Result<Option<fieldbook_core::sync::tus::UploadState>, fieldbook_core::sync::TransportError>
    {
        use fieldbook_core::sync::tus::UploadState;
        self.count();
        let honest = self.length.map(|length| UploadState {
            offset: self.offset,
            length,
        });
        match self.byte() {
            None => Ok(honest),
            Some(b) if b < 128 => Ok(honest),
            Some(b) if b < 160 => Ok(None),
            Some(b) if b < 192 => Err(self.failure(b)),
            Some(_) => Ok(Some(UploadState {
                offset: self.number(),
                length: self.number(),
            })),
        }
    }

    fn create(
        &mut self,
        _hash: &str,
        length: u64,
    ) -> Result<(), fieldbook_core::sync::TransportError> {
        self.count();
        match self.byte() {
            Some(b) if b >= 192 => Err(self.failure(b)),
            _ => {
                if self.length != Some(length) {
                    self.length = Some(length);
                    self.offset = 0;
                }
                Ok(())
            }
        }
    }

    fn patch(
        &mut self,
        _hash: &str,
        offset: u64,
        chunk: &[u8],
    ) -> Result<u64, fieldbook_core::sync::TransportError> {
        self.count();
        let honest = |s: &mut Self| {
            if offset == s.offset {
                s.offset += chunk.len() as u64;
                Ok(s.offset)
            } else {
                Err(fieldbook_core::sync::TransportError::Refused {
                    status: 409,
                    message: "offset".into(),
                })
            }
        };
        match self.byte() {
            None => honest(self),
            Some(b) if b < 128 => honest(self),
            Some(b) if b < 192 => Err(self.failure(b)),
            Some(_) => Ok(self.number()),
        }
    }
}

/// The phone's photo uploader against a tus server whose answers (status,
/// `Upload-Offset`, `Upload-Length`) come from the input: however the
/// server answers, the upload ends, with success or an error.
pub fn tus_client(data: &[u8]) {
    use fieldbook_core::model::SiteKind;
    use fieldbook_core::photo::{Compressed, Format, Header, Orientation, Source};
    use fieldbook_core::store::NewSite;
    use fieldbook_core::sync::tus::CHUNK_BYTES;
    let dir = scratch_dir();
    let mut store = Store::open(
        dir.path(),
        Identity {
            user: "li.wei".into(),
            role: Role::Inspector,
            areas: vec!["41".into()],
            device: "fuzz-phone".into(),
        },
    )
    .expect("open store");
    let site = store
        .add_site(NewSite {
            kind: SiteKind::GarbagePoint,
            name: "村口垃圾房".into(),
            village_code: "410324101201".into(),
            location: None,
            attributes: Default::default(),
        })
        .expect("site");
    let insp = store.start_inspection(&site).expect("inspection");
    // Three chunks and a bit: the uploader's resume logic needs several.
    let jpeg: Vec<u8> = (0..3 * CHUNK_BYTES + 100)
        .map(|i| (i % 251) as u8)
        .collect();
    let compressed = Compressed {
        hash: fieldbook_core::photo::hash::content_hash(&jpeg),
        jpeg,
        width: 8,
        height: 8,
        phash: "0".repeat(16),
        taken_at: None,
        gps: None,
        source: Source {
            header: Header {
                format: Format::Jpeg,
                width: 8,
                height: 8,
                progressive: false,
            },
            orientation: Orientation::default(),
            scale_denom: 1,
        },
    };
    store
        .attach_compressed_photo(&insp, compressed, None)
        .expect("attach photo");
    let mut server = ScriptedTus {
        data,
        pos: 0,
        calls: 0,
        length: None,
        offset: 0,
    };
    let _ = fieldbook_core::sync::tus::upload_pending(
        &mut store,
        &mut server,
        &std::sync::atomic::AtomicBool::new(false),
    );
}
