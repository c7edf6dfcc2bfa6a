// Smoke test: the server starts, /health answers, and the first-run setup page renders.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { startPortcullis, launchBrowser, screenshot, waitForLog, setupUrlFromLogs } from './lib.mjs';

let server;
let browser;
after(async () => {
  await browser?.close();
  await server?.stop();
});

test('health endpoint and setup page', async () => {
  server = await startPortcullis();

  const res = await fetch(`${server.url}/health`);
  assert.equal(res.status, 200);
  assert.match(res.headers.get('content-type') ?? '', /application\/json/);
  const body = await res.json();
  assert.equal(body.status, 'ok');
  assert.equal(typeof body.version, 'string');

  // With no admin yet, serve logs a one-time setup URL.
  await waitForLog(server, new RegExp(`http://localhost:${server.port}/setup\\?token=`), 10_000);
  const setupUrl = setupUrlFromLogs(server);
  assert.ok(setupUrl, `no setup URL in logs:\n${server.logs()}`);

  browser = await launchBrowser();
  const page = await browser.newPage();
  const nav = await page.goto(setupUrl);
  assert.equal(nav?.status(), 200);
  await screenshot(page, 'setup');
});
