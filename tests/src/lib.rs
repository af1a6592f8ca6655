//! fieldbook-tests: end-to-end scenarios with real parts — a real
//! `fieldbook` server on 127.0.0.1 with a SQLite file, and phones that are
//! real core stores in temporary folders syncing over HTTP.
//!
//! [`TestServer`] runs the server on a background thread; [`Phone`] is one
//! logged-in device. Scenarios live in `tests/tests/*.rs`.

// Test support: a failure to set up a scenario should fail it loudly.
#![allow(clippy::unwrap_used, clippy::expect_used)]

pub mod console;
pub mod fuzz_entry;
pub mod hostile;
pub mod simulation;

use fieldbook_core::model::Role;
use fieldbook_core::store::{Identity, Store};
use fieldbook_core::sync::http::{HttpTransport, LoginRequest};
use fieldbook_core::sync::{self, SyncOptions, SyncSummary, TransportError};
use fieldbook_server::http::{AppState, app};
use fieldbook_server::http::{NewUser, create_user_record};
use fieldbook_server::storage::sqlite::SqliteStorage;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

/// Everything the server stores that a refused request might have touched.
pub fn server_state(server: &TestServer) -> String {
    use fieldbook_server::storage::Records;
    format!(
        "{:?} {:?}",
        server.storage.counts().expect("counts"),
        server.storage.verify_projections().expect("projections")
    )
}

/// The operator at the server's command line: the whole deployment.
pub fn operator() -> fieldbook_core::policy::Identity {
    fieldbook_core::policy::Identity {
        user: "admin".into(),
        role: Role::Admin,
        areas: vec![fieldbook_core::policy::WHOLE_DEPLOYMENT.into()],
        device: "cli".into(),
    }
}

/// Every test user's password.
pub const PASSWORD: &str = "correct horse battery";

/// A server on a free loopback port, stopped on drop.
pub struct TestServer {
    pub url: String,
    pub storage: Arc<SqliteStorage>,
    pub state: AppState,
    /// Added to the server's clock (milliseconds): moves time for expiry tests.
    pub clock_offset: Arc<std::sync::atomic::AtomicI64>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
    _dir: Option<tempfile::TempDir>,
}

impl TestServer {
    /// Starts a server on a fresh data folder.
    pub fn start() -> TestServer {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut s = TestServer::start_in(dir.path());
        s._dir = Some(dir);
        s
    }

    /// Starts a server on `dir` (restart tests reuse a folder).
    pub fn start_in(dir: &Path) -> TestServer {
        TestServer::start_with(
            dir,
            fieldbook_server::http::listen::Limits::default(),
            |_| {},
        )
    }

    /// Starts a server on a fresh data folder with connection `limits`,
    /// letting `tune` change the state (budgets, timeouts) first.
    pub fn start_tuned(
        limits: fieldbook_server::http::listen::Limits,
        tune: impl FnOnce(&mut AppState),
    ) -> TestServer {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut s = TestServer::start_with(dir.path(), limits, tune);
        s._dir = Some(dir);
        s
    }

    /// The data folder, when the server made its own.
    pub fn dir(&self) -> Option<&Path> {
        self._dir.as_ref().map(tempfile::TempDir::path)
    }

    fn start_with(
        dir: &Path,
        limits: fieldbook_server::http::listen::Limits,
        tune: impl FnOnce(&mut AppState),
    ) -> TestServer {
        let storage =
            Arc::new(SqliteStorage::open(&dir.join("server.db")).expect("open server storage"));
        let mut state = AppState::new(storage.clone(), dir.join("photos")).expect("photo folder");
        let clock_offset = Arc::new(std::sync::atomic::AtomicI64::new(0));
        let system = fieldbook_core::store::system_clock();
        let off = clock_offset.clone();
        state.clock = Arc::new(move || system() + off.load(std::sync::atomic::Ordering::SeqCst));
        tune(&mut state);
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let (addr_tx, addr_rx) = std::sync::mpsc::channel();
        let st = state.clone();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
                    .await
                    .expect("bind loopback");
                addr_tx
                    .send(listener.local_addr().expect("addr"))
                    .expect("send addr");
                fieldbook_server::http::listen::serve(listener, app(st), limits, async {
                    let _ = rx.await;
                })
                .await
                .expect("serve");
            });
        });
        let addr = addr_rx.recv().expect("server address");
        TestServer {
            url: format!("http://{addr}"),
            storage,
            state,
            clock_offset,
            stop: Some(tx),
            thread: Some(thread),
            _dir: None,
        }
    }

    /// Adds a user with [`PASSWORD`].
    pub fn add_user(&self, name: &str, role: Role, areas: &[&str]) {
        create_user_record(
            self.storage.as_ref(),
            &NewUser {
                name: name.into(),
                password: PASSWORD.into(),
                role: role.key().into(),
                areas: areas.iter().map(|a| (*a).to_owned()).collect(),
            },
            None,
            0,
        )
        .expect("create user");
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// One device of one user: a real store and an HTTP transport.
pub struct Phone {
    pub store: Store,
    pub transport: HttpTransport,
    pub dir: PathBuf,
    _tmp: Option<tempfile::TempDir>,
}

impl Phone {
    /// Logs in as `user` from a new device with its own store.
    pub fn login(server: &TestServer, user: &str, device: &str) -> Phone {
        let tmp = tempfile::tempdir().expect("temp dir");
        let mut p = Phone::login_in(&server.url, tmp.path(), user, device).expect("login");
        p._tmp = Some(tmp);
        p
    }

    /// Logs in with the store in `dir`.
    pub fn login_in(
        url: &str,
        dir: &Path,
        user: &str,
        device: &str,
    ) -> Result<Phone, TransportError> {
        let actor = Store::prepare(dir).expect("prepare store");
        let mut transport = HttpTransport::new(url, None);
        let login = transport.login(&LoginRequest {
            username: user.into(),
            password: PASSWORD.into(),
            device: device.into(),
            actor,
        })?;
        let identity = Identity {
            user: login.user,
            role: Role::from_key(&login.role).expect("role"),
            areas: login.areas,
            device: device.into(),
        };
        let store = Store::open(dir, identity).expect("open store");
        Ok(Phone {
            store,
            transport,
            dir: dir.to_owned(),
            _tmp: None,
        })
    }

    /// Logs in again on the same store (after "log in again"), keeping
    /// everything the store holds.
    pub fn relogin(mut self, url: &str, user: &str, device: &str) -> Result<Phone, TransportError> {
        let tmp = self._tmp.take();
        let dir = self.dir.clone();
        drop(self);
        let mut p = Phone::login_in(url, &dir, user, device)?;
        p._tmp = tmp;
        Ok(p)
    }

    /// Syncs until both directions are empty, then uploads photos, with
    /// fast retries.
    pub fn sync(&mut self) -> Result<SyncSummary, sync::SyncError> {
        sync::run_all(
            &mut self.store,
            &mut self.transport,
            &fast_retries(),
            &mut |_| {},
            &AtomicBool::new(false),
        )
    }

    /// The photo of `hash` as the server serves it to this phone's user.
    pub fn download(&self, hash: &str) -> Result<Vec<u8>, TransportError> {
        self.transport.get_photo(hash)
    }
}

/// Answers that complete a household-toilet inspection; `sanitary` decides
/// whether the template's `sanitary` rule holds (through the lid).
pub fn toilet_answers(sanitary: bool) -> Vec<(String, fieldbook_core::model::Value)> {
    use fieldbook_core::model::Value;
    [
        ("toilet_type", Value::from("three_chamber")),
        ("usage", "in_use".into()),
        ("enclosure_ok", true.into()),
        ("clean_no_odor", true.into()),
        ("tank_condition", "intact".into()),
        ("pipe_condition", "normal".into()),
        ("lid_sealed", sanitary.into()),
        ("emptying", "on_time".into()),
        ("effluent_to", "field_reuse".into()),
        ("old_toilet_removed", true.into()),
        ("aftercare_arranged", true.into()),
        ("satisfaction", "satisfied".into()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect()
}

/// A photo reference with a made-up hash `n`, tagged with `field`: for
/// record-level tests that need a photo count, not a file.
pub fn photo_ref(n: u64, field: &str) -> fieldbook_core::model::PhotoRef {
    fieldbook_core::model::PhotoRef {
        hash: format!("{n:064x}"),
        field: Some(field.into()),
        bytes: 1000,
        width: 1600,
        height: 1200,
        phash: format!("{n:016x}"),
        taken_at: None,
        gps: None,
        added_at: 0,
    }
}

/// A device token for `user` (with [`PASSWORD`]) from a fresh device.
pub fn token(server: &TestServer, user: &str, device: &str) -> String {
    let dir = tempfile::tempdir().expect("temp dir");
    let actor = Store::prepare(dir.path()).expect("prepare store");
    let mut t = HttpTransport::new(&server.url, None);
    t.login(&LoginRequest {
        username: user.into(),
        password: PASSWORD.into(),
        device: device.into(),
        actor,
    })
    .expect("login")
    .token
}

/// Sync options with short backoff, for tests.
pub fn fast_retries() -> SyncOptions {
    SyncOptions {
        backoff_base: std::time::Duration::from_millis(5),
        backoff_max: std::time::Duration::from_millis(50),
        ..SyncOptions::default()
    }
}

/// A photograph stand-in: a PNG of smooth gradients and noise, `w`×`h`,
/// different for each `seed`, so its JPEG is of realistic size.
pub fn test_png(w: u32, h: u32, seed: u32) -> Vec<u8> {
    let mut x = seed.wrapping_mul(2_654_435_761) | 1;
    let img = image::RgbImage::from_fn(w, h, |i, j| {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        let n = (x % 48) as u8;
        image::Rgb([
            ((i * 255 / w) as u8).wrapping_add(n),
            ((j * 255 / h) as u8).wrapping_add(n / 2),
            ((seed * 40) as u8).wrapping_add(n),
        ])
    });
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Png)
        .expect("encode png");
    out.into_inner()
}

/// A raw HTTP call (for malformed-input tests): status and body.
pub fn raw_post(
    url: &str,
    path: &str,
    token: Option<&str>,
    content_type: &str,
    body: &[u8],
) -> (u16, Vec<u8>) {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let mut req = agent
        .post(format!("{url}{path}"))
        .header("content-type", content_type);
    if let Some(t) = token {
        req = req.header("authorization", format!("Bearer {t}"));
    }
    let resp = req.send(body).expect("request");
    let status = resp.status().as_u16();
    let body = resp.into_body().read_to_vec().expect("body");
    (status, body)
}

/// A raw GET.
pub fn raw_get(url: &str, path: &str, token: Option<&str>) -> (u16, Vec<u8>) {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let mut req = agent.get(format!("{url}{path}"));
    if let Some(t) = token {
        req = req.header("authorization", format!("Bearer {t}"));
    }
    let resp = req.call().expect("request");
    let status = resp.status().as_u16();
    let body = resp.into_body().read_to_vec().expect("body");
    (status, body)
}

/// Sends only the head of a request that declares a `Content-Length` of
/// `declared` bytes and returns the status line's code and the body: how a
/// server answers an oversized upload before reading it.
pub fn post_declaring_length(
    url: &str,
    path: &str,
    token: Option<&str>,
    content_type: &str,
    declared: usize,
) -> (u16, String) {
    use std::io::{Read, Write};
    let addr = url.trim_start_matches("http://");
    let mut s = std::net::TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .expect("timeout");
    let auth = token
        .map(|t| format!("authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    write!(s, "POST {path} HTTP/1.1\r\nhost: {addr}\r\ncontent-type: {content_type}\r\ncontent-length: {declared}\r\n{auth}connection: close\r\n\r\n").expect("write head");
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    let text = String::from_utf8_lossy(&out).into_owned();
    let code = text
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = text.split("\r\n\r\n").nth(1).unwrap_or("").to_owned();
    (code, body)
}
