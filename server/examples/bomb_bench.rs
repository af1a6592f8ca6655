//! What an operation bomb costs the server: a document of millions of
//! operations in a few hundred bytes, pushed by a logged-in device.
//!
//! `cargo run --release -p fieldbook-server --example bomb_bench [OPS [SHAPE…]]`
//! (default 16,000,000 operations, as in the review that found the hole;
//! shapes `one`, `alternate`, `list`, default all three).
//!
//! Builds the bomb with Automerge itself (a real, loadable document: a
//! valid site carrying the same key written OPS times), then measures each
//! side in a fresh child process (time, and how far the resident set's
//! high-water mark rose):
//!
//! - the refusal: a real SQLite storage ingesting the item as the sync
//!   handler does (scan, refusal, nothing stored);
//! - the reference: `Automerge::load` of the same bytes, which is what
//!   ingesting it cost before the scan existed.

#![allow(clippy::unwrap_used, clippy::expect_used)] // A benchmark tool.

use fieldbook_core::doc::RecordKind;
use fieldbook_core::model::{Role, Site, SiteKind, SiteSource};
use fieldbook_core::sync::wire::{Item, ItemKind, doc_id_bytes};
use fieldbook_server::storage::prelude::*;
use fieldbook_server::storage::sqlite::SqliteStorage;
use fieldbook_server::storage::{Identity, Outcome, Session};
use std::time::Instant;

/// A line of `/proc/self/status`, kB.
fn status_kb(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))?
                .split_whitespace()
                .nth(1)?
                .parse()
                .ok()
        })
        .unwrap_or(0)
}

/// Runs `f` in this (fresh) process: its result, seconds, and how far the
/// resident set's high-water mark rose above the resident set before, MB.
fn measure<T>(f: impl FnOnce() -> T) -> (T, f64, f64) {
    let before = status_kb("VmRSS:");
    let t = Instant::now();
    let r = f();
    let secs = t.elapsed().as_secs_f64();
    let peak = status_kb("VmHWM:");
    (r, secs, peak.saturating_sub(before) as f64 / 1024.0)
}

fn session(actor: &str) -> Session {
    Session {
        pusher: Identity {
            user: "li.wei".into(),
            role: Role::Inspector,
            areas: vec!["410324".into()],
            device: "phone".into(),
        },
        actor: actor.into(),
        expires_at: i64::MAX,
    }
}

/// Child mode `refuse FILE ACTOR ID`: one refusal in a fresh process.
fn refuse(file: &str, actor: &str, id: &str) {
    let bomb = std::fs::read(file).expect("bomb file");
    let dir = tempfile::tempdir().expect("temp dir");
    let storage = SqliteStorage::open(&dir.path().join("server.db")).expect("storage");
    let s = session(actor);
    let item = Item {
        kind: ItemKind::Document,
        record: RecordKind::Site,
        doc_id: doc_id_bytes(id).expect("uuid"),
        data: bomb,
    };
    // Warm the connections and statement caches with one refusal first.
    let _ = storage.ingest(&s, std::slice::from_ref(&item), 0);
    let (o, secs, mb) = measure(|| storage.ingest(&s, std::slice::from_ref(&item), 0));
    match o.as_deref() {
        Ok([Outcome::Rejected(code, msg)]) => eprintln!("refused: {code:?}: {msg}"),
        other => panic!("not refused: {other:?}"),
    }
    assert_eq!(storage.counts().expect("counts").documents, 0);
    println!("{secs} {mb}");
}

/// Child mode `load FILE`: `Automerge::load` in a fresh process.
fn load(file: &str) {
    let bomb = std::fs::read(file).expect("bomb file");
    let (d, secs, mb) = measure(|| automerge::Automerge::load(&bomb));
    assert!(d.is_ok());
    println!("{secs} {mb}");
}

fn child(args: &[&str]) -> (f64, f64) {
    let exe = std::env::current_exe().expect("exe");
    let out = std::process::Command::new(exe)
        .args(args)
        .output()
        .expect("child");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    eprint!("{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8_lossy(&out.stdout);
    let mut f = text
        .split_whitespace()
        .map(|x| x.parse::<f64>().unwrap_or(f64::NAN));
    (f.next().unwrap_or(f64::NAN), f.next().unwrap_or(f64::NAN))
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("refuse") => return refuse(&args[1], &args[2], &args[3]),
        Some("load") => return load(&args[1]),
        _ => {}
    }
    let ops: usize = args
        .first()
        .and_then(|a| a.parse().ok())
        .unwrap_or(16_000_000);
    // Three shapes: one value written again and again (a run Automerge
    // keeps compressed even in memory), two values in turn (tens of
    // kilobytes that load into gigabytes), and a list of one value inserted
    // again and again (a few hundred bytes that load into a long sequence).
    let shapes: Vec<String> = args.iter().skip(1).cloned().collect();
    for shape in ["one", "alternate", "list"] {
        if shapes.is_empty() || shapes.iter().any(|s| s == shape) {
            bench(ops, shape);
        }
    }
}

fn bench(ops: usize, shape: &str) {
    let actor = automerge::ActorId::random();
    let t = Instant::now();
    let id = uuid::Uuid::now_v7().to_string();
    let mut d = automerge::Automerge::new().with_actor(actor.clone());
    let mut tx = d.transaction();
    fieldbook_core::doc::site::create(
        &mut tx,
        &Site {
            id: id.clone(),
            kind: SiteKind::HouseholdToilet,
            name: "x".into(),
            village_code: "410324101201".into(),
            location: None,
            attributes: Default::default(),
            source: SiteSource::Field,
            created_by: "li.wei".into(),
            created_at: 0,
        },
    )
    .expect("site");
    use automerge::transaction::Transactable;
    if shape == "list" {
        let l = tx
            .put_object(automerge::ROOT, "k", automerge::ObjType::List)
            .expect("list");
        for i in 0..ops {
            tx.insert(&l, i, true).expect("insert");
        }
    } else {
        for i in 0..ops {
            let v = shape == "one" || i % 2 == 0;
            tx.put(automerge::ROOT, "k", v).expect("put");
        }
    }
    tx.commit();
    let bomb = d.save();
    drop(d);
    println!(
        "bomb ({shape}): {ops} operations in {} bytes (built in {:.1} s)",
        bomb.len(),
        t.elapsed().as_secs_f64()
    );
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("bomb.automerge");
    std::fs::write(&file, &bomb).expect("write bomb");
    let file = file.to_string_lossy().into_owned();
    let actor = actor.to_hex_string();
    let mut best = (f64::MAX, 0f64);
    for _ in 0..5 {
        let (secs, mb) = child(&["refuse", &file, &actor, &id]);
        best = (best.0.min(secs), best.1.max(mb));
    }
    println!(
        "  refusal through SQLite storage's ingest: best of 5 fresh processes {:.3} ms, resident set grew at most {:.2} MB (goals: <= 10 ms, <= 10 MB)",
        best.0 * 1e3,
        best.1
    );
    let (secs, mb) = child(&["load", &file]);
    println!(
        "  reference, Automerge::load of the same bytes (as ingest once began): {:.0} ms, resident set grew {:.0} MB",
        secs * 1e3,
        mb
    );
    println!(
        "  ratio refusal / load: time {:.1e}, memory {:.1e}",
        best.0 / secs,
        best.1 / mb.max(0.01)
    );
}
