#!/usr/bin/env bash
# Builds the Rust core (fieldbook-ffi) for the phone ABIs into
# app/src/main/jniLibs, where Gradle packages it and JNA loads it.
# Needs the Android NDK (ANDROID_NDK_HOME), cargo-ndk, the Rust targets,
# and cmake + nasm for libjpeg-turbo; see README.md.
#   ./build-rust.sh            release build (what ships)
#   PROFILE=dev ./build-rust.sh  faster to build, much slower photos
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
profile_flag="--release"
if [ "${PROFILE:-release}" = "dev" ]; then profile_flag=""; fi

cd "$root"
# API 26 matches the app's minSdk.
cargo ndk \
    -t arm64-v8a -t armeabi-v7a -t x86_64 \
    --platform 26 \
    -o "$here/app/src/main/jniLibs" \
    build $profile_flag -p fieldbook-ffi

ls -l "$here"/app/src/main/jniLibs/*/libfieldbook_ffi.so
