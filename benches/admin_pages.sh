#!/usr/bin/env bash
# Admin console and API with 10,000 users and 1,000 applications: every list page and API
# listing must answer in under 100 ms. Builds the release binary in its own target dir (so it
# never waits on the developers' cargo lock), generates the data, prints a Markdown table and
# writes it to benches/results/admin_pages.md.
#
#   benches/admin_pages.sh                 # full run
#   benches/admin_pages.sh --runs 10       # fewer timed requests per page
#
# Environment: BENCH_TARGET_DIR (default /work/bench-target), BENCH_SKIP_BUILD=1 to use the
# binary as it is, BENCH_BIN to benchmark another binary. Needs cargo and python3.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TARGET="${BENCH_TARGET_DIR:-/work/bench-target}"
BIN="${BENCH_BIN:-$TARGET/release/portcullis}"
if [[ -z "${BENCH_BIN:-}" && "${BENCH_SKIP_BUILD:-0}" != 1 ]]; then
  echo "[admin-bench] building the release binary in $TARGET" >&2
  (cd "$ROOT" && CARGO_TARGET_DIR="$TARGET" cargo build --release --quiet)
fi
mkdir -p "$ROOT/benches/results"
cd "$ROOT"
exec python3 "$ROOT/benches/admin_pages.py" --bin "$BIN" --out "$ROOT/benches/results/admin_pages.md" "$@"
