//! The export writers against real readers: the `csv` crate and Python's
//! `csv`, `openpyxl` and `json` modules, on files in a temporary directory.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use fieldbook_core::model::indicator::{
    Approved, Coverage, CoverageRow, Indicators, Period, SiteFacts,
};
use fieldbook_core::model::{Divisions, Level, SiteKind, Value};
use fieldbook_server::export::{
    COVERAGE_COLUMNS, SiteFeature, write_coverage_csv, write_coverage_xlsx,
    write_coverage_xlsx_split_at, write_sites_geojson,
};
use serde_json::Value as Json;
use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use std::sync::OnceLock;

/// A name that needs CSV quoting: a comma and double quotes.
const AWKWARD: &str = "东村,\"老村\"";

/// One city, one county, a town and a township with four villages between
/// them, one of which has [`AWKWARD`] for a name.
fn divisions() -> Divisions {
    let csv = "code,name,level,parent_code\n\
        4103,洛阳市,city,41\n\
        410324,栾川县,county,4103\n\
        410324101,城关镇,township,410324\n\
        410324101001,城关社区,village,410324101\n\
        410324101201,\"东村,\"\"老村\"\"\",village,410324101\n\
        410324101202,西村,village,410324101\n\
        410324200,秋扒乡,township,410324\n\
        410324200202,北村,village,410324200\n";
    Divisions::from_csv(csv.as_bytes()).unwrap()
}

/// Unix ms of noon, China time, on a day of 2024 (`doy` from 0).
fn day_2024(doy: i64) -> i64 {
    // 2024-01-01T04:00:00Z is noon in Beijing.
    1_704_081_600_000 + doy * 86_400_000
}

/// Coverage rows of 2024 for a few sites of several kinds per village.
fn coverage_rows() -> Vec<CoverageRow> {
    let defs = Indicators::builtin();
    let mut cov = Coverage::new(defs, Period::year(2024));
    let villages = [
        "410324101001",
        "410324101201",
        "410324101202",
        "410324200202",
    ];
    let none = BTreeMap::new();
    let mut served = BTreeMap::new();
    served.insert("households_served".to_owned(), Value::Number(80.0));
    served.insert("village_households".to_owned(), Value::Number(100.0));
    for (vi, village) in villages.iter().enumerate() {
        for site in 0..(3 + vi) {
            let holds = !(site + vi).is_multiple_of(3);
            let approved: Vec<Approved> = if site % 4 == 3 {
                vec![]
            } else {
                vec![Approved {
                    approved_at: day_2024((site * 17 % 300) as i64),
                    outcomes: [
                        ("sanitary".to_owned(), holds),
                        ("effective".to_owned(), holds),
                        ("traced".to_owned(), !holds),
                    ]
                    .into(),
                }]
            };
            for (kind, attrs) in [
                (SiteKind::HouseholdToilet, &none),
                (SiteKind::RuralSewage, &served),
                (SiteKind::SewageOutfall, &none),
            ] {
                cov.add_site(&SiteFacts {
                    kind,
                    village_code: village,
                    attributes: attrs,
                    approved: &approved,
                });
            }
        }
    }
    cov.rows(&divisions(), "")
}

/// Runs a Python snippet with arguments and returns its standard output.
fn python(script: &str, args: &[&Path]) -> String {
    let out = Command::new("python3")
        .arg("-c")
        .arg(script)
        .args(args)
        .output()
        .expect("python3 must be on PATH for the export format tests");
    assert!(
        out.status.success(),
        "python failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Makes sure `openpyxl` imports, installing it with pip once if not.
fn openpyxl() {
    static READY: OnceLock<Result<(), String>> = OnceLock::new();
    let ready = READY.get_or_init(|| {
        let imports = || {
            Command::new("python3")
                .args(["-c", "import openpyxl"])
                .status()
                .is_ok_and(|s| s.success())
        };
        if imports() {
            return Ok(());
        }
        let pip = Command::new("python3")
            .args(["-m", "pip", "install", "--quiet", "openpyxl"])
            .output()
            .map_err(|e| format!("cannot run python3 -m pip: {e}"))?;
        if !pip.status.success() || !imports() {
            return Err(format!(
                "openpyxl is missing and `python3 -m pip install openpyxl` did not provide it: {}",
                String::from_utf8_lossy(&pip.stderr)
            ));
        }
        Ok(())
    });
    if let Err(e) = ready {
        panic!("{e}");
    }
}

fn write_csv(rows: &[CoverageRow], path: &Path) -> u64 {
    let file = std::fs::File::create(path).unwrap();
    write_coverage_csv(
        rows.iter().cloned(),
        Indicators::builtin(),
        file,
        &mut |_| {},
    )
    .unwrap()
}

/// The CSV's records, header first, read with the `csv` crate.
fn read_csv(path: &Path) -> Vec<Vec<String>> {
    let bytes = std::fs::read(path).unwrap();
    let body = bytes
        .strip_prefix(b"\xEF\xBB\xBF")
        .expect("the CSV starts with a UTF-8 BOM");
    csv::ReaderBuilder::new()
        .has_headers(false)
        .from_reader(body)
        .records()
        .map(|r| r.unwrap().iter().map(str::to_owned).collect())
        .collect()
}

fn header_texts() -> Vec<String> {
    COVERAGE_COLUMNS
        .iter()
        .map(|(zh, en)| format!("{zh} {en}"))
        .collect()
}

/// What the CSV should say for a row.
fn expected_record(r: &CoverageRow) -> Vec<String> {
    let ratio = |x: Option<f64>| x.map_or_else(String::new, |v| format!("{v:.4}"));
    vec![
        r.indicator.clone(),
        Indicators::builtin()
            .get(&r.indicator)
            .unwrap()
            .name
            .zh
            .clone(),
        r.level.key().to_owned(),
        r.area_code.clone(),
        r.area_name.clone(),
        r.tally.numerator.to_string(),
        r.tally.denominator.to_string(),
        ratio(r.rate),
        ratio(r.target),
        ratio(r.gap),
        r.tally.not_inspected.to_string(),
    ]
}

#[test]
fn csv_reads_back_with_rust_and_python() {
    let rows = coverage_rows();
    assert!(rows.iter().any(|r| r.target.is_some() && r.gap.is_some()));
    assert!(rows.iter().any(|r| r.rate.is_none()));
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("coverage.csv");
    let mut seen = Vec::new();
    let file = std::fs::File::create(&path).unwrap();
    let n = write_coverage_csv(
        rows.iter().cloned(),
        Indicators::builtin(),
        file,
        &mut |k| seen.push(k),
    )
    .unwrap();
    assert_eq!(n, rows.len() as u64);
    assert_eq!(seen.last(), Some(&n), "progress ends at the row count");

    let records = read_csv(&path);
    assert_eq!(records[0], header_texts());
    assert_eq!(records[0][0], "指标 indicator");
    let want: Vec<Vec<String>> = rows.iter().map(expected_record).collect();
    assert_eq!(&records[1..], &want[..]);
    // RFC 4180 line ends.
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.contains("not inspected\r\n"));

    // Python: `utf-8-sig` strips the BOM only if there is one; check the
    // raw bytes too.
    let py = python(
        r#"
import csv, json, sys
raw = open(sys.argv[1], 'rb').read()
assert raw[:3] == b'\xef\xbb\xbf', raw[:3]
with open(sys.argv[1], encoding='utf-8-sig', newline='') as f:
    print(json.dumps(list(csv.reader(f)), ensure_ascii=False))
"#,
        &[&path],
    );
    let from_python: Vec<Vec<String>> = serde_json::from_str(&py).unwrap();
    assert_eq!(from_python, records);
    assert!(
        from_python
            .iter()
            .any(|r| r[1] == "卫生厕所普及率" && r[4] == "栾川县"),
        "Chinese names survive"
    );
}

#[test]
fn csv_quotes_chinese_names_with_commas_and_quotes() {
    let rows: Vec<CoverageRow> = coverage_rows()
        .into_iter()
        .filter(|r| r.area_code == "410324101201")
        .collect();
    assert!(!rows.is_empty());
    assert!(rows.iter().all(|r| r.area_name == AWKWARD));
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("awkward.csv");
    write_csv(&rows, &path);
    let text = std::fs::read_to_string(&path).unwrap();
    // Doubled quotes inside a quoted field, the comma kept inside it.
    assert!(
        text.contains(",410324101201,\"东村,\"\"老村\"\"\","),
        "{text}"
    );
    let records = read_csv(&path);
    assert!(
        records[1..]
            .iter()
            .all(|r| r.len() == COVERAGE_COLUMNS.len())
    );
    assert!(records[1..].iter().all(|r| r[4] == AWKWARD));
    let py = python(
        r#"
import csv, json, sys
with open(sys.argv[1], encoding='utf-8-sig', newline='') as f:
    print(json.dumps([r[4] for r in list(csv.reader(f))[1:]], ensure_ascii=False))
"#,
        &[&path],
    );
    let names: Vec<String> = serde_json::from_str(&py).unwrap();
    assert_eq!(names.len(), rows.len());
    assert!(names.iter().all(|n| n == AWKWARD));
}

/// Every sheet of a workbook as openpyxl reads it: name, frozen panes,
/// cell values, and per column the number format of its first data cell
/// that holds a value (None for a column with none).
const READ_XLSX: &str = r#"
import json, sys, openpyxl
wb = openpyxl.load_workbook(sys.argv[1])
out = []
for ws in wb.worksheets:
    rows = [list(r) for r in ws.iter_rows(values_only=True)]
    formats = [None] * ws.max_column
    for r in ws.iter_rows(min_row=2):
        for i, c in enumerate(r):
            if formats[i] is None and c.value is not None:
                formats[i] = c.number_format
    out.append({'name': ws.title, 'freeze': ws.freeze_panes, 'rows': rows,
                'formats': formats})
print(json.dumps(out, ensure_ascii=False))
"#;

fn read_xlsx(path: &Path) -> Vec<Json> {
    openpyxl();
    serde_json::from_str(&python(READ_XLSX, &[path])).unwrap()
}

/// Whether an XLSX cell holds what the CSV field says.
fn same_value(csv: &str, cell: &Json) -> bool {
    match cell {
        Json::Null => csv.is_empty(),
        Json::String(s) => s == csv,
        Json::Number(x) => {
            let x = x.as_f64().unwrap();
            csv.parse::<f64>().is_ok_and(|c| (c - x).abs() < 0.5e-4)
        }
        _ => false,
    }
}

#[test]
fn xlsx_has_a_sheet_per_level_matching_the_csv() {
    let rows = coverage_rows();
    let dir = tempfile::tempdir().unwrap();
    let csv_path = dir.path().join("coverage.csv");
    write_csv(&rows, &csv_path);
    let path = dir.path().join("coverage.xlsx");
    let mut last = 0;
    let n = write_coverage_xlsx(
        rows.iter().cloned(),
        Indicators::builtin(),
        std::fs::File::create(&path).unwrap(),
        &mut |k| {
            assert!(k >= last);
            last = k;
        },
    )
    .unwrap();
    assert_eq!((n, last), (rows.len() as u64, rows.len() as u64));

    let sheets = read_xlsx(&path);
    let names: Vec<&str> = sheets.iter().map(|s| s["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["市", "县区", "乡镇", "村"]);
    let csv_records = read_csv(&csv_path);
    let headers = header_texts();
    for (sheet, level) in
        sheets
            .iter()
            .zip([Level::City, Level::County, Level::Township, Level::Village])
    {
        assert_eq!(sheet["freeze"], "A2", "{}", sheet["name"]);
        let cells = sheet["rows"].as_array().unwrap();
        assert_eq!(cells[0], serde_json::json!(headers));
        // The sheet holds exactly this level's CSV rows, in order.
        let want: Vec<&Vec<String>> = csv_records[1..]
            .iter()
            .filter(|r| r[2] == level.key())
            .collect();
        assert_eq!(cells.len() - 1, want.len(), "{}", sheet["name"]);
        for (got, want) in cells[1..].iter().zip(want) {
            let got = got.as_array().unwrap();
            assert_eq!(got.len(), want.len());
            for (g, w) in got.iter().zip(want) {
                assert!(same_value(w, g), "{}: {g} vs {w:?}", sheet["name"]);
            }
            // Counts are integers, not text.
            for col in [5, 6, 10] {
                assert!(got[col].is_u64(), "{got:?}");
            }
        }
        let formats = sheet["formats"].as_array().unwrap();
        assert_eq!(formats[5], "0");
        assert_eq!(formats[6], "0");
        assert_eq!(formats[10], "0");
        assert_eq!(formats[3], "General", "area codes are text");
        for col in [7, 8, 9] {
            if let Some(f) = formats[col].as_str() {
                assert!(f.contains('%'), "{formats:?}");
            }
        }
        assert!(formats[7].is_string(), "every level has some rate");
    }
    // Some sheet shows a target and gap as percentages.
    assert!(sheets.iter().any(|s| {
        s["rows"].as_array().unwrap()[1..]
            .iter()
            .any(|r| !r[8].is_null() && !r[9].is_null())
    }));
}

#[test]
fn xlsx_splits_a_level_over_several_sheets() {
    let rows: Vec<CoverageRow> = coverage_rows()
        .into_iter()
        .filter(|r| r.level == Level::Village || r.level == Level::County)
        .collect();
    let villages = rows.iter().filter(|r| r.level == Level::Village).count();
    let counties = rows.len() - villages;
    // The county's rows fit on one sheet, the villages' take several.
    let per_sheet = counties + 1;
    assert!(villages > 2 * per_sheet);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("split.xlsx");
    write_coverage_xlsx_split_at(
        rows.iter().cloned(),
        Indicators::builtin(),
        std::fs::File::create(&path).unwrap(),
        &mut |_| {},
        per_sheet as u32,
    )
    .unwrap();
    let sheets = read_xlsx(&path);
    let names: Vec<String> = sheets
        .iter()
        .map(|s| s["name"].as_str().unwrap().to_owned())
        .collect();
    let village_sheets = villages.div_ceil(per_sheet);
    let mut want = vec!["县区".to_owned()];
    want.extend((1..=village_sheets).map(|i| {
        if i == 1 {
            "村".to_owned()
        } else {
            format!("村 {i}")
        }
    }));
    assert_eq!(names, want);
    let mut codes = Vec::new();
    for s in &sheets[1..] {
        assert_eq!(s["freeze"], "A2");
        let cells = s["rows"].as_array().unwrap();
        assert!(cells.len() <= per_sheet + 1);
        assert_eq!(cells[0][0], "指标 indicator");
        codes.extend(cells[1..].iter().map(|r| r[3].as_str().unwrap().to_owned()));
    }
    let want: Vec<&str> = rows
        .iter()
        .filter(|r| r.level == Level::Village)
        .map(|r| r.area_code.as_str())
        .collect();
    assert_eq!(codes, want, "rows continue in order across sheets");
}

#[test]
fn xlsx_with_no_rows_is_a_header_only_workbook() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("empty.xlsx");
    let n = write_coverage_xlsx(
        std::iter::empty(),
        Indicators::builtin(),
        std::fs::File::create(&path).unwrap(),
        &mut |_| {},
    )
    .unwrap();
    assert_eq!(n, 0);
    let sheets = read_xlsx(&path);
    assert_eq!(sheets.len(), 1);
    assert_eq!(sheets[0]["rows"].as_array().unwrap().len(), 1);
}

fn site(i: usize, lat: Option<f64>, lon: Option<f64>) -> SiteFeature {
    SiteFeature {
        id: format!("site-{i}"),
        kind: SiteKind::ALL[i % SiteKind::ALL.len()],
        name: format!("{AWKWARD} 第{i}号\n\t\\"),
        village_code: "410324101201".into(),
        lat,
        lon,
        latest_status: ["approved", "submitted", "not_inspected"][i % 3].into(),
        latest_approved_at: i.is_multiple_of(3).then(|| "2024-05-01".to_owned()),
        outcomes: [
            ("sanitary_toilet_rate".to_owned(), i.is_multiple_of(2)),
            ("id".to_owned(), true),
        ]
        .into(),
    }
}

#[test]
fn geojson_is_a_valid_feature_collection() {
    let features = [
        site(0, Some(33.78), Some(111.6)),
        site(1, None, Some(111.6)),
        site(2, Some(f64::NAN), Some(111.6)),
        site(3, Some(33.0), Some(f64::INFINITY)),
        site(4, Some(95.0), Some(111.6)),
        site(5, Some(-33.5), Some(-179.25)),
    ];
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sites.geojson");
    let mut seen = Vec::new();
    let n = write_sites_geojson(
        features.iter().cloned(),
        std::fs::File::create(&path).unwrap(),
        &mut |k| seen.push(k),
    )
    .unwrap();
    assert_eq!(n, 6);
    assert_eq!(seen.last(), Some(&6));

    let text = std::fs::read_to_string(&path).unwrap();
    assert!(!text.contains("NaN") && !text.contains("inf"));
    let doc: Json = serde_json::from_str(&text).unwrap();
    assert_eq!(doc["type"], "FeatureCollection");
    let fs = doc["features"].as_array().unwrap();
    assert_eq!(fs.len(), 6);
    let f0 = &fs[0];
    assert_eq!(f0["type"], "Feature");
    assert_eq!(f0["id"], "site-0");
    assert_eq!(
        f0["geometry"],
        serde_json::json!({"type": "Point", "coordinates": [111.6, 33.78]})
    );
    let p = &f0["properties"];
    assert_eq!(p["id"], "site-0");
    assert_eq!(p["kind"], "rural_sewage");
    assert_eq!(p["name"], format!("{AWKWARD} 第0号\n\t\\"));
    assert_eq!(p["village_code"], "410324101201");
    assert_eq!(p["latest_status"], "approved");
    assert_eq!(p["latest_approved_at"], "2024-05-01");
    assert_eq!(p["sanitary_toilet_rate"], true);
    assert_eq!(p["outcome.id"], true, "a clashing outcome id is renamed");
    assert!(fs[1]["properties"]["latest_approved_at"].is_null());
    for f in &fs[1..5] {
        assert!(f["geometry"].is_null(), "{f}");
        assert!(f.as_object().unwrap().contains_key("geometry"));
    }
    assert_eq!(
        fs[5]["geometry"]["coordinates"],
        serde_json::json!([-179.25, -33.5])
    );

    // Python's json accepts NaN unless told not to; refuse it here.
    let py = python(
        r#"
import json, sys
def refuse(c):
    raise ValueError('not JSON: ' + c)
doc = json.load(open(sys.argv[1], encoding='utf-8'), parse_constant=refuse)
assert doc['type'] == 'FeatureCollection'
for f in doc['features']:
    assert f['type'] == 'Feature'
    g = f['geometry']
    assert g is None or (g['type'] == 'Point' and len(g['coordinates']) == 2)
print(len(doc['features']), doc['features'][0]['properties']['name'])
"#,
        &[&path],
    );
    assert_eq!(py.trim_end(), format!("6 {AWKWARD} 第0号\n\t\\"));
}

#[test]
fn geojson_with_no_sites_is_an_empty_collection() {
    let mut out = Vec::new();
    let n = write_sites_geojson(std::iter::empty(), &mut out, &mut |_| {}).unwrap();
    assert_eq!(n, 0);
    let doc: Json = serde_json::from_slice(&out).unwrap();
    assert_eq!(
        doc,
        serde_json::json!({"type": "FeatureCollection", "features": []})
    );
}
