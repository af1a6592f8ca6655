#!/usr/bin/env bash
# Runs every cargo-fuzz target in fuzz/ for a bounded time, one after the
# other on one core, prints a table of executions per target, and copies any
# crash, timeout or out-of-memory input into tests/fuzz-fixtures/<target>/,
# where `cargo test` (tests/tests/fuzz_regressions.rs) replays it for good.
#
#   scripts/fuzz.sh [SECONDS_PER_TARGET] [TARGET...]
#
# SECONDS_PER_TARGET defaults to 60; no TARGET means all of them.
# Environment: CARGO_TARGET_DIR (default fuzz/target), FUZZ_SANITIZER
# (address by default; `none` runs about twice as fast), FUZZ_TIMEOUT
# (seconds one input may take before it counts as a hang, default 10),
# FUZZ_NO_BUILD=1 (run the binaries already built).
#
# The working corpus grows in fuzz/corpus/<target>/ (not checked in); the
# checked-in seeds in fuzz/seeds/<target>/ are read, never written. Logs and
# a summary.tsv land in fuzz/logs/.
set -euo pipefail
cd "$(dirname "$0")/.."

secs="${1:-60}"
shift || true
sanitizer="${FUZZ_SANITIZER:-address}"
timeout="${FUZZ_TIMEOUT:-10}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/fuzz/target}"
export CARGO_BUILD_JOBS="${CARGO_BUILD_JOBS:-2}"

if ! rustup toolchain list | grep -q '^nightly'; then
  rustup toolchain install nightly --profile minimal
fi
if ! command -v cargo-fuzz >/dev/null; then
  cargo install cargo-fuzz --locked
fi

if [ $# -gt 0 ]; then
  targets=("$@")
else
  mapfile -t targets < <(cargo +nightly fuzz list --fuzz-dir fuzz)
fi

# Debug assertions on: integer overflow is a bug worth finding too. Built
# once, then the binaries run directly, so every target runs the same build.
if [ -z "${FUZZ_NO_BUILD:-}" ]; then
  cargo +nightly fuzz build --fuzz-dir fuzz -a -s "$sanitizer"
fi
bindir="$CARGO_TARGET_DIR/$(rustc +nightly -vV | sed -n 's/^host: //p')/release"

mkdir -p fuzz/logs
summary=fuzz/logs/summary.tsv
printf 'target\truns\texec/s\tseconds\tresult\n' >"$summary"
found=0
for t in "${targets[@]}"; do
  mkdir -p "fuzz/corpus/$t" "fuzz/artifacts/$t" "fuzz/seeds/$t"
  log="fuzz/logs/$t.log"
  echo "== $t (${secs}s)"
  status=0
  "$bindir/$t" "fuzz/corpus/$t" "fuzz/seeds/$t" \
    -max_total_time="$secs" -timeout="$timeout" -rss_limit_mb=2048 \
    -print_final_stats=1 -artifact_prefix="fuzz/artifacts/$t/" \
    >"$log" 2>&1 || status=$?
  runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | tail -1 | grep -o '[0-9]*$' || true)
  rate=$(grep -o 'stat::average_exec_per_sec: *[0-9]*' "$log" | tail -1 | grep -o '[0-9]*$' || true)
  if [ -z "$runs" ]; then
    # A crash ends the run before the final stats: take the last status line.
    runs=$(grep -oE '^#[0-9]+' "$log" | tail -1 | tr -d '#' || true)
    rate=$(grep -oE 'exec/s: [0-9]+' "$log" | tail -1 | grep -o '[0-9]*$' || true)
  fi
  result=ok
  [ "$status" -ne 0 ] && result="exit $status"
  shopt -s nullglob
  for a in "fuzz/artifacts/$t"/crash-* "fuzz/artifacts/$t"/timeout-* "fuzz/artifacts/$t"/oom-*; do
    mkdir -p "tests/fuzz-fixtures/$t"
    # Moved, so that the next run reports only what it finds itself.
    mv "$a" "tests/fuzz-fixtures/$t/"
    result="$(basename "$a" | cut -d- -f1) -> tests/fuzz-fixtures/$t/$(basename "$a")"
    found=1
  done
  shopt -u nullglob
  printf '%s\t%s\t%s\t%s\t%s\n' "$t" "${runs:-?}" "${rate:-?}" "$secs" "$result" >>"$summary"
done

echo
column -t -s $'\t' "$summary" 2>/dev/null || cat "$summary"
if [ "$found" -ne 0 ]; then
  echo "new fixtures in tests/fuzz-fixtures/: fix the decoder, then run" \
    "cargo test -p fieldbook-tests --test fuzz_regressions"
  exit 1
fi
