//! The committed bindings in `bindings/generated` must be what this
//! generator makes from the library built in the same `cargo test` run:
//! bindings that drift from the Rust code fail here, not on a phone.
#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests fail loudly on purpose.

use std::path::{Path, PathBuf};
use std::process::Command;

fn library() -> PathBuf {
    let name = if cfg!(target_os = "macos") {
        "libfieldbook_ffi.dylib"
    } else {
        "libfieldbook_ffi.so"
    };
    let deps = std::env::current_exe()
        .unwrap()
        .parent()
        .unwrap()
        .to_owned();
    [deps.join(name), deps.parent().unwrap().join(name)]
        .into_iter()
        .find(|p| p.exists())
        .expect("libfieldbook_ffi is not built: run cargo test --workspace")
}

fn files(root: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_owned()];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push((
                    p.strip_prefix(root).unwrap().to_owned(),
                    std::fs::read(&p).unwrap(),
                ));
            }
        }
    }
    out.sort();
    out
}

#[test]
fn committed_bindings_match_the_library() {
    let bindings = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let fresh = tempfile::tempdir().unwrap();
    for lang in ["kotlin", "swift", "python"] {
        let out = Command::new(env!("CARGO_BIN_EXE_uniffi-bindgen"))
            .args(["generate", "--library"])
            .arg(library())
            .arg("--config")
            .arg(bindings.join("uniffi-bindgen/crate-roots.toml"))
            .args(["--language", lang, "--no-format", "--out-dir"])
            .arg(fresh.path().join(lang))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let committed = files(&bindings.join("generated"));
    let generated = files(fresh.path());
    let names = |v: &[(PathBuf, Vec<u8>)]| v.iter().map(|(p, _)| p.clone()).collect::<Vec<_>>();
    assert_eq!(
        names(&committed),
        names(&generated),
        "generated files differ"
    );
    for ((path, a), (_, b)) in committed.iter().zip(&generated) {
        assert!(
            a == b,
            "bindings/generated/{} is stale: run bindings/generate.sh and commit the result",
            path.display()
        );
    }
}
