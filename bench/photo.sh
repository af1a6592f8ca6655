#!/usr/bin/env bash
# Photo pipeline benchmark: our pipeline vs vipsthumbnail on real photographs.
#
# The photographs come from Debian packages at run time (never committed):
# lomiri-wallpapers-16.04 and -20.04 ship camera photographs, baseline and
# progressive, 6–24 MP. Each is also measured as a lossless twin in the
# other scan mode. Prints median time per photo, peak memory, output bytes,
# the ratio, DSSIM against a Lanczos3 downscale, and perceptual-hash
# distances; baseline and progressive JPEGs are reported separately.
#
# Usage: bench/photo.sh [--runs N] [--edge PX] [--quality Q]
# Needs: apt-get (as root) for libvips-tools, GNU time, cmake and nasm when
# they are missing. Set CARGO_TARGET_DIR to reuse a build.
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$(pwd)
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
WORK=${PHOTO_BENCH_WORK:-$(mktemp -d -t fieldbook-photo-bench.XXXXXX)}
PACKAGES=(lomiri-wallpapers-16.04 lomiri-wallpapers-20.04)

need=()
command -v vipsthumbnail >/dev/null || need+=(libvips-tools)
[ -x /usr/bin/time ] || need+=(time)
command -v cmake >/dev/null || need+=(cmake)
command -v nasm >/dev/null || need+=(nasm)
if [ ${#need[@]} -gt 0 ]; then
    echo "installing ${need[*]}" >&2
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi

mkdir -p "$WORK/debs" "$WORK/extract" "$WORK/photos"
if ! ls "$WORK"/photos/*.jpg >/dev/null 2>&1; then
    (cd "$WORK/debs" && apt-get download "${PACKAGES[@]}" >/dev/null 2>&1) || {
        apt-get update -qq
        (cd "$WORK/debs" && apt-get download "${PACKAGES[@]}")
    }
    for deb in "$WORK"/debs/*.deb; do
        dpkg-deb -x "$deb" "$WORK/extract"
    done
    find "$WORK/extract" -type f \( -iname '*.jpg' -o -iname '*.jpeg' \) \
        -exec cp -t "$WORK/photos" {} +
fi
echo "photos: $(ls "$WORK/photos" | wc -l) from ${PACKAGES[*]} in $WORK/photos" >&2

echo "building (release)…" >&2
cargo build --release -q -p fieldbook-server --bin fieldbook
cargo build --release -q -p fieldbook-core --example photo_bench

echo "vipsthumbnail: $(vips --version)" >&2
"$TARGET/release/examples/photo_bench" \
    --photos "$WORK/photos" \
    --work "$WORK/run" \
    --fieldbook "$TARGET/release/fieldbook" \
    "$@"
