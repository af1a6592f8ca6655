#!/usr/bin/env bash
# Builds the bindings and runs the desktop harness: the generated Kotlin
# bindings and the shared app logic on OpenJDK, against a real server.
#   mobile-shells/jvm/run.sh [SERVER_URL]
# With no URL it starts its own `fieldbook serve` on 127.0.0.1 with a fresh
# data folder and admin; with a URL, FIELDBOOK_ADMIN_USER and
# FIELDBOOK_ADMIN_PASSWORD must name an admin of that server.
# Needs: cargo, OpenJDK 17+, JNA (Debian libjna-java), and kotlinc (from
# PATH, or the npm package kotlin-compiler, installed into
# ${FIELDBOOK_TOOLS:-~/.cache/fieldbook-tools} when missing).
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
TOOLS=${FIELDBOOK_TOOLS:-$HOME/.cache/fieldbook-tools}
KOTLIN_VERSION=2.4.20

if command -v kotlinc >/dev/null 2>&1; then
    KOTLINC=$(command -v kotlinc)
    KOTLIN_HOME=$(dirname "$(dirname "$(readlink -f "$KOTLINC")")")
else
    KOTLIN_HOME=$TOOLS/node_modules/kotlin-compiler
    if [ ! -x "$KOTLIN_HOME/bin/kotlinc" ]; then
        echo "installing kotlin-compiler@$KOTLIN_VERSION into $TOOLS" >&2
        mkdir -p "$TOOLS"
        npm install --prefix "$TOOLS" --no-audit --no-fund --silent "kotlin-compiler@$KOTLIN_VERSION" >&2
    fi
    KOTLINC=$KOTLIN_HOME/bin/kotlinc
fi
COROUTINES=$(ls "$KOTLIN_HOME"/lib/kotlinx-coroutines-core-jvm*.jar | head -1)
JNA=/usr/share/java/jna.jar
[ -f "$JNA" ] || { echo "JNA is missing: apt-get install libjna-java" >&2; exit 1; }

# The same build as `cargo test --workspace` (a no-op right after it):
# building a subset of the packages would resolve features differently and
# compile much of the tree again. That run also checks that the committed
# bindings are current (bindings/uniffi-bindgen/tests).
cargo test --workspace --no-run -q -j2
LIBDIR=$TARGET/debug/deps
[ -f "$LIBDIR/libfieldbook_ffi.so" ] || LIBDIR=$TARGET/debug

# Compile only when a source changed: kotlinc takes about a minute.
OUT=$TARGET/jvm-harness
JAR=$OUT/harness.jar
SOURCES=(bindings/generated/kotlin mobile-shells/shared/src/main/kotlin mobile-shells/jvm/src)
STAMP=$(find "${SOURCES[@]}" -name '*.kt' -exec sha1sum {} + | sort | sha1sum | cut -c1-16)
if [ ! -f "$JAR" ] || [ "$(cat "$OUT/stamp" 2>/dev/null)" != "$STAMP" ]; then
    mkdir -p "$OUT"
    echo "compiling the harness with $("$KOTLINC" -version 2>&1 | head -1)" >&2
    "$KOTLINC" -nowarn -jvm-target 17 -cp "$JNA:$COROUTINES" -d "$JAR" "${SOURCES[@]}"
    echo "$STAMP" > "$OUT/stamp"
fi

SERVER_URL=${1:-}
if [ -z "$SERVER_URL" ]; then
    DATA=$(mktemp -d)
    PORT=$((20000 + RANDOM % 20000))
    export FIELDBOOK_ADMIN_USER=admin
    export FIELDBOOK_ADMIN_PASSWORD="harness admin $RANDOM$RANDOM"
    printf %s "$FIELDBOOK_ADMIN_PASSWORD" | "$TARGET/debug/fieldbook" admin --data "$DATA" \
        user add admin --role admin --area 4103 >/dev/null
    "$TARGET/debug/fieldbook" serve --data "$DATA" --listen "127.0.0.1:$PORT" >"$DATA/serve.log" 2>&1 &
    SERVER=$!
    trap 'kill $SERVER 2>/dev/null || true; wait $SERVER 2>/dev/null || true; rm -rf "$DATA"' EXIT
    for _ in $(seq 200); do
        (echo > "/dev/tcp/127.0.0.1/$PORT") 2>/dev/null && break
        sleep 0.05
    done
    SERVER_URL=http://127.0.0.1:$PORT
fi

KOTLIN_STDLIB=$KOTLIN_HOME/lib/kotlin-stdlib.jar
timeout 600 java -Djna.library.path="$LIBDIR" \
    -cp "$JAR:$KOTLIN_STDLIB:$JNA:$COROUTINES" cn.fieldbook.harness.MainKt "$SERVER_URL"
