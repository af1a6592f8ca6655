#!/usr/bin/env bash
# The sync acceptance scenario, again and again: 20 phones x 20 inspections
# with one photo each sync through 20% loss while the server is SIGKILLed
# and restarted on the same data folder and port 4, 8 and 12 seconds into
# the run. Reports, per run and in total, the photos created and uploaded
# and those missing (the server answered it does not have them) or
# unverified (the server could not be asked); both must be 0.
#
#   scripts/kill-soak.sh [RUNS]
#
# RUNS defaults to 50. KILL_AT="4 8 12" (the default) sets the seconds at
# which the server is killed; a run that ends earlier skips the later
# kills, so shorter times (KILL_AT="3 5 7") land the kills in the
# simulation's final count on a fast machine. Release build; about 20 s a run on two cores. Exits
# non-zero when any run lost, duplicated or failed to account for a photo.
set -euo pipefail

runs="${1:-50}"
cd "$(dirname "$0")/.."
cargo build --release -p fieldbook-server >&2
bin="$PWD/target/release/fieldbook"
password="kill soak admin password"

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

wait_up() {
    for _ in $(seq 200); do
        if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then
            return 0
        fi
        sleep 0.05
    done
    echo "kill-soak: the server did not come up on port $1" >&2
    return 1
}

total_kills=0 total_created=0 total_uploaded=0 total_missing=0 total_unverified=0 failed=0
work="$(mktemp -d)"
trap 'kill "$server" 2>/dev/null || true; rm -rf "$work"' EXIT
server=0
for run in $(seq "$runs"); do
    data="$work/run-$run"
    echo -n "$password" | "$bin" admin --data "$data" user add admin --role admin --area 4103 >/dev/null
    port="$(free_port)"
    "$bin" serve --data "$data" --listen "127.0.0.1:$port" >/dev/null 2>&1 &
    server=$!
    wait_up "$port"
    FIELDBOOK_ADMIN_PASSWORD="$password" "$bin" sim --server "http://127.0.0.1:$port" \
        --phones 20 --inspections 20 --photos 1 --loss 0.2 --seed 7 --patience 60 \
        >"$work/report" 2>"$work/err" &
    sim=$!
    start=$(date +%s.%N)
    kills=0
    for at in ${KILL_AT:-4 8 12}; do
        now=$(date +%s.%N)
        sleep "$(python3 -c "print(max(0.0, $start + $at - $now))")"
        if ! kill -0 "$sim" 2>/dev/null; then
            break
        fi
        kill -9 "$server"
        wait "$server" 2>/dev/null || true
        kills=$((kills + 1))
        "$bin" serve --data "$data" --listen "127.0.0.1:$port" >/dev/null 2>&1 &
        server=$!
        wait_up "$port"
    done
    status=0
    wait "$sim" || status=$?
    kill "$server" 2>/dev/null || true
    wait "$server" 2>/dev/null || true
    line="$(tail -n 1 "$work/report")"
    read -r created uploaded missing unverified lost duplicated < <(python3 -c '
import json, sys
r = json.loads(sys.argv[1])
print(r["photos_created"], r["photos_uploaded"], r["photos_missing"],
      r.get("photos_unverified", 0), r["lost"], r["duplicated"])
' "$line" 2>/dev/null || echo "0 0 0 0 0 0")
    total_kills=$((total_kills + kills))
    echo "run $run: $kills kills, exit $status, photos created $created uploaded $uploaded missing $missing unverified $unverified, inspections lost $lost duplicated $duplicated"
    if [ "$status" -ne 0 ]; then
        failed=$((failed + 1))
        sed 's/^/    /' "$work/err" | tail -n 5
    fi
    total_created=$((total_created + created))
    total_uploaded=$((total_uploaded + uploaded))
    total_missing=$((total_missing + missing))
    total_unverified=$((total_unverified + unverified))
    rm -rf "$data"
done
echo "kill-soak: $runs runs, $total_kills server kills, $failed failed; photos created $total_created, uploaded $total_uploaded, missing $total_missing, unverified $total_unverified"
[ "$failed" -eq 0 ] && [ "$total_missing" -eq 0 ] && [ "$total_unverified" -eq 0 ]
