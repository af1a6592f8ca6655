//! The generated Python bindings, run with plain `python3` against a real
//! server on 127.0.0.1 (uniffi's own way of testing a binding: a script in
//! the foreign language calling the built library).
#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests fail loudly on purpose.

use fieldbook_core::model::Role;
use fieldbook_tests::{PASSWORD, TestServer, test_png};
use std::path::PathBuf;
use std::process::Command;

/// The cdylib cargo built for this test run: `cargo test` leaves it in
/// `deps/` beside the test binary; `cargo build` copies it one level up.
fn built_library() -> PathBuf {
    let name = if cfg!(target_os = "macos") {
        "libfieldbook_ffi.dylib"
    } else {
        "libfieldbook_ffi.so"
    };
    let exe = std::env::current_exe().expect("test path");
    let deps = exe.parent().expect("deps dir");
    let here = deps.join(name);
    if here.exists() {
        return here;
    }
    deps.parent().map_or(here.clone(), |d| d.join(name))
}

#[test]
fn python_bindings_drive_a_phone_against_a_real_server() {
    let lib = built_library();
    assert!(lib.exists(), "{} is not built", lib.display());
    let server = TestServer::start();
    server.add_user("li.wei", Role::Inspector, &["410324"]);
    server.add_user("zhang.min", Role::Supervisor, &["410324"]);

    let work = tempfile::tempdir().unwrap();
    let crate_dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    std::fs::copy(
        crate_dir.join("generated/python/fieldbook_ffi.py"),
        work.path().join("fieldbook_ffi.py"),
    )
    .unwrap();
    std::fs::copy(&lib, work.path().join(lib.file_name().unwrap())).unwrap();
    for seed in 1..=6 {
        std::fs::write(
            work.path().join(format!("photo{seed}.png")),
            test_png(1200, 900, seed),
        )
        .unwrap();
    }
    // A real photo cut off half way, as a crashed camera app leaves it.
    let png = test_png(800, 600, 3);
    std::fs::write(work.path().join("damaged.jpg"), &png[..png.len() / 2]).unwrap();

    let out = Command::new("python3")
        .arg(crate_dir.join("tests/python/test_fieldbook.py"))
        .arg(&server.url)
        .arg(work.path())
        .arg(PASSWORD)
        .env("PYTHONPATH", work.path())
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .output()
        .expect("python3 runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "python bindings test failed\n--- stdout\n{stdout}\n--- stderr\n{stderr}"
    );
    assert!(stdout.contains("all checks passed"), "{stdout}");
}
