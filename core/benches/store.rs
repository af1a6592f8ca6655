//! Benchmarks of the phone store: a real SQLite file in a temporary folder,
//! real Automerge documents, the public API only.
//!
//! What is measured, and the goal the issue sets for each:
//!
//! - `inspection/fill30_submit/*` — start an inspection of a tailings pond,
//!   write 30 valid answers, attach the two photo references the template
//!   requires and submit. Goal: under 2 ms. Two variants: `set_answers` (the
//!   30 answers as one change) and `set_answer_each` (30 calls, so 30 durable
//!   transactions). The tailings-pond template, the longest that can be fully
//!   answered, has 19 answerable fields, so the last 11 of the 30 answers
//!   correct earlier ones, as an inspector does while walking the site.
//! - `store_20000/list_village` — `list_inspections` of one village in a
//!   store holding 20,000 submitted inspections (about 10 answers each) spread
//!   over the 214 villages of Luanchuan county (栾川县, 410324). Goal: under
//!   10 ms. Beside it, `store_20000/list_county_first_1000` (the default
//!   list: the newest 1000 of the user's whole county), which has no goal of
//!   its own.
//! - `store_20000/open` — `Store::open` of that store: open, migrations check
//!   and identity. The file is in the OS page cache,
//!   so this is a warm open. Goal: under 100 ms.
//! - Resident memory with that store open and a village listed: not a timing.
//!   A child process (this binary re-executed, so the number is not inflated
//!   by the benchmarks) reads `VmRSS` and `VmHWM` from `/proc/self/status`;
//!   the lines are printed at the end of the run. Goal: under 50 MB.
//!
//! Building the 20,000-record store takes over a minute (every write is a
//! durable transaction), so under `cargo bench` it is built once and kept in
//! `<target dir>/fieldbook-bench/`, in a folder named after
//! [`BENCH_DATA_VERSION`] and the schema version: bump the constant when the
//! document layout changes. Under `cargo test --benches` (criterion's test
//! mode) every benchmark runs once against a small store built in a
//! temporary folder. See `README.md` beside this file.

// A benchmark whose set-up fails has nothing to measure: stop loudly.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use criterion::{BatchSize, Criterion, SamplingMode};
use fieldbook_core::model::{Divisions, GeoPoint, Level, PhotoRef, Role, SiteKind, Value};
use fieldbook_core::store::{
    Clock, Identity, InspectionFilter, NewSite, Store, StoreError, migrations,
};
use std::cell::OnceCell;
use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, Instant};

/// Names the cached 20,000-record store; bump it when what `build_store`
/// writes changes, so a stale store is not reused.
const BENCH_DATA_VERSION: &str = "v1";
/// Inspections in the large store under `cargo bench`.
const RECORDS_FULL: usize = 20_000;
/// Inspections in the large store in test mode (`cargo test --benches`).
const RECORDS_SMOKE: usize = 300;
/// The county whose villages hold the inspections: Luanchuan (栾川县).
const COUNTY: &str = "410324";
/// 2025-06-01T00:00:00Z, the clock's start.
const T0: i64 = 1_748_736_000_000;

/// Set in the child process that measures memory: the store folder.
const MEMORY_DIR_ENV: &str = "FIELDBOOK_BENCH_MEMORY_DIR";
/// Set in the child process that measures memory: the village to list.
const MEMORY_VILLAGE_ENV: &str = "FIELDBOOK_BENCH_MEMORY_VILLAGE";

/// The phone's user: an inspector of the county.
fn identity() -> Identity {
    Identity {
        user: "li.wei".into(),
        role: Role::Inspector,
        areas: vec![COUNTY.into()],
        device: "phone-1".into(),
    }
}

/// A clock that advances one second per reading, so runs are repeatable and
/// inspections have distinct start times.
fn clock() -> Clock {
    let t = Arc::new(AtomicI64::new(T0));
    Arc::new(move || t.fetch_add(1000, Ordering::Relaxed))
}

fn open(dir: &Path) -> Result<Store, StoreError> {
    Store::open_with_clock(dir, identity(), clock())
}

/// A well-formed photo reference, distinct for every `n`.
fn photo(n: u64, field: &str) -> PhotoRef {
    PhotoRef {
        hash: format!("{n:064x}"),
        field: Some(field.to_owned()),
        bytes: 150_000 + n % 100_000,
        width: 1600,
        height: 1200,
        phash: format!("{:016x}", n.wrapping_mul(0x9e37_79b9_7f4a_7c15)),
        taken_at: Some(T0),
        gps: None,
        added_at: T0,
    }
}

fn answers(list: &[(&str, Value)]) -> Vec<(String, Value)> {
    list.iter()
        .map(|(k, v)| ((*k).to_owned(), v.clone()))
        .collect()
}

/// Thirty answers to the tailings-pond template, in the order an inspector
/// gives them: every one of its 19 fields, then 11 corrections. The final
/// state shows every conditional field (closed pond, wells, a hazard), so
/// `submit` validates all 19.
fn tailings_answers() -> Vec<(String, Value)> {
    answers(&[
        ("supervision_level", "level_2".into()),
        ("status", "in_use".into()),
        ("registered", true.into()),
        ("one_pond_one_file_eia", true.into()),
        ("one_pond_one_file_acceptance", false.into()),
        ("one_pond_one_file_emergency_plan", true.into()),
        ("downstream_receptors", "下游2公里有村庄".into()),
        ("leachate_collection", true.into()),
        ("groundwater_wells", 2.0.into()),
        ("groundwater_report_this_year", true.into()),
        ("emergency_pool", true.into()),
        ("interception_dam", true.into()),
        ("flood_diversion_channel", false.into()),
        ("flood_drainage_ok", true.into()),
        ("dust_control", "sprinkled".into()),
        ("visible_seepage", false.into()),
        ("hazards", "排洪沟局部淤堵".into()),
        ("hazard_deadline", "2025-07-15".into()),
        ("status", "closed".into()),
        ("closure_cover", true.into()),
        // Corrections.
        (
            "downstream_receptors",
            "下游2公里有村庄（约300人），5公里处有河流".into(),
        ),
        ("groundwater_wells", 3.0.into()),
        ("one_pond_one_file_acceptance", true.into()),
        ("flood_diversion_channel", true.into()),
        ("dust_control", "covered".into()),
        ("supervision_level", "level_1".into()),
        ("hazards", "排洪沟局部淤堵，约20米，需清淤".into()),
        ("hazard_deadline", "2025-07-31".into()),
        ("leachate_collection", false.into()),
        ("leachate_collection", true.into()),
    ])
}

/// Fields of the tailings-pond template that need a photo with the answers
/// above (`visible_seepage` is false, so it needs none).
const TAILINGS_PHOTO_FIELDS: [&str; 2] = ["leachate_collection", "flood_drainage_ok"];

// ---- 1. an inspection from start to submission --------------------------------

fn bench_inspection(c: &mut Criterion) {
    let tmp = tempfile::Builder::new()
        .prefix("fieldbook-bench-")
        .tempdir()
        .unwrap();
    let mut store = open(tmp.path()).unwrap();
    let village = Divisions::luoyang().within(COUNTY, Level::Village)[0]
        .code
        .clone();
    let site = store
        .add_site(NewSite {
            kind: SiteKind::TailingsPond,
            name: "庙子尾矿库".into(),
            village_code: village.clone(),
            location: Some(GeoPoint {
                lat: 33.80,
                lon: 111.55,
            }),
            attributes: Default::default(),
        })
        .unwrap();
    let all = tailings_answers();
    assert_eq!(all.len(), 30);
    let mut photo_n = 0u64;
    let mut photos = |store: &mut Store, id: &str| {
        for field in TAILINGS_PHOTO_FIELDS {
            photo_n += 1;
            store.add_photo_ref(id, photo(photo_n, field)).unwrap();
        }
    };

    // Once outside the timing: the answers must really make a submittable
    // inspection, or the benchmark would measure a refusal.
    let id = store.start_inspection(&site).unwrap();
    store.set_answers(&id, &all).unwrap();
    photos(&mut store, &id);
    store.submit(&id).unwrap();
    let view = store.inspection_view(&id).unwrap();
    assert_eq!(view.status.key(), "submitted");
    assert!(view.problems.is_empty(), "{:?}", view.problems);
    assert_eq!(view.fields.iter().filter(|f| f.value.is_some()).count(), 19);

    let mut g = c.benchmark_group("inspection/fill30_submit");
    g.sampling_mode(SamplingMode::Flat)
        .sample_size(20)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(6));
    g.bench_function("set_answers", |b| {
        b.iter(|| {
            let id = store.start_inspection(&site).unwrap();
            store.set_answers(&id, &all).unwrap();
            photos(&mut store, &id);
            store.submit(&id).unwrap();
            id
        });
    });
    g.bench_function("set_answer_each", |b| {
        b.iter(|| {
            let id = store.start_inspection(&site).unwrap();
            for (k, v) in &all {
                store.set_answer(&id, k, v.clone()).unwrap();
            }
            photos(&mut store, &id);
            store.submit(&id).unwrap();
            id
        });
    });
    g.finish();
}

// ---- 2.–4. a store of 20,000 inspections ---------------------------------------

/// The large store, built (or found in the cache) on first use.
struct LargeStore {
    dir: PathBuf,
    records: usize,
    /// The village the list benchmark and the memory child list.
    village: String,
    /// How long building took, when this run built it.
    built_in: Option<Duration>,
    /// The memory report of the child process, printed at the end.
    memory: String,
    /// Keeps a test-mode store's temporary folder alive.
    _tmp: Option<tempfile::TempDir>,
}

/// Whether this is a real benchmark run rather than criterion's test mode,
/// decided as criterion decides it.
fn benchmarking() -> bool {
    let args: Vec<String> = std::env::args().collect();
    args.iter().any(|a| a == "--bench") && !args.iter().any(|a| a == "--test")
}

/// The cargo target directory: `$CARGO_TARGET_DIR`, else three levels above
/// this executable (`<target>/<profile>/deps/store-<hash>`).
fn target_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("CARGO_TARGET_DIR") {
        return PathBuf::from(d);
    }
    let exe = std::env::current_exe().unwrap();
    exe.ancestors()
        .nth(3)
        .map_or_else(|| PathBuf::from("target"), Path::to_owned)
}

const BUILT_MARKER: &str = "BUILT";

impl LargeStore {
    fn prepare() -> LargeStore {
        let villages = Divisions::luoyang().within(COUNTY, Level::Village);
        let village = villages[villages.len() / 2].code.clone();
        let mut large = if benchmarking() {
            let name = format!(
                "inspections-{RECORDS_FULL}-{BENCH_DATA_VERSION}-schema{}",
                migrations::LATEST
            );
            let dir = target_dir().join("fieldbook-bench").join(name);
            let built_in = if dir.join(BUILT_MARKER).exists() {
                eprintln!("Reusing the store of {RECORDS_FULL} inspections in {dir:?}");
                None
            } else {
                // Build beside the final folder and rename, so an interrupted
                // build is never mistaken for a complete one.
                let partial = dir.with_extension(format!("partial-{}", std::process::id()));
                let _ = std::fs::remove_dir_all(&partial);
                let took = build_store(&partial, RECORDS_FULL);
                std::fs::write(
                    partial.join(BUILT_MARKER),
                    format!("{RECORDS_FULL} inspections built in {took:.1?}\n"),
                )
                .unwrap();
                let _ = std::fs::remove_dir_all(&dir);
                std::fs::rename(&partial, &dir).unwrap();
                Some(took)
            };
            LargeStore {
                dir,
                records: RECORDS_FULL,
                village,
                built_in,
                memory: String::new(),
                _tmp: None,
            }
        } else {
            let tmp = tempfile::Builder::new()
                .prefix("fieldbook-bench-")
                .tempdir()
                .unwrap();
            let took = build_store(tmp.path(), RECORDS_SMOKE);
            LargeStore {
                dir: tmp.path().to_owned(),
                records: RECORDS_SMOKE,
                village,
                built_in: Some(took),
                memory: String::new(),
                _tmp: Some(tmp),
            }
        };
        large.memory = measure_memory_in_child(&large.dir, &large.village);
        large
    }

    fn filter(&self) -> InspectionFilter {
        InspectionFilter {
            area: Some(self.village.clone()),
            ..InspectionFilter::default()
        }
    }
}

/// Builds a store of `records` submitted inspections spread round-robin over
/// the county's villages: in each village one garbage point (9 answers, no
/// photo) and one black-odorous water body (10 answers, 1 photo), inspected
/// in turn. The outbox is acknowledged every 500 inspections, as a phone that
/// syncs would have it. Returns how long it took.
fn build_store(dir: &Path, records: usize) -> Duration {
    let started = Instant::now();
    let mut store = open(dir).unwrap();
    let villages = Divisions::luoyang().within(COUNTY, Level::Village);
    let mut sites = Vec::new();
    for (i, v) in villages.iter().enumerate() {
        let site = |kind, name: String| NewSite {
            kind,
            name,
            village_code: v.code.clone(),
            location: Some(GeoPoint {
                lat: 33.6 + (i as f64) * 0.002,
                lon: 111.3 + (i as f64) * 0.002,
            }),
            attributes: Default::default(),
        };
        let garbage = store
            .add_site(site(
                SiteKind::GarbagePoint,
                format!("{}垃圾收集点", v.name),
            ))
            .unwrap();
        let water = store
            .add_site(site(SiteKind::BlackOdorousWater, format!("{}坑塘", v.name)))
            .unwrap();
        sites.push((garbage, water));
    }
    let mut last_report = Instant::now();
    for i in 0..records {
        let (garbage, water) = &sites[i % sites.len()];
        let round = i / sites.len();
        let id = if round % 2 == 0 {
            let id = store.start_inspection(garbage).unwrap();
            store.set_answers(&id, &garbage_answers(i)).unwrap();
            id
        } else {
            let id = store.start_inspection(water).unwrap();
            store.set_answers(&id, &water_answers(i)).unwrap();
            store
                .add_photo_ref(&id, photo(i as u64 + 1, "colour_abnormal"))
                .unwrap();
            id
        };
        store.submit(&id).unwrap();
        if (i + 1) % 500 == 0 || i + 1 == records {
            acknowledge_all(&mut store);
        }
        if last_report.elapsed() > Duration::from_secs(15) {
            last_report = Instant::now();
            eprintln!(
                "  building the store: {} of {records} inspections, {:.0?}",
                i + 1,
                started.elapsed()
            );
        }
    }
    assert_eq!(
        store.document_count().unwrap(),
        (records + 2 * villages.len()) as u64
    );
    drop(store);
    let took = started.elapsed();
    eprintln!("Built a store of {records} inspections in {took:.1?} ({dir:?})");
    took
}

fn acknowledge_all(store: &mut Store) {
    loop {
        let batch = store.outbox_batch(10_000, usize::MAX).unwrap();
        if batch.is_empty() {
            return;
        }
        let hashes: Vec<String> = batch.into_iter().map(|e| e.hash).collect();
        store.acknowledge(&hashes).unwrap();
    }
}

fn pick(options: &[&str], i: usize) -> Value {
    options[i % options.len()].into()
}

fn garbage_answers(i: usize) -> Vec<(String, Value)> {
    answers(&[
        (
            "facility_type",
            pick(&["bins", "containers", "collection_room"], i),
        ),
        ("containers", ((i % 20 + 1) as f64).into()),
        ("overflowing", false.into()),
        ("litter_around", false.into()),
        (
            "collection_frequency",
            pick(&["daily", "every_other_day", "weekly"], i),
        ),
        ("chain", pick(&["village_township_county", "local"], i)),
        ("sorting", i.is_multiple_of(3).into()),
        ("cleaner_on_duty", (!i.is_multiple_of(7)).into()),
        ("burning_or_leachate", false.into()),
    ])
}

fn water_answers(i: usize) -> Vec<(String, Value)> {
    answers(&[
        ("water_type", pick(&["pond", "ditch", "river_stretch"], i)),
        ("area_m2", ((i % 5000 + 100) as f64).into()),
        ("colour_abnormal", false.into()),
        ("odour", false.into()),
        ("transparency_cm", ((i % 60 + 10) as f64).into()),
        ("do_mg_l", ((i % 80) as f64 / 10.0).into()),
        ("nh3n_mg_l", ((i % 120) as f64 / 10.0).into()),
        ("floating_garbage", i.is_multiple_of(4).into()),
        ("direct_discharge", false.into()),
        (
            "status",
            pick(
                &["listed", "treating", "awaiting_acceptance", "struck_off"],
                i,
            ),
        ),
    ])
}

fn bench_large_store(c: &mut Criterion, large: &OnceCell<LargeStore>) {
    let mut g = c.benchmark_group("store_20000");
    g.sample_size(30)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4));
    {
        // One store for the lists, opened on first use (criterion calls each
        // closure once per sample) and closed before the open benchmark, so
        // that one opens the file with no other connection, as an app does.
        let opened = OnceCell::new();
        let store = || {
            opened.get_or_init(|| {
                let large = large.get_or_init(LargeStore::prepare);
                open(&large.dir).unwrap()
            })
        };
        g.bench_function("list_village", |b| {
            let (large, store) = (large.get_or_init(LargeStore::prepare), store());
            let filter = large.filter();
            let n = store.list_inspections(&filter).unwrap().len();
            let villages = Divisions::luoyang().within(COUNTY, Level::Village).len();
            assert!(
                n >= large.records / villages,
                "{n} inspections in the village"
            );
            b.iter(|| store.list_inspections(black_box(&filter)).unwrap());
        });
        // Not one of the goals: the default list (the user's whole area, the
        // newest 1000), which sorts every inspection of the county.
        g.bench_function("list_county_first_1000", |b| {
            let store = store();
            let filter = InspectionFilter::default();
            assert_eq!(
                store.list_inspections(&filter).unwrap().len(),
                large.get().map_or(0, |l| l.records).min(1000)
            );
            b.iter(|| store.list_inspections(black_box(&filter)).unwrap());
        });
    }
    g.sampling_mode(SamplingMode::Flat).sample_size(20);
    g.bench_function("open", |b| {
        let large = large.get_or_init(LargeStore::prepare);
        // The opened store is dropped (closing SQLite) outside the timing.
        b.iter_batched(
            || (),
            |()| open(black_box(&large.dir)).unwrap(),
            BatchSize::PerIteration,
        );
    });
    g.finish();
}

// ---- 4. resident memory ----------------------------------------------------------

/// `VmRSS` and `VmHWM` of this process, in KiB.
fn memory_kib() -> (u64, u64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or(0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

fn mib(kib: u64) -> String {
    format!("{:.1} MiB", kib as f64 / 1024.0)
}

/// Runs in the re-executed child: opens the store, lists a village, prints
/// the memory lines.
fn memory_child(dir: &Path, village: &str) {
    let (before, _) = memory_kib();
    let store = open(dir).unwrap();
    let records = store.document_count().unwrap();
    let (opened, _) = memory_kib();
    let list = store
        .list_inspections(&InspectionFilter {
            area: Some(village.to_owned()),
            ..InspectionFilter::default()
        })
        .unwrap();
    let (listed, peak) = memory_kib();
    let db_bytes =
        std::fs::metadata(dir.join(fieldbook_core::store::DB_FILE)).map_or(0, |m| m.len());
    let rows = [
        ("before opening (bench binary loaded)".to_owned(), before),
        (format!("open store of {records} records"), opened),
        (
            format!("open store of {records} records, village listed"),
            listed,
        ),
    ];
    for (what, kib) in rows {
        println!("memory: {what:<50} VmRSS = {}", mib(kib));
    }
    println!(
        "memory: {:<50} VmHWM = {} (peak; {} rows listed, database file {})",
        "",
        mib(peak),
        list.len(),
        mib(db_bytes / 1024)
    );
    drop(black_box(list));
    drop(store);
}

/// Re-executes this binary to measure memory in a fresh process; returns what
/// it printed.
fn measure_memory_in_child(dir: &Path, village: &str) -> String {
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .env(MEMORY_DIR_ENV, dir)
        .env(MEMORY_VILLAGE_ENV, village)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "memory child failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn main() {
    if let (Some(dir), Some(village)) = (
        std::env::var_os(MEMORY_DIR_ENV),
        std::env::var(MEMORY_VILLAGE_ENV).ok(),
    ) {
        memory_child(Path::new(&dir), &village);
        return;
    }
    let mut c = Criterion::default().configure_from_args();
    bench_inspection(&mut c);
    let large = OnceCell::new();
    bench_large_store(&mut c, &large);
    c.final_summary();
    if let Some(large) = large.get() {
        if let Some(took) = large.built_in {
            println!("store: built {} inspections in {took:.1?}", large.records);
        }
        print!("{}", large.memory);
    }
}
