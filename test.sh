#!/usr/bin/env bash
# The one test command: formatting and lints (the crate's deny-lists), Rust unit and
# integration tests, then browser end-to-end tests.
#   ./test.sh            run everything available (e2e skipped locally without node/chromium)
#   CI=true ./test.sh    e2e prerequisites are mandatory
# Env: PORTCULLIS_BIN (binary for e2e; default target/debug/portcullis, built here),
#      PORTCULLIS_E2E_VERBOSE=1 (echo server logs), PORTCULLIS_E2E_KEEP=1 (keep temp data dirs).
set -euo pipefail
cd "$(dirname "$0")"

CHROMIUM=${PORTCULLIS_CHROMIUM:-/usr/bin/chromium}
is_ci() { [[ "${CI:-}" == "true" || "${CI:-}" == "1" ]]; }
section() { printf '\n==== %s ====\n' "$*"; }

section "cargo fmt --check"
cargo fmt --all -- --check

section "cargo clippy --all-targets -- -D warnings"
cargo clippy --all-targets -- -D warnings

section "cargo test --all-targets"
cargo test --all-targets

section "end-to-end tests"
missing=()
command -v node >/dev/null 2>&1 || missing+=("node")
[[ -x "$CHROMIUM" ]] || missing+=("$CHROMIUM")
if ((${#missing[@]})); then
  if is_ci; then
    echo "error: e2e prerequisites missing on CI: ${missing[*]}" >&2
    exit 1
  fi
  echo "skipping e2e tests: missing ${missing[*]} (install node and chromium to run them)"
  exit 0
fi

if [[ -z "${PORTCULLIS_BIN:-}" ]]; then
  echo "building portcullis (debug)"
  cargo build --bin portcullis
  PORTCULLIS_BIN="${CARGO_TARGET_DIR:-target}/debug/portcullis"
fi
export PORTCULLIS_BIN
PORTCULLIS_BIN="$(cd "$(dirname "$PORTCULLIS_BIN")" && pwd)/$(basename "$PORTCULLIS_BIN")"
export PORTCULLIS_CHROMIUM="$CHROMIUM"

if [[ ! -d tests/e2e/node_modules ]]; then
  echo "installing e2e dependencies"
  if [[ -f tests/e2e/package-lock.json ]]; then
    (cd tests/e2e && npm ci --no-audit --no-fund)
  else
    (cd tests/e2e && npm install --no-audit --no-fund)
  fi
fi

shopt -s nullglob
files=(tests/e2e/*.test.mjs)
if ((${#files[@]} == 0)); then
  echo "error: no e2e test files in tests/e2e" >&2
  exit 1
fi
node --test "${files[@]}"

# The Debian package, installed with dpkg: it changes the machine, so CI only (or opt in).
if is_ci || [[ "${PORTCULLIS_TEST_DEB:-}" == 1 ]]; then
  section "Debian package"
  tests/deb/run.sh
fi
