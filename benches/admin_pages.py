#!/usr/bin/env python3
"""Admin console and admin API under a large installation (standard library only).

Generates 10,000 users (in 5 groups), 1,000 applications, 2,000 live sessions and 200,000
audit events straight into a fresh database (SQL in one transaction, after `portcullis
migrate` made the schema), starts the release binary on loopback, signs in as an
administrator, and times each console list page and API listing: 5 warm-up requests, then
`--runs` sequential requests each. The goal is under 100 ms per page. Run through
admin_pages.sh, which builds the binary.

The time reported per request is the server's own (`ms` in its JSON access log) and, beside
it, the client's total time on loopback (what `curl -w %{time_total}` shows).
"""

from __future__ import annotations

import argparse
import hashlib
import http.cookiejar
import json
import os
import re
import secrets
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from pathlib import Path

PASSWORD = "bench admin passphrase 7d1c"
GOAL_MS = 100.0


def log(*a):
    print("[admin-bench]", *a, file=sys.stderr, flush=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def env_for(data: Path, port: int) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PORTCULLIS_")}
    env.update(
        PORTCULLIS_DATA_DIR=str(data),
        PORTCULLIS_BIND=f"127.0.0.1:{port}",
        PORTCULLIS_PUBLIC_URL=f"http://127.0.0.1:{port}",
        PORTCULLIS_LOG="info",
        PORTCULLIS_LOG_FORMAT="json",
    )
    return env


def generate(db: Path, users: int, clients: int, sessions: int, events: int) -> dict:
    """Inserts the data set in one transaction; returns ids the probes use."""
    now = int(time.time())
    con = sqlite3.connect(db)
    con.execute("PRAGMA foreign_keys = ON")
    cur = con.cursor()
    cur.execute("BEGIN")
    groups = ["family", "friends", "grafana-editors", "media", "guests"]
    gids = {}
    for g in groups:
        gid = secrets.token_hex(16)
        gids[g] = gid
        cur.execute(
            "INSERT INTO groups (id, name, description, created_at) VALUES (?, ?, ?, ?)",
            (gid, g, f"The {g} group", now),
        )
    uids = []
    rows, members = [], []
    for i in range(users):
        uid = secrets.token_hex(16)
        uids.append(uid)
        name = f"user{i:05d}"
        rows.append(
            (uid, name, f"{name}@example.test", 1, f"User {i:05d}", None, "{}", now - i, now - i)
        )
        members.append((gids[groups[i % len(groups)]], uid))
        if i % 4 == 0:
            members.append((gids["family"], uid))  # family: 4,000 members
    cur.executemany(
        "INSERT INTO users (id, username, email, email_verified, display_name, password_hash, claims,"
        " created_at, updated_at) VALUES (?,?,?,?,?,?,?,?,?)",
        rows,
    )
    cur.executemany("INSERT OR IGNORE INTO group_members (group_id, user_id) VALUES (?, ?)", members)
    cids = []
    secret_hash = hashlib.sha256(b"not a real secret").hexdigest()
    for i in range(clients):
        cid = secrets.token_hex(16)
        cids.append(cid)
        cur.execute(
            "INSERT INTO clients (id, name, secret_hash, public, created_at, updated_at) VALUES (?,?,?,0,?,?)",
            (cid, f"App {i:04d}", secret_hash, now, now),
        )
        cur.executemany(
            "INSERT INTO client_redirect_uris (client_id, kind, uri, position) VALUES (?,?,?,?)",
            [
                (cid, "login", f"https://app{i:04d}.example.test/callback", 0),
                (cid, "login", f"app{i:04d}.native:///oauth-callback", 1),
            ],
        )
        if i % 10 == 0:
            cur.execute(
                "INSERT INTO client_allowed_groups (client_id, group_id) VALUES (?, ?)",
                (cid, gids["family"]),
            )
    cur.executemany(
        "INSERT INTO sessions (id_hash, sid, user_id, auth_time, amr, user_agent, ip, created_at,"
        " last_seen_at, expires_at) VALUES (?,?,?,?,?,?,?,?,?,?)",
        [
            (
                hashlib.sha256(secrets.token_bytes(32)).hexdigest(),
                secrets.token_hex(16),
                uids[(i * 7) % users],
                now - 600,
                '["pwd"]',
                "Mozilla/5.0 (X11; Linux x86_64) Firefox/128.0",
                f"192.168.{i // 250}.{i % 250}",
                now - 600,
                now - (i % 3000),
                now + 86400,
            )
            for i in range(sessions)
        ],
    )
    kinds = ["login.succeeded", "login.succeeded", "login.succeeded", "consent.granted",
             "token.revoked", "login.failed", "session.ended", "user.updated"]
    batch = []
    for i in range(events):
        u = uids[(i * 13) % users]
        kind = kinds[i % len(kinds)]
        batch.append(
            (
                now - (events - i) * 60,  # one a minute, oldest first
                kind,
                u,
                u,
                cids[i % clients] if kind in ("consent.granted", "token.revoked") else None,
                "192.168.1.10",
                '{"amr":"pwd"}' if kind == "login.succeeded" else "{}",
            )
        )
        if len(batch) == 10_000:
            cur.executemany(
                "INSERT INTO audit_events (at, kind, actor_id, user_id, client_id, ip, detail) VALUES (?,?,?,?,?,?,?)",
                batch,
            )
            batch.clear()
    if batch:
        cur.executemany(
            "INSERT INTO audit_events (at, kind, actor_id, user_id, client_id, ip, detail) VALUES (?,?,?,?,?,?,?)",
            batch,
        )
    con.commit()
    # No ANALYZE: a real installation has no planner statistics unless someone runs it.
    con.close()
    return {"user": uids[5000], "user_name": "user05000", "client": cids[500], "group": gids["family"]}


def wait_health(url: str, proc: subprocess.Popen, timeout=30.0):
    t0 = time.time()
    while time.time() - t0 < timeout:
        if proc.poll() is not None:
            raise SystemExit(f"server exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(url + "/health", timeout=1) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.1)
    raise SystemExit("server did not answer /health")


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *a, **kw):
        return None


def sign_in(base: str) -> urllib.request.OpenerDirector:
    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar), NoRedirect())
    page = opener.open(base + "/login").read().decode()
    csrf = re.search(r'name="csrf" value="([^"]+)"', page).group(1)
    form = urllib.parse.urlencode(
        {"csrf": csrf, "req": "", "next": "/admin", "username": "admin", "password": PASSWORD}
    ).encode()
    try:
        opener.open(base + "/login", data=form)
    except urllib.error.HTTPError as e:
        if e.code != 303:
            raise
    return opener


def time_get(opener, url: str, headers=None) -> tuple[int, float, int]:
    req = urllib.request.Request(url, headers=headers or {})
    t0 = time.perf_counter()
    try:
        with opener.open(req) as r:
            body = r.read()
            status = r.status
    except urllib.error.HTTPError as e:
        body, status = e.read(), e.code
    return status, (time.perf_counter() - t0) * 1000, len(body)


def server_ms(log_path: Path, start: int) -> dict[str, list[float]]:
    """`ms` per path+query from the JSON access log written since byte `start`."""
    out: dict[str, list[float]] = {}
    with open(log_path, "rb") as f:
        f.seek(start)
        for line in f:
            try:
                rec = json.loads(line)
            except ValueError:
                continue
            fields = rec.get("fields", {})
            if fields.get("message") != "served":
                continue
            span = rec.get("span", {})
            out.setdefault(span.get("id", ""), []).append(float(fields.get("ms", 0)))
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", required=True)
    ap.add_argument("--runs", type=int, default=30)
    ap.add_argument("--users", type=int, default=10_000)
    ap.add_argument("--clients", type=int, default=1_000)
    ap.add_argument("--sessions", type=int, default=2_000)
    ap.add_argument("--events", type=int, default=200_000)
    ap.add_argument("--out", default=None, help="write the Markdown report here too")
    a = ap.parse_args()
    binary = Path(a.bin)
    work = Path(tempfile.mkdtemp(prefix="pc-admin-bench-"))
    data = work / "data"
    port = free_port()
    env = env_for(data, port)
    base = f"http://127.0.0.1:{port}"
    subprocess.run([binary, "migrate"], env=env, check=True, capture_output=True)
    subprocess.run(
        [binary, "user", "add", "--username", "admin", "--admin", "--password-stdin"],
        env=env, input=PASSWORD + "\n", text=True, check=True, capture_output=True,
    )
    key = subprocess.run(
        [binary, "apikey", "create", "--name", "bench"], env=env, text=True, check=True, capture_output=True
    ).stdout.strip()
    t0 = time.time()
    ids = generate(data / "portcullis.db", a.users, a.clients, a.sessions, a.events)
    log(f"generated {a.users} users, {a.clients} clients, {a.sessions} sessions, {a.events} audit events in {time.time() - t0:.1f} s")
    log_path = work / "server.log"
    with open(log_path, "wb") as logf:
        proc = subprocess.Popen([binary, "serve"], env=env, stdout=logf, stderr=logf)
    try:
        wait_health(base, proc)
        opener = sign_in(base)
        plain = urllib.request.build_opener(NoRedirect())
        bearer = {"Authorization": f"Bearer {key}", "Accept": "application/json"}
        console = [
            ("Overview", "/admin"),
            ("Users, page 1", "/admin/users"),
            ("Users, page 100 of 201", "/admin/users?page=100"),
            ("Users, last page", "/admin/users?page=201"),
            ("Users, search", "/admin/users?q=user0499"),
            ("A user", f"/admin/users/{ids['user']}"),
            ("Groups", "/admin/groups"),
            ("A group (4,000 members), page 1", f"/admin/groups/{ids['group']}"),
            ("Applications, page 1", "/admin/apps"),
            ("Applications, page 20 of 20", "/admin/apps?page=20"),
            ("Applications, search", "/admin/apps?q=App%2005"),
            ("An application", f"/admin/apps/{ids['client']}"),
            ("An application's settings", f"/admin/apps/{ids['client']}/edit"),
            ("Signing keys", "/admin/keys"),
            ("Sessions, page 1", "/admin/sessions"),
            ("Audit log, newest", "/admin/audit"),
            ("Audit log, one user", f"/admin/audit?user={ids['user_name']}"),
            ("Audit log, one application", f"/admin/audit?app={ids['client']}"),
            ("Audit log, kind user.* (25,000 events)", "/admin/audit?kind=user"),
            ("Audit log, kind login.* (100,000 events)", "/admin/audit?kind=login"),
            ("Audit log, one day", "/admin/audit?from=2020-01-01&to=2020-01-01"),
            ("API keys", "/admin/api-keys"),
        ]
        api = [
            ("GET /admin/api/users", "/admin/api/users"),
            ("GET /admin/api/users?limit=500", "/admin/api/users?limit=500"),
            ("GET /admin/api/users?q=…", "/admin/api/users?q=user0499"),
            ("GET /admin/api/users/{id}", f"/admin/api/users/{ids['user']}"),
            ("GET /admin/api/clients", "/admin/api/clients"),
            ("GET /admin/api/clients?limit=500", "/admin/api/clients?limit=500"),
            ("GET /admin/api/groups", "/admin/api/groups"),
            ("GET /admin/api/groups/{id}/members", f"/admin/api/groups/{ids['group']}/members"),
            ("GET /admin/api/sessions", "/admin/api/sessions"),
            ("GET /admin/api/audit", "/admin/api/audit"),
            ("GET /admin/api/audit?user=…", f"/admin/api/audit?user={ids['user_name']}"),
            ("GET /admin/api/keys", "/admin/api/keys"),
        ]
        results = []
        for group, items, op, headers in (
            ("Console", console, opener, {}),
            ("API", api, plain, bearer),
        ):
            for label, path in items:
                statuses = set()
                for _ in range(5):
                    time_get(op, base + path, headers)
                start = log_path.stat().st_size
                client = []
                rid_prefix = f"bench{len(results):03d}x"
                for n in range(a.runs):
                    h = dict(headers)
                    h["X-Request-Id"] = f"{rid_prefix}{n:04d}"
                    status, ms, size = time_get(op, base + path, h)
                    statuses.add(status)
                    client.append(ms)
                time.sleep(0.05)
                served = server_ms(log_path, start)
                srv = [v for k, vs in served.items() if k.startswith(rid_prefix) for v in vs]
                results.append(
                    {
                        "group": group,
                        "label": label,
                        "path": path,
                        "status": sorted(statuses),
                        "bytes": size,
                        "client_median": statistics.median(client),
                        "client_p95": sorted(client)[int(0.95 * (len(client) - 1))],
                        "client_max": max(client),
                        "server_median": statistics.median(srv) if srv else None,
                        "server_max": max(srv) if srv else None,
                    }
                )
                r = results[-1]
                log(f"{label:<40} {r['status']} median {r['client_median']:.1f} ms, p95 {r['client_p95']:.1f}, max {r['client_max']:.1f}")
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    rev = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
    lines = [
        f"Measured {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} on commit `{rev or '?'}` (+ working tree) with `benches/admin_pages.sh`,",
        f"{os.cpu_count()} cores ({cpu}), release binary, loopback, one request at a time, {a.runs} timed requests each after 5 warm-up.",
        f"Data: {a.users:,} users in 5 groups, {a.clients:,} applications (2 redirect URIs each), {a.sessions:,} live sessions, {a.events:,} audit events.",
        "",
        "| Page | Status | Size | Server median | Server max | Client median | Client p95 | Client max | < 100 ms |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    worst = 0.0
    for r in results:
        worst = max(worst, r["client_p95"])
        ok = "yes" if r["client_p95"] < GOAL_MS and r["status"] == [200] else "NO"
        sm = "-" if r["server_median"] is None else f"{r['server_median']:.0f} ms"
        sx = "-" if r["server_max"] is None else f"{r['server_max']:.0f} ms"
        lines.append(
            f"| {r['group']}: {r['label']} | {','.join(map(str, r['status']))} | {r['bytes'] / 1024:.0f} KiB | {sm} | {sx} | "
            f"{r['client_median']:.1f} ms | {r['client_p95']:.1f} ms | {r['client_max']:.1f} ms | {ok} |"
        )
    lines += ["", f"Slowest p95: {worst:.1f} ms (goal: under {GOAL_MS:.0f} ms). Server times are whole milliseconds from the access log."]
    report = "\n".join(lines)
    print(report)
    if a.out:
        Path(a.out).write_text(report + "\n")
    subprocess.run(["rm", "-rf", str(work)])


if __name__ == "__main__":
    main()
