//! The seeded fault simulation (`fieldbook_tests::simulation`): a few
//! hundred seeds in CI, thousands from `scripts/soak.sh`, one seed to
//! reproduce a failure.
//!
//! - `FIELDBOOK_SIM_SEED=N`: run only seed N, printing its trace.
//! - `FIELDBOOK_SIM_SEEDS=K` (default 200), `FIELDBOOK_SIM_FIRST=F`
//!   (default 1): run seeds F..F+K.
//! - `FIELDBOOK_SIM_THREADS`: seeds run at once (default: the cores).
#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests fail loudly on purpose.

use fieldbook_tests::simulation::{self, Failure, SeedReport, run_seed};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

fn env_u64(name: &str) -> Option<u64> {
    std::env::var(name).ok().and_then(|v| v.trim().parse().ok())
}

#[test]
fn seeds() {
    if let Some(seed) = env_u64("FIELDBOOK_SIM_SEED") {
        match run_seed(seed, true) {
            Ok(r) => println!("seed {seed} passed: {r:?}"),
            Err(f) => panic!("{f}"),
        }
        return;
    }
    let count = env_u64("FIELDBOOK_SIM_SEEDS").unwrap_or(200);
    let first = env_u64("FIELDBOOK_SIM_FIRST").unwrap_or(1);
    let threads = env_u64("FIELDBOOK_SIM_THREADS")
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get() as u64));
    let next = AtomicU64::new(first);
    let passed: Mutex<Vec<SeedReport>> = Mutex::new(Vec::new());
    let failed: Mutex<Vec<Failure>> = Mutex::new(Vec::new());
    let start = Instant::now();
    std::thread::scope(|s| {
        for _ in 0..threads.max(1) {
            s.spawn(|| {
                loop {
                    let seed = next.fetch_add(1, Ordering::SeqCst);
                    if seed >= first + count {
                        break;
                    }
                    match run_seed(seed, false) {
                        Ok(r) => passed.lock().unwrap().push(r),
                        Err(f) => {
                            eprintln!("{f}");
                            failed.lock().unwrap().push(f);
                        }
                    }
                }
            });
        }
    });
    let secs = start.elapsed().as_secs_f64();
    let passed = passed.into_inner().unwrap();
    let mut failed = failed.into_inner().unwrap();
    let sum = |f: &dyn Fn(&SeedReport) -> u64| passed.iter().map(f).sum::<u64>();
    println!(
        "simulation: {count} seeds in {secs:.1} s ({:.2} seeds/s), {} failed",
        count as f64 / secs,
        failed.len()
    );
    println!(
        "  over the passing seeds: {} inspections, {} syncs, {} exchanges; faults: {} requests lost, {} cut, {} held and delivered late, {} replies lost, {} replies cut, {} duplicated, {} uploads cut, {} server crashes, {} phone crashes, {} token expiries, {} logins again",
        sum(&|r| r.inspections as u64),
        sum(&|r| r.syncs),
        sum(&|r| r.net.exchanges),
        sum(&|r| r.net.requests_dropped),
        sum(&|r| r.net.requests_cut),
        sum(&|r| r.net.stale_delivered),
        sum(&|r| r.net.replies_dropped),
        sum(&|r| r.net.replies_cut),
        sum(&|r| r.net.duplicated),
        sum(&|r| r.net.uploads_cut),
        sum(&|r| u64::from(r.server_restarts)),
        sum(&|r| r.phone_crashes),
        sum(&|r| r.net.token_expiries),
        sum(&|r| r.relogins),
    );
    failed.sort_by_key(|f| f.seed);
    let seeds: Vec<u64> = failed.iter().map(|f| f.seed).collect();
    assert!(failed.is_empty(), "failing seeds: {seeds:?}");
}

#[test]
fn a_seed_replays_exactly() {
    let a = run_seed(42, false).unwrap_or_else(|f| panic!("{f}"));
    let b = run_seed(42, false).unwrap_or_else(|f| panic!("{f}"));
    assert!(a.trace_lines > 20, "{a:?}");
    assert_eq!((a.trace_hash, a.trace_lines), (b.trace_hash, b.trace_lines));
}

#[test]
fn a_photo_upload_cut_at_every_chunk_boundary_resumes() {
    let pieces = simulation::photo_pieces_max();
    assert!(
        pieces >= 3,
        "photos take {pieces} pieces: too few boundaries"
    );
    for k in 0..=pieces {
        simulation::upload_cut_after(k).unwrap_or_else(|f| panic!("cut after piece {k}: {f}"));
    }
}

#[test]
fn a_server_dying_while_it_finishes_an_upload_keeps_the_photo() {
    // Every byte was on disk when it died; the photo must not be reported
    // complete while it was never kept under its name.
    simulation::upload_crash(simulation::UploadCrash::FinishingLastPiece)
        .unwrap_or_else(|f| panic!("{f}"));
}

#[test]
fn a_server_dying_while_it_creates_an_upload_lets_it_start() {
    simulation::upload_crash(simulation::UploadCrash::Creating).unwrap_or_else(|f| panic!("{f}"));
}
