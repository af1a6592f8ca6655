#!/usr/bin/env bash
# Soak test: runs the seeded fault simulation (tests/src/simulation) over
# many seeds in a release build and reports seeds per second and failures.
#
#   scripts/soak.sh [SEEDS] [FIRST]
#
# SEEDS defaults to 2000, FIRST to 1. A failing seed prints
# "SIMULATION FAILED seed=N" with the command that reproduces it; the
# script exits non-zero when any seed failed.
set -euo pipefail

seeds="${1:-2000}"
first="${2:-1}"
cd "$(dirname "$0")/.."

# Build first and run the test binary itself, so the time reported is the
# simulation's alone.
exe="$(cargo test --release -p fieldbook-tests --test simulation --no-run 2>&1 |
    tee /dev/stderr | sed -n 's/.*Executable .*(\(.*\)).*/\1/p' | tail -n 1)"
if [ -z "$exe" ]; then
    echo "soak: the simulation did not build" >&2
    exit 1
fi

log="$(mktemp)"
trap 'rm -f "$log"' EXIT
status=0
FIELDBOOK_SIM_SEEDS="$seeds" FIELDBOOK_SIM_FIRST="$first" \
    "$exe" --exact seeds --nocapture >"$log" 2>&1 || status=$?

grep -E '^SIMULATION FAILED|^  reproduce:' "$log" || true
grep -E '^simulation:|^  over the passing seeds' "$log" || {
    # The run died before its summary: show why.
    tail -n 50 "$log"
}
if [ "$status" -ne 0 ]; then
    echo "soak: FAILED (seeds $first..$((first + seeds - 1)))"
else
    echo "soak: all $seeds seeds passed (seeds $first..$((first + seeds - 1)))"
fi
exit "$status"
