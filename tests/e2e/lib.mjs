// Shared helpers for Portcullis end-to-end tests (Node's built-in test runner).
//
// Contract with the server under test:
//   * `portcullis serve` reads PORTCULLIS_DATA_DIR, PORTCULLIS_BIND, PORTCULLIS_PUBLIC_URL, PORTCULLIS_LOG
//   * GET /health answers 200 {"status":"ok","version":"..."}
//   * with no admin yet, serve logs a line containing http://localhost:PORT/setup?token=...

import { spawn, spawnSync } from 'node:child_process';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import { chromium } from 'playwright-core';

export const E2E_DIR = path.dirname(fileURLToPath(import.meta.url));
export const REPO_ROOT = path.resolve(E2E_DIR, '..', '..');
export const SCREENSHOT_DIR = path.join(E2E_DIR, 'screenshots');
export const CHROMIUM_PATH = process.env.PORTCULLIS_CHROMIUM || '/usr/bin/chromium';

/** Absolute path of the portcullis binary under test. */
export function binPath() {
  return path.resolve(REPO_ROOT, process.env.PORTCULLIS_BIN || 'target/debug/portcullis');
}

/**
 * process.env without PORTCULLIS_* variables: the server rejects unknown PORTCULLIS_ settings,
 * and the harness's own (PORTCULLIS_BIN, PORTCULLIS_CHROMIUM, PORTCULLIS_E2E_*) are not settings.
 */
export function baseEnv() {
  return Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('PORTCULLIS_')));
}

// Every server we spawn, so a crashed test never leaves one running.
const children = new Set();
process.on('exit', () => {
  for (const child of children) {
    try { child.kill('SIGKILL'); } catch { /* already gone */ }
  }
});

/** A free TCP port on 127.0.0.1 (bind to :0, read the port, close). */
export function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close((err) => (err ? reject(err) : resolve(port)));
    });
  });
}

/**
 * Start `portcullis serve` on a fresh data dir and a free port, wait for /health.
 * Returns { url, port, dataDir, proc, logs(), setupUrl(), waitForLog(re), stop() }.
 * Options: env (extra env), dataDir (reuse an existing dir), args (default ['serve']),
 * timeoutMs (readiness timeout, default 15000), keepData (do not delete dataDir on stop).
 */
export async function startPortcullis({ env = {}, dataDir, args = ['serve'], timeoutMs = 15_000, keepData = false } = {}) {
  const ownDir = !dataDir;
  dataDir ??= await mkdtemp(path.join(os.tmpdir(), 'portcullis-e2e-'));
  const port = await freePort();
  const url = `http://localhost:${port}`;
  const healthUrl = `http://127.0.0.1:${port}/health`;

  const lines = [];
  const proc = spawn(binPath(), args, {
    env: {
      ...baseEnv(),
      PORTCULLIS_DATA_DIR: dataDir,
      PORTCULLIS_BIND: `127.0.0.1:${port}`,
      PORTCULLIS_PUBLIC_URL: url,
      PORTCULLIS_LOG: 'info',
      NO_COLOR: '1',
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.add(proc);

  const collect = (stream, tag) => {
    readline.createInterface({ input: stream }).on('line', (line) => {
      lines.push(line);
      if (process.env.PORTCULLIS_E2E_VERBOSE) process.stderr.write(`[portcullis:${port}:${tag}] ${line}\n`);
    });
  };
  collect(proc.stdout, 'out');
  collect(proc.stderr, 'err');

  let exited = null;
  const exitPromise = new Promise((resolve) => {
    proc.on('exit', (code, signal) => {
      exited = { code, signal };
      children.delete(proc);
      resolve(exited);
    });
    proc.on('error', (err) => {
      exited = { code: null, signal: null, error: err };
      children.delete(proc);
      resolve(exited);
    });
  });

  const logs = () => lines.join('\n');
  const server = {
    url,
    port,
    dataDir,
    proc,
    logs,
    setupUrl: () => setupUrlFromLogs(server),
    waitForLog: (re, ms = 5_000) => waitForLog(server, re, ms),
    async stop() {
      if (!exited) {
        proc.kill('SIGTERM');
        const timer = setTimeout(() => { if (!exited) proc.kill('SIGKILL'); }, 10_000);
        await exitPromise;
        clearTimeout(timer);
      }
      if (ownDir && !keepData && !process.env.PORTCULLIS_E2E_KEEP) {
        await rm(dataDir, { recursive: true, force: true });
      }
      return exited;
    },
  };

  // Poll /health every 50ms until 200, the process dies, or we time out.
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (exited) {
      if (ownDir && !keepData && !process.env.PORTCULLIS_E2E_KEEP) await rm(dataDir, { recursive: true, force: true });
      throw new Error(`portcullis exited before becoming healthy (${JSON.stringify(exited)}; bin ${binPath()})\n${logs()}`);
    }
    try {
      const res = await fetch(healthUrl, { signal: AbortSignal.timeout(1_000) });
      await res.arrayBuffer();
      if (res.status === 200) break;
    } catch { /* not listening yet */ }
    if (Date.now() > deadline) {
      await server.stop();
      throw new Error(`portcullis did not answer 200 on ${healthUrl} within ${timeoutMs}ms\n${logs()}`);
    }
    await sleep(50);
  }
  return server;
}

/** First `http://localhost:PORT/setup?token=...` URL found in the server's output, or null. */
export function setupUrlFromLogs(server) {
  const text = typeof server === 'string' ? server : server.logs();
  const port = typeof server === 'string' ? '\\d+' : String(server.port);
  const m = text.match(new RegExp(`http://localhost:${port}/setup\\?token=[A-Za-z0-9._~%+\\-]+`));
  return m ? m[0] : null;
}

/** Wait until a log line matches `re` (RegExp or string); returns the match. */
export async function waitForLog(server, re, timeoutMs = 5_000) {
  const rx = typeof re === 'string' ? new RegExp(re.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')) : re;
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const m = server.logs().match(rx);
    if (m) return m;
    if (Date.now() > deadline) throw new Error(`log line matching ${rx} not seen within ${timeoutMs}ms\n${server.logs()}`);
    await sleep(50);
  }
}

/** Run the CLI synchronously against `dataDir`. Returns { status, stdout, stderr }. */
export function cli(dataDir, args, { stdin, env = {}, timeoutMs = 30_000 } = {}) {
  const r = spawnSync(binPath(), args, {
    env: { ...baseEnv(), PORTCULLIS_DATA_DIR: dataDir, PORTCULLIS_LOG: 'warn', NO_COLOR: '1', ...env },
    input: stdin ?? '',
    encoding: 'utf8',
    timeout: timeoutMs,
  });
  if (r.error) throw r.error;
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** Launch the system Chromium headless through playwright-core. */
export async function launchBrowser(options = {}) {
  return chromium.launch({
    executablePath: CHROMIUM_PATH,
    headless: true,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-background-networking',
      '--disable-component-update',
      '--no-first-run',
      '--disable-sync',
      '--disable-quic',
    ],
    ...options,
  });
}

/** Full-page screenshot to tests/e2e/screenshots/NAME.png; returns the path. */
export async function screenshot(page, name) {
  await mkdir(SCREENSHOT_DIR, { recursive: true });
  const file = path.join(SCREENSHOT_DIR, `${name.replace(/\.png$/, '')}.png`);
  await page.screenshot({ path: file, fullPage: true });
  return file;
}

/**
 * Attach a CTAP2 platform authenticator (resident keys, user verification) to the page.
 * Presence simulation starts off: call setPresence(true) right before the action
 * that should produce a WebAuthn ceremony.
 */
export async function addVirtualAuthenticator(page) {
  const client = await page.context().newCDPSession(page);
  await client.send('WebAuthn.enable');
  const { authenticatorId } = await client.send('WebAuthn.addVirtualAuthenticator', {
    options: {
      protocol: 'ctap2',
      transport: 'internal',
      hasResidentKey: true,
      hasUserVerification: true,
      isUserVerified: true,
      automaticPresenceSimulation: false,
    },
  });
  return {
    client,
    authenticatorId,
    setPresence: (enabled) =>
      client.send('WebAuthn.setAutomaticPresenceSimulation', { authenticatorId, enabled: Boolean(enabled) }),
    credentials: async () => (await client.send('WebAuthn.getCredentials', { authenticatorId })).credentials,
  };
}
