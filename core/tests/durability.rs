//! A record the API said was saved survives SIGKILL at any moment.
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
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const ROUNDS: u64 = 12;

#[test]
fn saved_records_survive_sigkill() {
    let dir = tempfile::tempdir().unwrap();
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64;
    eprintln!("durability seed {seed}");
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
        let mut child = Command::new(env!("CARGO_BIN_EXE_fieldbook-store-crash-child"))
            .arg(dir.path())
            .arg((seed.wrapping_add(round)).to_string())
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
        // Wait for the first save so the kill lands inside the save loop,
        // then a random 0–150 ms more.
        let first = rx
            .recv_timeout(Duration::from_secs(60))
            .expect("child saved nothing");
        let mut lines = vec![first];
        let deadline = Instant::now() + Duration::from_millis(next() % 150);
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
