#!/usr/bin/env bash
# Portcullis benchmarks: A (appliance), B (sign-in load), C (OIDC endpoints vs node
# oidc-provider). Writes benches/results/latest.md (+ .json), prints the summary, and
# replaces the figures section of BENCHMARKS.md.
#
#   benches/run.sh                 # full run (~5-8 minutes on 2 cores, after the build)
#   benches/run.sh --quick         # short runs, to check the harness (not for BENCHMARKS.md)
#   benches/run.sh --only AC       # some parts only
#   benches/run.sh --no-update     # leave BENCHMARKS.md alone
#
# Environment: BENCH_TARGET_DIR (default /work/bench-target, a target dir of its own so
# the benches never wait on the developers' cargo lock), BENCH_SKIP_BUILD=1 to use the
# binary as it is, BENCH_BIN to benchmark another binary, BENCH_ENDPOINTS=refresh_rs256,...
# to run some endpoints of part C only (implies --no-update), BENCH_PERF_DIR=dir to record a
# `perf` profile of the server per endpoint (BENCH_PERF_CALLGRAPH=dwarf for whole stacks).
#
# Needs: cargo, python3 (standard library only), wrk, node >= 20.19 and npm, openssl.
# Missing wrk/node are installed with apt-get/npm when possible.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BENCHES="$ROOT/benches"
TARGET="${BENCH_TARGET_DIR:-/work/bench-target}"
QUICK=()
ONLY=(--only ABC)
UPDATE=1
while [[ $# -gt 0 ]]; do
  case "$1" in
    --quick) QUICK=(--quick); UPDATE=0 ;;
    --only) ONLY=(--only "$2"); shift ;;
    --no-update) UPDATE=0 ;;
    -h|--help) sed -n '2,18p' "$0"; exit 0 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
  shift
done
[[ -n "${BENCH_ENDPOINTS:-}" ]] && UPDATE=0

say() { printf '[run.sh] %s\n' "$*" >&2; }

# ---- tools ---------------------------------------------------------------------------------
if ! command -v wrk >/dev/null; then
  say "installing wrk (apt)"
  apt-get install -y -qq wrk >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq wrk; }
fi
if [[ ! -d "$BENCHES/node/node_modules/oidc-provider" ]] && command -v npm >/dev/null; then
  say "installing node oidc-provider (npm ci)"
  (cd "$BENCHES/node" && npm ci --no-audit --no-fund --loglevel=error) || say "npm ci failed: node side will be 'not available'"
fi

# ---- builds --------------------------------------------------------------------------------
BIN="${BENCH_BIN:-$TARGET/release/portcullis}"
if [[ -z "${BENCH_BIN:-}" && "${BENCH_SKIP_BUILD:-0}" != 1 ]]; then
  # The commit the binary is built from (the work tree may change while the benches run).
  if BENCH_COMMIT="$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null)"; then
    if [[ -n "$(git -C "$ROOT" status --porcelain -- src Cargo.toml Cargo.lock migrations templates static 2>/dev/null)" ]]; then
      BENCH_COMMIT="$BENCH_COMMIT (+ uncommitted changes in src/)"
    fi
    export BENCH_COMMIT
  fi
  say "building the release binary in $TARGET (lto: several minutes on 2 cores the first time)"
  (cd "$ROOT" && CARGO_TARGET_DIR="$TARGET" cargo build --release --quiet)
fi
[[ -x "$BIN" ]] || { echo "no binary at $BIN" >&2; exit 1; }

ARGON2_BIN="$TARGET/argon2/release/portcullis-bench-argon2"
if [[ "${BENCH_SKIP_BUILD:-0}" != 1 || ! -x "$ARGON2_BIN" ]]; then
  say "building the argon2id micro-benchmark (benches/argon2)"
  (cd "$BENCHES/argon2" && CARGO_TARGET_DIR="$TARGET/argon2" cargo build --release --quiet) \
    || say "argon2 bench build failed: falling back to argon2-cffi if installed"
fi

# ---- run -----------------------------------------------------------------------------------
mkdir -p "$BENCHES/results"
python3 "$BENCHES/lib/bench.py" --bin "$BIN" --argon2-bin "$ARGON2_BIN" \
  --out "$BENCHES/results/latest.md" "${QUICK[@]}" "${ONLY[@]}"

# ---- BENCHMARKS.md: replace what is between the markers with the new results ----------------
if [[ $UPDATE == 1 && -f "$ROOT/BENCHMARKS.md" ]]; then
  python3 - "$ROOT/BENCHMARKS.md" "$BENCHES/results/latest.md" <<'EOF'
import sys, re
doc, res = open(sys.argv[1]).read(), open(sys.argv[2]).read()
res = res.split("\n", 2)[2] if res.startswith("<!--") else res
begin, end = "<!-- results:begin -->", "<!-- results:end -->"
if begin in doc and end in doc:
    head, rest = doc.split(begin, 1)
    _, tail = rest.split(end, 1)
    open(sys.argv[1], "w").write(f"{head}{begin}\n{res.strip()}\n{end}{tail}")
    print("[run.sh] BENCHMARKS.md updated", file=sys.stderr)
EOF
fi
