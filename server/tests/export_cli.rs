//! `fieldbook export` as a county office runs it: from a data folder or a
//! database URL, every export kind and table format, and a clear error for
//! a database that is not there, a kind this build cannot read, or an
//! unknown format.
#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests fail loudly on purpose.

use fieldbook_core::model::Divisions;
use fieldbook_server::devtools::registry_gen::{RegistryOptions, generate};
use fieldbook_server::storage::prelude::*;
use fieldbook_server::storage::sqlite::SqliteStorage;
use std::path::Path;
use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_fieldbook");

/// Runs `fieldbook export ARGS`; returns success and standard error.
fn export(args: &[&str]) -> (bool, String) {
    let out = Command::new(BIN).arg("export").args(args).output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn data_folder(dir: &Path) -> usize {
    let storage = SqliteStorage::open(&dir.join("server.db")).unwrap();
    let registry = generate(
        Divisions::luoyang(),
        &RegistryOptions {
            area: "410324101".into(),
            toilets_per_village: 1,
            ..RegistryOptions::default()
        },
        0,
    );
    storage
        .import_sites(
            &registry,
            &fieldbook_server::storage::Identity {
                user: "admin".into(),
                role: fieldbook_core::model::Role::Admin,
                areas: vec!["*".into()],
                device: "cli".into(),
            },
            0,
        )
        .unwrap()
}

#[test]
fn exports_from_a_folder_or_a_database_url() {
    let dir = tempfile::tempdir().unwrap();
    let sites = data_folder(dir.path());
    let data = dir.path().to_str().unwrap();
    let db = dir.path().join("server.db");
    let url = format!("sqlite://{}", db.display());
    let out = |name: &str| dir.path().join(name);

    let geo = out("sites.geojson");
    let (ok, err) = export(&[
        "coverage",
        "--database",
        &url,
        "--format",
        "geojson",
        "--year",
        "2026",
        "--out",
        geo.to_str().unwrap(),
    ]);
    assert!(ok, "{err}");
    let map: serde_json::Value = serde_json::from_slice(&std::fs::read(&geo).unwrap()).unwrap();
    assert_eq!(map["features"].as_array().unwrap().len(), sites);

    for (what, format) in [
        ("records", "csv"),
        ("records", "xlsx"),
        ("findings", "csv"),
        ("findings", "xlsx"),
    ] {
        let file = out(&format!("{what}.{format}"));
        let (ok, err) = export(&[
            what,
            "--data",
            data,
            "--format",
            format,
            "--out",
            file.to_str().unwrap(),
        ]);
        assert!(ok, "{what} {format}: {err}");
        let bytes = std::fs::read(&file).unwrap();
        if format == "xlsx" {
            assert_eq!(&bytes[..2], b"PK", "{what}: an XLSX file is a zip");
        } else {
            let text = String::from_utf8(bytes).unwrap();
            assert!(text.starts_with('\u{feff}'), "{what}: a byte-order mark");
            assert_eq!(text.lines().count(), 1, "{what}: the header, no rows yet");
        }
    }

    let sink = out("never.csv");
    let sink = sink.to_str().unwrap();
    for (args, says) in [
        (
            vec!["records", "--database", "postgres://db.example/fieldbook"],
            "SQLite only",
        ),
        (
            vec!["records", "--database", "mysql://x"],
            "unknown database kind",
        ),
        (vec!["records", "--database", "server.db"], "not a URL"),
        (
            vec!["findings", "--data", "/nonexistent/fieldbook-data"],
            "no server database",
        ),
        (
            vec!["findings", "--data", data, "--format", "pdf"],
            "csv or xlsx",
        ),
        (
            vec!["records", "--data", data, "--area", "41O3"],
            "not a division code",
        ),
    ] {
        let mut all = args.clone();
        all.extend(["--out", sink]);
        let (ok, err) = export(&all);
        assert!(!ok, "{args:?} must fail");
        assert!(err.contains(says), "{args:?}: {err}");
    }
    assert!(
        !Path::new("/nonexistent/fieldbook-data").exists(),
        "an export creates no database"
    );
}
