//! Photos travel separately from records, over tus, addressed by their
//! content hash: uploads resume where they broke off, a photo the server
//! has is never sent again, and only users who may read a referencing
//! record may download it.
#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests fail loudly on purpose.

use fieldbook_core::model::{Role, SiteKind, Value};
use fieldbook_core::photo::PhotoInput;
use fieldbook_core::store::NewSite;
use fieldbook_core::sync::TransportError;
use fieldbook_core::sync::tus::{self, PhotoTransport, UploadState};
use fieldbook_tests::{Phone, TestServer, post_declaring_length, raw_post, test_png};
use std::sync::atomic::AtomicBool;

const VILLAGE: &str = "410324101201";

fn server() -> TestServer {
    let s = TestServer::start();
    s.add_user("li.wei", Role::Inspector, &["410324"]);
    s.add_user("wang.fang", Role::Supervisor, &["410324"]);
    s.add_user("zhao.lei", Role::Supervisor, &["410325"]);
    s
}

/// A garbage point inspection with one photo per "overflowing" evidence.
fn inspection_with_photos(p: &mut Phone, seeds: &[u32], size: (u32, u32)) -> (String, Vec<String>) {
    let site = p
        .store
        .add_site(NewSite {
            kind: SiteKind::GarbagePoint,
            name: "村口垃圾房".into(),
            village_code: VILLAGE.into(),
            location: None,
            attributes: Default::default(),
        })
        .unwrap();
    let id = p.store.start_inspection(&site).unwrap();
    p.store
        .set_answer(&id, "overflowing", Value::Bool(true))
        .unwrap();
    let hashes = seeds
        .iter()
        .map(|s| {
            p.store
                .add_photo(
                    &id,
                    PhotoInput::Bytes(&test_png(size.0, size.1, *s)),
                    Some("overflowing"),
                )
                .unwrap()
                .hash
        })
        .collect();
    (id, hashes)
}

#[test]
fn photos_upload_and_only_readers_of_the_record_download_them() {
    let server = server();
    let mut li = Phone::login(&server, "li.wei", "phone-li");
    let (_, hashes) = inspection_with_photos(&mut li, &[1, 2], (800, 600));
    let s = li.sync().unwrap();
    assert_eq!(s.photos.uploaded, 2, "{s:?}");
    assert_eq!(li.store.pending_counts().unwrap().photos, 0);
    for h in &hashes {
        let local = std::fs::read(li.store.photo_path(h)).unwrap();
        assert_eq!(blake3::hash(&local).to_hex().as_str(), h);
        assert_eq!(
            li.download(h).unwrap(),
            local,
            "the inspector reads back the same bytes"
        );
    }
    let sup = Phone::login(&server, "wang.fang", "desk");
    assert!(sup.download(&hashes[0]).is_ok());
    // A supervisor of another county may not, and cannot tell it exists.
    let other = Phone::login(&server, "zhao.lei", "desk-2");
    assert!(matches!(
        other.download(&hashes[0]),
        Err(TransportError::Refused { status: 404, .. })
    ));
    // A second sync sends nothing.
    assert_eq!(li.sync().unwrap().photos, Default::default());
}

/// Fails the `fail_at`-th PATCH (after the server stored it if `after`).
struct CutAt<'a> {
    inner: &'a mut fieldbook_core::sync::http::HttpTransport,
    patches: u32,
    fail_at: u32,
    after: bool,
}

impl PhotoTransport for CutAt<'_> {
    fn head(&mut self, hash: &str) -> Result<Option<UploadState>, TransportError> {
        self.inner.head(hash)
    }
    fn create(&mut self, hash: &str, length: u64) -> Result<(), TransportError> {
        self.inner.create(hash, length)
    }
    fn patch(&mut self, hash: &str, offset: u64, chunk: &[u8]) -> Result<u64, TransportError> {
        self.patches += 1;
        if self.patches == self.fail_at && !self.after {
            return Err(TransportError::Unreachable("cut".into()));
        }
        let r = self.inner.patch(hash, offset, chunk)?;
        if self.patches == self.fail_at {
            return Err(TransportError::Unreachable(
                "cut after the server stored it".into(),
            ));
        }
        Ok(r)
    }
}

#[test]
fn an_upload_cut_at_any_chunk_resumes_and_sends_each_byte_once() {
    let server = server();
    for (fail_at, after) in [(1, false), (1, true), (2, false), (2, true), (3, true)] {
        let mut li = Phone::login(&server, "li.wei", &format!("phone-{fail_at}-{after}"));
        // Big and noisy enough to need several 256 KiB chunks.
        let (_, hashes) = inspection_with_photos(
            &mut li,
            &[100 + fail_at * 2 + u32::from(after)],
            (1600, 1200),
        );
        let h = &hashes[0];
        let size = std::fs::metadata(li.store.photo_path(h)).unwrap().len();
        assert!(
            size > 2 * tus::CHUNK_BYTES as u64,
            "test photo is only {size} bytes"
        );
        let mut cut = CutAt {
            inner: &mut li.transport,
            patches: 0,
            fail_at,
            after,
        };
        let never = AtomicBool::new(false);
        assert!(tus::upload_pending(&mut li.store, &mut cut, &never).is_err());
        let state = li.transport.head(h).unwrap().unwrap();
        let stored = ((fail_at - 1 + u32::from(after)) as u64 * tus::CHUNK_BYTES as u64).min(size);
        assert_eq!(
            state,
            UploadState {
                offset: stored,
                length: size
            }
        );
        // The retry resumes from the server's offset: nothing is resent.
        let done = tus::upload_pending(&mut li.store, &mut li.transport, &never).unwrap();
        assert_eq!(done.uploaded + done.already_there, 1);
        assert_eq!(
            done.bytes_sent,
            size - stored,
            "cut at {fail_at} after={after}"
        );
        // Before the record reaches the server, nobody may read the photo.
        assert!(matches!(
            li.download(h),
            Err(TransportError::Refused { status: 404, .. })
        ));
        li.sync().unwrap();
        assert_eq!(
            li.download(h).unwrap(),
            std::fs::read(li.store.photo_path(h)).unwrap()
        );
    }
}

#[test]
fn a_damaged_photo_file_is_never_sent_and_the_rest_go_up() {
    let server = server();
    let mut li = Phone::login(&server, "li.wei", "phone-li");
    let (_, hashes) = inspection_with_photos(&mut li, &[21, 22, 23], (640, 480));
    // A torn write or a failing card: the middle photo is cut in half, the
    // last has one byte flipped.
    let cut = li.store.photo_path(&hashes[1]);
    let bytes = std::fs::read(&cut).unwrap();
    std::fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap();
    let flip = li.store.photo_path(&hashes[2]);
    let mut bytes = std::fs::read(&flip).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x40;
    std::fs::write(&flip, &bytes).unwrap();

    let s = li.sync().unwrap();
    assert_eq!((s.photos.uploaded, s.photos.damaged_files), (1, 2));
    assert_eq!(li.download(&hashes[0]).unwrap().len() as u64, {
        std::fs::metadata(li.store.photo_path(&hashes[0]))
            .unwrap()
            .len()
    });
    for h in &hashes[1..] {
        assert!(
            matches!(
                li.download(h),
                Err(TransportError::Refused { status: 404, .. })
            ),
            "the server must not hold damaged evidence {h}"
        );
    }
    // They stay pending, so the app keeps asking for a retake, and a later
    // sync neither fails nor sends them.
    assert_eq!(li.store.pending_photos().unwrap().len(), 2);
    let again = li.sync().unwrap();
    assert_eq!((again.photos.uploaded, again.photos.damaged_files), (0, 2));
}

#[test]
fn a_photo_the_server_has_is_never_sent_again() {
    let server = server();
    let mut a = Phone::login(&server, "li.wei", "phone-a");
    let (_, ha) = inspection_with_photos(&mut a, &[7], (640, 480));
    a.sync().unwrap();
    let mut b = Phone::login(&server, "li.wei", "phone-b");
    let (_, hb) = inspection_with_photos(&mut b, &[7], (640, 480));
    assert_eq!(
        ha, hb,
        "the same photo has the same identity on every phone"
    );
    let s = b.sync().unwrap();
    assert_eq!(
        (
            s.photos.uploaded,
            s.photos.already_there,
            s.photos.bytes_sent
        ),
        (0, 1, 0)
    );
}

#[test]
fn bad_uploads_are_refused_and_change_nothing() {
    let server = server();
    let mut li = Phone::login(&server, "li.wei", "phone-li");
    let (_, hashes) = inspection_with_photos(&mut li, &[3], (640, 480));
    let h = hashes[0].clone();
    let bytes = std::fs::read(li.store.photo_path(&h)).unwrap();
    let t = &mut li.transport;
    t.create(&h, bytes.len() as u64).unwrap();
    // Wrong offset: 409, nothing appended.
    assert!(matches!(
        t.patch(&h, 10, &bytes[..100]),
        Err(TransportError::Refused { status: 409, .. })
    ));
    assert_eq!(t.head(&h).unwrap().unwrap().offset, 0);
    // A chunk past the declared length.
    let mut long = bytes.clone();
    long.push(0);
    assert!(matches!(
        t.patch(&h, 0, &long),
        Err(TransportError::Refused { status: 400, .. })
    ));
    // A chunk whose checksum does not match: 460, discarded.
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let resp = agent
        .patch(format!("{}/v1/photos/{h}", server.url))
        .header("authorization", format!("Bearer {}", raw_token(&server)))
        .header("tus-resumable", "1.0.0")
        .header("content-type", "application/offset+octet-stream")
        .header("upload-offset", "0")
        .header("upload-checksum", tus::checksum_header(b"other bytes"))
        .send(&bytes[..100])
        .unwrap();
    assert_eq!(resp.status().as_u16(), 460);
    assert_eq!(t.head(&h).unwrap().unwrap().offset, 0);
    // Bytes that do not hash to the name: discarded at the end.
    let mut wrong = bytes.clone();
    wrong[100] ^= 0xff;
    assert!(matches!(
        t.patch(&h, 0, &wrong),
        Err(TransportError::Refused { status: 400, .. })
    ));
    assert_eq!(t.head(&h).unwrap(), None, "the bad upload is gone");
    // Oversized declarations and malformed names.
    let tok = raw_token(&server);
    let (status, _) = raw_post(
        &server.url,
        "/v1/photos/not-a-hash",
        Some(&tok),
        "application/offset+octet-stream",
        b"x",
    );
    assert_eq!(status, 405, "POST is not a method of an upload");
    let (status, body) = post_declaring_length(
        &server.url,
        "/v1/photos",
        Some(&tok),
        "application/offset+octet-stream",
        10,
    );
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("Upload-Length"), "{body}");
    let create = |length: &str, meta: &str| {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .build()
            .into();
        let r = agent
            .post(format!("{}/v1/photos", server.url))
            .header("authorization", format!("Bearer {tok}"))
            .header("tus-resumable", "1.0.0")
            .header("upload-length", length)
            .header("upload-metadata", meta)
            .send_empty()
            .unwrap();
        let status = r.status().as_u16();
        (status, r.into_body().read_to_string().unwrap_or_default())
    };
    let meta = format!("blake3 {}", tus::base64_encode(h.as_bytes()));
    let (status, body) = create(&(tus::PHOTO_UPLOAD_BYTES_MAX + 1).to_string(), &meta);
    assert_eq!(status, 413, "{body}");
    let (status, body) = create(
        "100",
        &format!("blake3 {}", tus::base64_encode(b"../../etc/passwd")),
    );
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("64 lowercase hex"), "{body}");
    let (status, body) = create("100", "filename eA==");
    assert_eq!(status, 400, "{body}");
    // The real upload still works afterwards.
    let never = AtomicBool::new(false);
    let done = tus::upload_pending(&mut li.store, &mut li.transport, &never).unwrap();
    assert_eq!(done.uploaded, 1);
    // Without a token: 401.
    let (status, _) = fieldbook_tests::raw_get(&server.url, &format!("/v1/photos/{h}"), None);
    assert_eq!(status, 401);
}

/// A token of li.wei on a device of its own, for hand-made requests.
fn raw_token(server: &TestServer) -> String {
    let dir = tempfile::tempdir().unwrap();
    let actor = fieldbook_core::store::Store::prepare(dir.path()).unwrap();
    let mut tr = fieldbook_core::sync::http::HttpTransport::new(&server.url, None);
    let device = format!("raw-{}", actor.get(..8).unwrap_or("x"));
    tr.login(&fieldbook_core::sync::http::LoginRequest {
        username: "li.wei".into(),
        password: fieldbook_tests::PASSWORD.into(),
        device,
        actor,
    })
    .unwrap()
    .token
}
