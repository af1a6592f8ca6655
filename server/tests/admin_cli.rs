//! `fieldbook admin` on a data folder: the folder is private, and every
//! change the operator makes from the command line is in the audit log.
#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests fail loudly on purpose.

use fieldbook_server::storage::AuditQuery;
use fieldbook_server::storage::prelude::*;
use fieldbook_server::storage::sqlite::SqliteStorage;
use std::io::Write;
use std::process::{Command, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_fieldbook");

/// Runs `fieldbook admin --data DATA ARGS` with `stdin`; success and output.
fn admin(data: &std::path::Path, args: &[&str], stdin: &str) -> (bool, String) {
    let mut c = Command::new(BIN)
        .arg("admin")
        .arg("--data")
        .arg(data)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    c.stdin.take().unwrap().write_all(stdin.as_bytes()).unwrap();
    let out = c.wait_with_output().unwrap();
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

#[test]
fn the_command_line_keeps_the_folder_private_and_audits_every_change() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let (ok, out) = admin(
        &data,
        &[
            "user",
            "add",
            "li.wei",
            "--role",
            "inspector",
            "--area",
            "410324",
        ],
        "a long password",
    );
    assert!(ok, "{out}");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&data), 0o700);
        assert_eq!(mode(&data.join("server.db")), 0o600);
    }
    // `*` is for administrators only.
    let (ok, out) = admin(
        &data,
        &["user", "add", "x", "--role", "inspector", "--area", "*"],
        "a long password",
    );
    assert!(!ok && out.contains("only an administrator"), "{out}");
    let csv = dir.path().join("registry.csv");
    std::fs::write(
        &csv,
        "kind,name,village_code\nhousehold_toilet,张家户厕,410324101201\n",
    )
    .unwrap();
    assert!(!admin(&data, &["sites", "import"], "").0);
    let (ok, out) = admin(&data, &["sites", "import", csv.to_str().unwrap()], "");
    assert!(ok, "{out}");
    let (ok, out) = admin(&data, &["user", "disable", "li.wei"], "");
    assert!(ok, "{out}");
    let (ok, out) = admin(
        &data,
        &["user", "reset-password", "li.wei"],
        "another long one",
    );
    assert!(ok, "{out}");
    let (ok, out) = admin(&data, &["device", "revoke", "no-such-device"], "");
    assert!(!ok && out.contains("no device"), "{out}");
    {
        let storage = SqliteStorage::open(&data.join("server.db")).unwrap();
        storage
            .register_device(
                "li.wei",
                "phone-li",
                &"ab".repeat(16),
                "tokenhash",
                i64::MAX,
                0,
            )
            .unwrap();
    }
    let (ok, out) = admin(&data, &["device", "revoke", "phone-li"], "");
    assert!(ok, "{out}");

    let storage = SqliteStorage::open(&data.join("server.db")).unwrap();
    let site = {
        let mut id = None;
        storage
            .scan_sites("410324", false, &mut |s| {
                id = Some(s.id);
                Ok(())
            })
            .unwrap();
        id.unwrap()
    };
    drop(storage);
    let (ok, out) = admin(
        &data,
        &["records", "quarantine", &site, "--reason", "test"],
        "",
    );
    assert!(ok, "{out}");
    let (ok, out) = admin(&data, &["records", "quarantined"], "");
    assert!(ok && out.contains(&site), "{out}");
    let (ok, out) = admin(&data, &["records", "release", &site], "");
    assert!(ok, "{out}");

    let storage = SqliteStorage::open(&data.join("server.db")).unwrap();
    let lines = storage
        .audit_log(&AuditQuery {
            before: None,
            limit: 100,
            users: Some(vec!["cli".into()]),
            ..Default::default()
        })
        .unwrap();
    let actions: Vec<&str> = lines.iter().map(|l| l.entry.action.as_str()).collect();
    for want in [
        "user_created",
        "sites_imported",
        "user_disabled",
        "password_reset",
        "device_revoked",
        "record_quarantined",
        "record_released",
    ] {
        assert!(actions.contains(&want), "{want} missing from {actions:?}");
    }
}
