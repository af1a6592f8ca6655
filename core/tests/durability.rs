//! A record the API said was saved survives SIGKILL at any moment: while
//! saving answers (and compacting), while writing photos, and while
//! applying pages from the server.
//!
//! A child process saves records in a loop, printing each save after the
//! call returned; the test kills it with SIGKILL after a random delay,
//! reopens the store, and checks that every printed save is there and that
//! SQLite's integrity check passes. Several rounds reuse the same folder, so
//! later rounds also recover from the earlier kills.
#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests fail loudly on purpose.

mod common;

use fieldbook_core::model::{InspectionStatus, Role};
use fieldbook_core::store::{InspectionFilter, Store};
use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const ROUNDS: u64 = 12;

#[test]
fn saved_records_survive_sigkill() {
    let dir = tempfile::tempdir().unwrap();
    let seed = seed("durability");
    let mut rng = seed | 1;
    let mut next = move || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    let mut promised: HashMap<String, (usize, bool)> = HashMap::new();
    let mut total_lines = 0;
    for round in 0..ROUNDS {
        let lines = run_and_kill(dir.path(), seed.wrapping_add(round), "save", next() % 150);
        total_lines += lines.len();
        for l in lines {
            let parts: Vec<&str> = l.split(' ').collect();
            assert_eq!(parts.len(), 4, "{l}");
            let answered: usize = parts[2].parse().unwrap();
            let submitted = parts[3] == "1";
            let e = promised.entry(parts[1].to_owned()).or_insert((0, false));
            e.0 = e.0.max(answered);
            e.1 |= submitted;
        }

        let mut store = Store::open(
            dir.path(),
            common::identity("li.wei", Role::Inspector, "phone-1"),
        )
        .unwrap();
        assert_eq!(
            store.integrity_check().unwrap(),
            "ok",
            "round {round}, seed {seed}"
        );
        let listed = store
            .list_inspections(&InspectionFilter {
                limit: Some(10_000),
                ..Default::default()
            })
            .unwrap();
        let by_id: HashMap<_, _> = listed.iter().map(|i| (i.id.clone(), i)).collect();
        for (id, (answered, submitted)) in &promised {
            let row = by_id.get(id).unwrap_or_else(|| {
                panic!("saved inspection {id} lost (round {round}, seed {seed})")
            });
            let view = store.inspection_view(id).unwrap();
            let stored = view.fields.iter().filter(|f| f.value.is_some()).count();
            assert!(
                stored >= *answered,
                "{id}: {stored} answers stored, {answered} promised (seed {seed})"
            );
            assert_eq!(
                row.answered as usize, stored,
                "projection disagrees with the document"
            );
            if *submitted {
                assert_eq!(
                    view.status,
                    InspectionStatus::Submitted,
                    "{id} (seed {seed})"
                );
            }
        }
    }
    eprintln!(
        "{ROUNDS} kills, {total_lines} saves promised, {} inspections checked",
        promised.len()
    );
    assert!(promised.len() >= ROUNDS as usize);
}

/// Runs the crash child in `mode` on `dir`, waits for its first line, lets
/// it go on for `extra_ms` more, kills it with SIGKILL and returns every
/// line it printed (each a step the store had finished).
fn run_and_kill(dir: &Path, seed: u64, mode: &str, extra_ms: u64) -> Vec<String> {
    let mut child = Command::new(env!("CARGO_BIN_EXE_fieldbook-store-crash-child"))
        .arg(dir)
        .arg(seed.to_string())
        .arg(mode)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    // Wait for the first step so the kill lands inside the loop.
    let first = rx
        .recv_timeout(Duration::from_secs(60))
        .expect("child did nothing");
    let mut lines = vec![first];
    let deadline = Instant::now() + Duration::from_millis(extra_ms);
    while Instant::now() < deadline {
        if let Ok(l) = rx.recv_timeout(Duration::from_millis(1)) {
            lines.push(l);
        }
    }
    child.kill().unwrap(); // SIGKILL on Unix.
    let status = child.wait().unwrap();
    assert!(
        !status.success(),
        "the child must have been killed, not exited: {status}"
    );
    reader.join().unwrap();
    lines.extend(rx.try_iter());
    lines
}

/// A seed from the clock, printed so a failure can be replayed.
fn seed(what: &str) -> u64 {
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64;
    eprintln!("{what} seed {seed}");
    seed
}

#[test]
fn photos_and_applied_pages_survive_sigkill() {
    let dir = tempfile::tempdir().unwrap();
    let seed = seed("photos and pages");
    // photo -> inspection holding it; record -> (answers, cursor).
    let mut photos: HashMap<String, String> = HashMap::new();
    let mut applied: HashMap<String, (usize, u64)> = HashMap::new();
    for round in 0..8u64 {
        let mode = if round % 2 == 0 { "photos" } else { "apply" };
        let extra = (seed >> (round * 4)) % if mode == "photos" { 1500 } else { 400 };
        for l in run_and_kill(dir.path(), seed.wrapping_add(round), mode, extra) {
            let parts: Vec<&str> = l.split(' ').collect();
            match parts.as_slice() {
                ["photo", id, hash] => {
                    photos.insert((*hash).to_owned(), (*id).to_owned());
                }
                ["applied", id, answered, cursor] => {
                    applied.insert(
                        (*id).to_owned(),
                        (answered.parse().unwrap(), cursor.parse().unwrap()),
                    );
                }
                _ => panic!("unexpected line {l:?}"),
            }
        }
        let mut store = Store::open(
            dir.path(),
            common::identity("li.wei", Role::Inspector, "phone-1"),
        )
        .unwrap();
        assert_eq!(store.integrity_check().unwrap(), "ok", "round {round}");
        // A kill between writing a photo and renaming it leaves a temporary
        // file; opening the store clears them.
        let leftovers: Vec<_> = std::fs::read_dir(store.photo_dir())
            .unwrap()
            .filter_map(Result::ok)
            .filter(|e| e.file_name().to_string_lossy().ends_with(".tmp"))
            .collect();
        assert!(
            leftovers.is_empty(),
            "temporary photo files left: {leftovers:?}"
        );
        for (hash, id) in &photos {
            let view = store.inspection_view(id).unwrap();
            assert!(
                view.photos.iter().any(|p| &p.hash == hash),
                "photo {hash} of {id} lost (seed {seed})"
            );
            let file = std::fs::read(store.photo_path(hash)).unwrap();
            assert_eq!(
                &fieldbook_core::photo::hash::content_hash(&file),
                hash,
                "photo file {hash} damaged (seed {seed})"
            );
        }
        let mut last_cursor = 0;
        for (id, (answered, cursor)) in &applied {
            let view = store
                .inspection_view(id)
                .unwrap_or_else(|e| panic!("applied record {id} lost: {e} (seed {seed})"));
            let stored = view.fields.iter().filter(|f| f.value.is_some()).count();
            assert!(
                stored >= *answered,
                "{id}: {stored} of {answered} (seed {seed})"
            );
            last_cursor = last_cursor.max(*cursor);
        }
        let cursor: u64 = store
            .setting("crash_cursor")
            .unwrap()
            .map_or(0, |c| c.parse().unwrap());
        assert!(
            cursor >= last_cursor,
            "cursor {cursor} behind the last applied page {last_cursor} (seed {seed})"
        );
    }
    eprintln!(
        "8 kills: {} photos and {} applied records checked",
        photos.len(),
        applied.len()
    );
    assert!(!photos.is_empty() && !applied.is_empty());
}
