// OIDC/browser helpers shared by oidc.test.mjs, pages.test.mjs and logout.test.mjs.
// (Not a test file: node --test only runs *.test.mjs.)

import http from 'node:http';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { setTimeout as sleep } from 'node:timers/promises';
import { cli, screenshot } from './lib.mjs';

const AXE = createRequire(import.meta.url).resolve('axe-core/axe.min.js');
const PHONE = { viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true, deviceScaleFactor: 2 };
const DESKTOP = { viewport: { width: 1280, height: 900 } };

export const PASSWORD = 'correct horse battery staple';

/** Run a CLI command against the server's data dir with --json and parse stdout. */
export function cliJson(server, args, opts = {}) {
  const r = cli(server.dataDir, [...args, '--json'], {
    ...opts,
    env: { PORTCULLIS_PUBLIC_URL: server.url, ...(opts.env ?? {}) },
  });
  assert.equal(r.status, 0, `portcullis ${args.join(' ')} failed (${r.status}):\n${r.stderr}\n${r.stdout}`);
  return JSON.parse(r.stdout);
}

/** `portcullis user add`; returns the CLI's JSON ({ id, username, ... }). */
export function addUser(server, { username, email = `${username}@example.com`, name, groups = [], admin = false, password = PASSWORD }) {
  const args = ['user', 'add', '--username', username, '--email', email, '--password-stdin'];
  if (name) args.push('--name', name);
  for (const g of groups) args.push('--group', g);
  if (admin) args.push('--admin');
  return cliJson(server, args, { stdin: `${password}\n` });
}

/** `portcullis client add`; returns the CLI's JSON ({ client_id, client_secret, ... }). */
export function addClient(server, { name, redirectUris, postLogoutRedirectUris = [], isPublic = false, skipConsent = false, backchannelLogoutUri, signingAlg, authMethod, allowedGroups = [] }) {
  const args = ['client', 'add', '--name', name];
  for (const u of [].concat(redirectUris)) args.push('--redirect-uri', u);
  for (const u of postLogoutRedirectUris) args.push('--post-logout-redirect-uri', u);
  if (isPublic) args.push('--public');
  if (skipConsent) args.push('--skip-consent');
  if (backchannelLogoutUri) args.push('--backchannel-logout-uri', backchannelLogoutUri);
  if (signingAlg) args.push('--signing-alg', signingAlg);
  if (authMethod) args.push('--auth-method', authMethod);
  for (const g of allowedGroups) args.push('--allowed-group', g);
  return cliJson(server, args);
}

/**
 * A tiny relying party on 127.0.0.1:0: records every request (method, path, query, headers,
 * raw body) and answers 200 with a short HTML page. `url` is its origin.
 */
export async function startRp() {
  const requests = [];
  const srv = http.createServer((req, res) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      const u = new URL(req.url, 'http://127.0.0.1');
      requests.push({ method: req.method, path: u.pathname, query: u.searchParams, url: req.url, headers: req.headers, body: Buffer.concat(chunks).toString('utf8') });
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' });
      res.end(`<!doctype html><title>RP</title><h1>RP ${req.method} ${u.pathname}</h1>`);
    });
  });
  srv.keepAliveTimeout = 500;
  await new Promise((resolve) => srv.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${srv.address().port}`;
  return {
    url,
    requests,
    /** Wait until `count` requests match `pred`; returns them. */
    async waitFor(pred, { count = 1, timeoutMs = 10_000 } = {}) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const hits = requests.filter(pred);
        if (hits.length >= count) return hits;
        if (Date.now() > deadline) {
          throw new Error(`RP: expected ${count} matching request(s) within ${timeoutMs}ms, saw ${hits.length}; all: ${JSON.stringify(requests.map((r) => `${r.method} ${r.url}`))}`);
        }
        await sleep(50);
      }
    },
    close() {
      srv.closeAllConnections?.();
      return new Promise((resolve) => srv.close(() => resolve()));
    },
  };
}

/** Click something that submits a form or follows a link; resolves once the next document has loaded. */
export async function clickAndWait(page, locator, { timeout = 10_000 } = {}) {
  const committed = page.waitForEvent('framenavigated', { predicate: (f) => f === page.mainFrame(), timeout });
  await locator.click();
  await committed;
  await page.waitForLoadState('load');
}

/** Fill the login form (labels "Username or email", "Password") and press "Sign in". */
export async function fillLogin(page, username, password = PASSWORD) {
  await page.getByLabel('Username or email').fill(username);
  await page.getByLabel('Password', { exact: true }).fill(password);
  await clickAndWait(page, page.getByRole('button', { name: 'Sign in', exact: true }));
}

/**
 * Open `authUrl` in `page` and drive login and consent until the browser lands on
 * `redirectUri`. Returns the callback URL (string). Throws with the page text on anything else.
 */
export async function authorizeInBrowser(page, authUrl, redirectUri, { username, password = PASSWORD, consent = 'allow' } = {}) {
  await page.goto(authUrl);
  for (let step = 0; step < 6; step++) {
    await page.waitForLoadState('load');
    const here = page.url();
    if (here.startsWith(redirectUri)) return here;
    const path = new URL(here).pathname;
    const hasForm = async (label) => (await page.getByLabel(label).count()) > 0;
    if (path === '/login' && (await hasForm('Username or email'))) {
      assert.ok(username, `sign-in required but no username given (at ${here})`);
      await fillLogin(page, username, password);
    } else if (path === '/consent' && (await page.getByRole('button', { name: 'Allow', exact: true }).count()) > 0) {
      const name = consent === 'allow' ? 'Allow' : 'Deny';
      await clickAndWait(page, page.getByRole('button', { name, exact: true }));
    } else {
      const text = (await page.textContent('body').catch(() => ''))?.replace(/\s+/g, ' ').trim();
      throw new Error(`unexpected page during authorization: ${here}\n${text}`);
    }
  }
  throw new Error(`authorization did not reach ${redirectUri}; stuck at ${page.url()}`);
}

/** Decode a JWT's header and payload without verifying. */
export function decodeJwt(jwt) {
  const [h, p] = jwt.split('.');
  const dec = (s) => JSON.parse(Buffer.from(s, 'base64url').toString('utf8'));
  return { header: dec(h), payload: dec(p) };
}

/** POST a form with fetch; returns { status, headers, json } (json null when not JSON). */
export async function postForm(url, params, { headers = {} } = {}) {
  const res = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json', ...headers },
    body: new URLSearchParams(params).toString(),
    redirect: 'manual',
    signal: AbortSignal.timeout(10_000),
  });
  const text = await res.text();
  let json = null;
  try { json = JSON.parse(text); } catch { /* not JSON */ }
  return { status: res.status, headers: res.headers, json, text };
}

export function basicAuth(id, secret) {
  const enc = (s) => encodeURIComponent(s);
  return `Basic ${Buffer.from(`${enc(id)}:${enc(secret)}`).toString('base64')}`;
}

/** A new browser context (and its first page). */
export async function newPage(browser, server, contextOptions = {}) {
  const context = await browser.newContext(contextOptions);
  const page = await context.newPage();
  page.setDefaultTimeout(5_000);
  return page;
}

/** Assert the page is at `where` (a path on the issuer, or an absolute URL prefix); the message shows the page text. */
export async function assertAt(page, where) {
  const here = page.url();
  const ok = where.startsWith('http') ? here.startsWith(where) : new URL(here).pathname === where;
  if (!ok) {
    const text = (await page.locator('body').innerText().catch(() => '')).replace(/\s+/g, ' ').trim();
    assert.fail(`expected to be at ${where}, but at ${here}: ${text.slice(0, 400)}`);
  }
}

/** axe-core's serious and critical violations on the page, as `id: help (targets)` lines.
 * Evaluated through the DevTools protocol: the page's CSP (script-src 'self') stays on. */
export async function axe(page) {
  await page.evaluate(await readFile(AXE, 'utf8'));
  const result = await page.evaluate(async () => await window.axe.run(document, { resultTypes: ['violations'] }));
  return result.violations
    .filter((v) => ['serious', 'critical'].includes(v.impact))
    .map((v) => `${v.id}: ${v.help} (${v.nodes.map((n) => n.target.join(' ')).join(', ')})`);
}

/** How many pixels the page is wider than its viewport (0: no sideways scrolling). */
export async function sideScroll(page) {
  return page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
}

/** Opens `url` at 390 px and 1280 px, light and dark: runs `check(page)`, takes a screenshot
 * named `name-phone[-dark]` / `name-desktop[-dark]`, and fails on axe-core's serious or
 * critical findings or on a page wider than the screen. */
export async function look(context, url, name, check = async () => {}) {
  for (const [size, options] of [['phone', PHONE], ['desktop', DESKTOP]]) {
    const page = await context.newPage();
    await page.setViewportSize(options.viewport);
    for (const scheme of ['light', 'dark']) {
      await page.emulateMedia({ colorScheme: scheme, reducedMotion: 'reduce' });
      await page.goto(url);
      await check(page);
      await screenshot(page, `${name}-${size}${scheme === 'dark' ? '-dark' : ''}`);
      assert.deepEqual(await axe(page), [], `${name} ${size} ${scheme}`);
      assert.equal(await sideScroll(page), 0, `${name} ${size} ${scheme}: wider than the screen`);
    }
    await page.close();
  }
}

export { PHONE, DESKTOP };
