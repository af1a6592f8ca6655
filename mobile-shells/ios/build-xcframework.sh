#!/usr/bin/env bash
# Builds the Rust core (fieldbook-ffi) as a static library for iPhones and
# both simulator architectures, and packs it with the generated C header
# and module map into build/FieldbookFFI.xcframework for project.yml.
# Needs macOS with Xcode, rustup targets, and cmake + nasm (libjpeg-turbo).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
target_dir="${CARGO_TARGET_DIR:-$root/target}"
out="$here/build"
export IPHONEOS_DEPLOYMENT_TARGET=16.0

cd "$root"
for t in aarch64-apple-ios aarch64-apple-ios-sim x86_64-apple-ios; do
    cargo build --release --lib -p fieldbook-ffi --target "$t"
done

rm -rf "$out"
mkdir -p "$out/headers" "$out/simulator"
cp bindings/generated/swift/FieldbookFFIFFI.h "$out/headers/"
# Xcode finds a module in an XCFramework's headers only under this name.
cp bindings/generated/swift/FieldbookFFIFFI.modulemap "$out/headers/module.modulemap"

# One XCFramework slice per platform: the two simulator architectures
# share a slice, so they become one fat library.
lipo -create \
    "$target_dir/aarch64-apple-ios-sim/release/libfieldbook_ffi.a" \
    "$target_dir/x86_64-apple-ios/release/libfieldbook_ffi.a" \
    -output "$out/simulator/libfieldbook_ffi.a"

xcodebuild -create-xcframework \
    -library "$target_dir/aarch64-apple-ios/release/libfieldbook_ffi.a" -headers "$out/headers" \
    -library "$out/simulator/libfieldbook_ffi.a" -headers "$out/headers" \
    -output "$out/FieldbookFFI.xcframework"

echo "built $out/FieldbookFFI.xcframework"
