//! Export throughput and memory: writes N generated village-level coverage
//! rows as CSV or XLSX, or N site features as GeoJSON, to a file, and
//! prints rows, seconds and the file's size. Rows are generated lazily, so
//! peak memory is the writer's own. Run one format per process to read its
//! peak RSS:
//!
//! ```text
//! cargo build --release -p fieldbook-server --example export_bench
//! /usr/bin/time -v target/release/examples/export_bench csv 1000000 /tmp/c.csv
//! /usr/bin/time -v target/release/examples/export_bench xlsx 1000000 /tmp/c.xlsx
//! /usr/bin/time -v target/release/examples/export_bench geojson 1000000 /tmp/s.geojson
//! ```
#![allow(clippy::unwrap_used, clippy::expect_used)] // A benchmark tool.

use fieldbook_core::model::indicator::{CoverageRow, Indicators, Tally};
use fieldbook_core::model::{Level, SiteKind};
use fieldbook_server::export::{
    SiteFeature, write_coverage_csv, write_coverage_xlsx, write_sites_geojson,
};
use std::time::Instant;

/// A village code for row `i`, spread over 20 counties × 50 townships ×
/// 800 villages like a large city's report.
fn village_code(i: u64) -> String {
    format!(
        "4103{:02}{:03}{:03}",
        i % 20,
        100 + (i / 20) % 50,
        200 + (i / 1000) % 800
    )
}

fn rows(n: u64) -> impl Iterator<Item = CoverageRow> {
    let ids: Vec<String> = Indicators::builtin()
        .indicators
        .iter()
        .map(|i| i.id.clone())
        .collect();
    (0..n).map(move |i| {
        let denominator = 1 + i % 40;
        let numerator = (i * 7) % (denominator + 1);
        let rate = numerator as f64 / denominator as f64;
        let target = (!i.is_multiple_of(3)).then_some(0.55);
        CoverageRow {
            indicator: ids[(i % ids.len() as u64) as usize].clone(),
            area_code: village_code(i),
            area_name: format!("第{i}村"),
            level: Level::Village,
            tally: Tally {
                numerator,
                denominator,
                not_inspected: i % 5,
            },
            rate: Some(rate),
            target,
            gap: target.map(|t| t - rate),
        }
    })
}

fn features(n: u64) -> impl Iterator<Item = SiteFeature> {
    (0..n).map(|i| SiteFeature {
        id: format!("0190a1b2-c3d4-7e5f-8a9b-{i:012x}"),
        kind: SiteKind::ALL[(i % 7) as usize],
        name: format!("第{i}号 设施"),
        village_code: village_code(i),
        lat: (!i.is_multiple_of(10)).then_some(33.0 + (i % 10_000) as f64 * 1e-4),
        lon: (!i.is_multiple_of(10)).then_some(111.0 + (i % 7_777) as f64 * 1e-4),
        latest_status: [
            "approved",
            "submitted",
            "returned",
            "draft",
            "not_inspected",
        ][(i % 5) as usize]
            .to_owned(),
        latest_approved_at: i.is_multiple_of(5).then(|| "2024-06-30".to_owned()),
        outcomes: [
            ("sanitary_toilet_rate".to_owned(), i.is_multiple_of(2)),
            ("outfall_traced".to_owned(), i.is_multiple_of(3)),
        ]
        .into(),
    })
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let format = args.get(1).map_or("csv", String::as_str);
    let n: u64 = args.get(2).map_or(1_000_000, |s| s.parse().unwrap());
    let path = args
        .get(3)
        .cloned()
        .unwrap_or_else(|| format!("/tmp/export_bench.{format}"));
    let file = std::fs::File::create(&path).unwrap();
    let defs = Indicators::builtin();
    let mut last = 0;
    let mut progress = |k: u64| last = k;
    let start = Instant::now();
    let written = match format {
        "csv" => write_coverage_csv(rows(n), defs, file, &mut progress),
        "xlsx" => write_coverage_xlsx(rows(n), defs, file, &mut progress),
        "geojson" => write_sites_geojson(features(n), file, &mut progress),
        other => panic!("unknown format {other}: csv, xlsx or geojson"),
    }
    .unwrap();
    let secs = start.elapsed().as_secs_f64();
    assert_eq!(written, last);
    let size = std::fs::metadata(&path).unwrap().len();
    println!(
        "{format}: {written} rows in {secs:.2} s ({:.0} rows/s), {:.1} MB at {path}",
        written as f64 / secs,
        size as f64 / 1e6
    );
}
