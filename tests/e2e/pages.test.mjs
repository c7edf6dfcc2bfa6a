// A real-browser journey through every page a person sees, with screenshots (light, dark and
// a phone viewport) in tests/e2e/screenshots/.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startPortcullis, launchBrowser, screenshot, waitForLog, setupUrlFromLogs } from './lib.mjs';
import { PASSWORD, addUser, addClient, startRp, fillLogin, authorizeInBrowser, postForm, newPage, clickAndWait, assertAt } from './helpers.mjs';

const T = { timeout: 60_000 };
const PHONE = { viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true, deviceScaleFactor: 2 };
const APP = 'Photo Gallery';

let server;
let rp;
let browser;
let page; // alice's browser
let app;
let redirectUri;
let postLogoutUri;

before(async () => {
  server = await startPortcullis();
  rp = await startRp();
  redirectUri = `${rp.url}/cb`;
  postLogoutUri = `${rp.url}/bye`;
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await rp?.close();
  await server?.stop();
});

/** Screenshot in light, then dark (NAME-dark.png), and back to light. */
async function shots(p, name) {
  // reducedMotion: the stylesheet drops transitions then, so a scheme switch is not caught mid-fade.
  const settle = () => p.evaluate(() => new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r))));
  await p.emulateMedia({ colorScheme: 'light', reducedMotion: 'reduce' });
  await settle();
  await screenshot(p, name);
  await p.emulateMedia({ colorScheme: 'dark', reducedMotion: 'reduce' });
  await settle();
  await screenshot(p, `${name}-dark`);
  await p.emulateMedia({ colorScheme: 'light', reducedMotion: 'reduce' });
}

function authorizeUrl(extra = {}) {
  const u = new URL(`${server.url}/authorize`);
  u.search = new URLSearchParams({
    response_type: 'code',
    client_id: app.client_id,
    redirect_uri: redirectUri,
    scope: 'openid profile email',
    state: 'st',
    nonce: 'nn',
    // S256 of the RFC 7636 appendix B verifier
    code_challenge: 'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM',
    code_challenge_method: 'S256',
    ...extra,
  }).toString();
  return u.href;
}
const VERIFIER = 'dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk';

const heading = (p) => p.locator('h1').first().innerText();

test('first-run setup page creates the administrator', T, async () => {
  await waitForLog(server, new RegExp(`http://localhost:${server.port}/setup\\?token=`), 10_000);
  const setupUrl = setupUrlFromLogs(server);
  const p = await newPage(browser, server);
  const nav = await p.goto(setupUrl);
  assert.equal(nav.status(), 200);
  assert.match(await heading(p), /Welcome to Portcullis/);
  await shots(p, 'setup');
  await p.getByLabel('Username').fill('admin');
  await p.getByLabel('Email').fill('admin@example.com');
  await p.getByLabel(/Your name/).fill('Ada Admin');
  await p.getByLabel('Password').fill(PASSWORD);
  await clickAndWait(p, p.getByRole('button', { name: 'Create administrator', exact: true }));
  await assertAt(p, '/account');
  assert.equal(await heading(p), 'Your account');
  await assert.doesNotReject(p.getByRole('link', { name: 'Admin', exact: true }).waitFor(), 'admin link in the top bar');
  await screenshot(p, 'account-admin');
  // The setup link is single-use.
  const again = await fetch(setupUrl, { redirect: 'manual' });
  await again.arrayBuffer();
  assert.notEqual(again.status, 200, 'setup page must not render once an administrator exists');
  await p.context().close();
});

test("an app's sign-in page: title, focus order, wrong password, phone", T, async () => {
  addUser(server, { username: 'alice', email: 'alice@example.com', name: 'Alice Example' });
  app = addClient(server, { name: APP, redirectUris: [redirectUri], postLogoutRedirectUris: [postLogoutUri] });
  page = await newPage(browser, server);
  await page.goto(authorizeUrl());
  assert.equal(new URL(page.url()).pathname, '/login');
  assert.equal((await heading(page)).replace(/\s+/g, ' '), `Sign in to ${APP}`);
  assert.match(await page.title(), new RegExp(`Sign in to ${APP}`));
  await shots(page, 'login');

  // Focus basics: the first focusable input has a visible label and has focus on load;
  // Tab walks username → password → Sign in.
  const first = await page.evaluate(() => {
    const el = [...document.querySelectorAll('input, select, textarea')].find((e) => e.type !== 'hidden' && !e.disabled);
    const label = el?.labels?.[0];
    const r = label?.getBoundingClientRect();
    const cs = label && getComputedStyle(label);
    return {
      id: el?.id,
      focused: document.activeElement === el,
      label: label?.innerText,
      labelVisible: Boolean(r && r.width > 0 && r.height > 0 && cs.visibility !== 'hidden' && cs.display !== 'none' && Number(cs.opacity) > 0),
    };
  });
  assert.equal(first.id, 'username');
  assert.equal(first.label, 'Username or email');
  assert.ok(first.labelVisible, 'the first input has a visible <label>');
  assert.ok(first.focused, 'the first input is focused on load (autofocus)');
  await page.keyboard.press('Tab');
  assert.equal(await page.evaluate(() => document.activeElement?.id), 'password');
  await page.keyboard.press('Tab');
  assert.equal(await page.evaluate(() => document.activeElement?.textContent?.trim()), 'Sign in');
  // Keyboard focus is visible on the button (some outline or box-shadow).
  const ring = await page.evaluate(() => {
    const cs = getComputedStyle(document.activeElement);
    return { outline: cs.outlineStyle !== 'none' && parseFloat(cs.outlineWidth) > 0, shadow: cs.boxShadow !== 'none' };
  });
  assert.ok(ring.outline || ring.shadow, `focused button shows a focus ring (${JSON.stringify(ring)})`);

  // Wrong password
  await fillLogin(page, 'alice', 'not the right password at all');
  assert.equal(new URL(page.url()).pathname, '/login');
  await assert.doesNotReject(page.getByText('The username or password is incorrect.').waitFor());
  assert.equal(await page.getByRole('alert').innerText(), 'The username or password is incorrect.');
  assert.equal(await page.getByLabel('Username or email').inputValue(), 'alice', 'username kept after a failed attempt');
  assert.equal(await page.getByLabel('Password', { exact: true }).inputValue(), '', 'password not echoed back');
  await shots(page, 'login-error');

  // Phone viewport
  const phone = await newPage(browser, server, PHONE);
  await phone.goto(authorizeUrl());
  assert.equal(new URL(phone.url()).pathname, '/login');
  await shots(phone, 'login-phone');
  const overflow = await phone.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
  assert.ok(overflow <= 0, `no horizontal scrolling on a phone (overflow ${overflow}px)`);
  const btn = await phone.getByRole('button', { name: 'Sign in', exact: true }).boundingBox();
  assert.ok(btn.height >= 40, `Sign in button is a comfortable touch target (${btn.height}px high)`);
  await phone.context().close();
});

test('consent lists scopes in words; Deny returns access_denied; Allow leads back to the app', T, async () => {
  await fillLogin(page, 'alice');
  await assertAt(page, '/consent');
  assert.match((await heading(page)).replace(/\s+/g, ' '), new RegExp(`${APP} wants to use your Portcullis account`));
  const scopes = await page.locator('ul.scopes li').allInnerTexts();
  assert.ok(scopes.some((s) => /your email address/i.test(s)), `scopes in words: ${JSON.stringify(scopes)}`);
  assert.ok(!scopes.some((s) => /^(openid|profile|email)$/.test(s.trim())), `no raw scope names: ${JSON.stringify(scopes)}`);
  await shots(page, 'consent');

  await clickAndWait(page, page.getByRole('button', { name: 'Deny', exact: true }));
  await assertAt(page, redirectUri);
  const denied = new URL(page.url());
  assert.equal(denied.searchParams.get('error'), 'access_denied');
  assert.equal(denied.searchParams.get('state'), 'st');
  assert.equal(denied.searchParams.get('code'), null);

  const cb = new URL(await authorizeInBrowser(page, authorizeUrl({ state: 'st2' }), redirectUri, { username: 'alice' }));
  assert.ok(cb.searchParams.get('code'));
  assert.equal(cb.searchParams.get('state'), 'st2');
});

test('account page lists the app; Remove access works', T, async () => {
  await page.goto(`${server.url}/account`);
  assert.equal(await heading(page), 'Your account');
  const apps = page.locator('section', { has: page.getByRole('heading', { name: 'Apps you allowed' }) });
  await assert.doesNotReject(apps.getByRole('cell', { name: APP, exact: true }).waitFor());
  await shots(page, 'account');
  const phone = await newPage(browser, server, PHONE);
  await phone.context().addCookies(await page.context().cookies());
  await phone.goto(`${server.url}/account`);
  assert.equal(await heading(phone), 'Your account');
  await shots(phone, 'account-phone');
  const overflow = await phone.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
  await phone.context().close();

  await clickAndWait(page, apps.getByRole('button', { name: 'Remove access' }));
  await assertAt(page, '/account');
  await assert.doesNotReject(apps.getByText('You have not allowed any app yet').waitFor());
  assert.equal(await apps.getByRole('cell', { name: APP, exact: true }).count(), 0);
  await screenshot(page, 'account-app-removed');
  // Consent is asked again next time.
  await page.goto(authorizeUrl());
  assert.equal(new URL(page.url()).pathname, '/consent');
  // Checked last so that a layout problem does not hide the behaviour above.
  assert.ok(overflow <= 0, `account page has no horizontal page scroll on a phone (overflow ${overflow}px)`);
});

test('redirect_uri mismatch shows an error page, no redirect', T, async () => {
  const callbacks = () => rp.requests.filter((r) => r.path.startsWith('/cb')).length;
  const seen = callbacks();
  const nav = await page.goto(authorizeUrl({ redirect_uri: `${rp.url}/elsewhere` }));
  assert.equal(nav.status(), 400);
  assert.equal(new URL(page.url()).origin, server.url);
  const text = await page.locator('main').innerText();
  assert.match(text, /Reference:/);
  await shots(page, 'error-redirect-mismatch');
  assert.equal(callbacks(), seen, 'the browser never reached the RP');
});

test('sign-out from the account page', T, async () => {
  await page.goto(`${server.url}/account`);
  await clickAndWait(page, page.locator('form[action="/signout"]').getByRole('button', { name: 'Sign out' }));
  await page.waitForLoadState('load');
  // Either the signed-out page or the sign-in page with a notice.
  if (new URL(page.url()).pathname === '/login') {
    await assert.doesNotReject(page.getByRole('status').waitFor());
  } else {
    assert.equal(await heading(page), 'You are signed out');
  }
  await shots(page, 'account-signed-out');
  await page.goto(`${server.url}/account`);
  assert.equal(new URL(page.url()).pathname, '/login', '/account needs a session again');
});

test('RP-initiated logout without id_token_hint asks first', T, async () => {
  await authorizeInBrowser(page, authorizeUrl(), redirectUri, { username: 'alice' });
  await page.goto(`${server.url}/logout?${new URLSearchParams({ client_id: app.client_id, post_logout_redirect_uri: postLogoutUri, state: 'bye1' })}`);
  assert.equal(await heading(page), 'Sign out of all apps?');
  assert.match(await page.locator('main').innerText(), new RegExp(`${APP} asked to sign you out`));
  await shots(page, 'logout-confirm');
  // "Stay signed in" keeps the session.
  await clickAndWait(page, page.getByRole('link', { name: 'Stay signed in' }));
  await assertAt(page, '/account');
  assert.equal(await heading(page), 'Your account');
  // Confirming signs out and returns to the registered URI with state.
  await page.goto(`${server.url}/logout?${new URLSearchParams({ client_id: app.client_id, post_logout_redirect_uri: postLogoutUri, state: 'bye1' })}`);
  await clickAndWait(page, page.getByRole('button', { name: 'Sign out', exact: true }));
  await assertAt(page, postLogoutUri);
  assert.equal(new URL(page.url()).searchParams.get('state'), 'bye1');
  await page.goto(`${server.url}/account`);
  assert.equal(new URL(page.url()).pathname, '/login');
});

test('RP-initiated logout with id_token_hint signs out at once; signed-out page', T, async () => {
  const cb = new URL(await authorizeInBrowser(page, authorizeUrl(), redirectUri, { username: 'alice' }));
  const tok = await postForm(`${server.url}/token`, {
    grant_type: 'authorization_code', code: cb.searchParams.get('code'), redirect_uri: redirectUri,
    code_verifier: VERIFIER, client_id: app.client_id, client_secret: app.client_secret,
  });
  assert.equal(tok.status, 200, tok.text);
  const nav = await page.goto(`${server.url}/logout?${new URLSearchParams({ id_token_hint: tok.json.id_token })}`);
  assert.equal(nav.status(), 200);
  assert.equal(await heading(page), 'You are signed out');
  await shots(page, 'signed-out');
  await page.goto(`${server.url}/account`);
  assert.equal(new URL(page.url()).pathname, '/login');
});
