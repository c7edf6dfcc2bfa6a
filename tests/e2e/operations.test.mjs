// The pages the operations work changed, in a real browser: the console's front page with the
// last scheduled backup (and its alert when one failed), and the page a standby shows.
// Screenshots at 390 px and 1280 px, light and dark, and axe-core on each.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { startPortcullis, launchBrowser, cli } from './lib.mjs';
import { addUser, fillLogin, newPage, assertAt, look } from './helpers.mjs';

const T = { timeout: 90_000 };

let server;
let browser;
let backups;

before(async () => {
  backups = await mkdtemp(path.join(os.tmpdir(), 'portcullis-backups-'));
  server = await startPortcullis({ env: { PORTCULLIS_BACKUP_DIR: backups, PORTCULLIS_BACKUP_INTERVAL: '1h' } });
  browser = await launchBrowser();
  addUser(server, { username: 'ada', name: 'Ada Admin', admin: true });
});

after(async () => {
  await browser?.close();
  await server?.stop();
  await rm(backups, { recursive: true, force: true });
});

test('the console shows the last scheduled backup', T, async () => {
  const page = await newPage(browser, server);
  await page.goto(`${server.url}/login?next=/admin`);
  await fillLogin(page, 'ada');
  await assertAt(page, '/admin');
  // The server's own scheduled run (its first comes a minute after start; a backup made by
  // hand does not count), as /health reports it.
  const deadline = Date.now() + 75_000;
  for (;;) {
    const health = await (await fetch(`${server.url}/health`)).json();
    if (health.backup?.ok === true) break;
    if (Date.now() > deadline) assert.fail(`no scheduled backup reported: ${JSON.stringify(health)}`);
    await new Promise((r) => setTimeout(r, 1000));
  }
  await look(page.context(), `${server.url}/admin`, 'admin-overview-backup', async (p) => {
    assert.match(await p.locator('dl.kv').innerText(), /Last backup\s+just now, into .*portcullis-backup-/);
  });
  await page.context().close();
});

test('a standby answers people with a clear page', T, async () => {
  const replica = await mkdtemp(path.join(os.tmpdir(), 'portcullis-standby-'));
  const r = cli(server.dataDir, ['backup', path.join(replica, 'b')], { env: { PORTCULLIS_PUBLIC_URL: server.url } });
  assert.equal(r.status, 0, r.stderr);
  const restored = path.join(replica, 'data');
  const rr = cli(restored, ['restore', path.join(replica, 'b')]);
  assert.equal(rr.status, 0, rr.stderr);
  const standby = await startPortcullis({ dataDir: restored, env: { PORTCULLIS_ROLE: 'standby' } });
  try {
    const context = await browser.newContext();
    await look(context, `${standby.url}/login`, 'standby', async (p) => {
      assert.equal(await p.locator('h1').innerText(), 'This is a standby server');
    });
    await context.close();
    const res = await fetch(`${standby.url}/login`);
    assert.equal(res.status, 503);
    assert.equal(res.headers.get('retry-after'), '30');
  } finally {
    await standby.stop();
    await rm(replica, { recursive: true, force: true });
  }
});
