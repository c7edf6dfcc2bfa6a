// The admin console end to end (issue 5): an administrator signs in, creates a group, adds a
// user with a one-time set-up link, adds an application restricted to that group; the new
// user completes the link in their own browser and signs in to the application with
// openid-client (code flow + PKCE), and the ID token carries their username and groups.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as client from 'openid-client';
import { startPortcullis, launchBrowser, screenshot, addVirtualAuthenticator } from './lib.mjs';
import { addUser, startRp, fillLogin, clickAndWait, newPage, assertAt, authorizeInBrowser } from './helpers.mjs';

const T = { timeout: 30_000 };
const GROUP = 'family';
const NEW_USER = { username: 'bea', name: 'Bea Family', email: 'bea@example.com' };
const NEW_PASSWORD = 'a brand new passphrase for bea';
const APP = 'Family Photos';

let server;
let rp;
let browser;
let admin; // the administrator's page
let guest; // the new user's page (a second browser context)
let redirectUri;
let root;

// State carried between the sequential tests below.
const s = {};

before(async () => {
  server = await startPortcullis();
  rp = await startRp();
  redirectUri = `${rp.url}/cb`;
  root = addUser(server, { username: 'root', admin: true });
  browser = await launchBrowser();
  admin = await newPage(browser, server);
  guest = await newPage(browser, server);
});

after(async () => {
  await browser?.close();
  await rp?.close();
  await server?.stop();
});

const text = async (p) => (await p.locator('body').innerText()).replace(/\s+/g, ' ').trim();

test('the administrator signs in through /login and sees the console', T, async () => {
  const res = await admin.goto(`${server.url}/admin`);
  assert.ok(res.ok(), `GET /admin -> ${res.status()}`);
  await assertAt(admin, '/login');
  await fillLogin(admin, 'root');
  await assertAt(admin, '/admin');
  assert.equal(await admin.locator('h1').first().innerText(), 'Administration');
  const nav = admin.getByRole('navigation', { name: 'Administration' });
  for (const item of ['Overview', 'Users', 'Groups', 'Applications']) {
    assert.equal(await nav.getByRole('link', { name: item, exact: true }).count(), 1, `nav link ${item}`);
  }
  assert.match(await text(admin), new RegExp(`Issuer ${server.url.replace(/[.:/]/g, '\\$&')}`));
  await screenshot(admin, 'admin-overview');
});

test('creates the group "family"', T, async () => {
  await admin.goto(`${server.url}/admin/groups`);
  await assertAt(admin, '/admin/groups');
  await admin.getByLabel('Name', { exact: true }).fill(GROUP);
  await admin.getByLabel(/^Description/).fill('Everyone at home');
  await clickAndWait(admin, admin.getByRole('button', { name: 'Create group', exact: true }));
  assert.match(new URL(admin.url()).pathname, /^\/admin\/groups\/[^/]+$/, `after creating: ${admin.url()}`);
  assert.match(await text(admin), /family/);
  // Back on the list, the group is there.
  await admin.goto(`${server.url}/admin/groups`);
  const link = admin.locator('table.list a', { hasText: GROUP });
  assert.equal(await link.count(), 1, `group row in ${await text(admin)}`);
  await screenshot(admin, 'admin-groups');
});

test('adds a user in "family" with a one-time set-up link', T, async () => {
  await admin.goto(`${server.url}/admin/users/new`);
  await assertAt(admin, '/admin/users/new');
  await screenshot(admin, 'admin-user-new');
  await admin.getByLabel('Username', { exact: true }).fill(NEW_USER.username);
  await admin.getByLabel('Name (optional)').fill(NEW_USER.name);
  await admin.getByLabel('Email (optional)').fill(NEW_USER.email);
  const box = admin.locator(`input[type=checkbox][name=group][value="${GROUP}"]`);
  assert.equal(await box.count(), 1, 'the group checkbox is offered');
  await box.check();
  // The set-up link is the default; let it offer a password too (so the test needs no passkey).
  const linkRadio = admin.locator('input[type=radio][name=setup][value=link]');
  if ((await linkRadio.count()) > 0) await linkRadio.check();
  const allowPw = admin.locator('input[type=checkbox][name=allow_password]');
  if ((await allowPw.count()) > 0) await allowPw.check();
  await clickAndWait(admin, admin.getByRole('button', { name: 'Add user', exact: true }));
  const link = (await admin.locator('#link').innerText()).trim();
  const u = new URL(link);
  assert.equal(u.origin, server.url, `set-up link ${link}`);
  assert.ok(u.searchParams.get('token'), `set-up link carries a token: ${link}`);
  s.setupLink = link;
  assert.match(await admin.locator('h1').first().innerText(), new RegExp(NEW_USER.name));
  await screenshot(admin, 'admin-user-created');
  // The user page lists the group; nobody has a password yet.
  await clickAndWait(admin, admin.getByRole('link', { name: 'Done', exact: true }));
  assert.match(new URL(admin.url()).pathname, /^\/admin\/users\/[^/]+$/);
  s.userId = new URL(admin.url()).pathname.split('/').pop();
  assert.ok(await admin.locator(`input[name=group][value="${GROUP}"]`).isChecked(), 'user page shows the group ticked');
});

test('the new user completes the set-up link in their own browser', T, async () => {
  const res = await guest.goto(s.setupLink);
  assert.equal(res.status(), 200, await text(guest));
  assert.match(await guest.locator('h1').first().innerText(), new RegExp(`Welcome, ${NEW_USER.name}`));
  if ((await guest.getByLabel('Choose a password').count()) > 0) {
    await guest.getByLabel('Choose a password').fill(NEW_PASSWORD);
    await clickAndWait(guest, guest.getByRole('button', { name: 'Use a password', exact: true }));
    s.method = 'password';
  } else {
    // Passkey only: a virtual platform authenticator in the new user's browser.
    const auth = await addVirtualAuthenticator(guest);
    await guest.getByLabel('Name for this passkey').fill('Test key');
    await auth.setPresence(true);
    const nav = guest.waitForURL((url) => url.pathname === '/account', { timeout: 10_000 });
    await guest.getByRole('button', { name: 'Create a passkey', exact: true }).click();
    await nav;
    assert.equal((await auth.credentials()).length, 1);
    s.method = 'passkey';
    s.auth = auth;
  }
  await assertAt(guest, '/account');
  // The link works only once.
  const again = await fetch(s.setupLink, { redirect: 'manual', signal: AbortSignal.timeout(10_000) });
  const body = await again.text();
  assert.notEqual(again.status, 200, `reused set-up link still answers 200: ${body.slice(0, 300)}`);
});

test('adds an application for "family"; the secret is shown once', T, async () => {
  await admin.goto(`${server.url}/admin/apps/new`);
  await assertAt(admin, '/admin/apps/new');
  await screenshot(admin, 'admin-app-new');
  await admin.getByLabel('Name', { exact: true }).fill(APP);
  await admin.getByLabel('Redirect URIs').fill(redirectUri);
  const allowed = admin.locator(`input[type=checkbox][name=allowed_group][value="${GROUP}"]`);
  assert.equal(await allowed.count(), 1, 'the form offers the group as an allowed group');
  await allowed.check();
  const created = admin.waitForResponse((r) => r.request().method() === 'POST' && new URL(r.url()).pathname === '/admin/apps');
  await clickAndWait(admin, admin.getByRole('button', { name: 'Add application', exact: true }));
  const resp = await created;
  assert.equal(resp.status(), 200, await text(admin));
  assert.match(resp.headers()['cache-control'] ?? '', /no-store/, 'the page with the secret is not cached');
  s.clientId = (await admin.locator('#client-id').innerText()).trim();
  s.secret = (await admin.locator('#client-secret').innerText()).trim();
  assert.ok(s.clientId, 'client id shown');
  assert.ok(s.secret.length >= 20, `client secret shown: ${s.secret}`);
  await screenshot(admin, 'admin-app-created');

  // The application page never shows the secret again.
  await clickAndWait(admin, admin.getByRole('link', { name: /I have copied it/ }));
  await assertAt(admin, `/admin/apps/${s.clientId}`);
  const html = await admin.content();
  assert.ok(!html.includes(s.secret), 'the app page does not contain the secret');
  assert.equal(await admin.locator('#client-secret').count(), 0);
  assert.match(await text(admin), new RegExp(`Who may sign in members of ${GROUP}`));
  assert.ok((await text(admin)).includes(redirectUri), 'the redirect URI is listed');
  await screenshot(admin, 'admin-app');
  // Nor after a reload, nor on the list.
  await admin.reload();
  assert.ok(!(await admin.content()).includes(s.secret), 'reloaded app page does not contain the secret');
  await admin.goto(`${server.url}/admin/apps`);
  assert.ok(!(await admin.content()).includes(s.secret), 'the app list does not contain the secret');
  assert.ok((await admin.content()).includes(APP));
});

/** A code flow with PKCE through `page`; returns { tokens, claims }. */
async function codeFlow(page, cfg, { scope, username, password }) {
  const pkceCodeVerifier = client.randomPKCECodeVerifier();
  const state = client.randomState();
  const nonce = client.randomNonce();
  const url = client.buildAuthorizationUrl(cfg, {
    redirect_uri: redirectUri,
    scope,
    code_challenge: await client.calculatePKCECodeChallenge(pkceCodeVerifier),
    code_challenge_method: 'S256',
    state,
    nonce,
  });
  const callback = new URL(await authorizeInBrowser(page, url.href, redirectUri, { username, password }));
  assert.equal(callback.searchParams.get('state'), state);
  assert.ok(callback.searchParams.get('code'), `no code in ${callback}`);
  const tokens = await client.authorizationCodeGrant(cfg, callback, {
    pkceCodeVerifier,
    expectedState: state,
    expectedNonce: nonce,
    idTokenExpected: true,
  });
  return { tokens, claims: tokens.claims() };
}

test('the new user signs in to the application; the ID token has the username and groups', T, async () => {
  const cfg = await client.discovery(new URL(server.url), s.clientId, undefined, client.ClientSecretPost(s.secret), {
    execute: [client.allowInsecureRequests],
    timeout: 10,
  });
  client.enableNonRepudiationChecks(cfg);
  // Sign in afresh in the same browser, so the chosen password (or passkey) is what gets them in.
  if (s.method === 'password') await guest.context().clearCookies();
  const visited = [];
  const onNav = (f) => { if (f === guest.mainFrame()) visited.push(new URL(f.url()).pathname); };
  guest.on('framenavigated', onNav);
  const { tokens, claims } = await codeFlow(guest, cfg, {
    scope: 'openid profile email groups',
    username: NEW_USER.username,
    password: NEW_PASSWORD,
  });
  guest.off('framenavigated', onNav);
  if (s.method === 'password') assert.ok(visited.includes('/login'), `went through /login: ${visited}`);
  assert.ok(visited.includes('/consent'), `went through /consent: ${visited}`);
  assert.equal(claims.iss, server.url);
  assert.equal(claims.aud, s.clientId);
  assert.equal(claims.sub, s.userId);
  assert.equal(claims.preferred_username, NEW_USER.username);
  assert.ok(Array.isArray(claims.groups), `groups claim: ${JSON.stringify(claims)}`);
  assert.ok(claims.groups.includes(GROUP), `groups claim: ${JSON.stringify(claims.groups)}`);
  const info = await client.fetchUserInfo(cfg, tokens.access_token, claims.sub);
  assert.equal(info.preferred_username, NEW_USER.username);
  assert.equal(info.name, NEW_USER.name);
  assert.equal(info.email, NEW_USER.email);
  assert.ok(info.groups?.includes(GROUP), `userinfo groups: ${JSON.stringify(info.groups)}`);
});

test('the administrator, not in "family", is refused by the application', T, async () => {
  // (Only callbacks count: the RP page the new user landed on may still fetch /favicon.ico.)
  const callbacks = () => rp.requests.filter((r) => r.path === '/cb').length;
  const before = callbacks();
  const url = new URL(`${server.url}/authorize`);
  url.search = new URLSearchParams({
    response_type: 'code', client_id: s.clientId, redirect_uri: redirectUri, scope: 'openid', state: 'st',
    code_challenge: 'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM', code_challenge_method: 'S256',
  }).toString();
  const res = await admin.goto(url.href);
  assert.equal(res.status(), 403, await text(admin));
  assert.match(await text(admin), /No access to this app/);
  assert.equal(new URL(admin.url()).origin, server.url);
  assert.equal(callbacks(), before, 'the RP callback was never called');
  assert.ok(root.id);
});
