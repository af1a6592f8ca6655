//! Coverage export over a city-sized registry: time and peak memory of
//! `fieldbook export coverage` on N sites (a million by default), as a ratio
//! to a bare SQL scan of the same rows in the same process.
//!
//! `populate` builds the server database once: the generated Luoyang
//! registry scaled to N sites, about 40% of them with an approved
//! inspection this year (answers filled from each kind's template, a
//! tenth inspected twice), 5% with a drafted or returned one, and a
//! finding on every 50th site. It writes the projection rows the export
//! reads straight into the real schema: going through sync would take an
//! hour and measure sync, not the export. `run` then times, in one
//! process:
//!
//! - the reference: the export's own query with every column read and
//!   nothing else done;
//! - the coverage export to CSV (scan, evaluate, roll up, write);
//! - the same to XLSX.
//!
//! Run `run` under `/usr/bin/time -v` for the peak RSS of the process:
//!
//! ```text
//! cargo build --release -p fieldbook-server --example coverage_bench
//! target/release/examples/coverage_bench populate /tmp/cov.db 1000000
//! /usr/bin/time -v target/release/examples/coverage_bench run /tmp/cov.db
//! ```
#![allow(clippy::unwrap_used, clippy::expect_used)] // A benchmark tool.

use fieldbook_core::model::indicator::{Indicators, Period};
use fieldbook_core::model::workflow::china_day_start_ms;
use fieldbook_core::model::{Divisions, SiteKind, Templates};
use fieldbook_server::coverage::coverage_rows;
use fieldbook_server::devtools::registry_gen::{RegistryOptions, generate};
use fieldbook_server::export::{write_coverage_csv, write_coverage_xlsx};
use fieldbook_server::storage::sqlite::SqliteStorage;
use std::time::Instant;

const YEAR: i32 = 2026;

fn peak_rss_mb() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|kb| kb.parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

fn populate(db: &str, n: u64) {
    let _ = std::fs::remove_file(db);
    // Opening through the storage creates the real schema.
    drop(SqliteStorage::open(std::path::Path::new(db)).unwrap());
    let started = Instant::now();
    // Toilets dominate a real registry; scale them to reach `n` sites.
    let probe = generate(Divisions::luoyang(), &RegistryOptions::default(), 0);
    let toilets = probe
        .iter()
        .filter(|s| s.kind == SiteKind::HouseholdToilet)
        .count() as u64;
    let others = probe.len() as u64 - toilets;
    let per_village = RegistryOptions::default().toilets_per_village as u64;
    let villages = toilets / per_village;
    let wanted = n.saturating_sub(others).div_ceil(villages.max(1)).max(1);
    let registry = generate(
        Divisions::luoyang(),
        &RegistryOptions {
            toilets_per_village: wanted as u32,
            ..RegistryOptions::default()
        },
        0,
    );
    eprintln!(
        "generated {} sites in {:.1}s",
        registry.len(),
        started.elapsed().as_secs_f64()
    );

    // A few answer sets per kind, good and not, from the templates.
    let mut answers: Vec<(SiteKind, Vec<String>)> = Vec::new();
    for kind in SiteKind::ALL {
        let t = Templates::builtin().latest(kind).unwrap();
        let sets = (0..24)
            .map(|i| {
                serde_json::to_string(&fieldbook_server::devtools::answers::plausible(
                    t,
                    i % 4 != 0,
                    i,
                ))
                .unwrap()
            })
            .collect();
        answers.push((kind, sets));
    }
    let version = |kind| Templates::builtin().latest(kind).unwrap().version;
    let day = |d: u64| china_day_start_ms(&format!("{YEAR}-{:02}-{:02}", 1 + d % 12, 1 + d % 28));

    let mut conn = rusqlite::Connection::open(db).unwrap();
    conn.pragma_update(None, "journal_mode", "WAL").unwrap();
    conn.pragma_update(None, "synchronous", "OFF").unwrap();
    let tx = conn.transaction().unwrap();
    {
        let mut site = tx
            .prepare(
                "INSERT INTO sites(id, kind, name, village_code, lat, lon, source, attributes)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, 'registry', ?7)",
            )
            .unwrap();
        let mut insp = tx
            .prepare(
                "INSERT INTO inspections(id, site_id, site_kind, village_code, template_version,
                     status, revision, inspector, device, started_at, submitted_at, reviewed_at,
                     lat, lon, accuracy_m, mock_location, answers, photos, conflicts)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, 1, 'bench', 'bench-phone', ?7, ?7, ?8,
                     ?9, ?10, 6.0, 0, ?11, 2, 0)",
            )
            .unwrap();
        let mut finding = tx
            .prepare(
                "INSERT INTO findings(id, inspection_id, site_id, site_kind, village_code, title,
                     status, responsible, deadline, escalated, raised_at, closed_at)
                 VALUES (?1, NULL, ?2, ?3, ?4, '问题', ?5, '村委会', ?6, 0, ?7, ?8)",
            )
            .unwrap();
        let mut k = 0u64;
        for (i, s) in registry.iter().enumerate() {
            let i = i as u64;
            let (lat, lon) = s
                .location
                .as_ref()
                .map_or((None, None), |p| (Some(p.lat), Some(p.lon)));
            site.execute(rusqlite::params![
                s.id,
                s.kind.key(),
                s.name,
                s.village_code,
                lat,
                lon,
                serde_json::to_string(&s.attributes).unwrap()
            ])
            .unwrap();
            let sets = &answers.iter().find(|(k, _)| *k == s.kind).unwrap().1;
            let mut inspect = |status: &str, d: u64| {
                k += 1;
                let started = day(d).unwrap() + 9 * 3_600_000;
                let reviewed = (status != "draft").then_some(started + 86_400_000);
                insp.execute(rusqlite::params![
                    format!("{:032x}", k),
                    s.id,
                    s.kind.key(),
                    s.village_code,
                    version(s.kind),
                    status,
                    started,
                    reviewed,
                    lat,
                    lon,
                    sets[(k % sets.len() as u64) as usize]
                ])
                .unwrap();
            };
            match i % 20 {
                0..=7 => inspect("approved", i),
                8 => inspect(if i % 40 == 8 { "draft" } else { "returned" }, i),
                _ => {}
            }
            if i % 10 == 1 {
                inspect("approved", i + 5);
            }
            if i % 50 == 3 {
                let raised = day(i).unwrap();
                let closed = (i % 100 == 3).then_some(raised + 20 * 86_400_000);
                finding
                    .execute(rusqlite::params![
                        format!("f{:031x}", i),
                        s.id,
                        s.kind.key(),
                        s.village_code,
                        if closed.is_some() {
                            "closed"
                        } else {
                            "assigned"
                        },
                        format!("{YEAR}-12-31"),
                        raised,
                        closed
                    ])
                    .unwrap();
            }
        }
        eprintln!("{} sites, {k} inspections", registry.len());
    }
    tx.commit().unwrap();
    conn.execute_batch("ANALYZE; PRAGMA wal_checkpoint(TRUNCATE);")
        .unwrap();
    eprintln!("populated in {:.1}s", started.elapsed().as_secs_f64());
}

fn run(db: &str) {
    let storage = SqliteStorage::open(std::path::Path::new(db)).unwrap();
    let defs = Indicators::builtin();
    let divisions = Divisions::luoyang();

    // The reference: the export's query, every column read, nothing done.
    let conn = rusqlite::Connection::open(db).unwrap();
    let t = Instant::now();
    let mut st = conn
        .prepare(
            "SELECT s.id, s.kind, s.name, s.village_code, s.lat, s.lon, s.attributes,
                    i.id, i.status, i.revision, i.template_version, i.inspector,
                    i.started_at, i.submitted_at, i.reviewed_at, i.lat, i.lon,
                    i.accuracy_m, i.mock_location, i.photos, i.conflicts, i.answers
             FROM sites s LEFT JOIN inspections i ON i.site_id = s.id
             WHERE s.village_code >= '' ORDER BY s.id, i.started_at, i.id",
        )
        .unwrap();
    let mut rows = st.query([]).unwrap();
    let (mut n, mut bytes) = (0u64, 0usize);
    while let Some(r) = rows.next().unwrap() {
        n += 1;
        for c in [0, 1, 2, 3, 6, 7, 8, 11, 21] {
            bytes += r
                .get_ref(c)
                .unwrap()
                .as_str_or_null()
                .unwrap()
                .map_or(0, str::len);
        }
    }
    drop(rows);
    let scan = t.elapsed().as_secs_f64();
    println!(
        "reference scan: {n} rows ({} MB of text) in {scan:.2}s",
        bytes >> 20
    );

    for format in ["csv", "xlsx"] {
        let out = std::env::temp_dir().join(format!("coverage_bench.{format}"));
        let t = Instant::now();
        let mut sites = 0;
        let cov = coverage_rows(
            &storage,
            defs,
            divisions,
            "",
            Period::year(YEAR),
            &mut |k| sites = k,
        )
        .unwrap();
        let evaluated = t.elapsed().as_secs_f64();
        let file = std::fs::File::create(&out).unwrap();
        let written = if format == "csv" {
            write_coverage_csv(cov.into_iter(), defs, file, &mut |_| {}).unwrap()
        } else {
            write_coverage_xlsx(cov.into_iter(), defs, file, &mut |_| {}).unwrap()
        };
        let total = t.elapsed().as_secs_f64();
        println!(
            "coverage {format}: {sites} sites and findings read and evaluated in {evaluated:.2}s, \
             {written} rows written, {total:.2}s in all = {:.2}x the reference scan; \
             peak RSS so far {:.0} MB; {} KB",
            total / scan,
            peak_rss_mb(),
            std::fs::metadata(&out).map_or(0, |m| m.len() >> 10)
        );
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    match args.get(1).map(String::as_str) {
        Some("populate") if args.len() >= 3 => populate(
            &args[2],
            args.get(3)
                .map_or(1_000_000, |n| n.parse().expect("N sites")),
        ),
        Some("run") if args.len() >= 3 => run(&args[2]),
        _ => {
            eprintln!("usage: coverage_bench populate DB [N] | run DB");
            std::process::exit(2);
        }
    }
}
