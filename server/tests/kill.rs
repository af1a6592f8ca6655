//! The server is killed with SIGKILL again and again while `fieldbook sim`
//! runs phones against it through a lossy connection; at the end nothing
//! acknowledged is lost, nothing is duplicated, every photo arrived whole,
//! and the server's projections equal a recomputation from its documents.
#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests fail loudly on purpose.

use fieldbook_server::storage::prelude::*;
use fieldbook_server::storage::sqlite::SqliteStorage;
use std::io::Write;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_fieldbook");
const ADMIN_PASSWORD: &str = "kill test admin password";

/// Kills the child when dropped, so a failing assertion leaves no server
/// running behind.
struct Reaper(Option<Child>);

impl Reaper {
    fn get(&mut self) -> &mut Child {
        self.0.as_mut().expect("a child")
    }
}

impl Drop for Reaper {
    fn drop(&mut self) {
        if let Some(mut c) = self.0.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn serve(data: &std::path::Path, port: u16) -> Child {
    Command::new(BIN)
        .args(["serve", "--data"])
        .arg(data)
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

fn wait_healthy(port: u16) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("server did not come up on port {port}");
}

#[test]
fn nothing_acknowledged_is_lost_when_the_server_is_killed() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut add = Command::new(BIN)
        .args(["admin", "--data"])
        .arg(&data)
        .args(["user", "add", "admin", "--role", "admin", "--area", "4103"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    add.stdin
        .take()
        .unwrap()
        .write_all(ADMIN_PASSWORD.as_bytes())
        .unwrap();
    assert!(add.wait().unwrap().success());

    let port = free_port();
    let mut server = Reaper(Some(serve(&data, port)));
    wait_healthy(port);
    let mut sim = Command::new(BIN)
        .args(["sim", "--server", &format!("http://127.0.0.1:{port}")])
        .args([
            "--phones",
            "6",
            "--inspections",
            "12",
            "--loss",
            "0.1",
            "--seed",
            "11",
            "--patience",
            "60",
        ])
        .env("FIELDBOOK_ADMIN_PASSWORD", ADMIN_PASSWORD)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();

    // Kill a bounded number of times at random moments, then let the run
    // finish against a server that stays up.
    const KILLS_MAX: u32 = 8;
    let mut kills = 0;
    let mut rng: u64 = 0x2545_f491_4f6c_dd1d;
    let deadline = Instant::now() + Duration::from_secs(240);
    loop {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        std::thread::sleep(Duration::from_millis(100 + rng % 400));
        if kills >= KILLS_MAX || sim.try_wait().unwrap().is_some() {
            break;
        }
        assert!(Instant::now() < deadline, "sim did not finish");
        server.get().kill().unwrap(); // SIGKILL
        server.get().wait().unwrap();
        kills += 1;
        std::thread::sleep(Duration::from_millis(rng % 120));
        server = Reaper(Some(serve(&data, port)));
        wait_healthy(port);
    }
    while sim.try_wait().unwrap().is_none() {
        assert!(Instant::now() < deadline, "sim did not finish");
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = sim.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "sim failed after {kills} kills: {stdout}\n{stderr}"
    );
    let report: serde_json::Value = serde_json::from_str(stdout.lines().last().unwrap()).unwrap();
    eprintln!("{kills} kills: {report}");
    assert!(
        kills >= 2,
        "the server was killed only {kills} times; the run was too short to mean anything"
    );
    assert_eq!(report["lost"], 0);
    assert_eq!(report["duplicated"], 0);
    assert_eq!(report["inspections_created"], 72);
    assert_eq!(report["inspections_on_server"], 72);
    assert_eq!(report["photos_created"], 144);
    assert_eq!(report["photos_missing"], 0);
    // The count waits for the server through restarts: a photo is only
    // counted after the server answered for it.
    assert_eq!(report["photos_unverified"], 0);
    drop(server);

    let storage = SqliteStorage::open(&data.join("server.db")).unwrap();
    assert_eq!(storage.verify_projections().unwrap(), Vec::<String>::new());
}
