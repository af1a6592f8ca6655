#!/usr/bin/env bash
# Generates the Kotlin, Swift and Python bindings from the built library
# (uniffi library mode) into OUT (default bindings/generated).
#   bindings/generate.sh [OUT]
# `--check` compares a fresh generation with the committed one and fails if
# they differ, so the committed bindings never drift from the Rust code.
set -euo pipefail
cd "$(dirname "$0")/.."
CHECK=0
if [ "${1:-}" = "--check" ]; then CHECK=1; shift; fi
OUT=${1:-bindings/generated}
TARGET=${CARGO_TARGET_DIR:-target}
cargo build -q -j2 -p fieldbook-ffi -p uniffi-bindgen
LIB="$TARGET/debug/libfieldbook_ffi.so"
if [ "$CHECK" = 1 ]; then
    FRESH=$(mktemp -d)
    trap 'rm -rf "$FRESH"' EXIT
    DEST=$FRESH
else
    DEST=$OUT
    rm -rf "$DEST"
fi
for lang in kotlin swift python; do
    "$TARGET/debug/uniffi-bindgen" generate --library "$LIB" \
        --config bindings/uniffi-bindgen/crate-roots.toml \
        --language "$lang" --out-dir "$DEST/$lang" --no-format >/dev/null
done
if [ "$CHECK" = 1 ]; then
    if ! diff -r "$OUT" "$FRESH" >/dev/null; then
        echo "bindings/generated is stale: run bindings/generate.sh and commit the result" >&2
        diff -r "$OUT" "$FRESH" | head -20 >&2
        exit 1
    fi
    echo "generated bindings are current"
fi
