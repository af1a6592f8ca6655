#!/usr/bin/env bash
# Installs what building and testing Fieldbook needs beyond the Rust
# toolchain, when it is missing, from Debian's packages (and Python's
# openpyxl from PyPI). Does nothing when everything is there.
#
#   scripts/deps.sh           what the build needs: cmake and nasm, which
#                             build libjpeg-turbo (the photo pipeline)
#   scripts/deps.sh --tests   also what the tests need: a JDK, JNA and npm
#                             for the Kotlin harness, openpyxl for the
#                             export tests, Chromium (with CJK fonts) and
#                             npm playwright-core for the console's
#                             browser tests
#
# Run as root, or as a user who may use sudo. On a system without apt-get
# it names what is missing and stops.
set -euo pipefail

tests=0
[ "${1:-}" = "--tests" ] && tests=1

need=()
command -v cmake >/dev/null || need+=(cmake)
command -v nasm >/dev/null || need+=(nasm)
if [ "$tests" = 1 ]; then
    # The Kotlin harness: JNA loads the bindings' library into the JVM.
    [ -f /usr/share/java/jna.jar ] || need+=(libjna-java)
    command -v javac >/dev/null || need+=(openjdk-17-jdk-headless)
    command -v npm >/dev/null || need+=(npm)
    command -v python3 >/dev/null || need+=(python3)
    python3 -m pip --version >/dev/null 2>&1 || need+=(python3-pip)
    command -v chromium >/dev/null || need+=(chromium)
    [ -d /usr/share/fonts/opentype/noto ] || need+=(fonts-noto-cjk)
fi

if [ ${#need[@]} -gt 0 ]; then
    if ! command -v apt-get >/dev/null; then
        echo "deps: please install: ${need[*]}" >&2
        exit 1
    fi
    sudo=()
    if [ "$(id -u)" != 0 ]; then
        command -v sudo >/dev/null || {
            echo "deps: installing ${need[*]} needs root (or sudo)" >&2
            exit 1
        }
        sudo=(sudo)
    fi
    echo "deps: installing ${need[*]}" >&2
    "${sudo[@]}" apt-get -o DPkg::Lock::Timeout=600 update -qq
    DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get -o DPkg::Lock::Timeout=600 \
        install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

if [ "$tests" = 1 ] && ! python3 -c "import openpyxl" 2>/dev/null; then
    echo "deps: installing openpyxl" >&2
    python3 -m pip install --quiet openpyxl 2>/dev/null ||
        python3 -m pip install --quiet --break-system-packages openpyxl
fi

browser="$(cd "$(dirname "$0")/../tests/browser" && pwd)"
if [ "$tests" = 1 ] && [ ! -d "$browser/node_modules/playwright-core" ]; then
    echo "deps: installing playwright-core (tests/browser)" >&2
    (cd "$browser" && npm ci --no-audit --no-fund --loglevel=error)
fi
