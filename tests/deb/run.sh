#!/usr/bin/env bash
# The Debian package, installed for real: builds it with `cargo deb` around the binary
# ./test.sh built (PORTCULLIS_BIN's profile), installs it with dpkg on this machine, and
# checks the files, `portcullis --version`, the unit, and that the service's kind of user (no
# privileges, a private state directory) runs the server. It changes the system, so ./test.sh
# runs it on CI only (or with PORTCULLIS_TEST_DEB=1), as root.
set -euo pipefail
cd "$(dirname "$0")/../.."
say() { printf '[deb] %s\n' "$*"; }
fail() { printf '[deb] FAIL: %s\n' "$*" >&2; exit 1; }
[[ $(id -u) == 0 ]] || fail "must run as root (it installs a package)"
command -v dpkg >/dev/null || fail "needs dpkg"
command -v cargo-deb >/dev/null || fail "needs cargo-deb (cargo install cargo-deb)"

profile=${PORTCULLIS_DEB_PROFILE:-dev}
out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT
say "building the package (cargo deb, profile $profile)"
cargo deb --no-build --profile "$profile" --no-strip --output "$out/portcullis.deb" >/dev/null
# Read whole outputs before matching: under pipefail, `cmd | grep -q` fails when grep stops
# reading at its first match and cmd then dies of SIGPIPE (CI saw exactly that here).
info=$(dpkg-deb --info "$out/portcullis.deb") || fail "dpkg-deb could not read the package"
grep -q "Package: portcullis" <<<"$info" || fail "not a portcullis package"

say "installing it with dpkg"
dpkg -i "$out/portcullis.deb" >"$out/dpkg.log" 2>&1 || { cat "$out/dpkg.log"; fail "dpkg -i"; }
grep -q "systemctl enable --now portcullis" "$out/dpkg.log" || fail "postinst did not say how to start it"
grep -q "First run" "$out/dpkg.log" || fail "postinst did not say where the first-run link is"

for f in /usr/bin/portcullis /etc/portcullis/env /usr/share/doc/portcullis/INSTALL.md \
  /usr/share/doc/portcullis/config.example.toml; do
  [[ -e $f ]] || fail "$f is not installed"
done
unit=$(find /lib/systemd/system /usr/lib/systemd/system -name portcullis.service 2>/dev/null | head -1)
[[ -n $unit ]] || fail "no portcullis.service installed"
grep -q '^ExecStart=/usr/bin/portcullis serve$' "$unit" || fail "the unit does not start /usr/bin/portcullis"
grep -q '^DynamicUser=yes$' "$unit" && grep -q '^StateDirectory=portcullis$' "$unit" || fail "the unit is not the hardened one"
[[ $(stat -c %a /etc/portcullis/env) == 600 ]] || fail "/etc/portcullis/env must be 0600"
version=$(/usr/bin/portcullis --version)
[[ $version == "portcullis $(grep -m1 '^version' Cargo.toml | cut -d'"' -f2)" ]] || fail "--version says $version"
if command -v systemd-analyze >/dev/null; then
  systemd-analyze verify "$unit" >"$out/verify.log" 2>&1 || { cat "$out/verify.log"; fail "systemd-analyze verify"; }
fi

say "running the server as an unprivileged user on a private state directory"
state="$(mktemp -d)"
chown nobody:nogroup "$state"; chmod 0700 "$state"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
setpriv --reuid=nobody --regid=nogroup --clear-groups --no-new-privs \
  env -i PATH=/usr/bin:/bin PORTCULLIS_DATA_DIR="$state" PORTCULLIS_BIND="127.0.0.1:$port" \
  PORTCULLIS_PUBLIC_URL="http://127.0.0.1:$port" /usr/bin/portcullis serve >"$out/serve.log" 2>&1 &
pid=$!
for _ in $(seq 100); do
  curl -sf "http://127.0.0.1:$port/health" >/dev/null && break
  sleep 0.1
done
health=$(curl -sf "http://127.0.0.1:$port/health") || health=""
grep -q '"status":"ok"' <<<"$health" || { cat "$out/serve.log"; fail "the server did not answer"; }
grep -q "First run: create the administrator at" "$out/serve.log" || fail "no first-run link in the log"
kill -TERM "$pid"; wait "$pid" || true
[[ $(stat -c %U "$state/portcullis.db") == nobody ]] || fail "the database is not the service user's"
[[ $(stat -c %a "$state/master.key") == 600 ]] || fail "the master key is not private"
rm -rf "$state"

say "removing it again"
dpkg --purge portcullis >/dev/null
[[ ! -e /usr/bin/portcullis ]] || fail "dpkg --purge left /usr/bin/portcullis"
say "ok"
