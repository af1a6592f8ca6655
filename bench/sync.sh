#!/usr/bin/env bash
# Sync benchmark: wire bytes per new inspection and per edit, requests for a
# phone with 500 pending inspections, server ingest rate with many phones
# pushing at once, and the server's peak memory meanwhile.
#   bench/sync.sh [PHONES] [INSPECTIONS]     (defaults 200 50)
set -euo pipefail
cd "$(dirname "$0")/.."
PHONES=${1:-200}
INSPECTIONS=${2:-50}
cargo build --release -q -p fieldbook-server --bin fieldbook --example sync_bench
TARGET=${CARGO_TARGET_DIR:-target}
BIN=$TARGET/release/fieldbook
DATA=$(mktemp -d)
PORT=$((20000 + RANDOM % 20000))
trap 'kill $SERVER 2>/dev/null || true; rm -rf "$DATA"' EXIT
export FIELDBOOK_ADMIN_PASSWORD="bench admin password"
echo -n "$FIELDBOOK_ADMIN_PASSWORD" | $BIN admin --data "$DATA" user add admin --role admin --area 4103 >/dev/null
${SERVER_ENV:-} $BIN serve --data "$DATA" --listen 127.0.0.1:$PORT >/dev/null &
SERVER=$!
for _ in $(seq 100); do (echo > /dev/tcp/127.0.0.1/$PORT) 2>/dev/null && break; sleep 0.05; done
FIELDBOOK_SERVER_PID=$SERVER $TARGET/release/examples/sync_bench "http://127.0.0.1:$PORT" "$PHONES" "$INSPECTIONS"
echo "server peak memory over the whole run, logins included: $(awk '/VmHWM/ {printf "%.1f MB", $2/1024}' /proc/$SERVER/status)"
