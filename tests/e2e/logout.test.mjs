// OpenID Connect RP-Initiated Logout + Back-Channel Logout with two relying parties signed in
// through one Chromium session.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createRemoteJWKSet, jwtVerify } from 'jose';
import { startPortcullis, launchBrowser } from './lib.mjs';
import { addUser, addClient, startRp, authorizeInBrowser, postForm, decodeJwt, newPage, clickAndWait, assertAt } from './helpers.mjs';

const T = { timeout: 60_000 };
const EVENT = 'http://schemas.openid.net/event/backchannel-logout';
// RFC 7636 appendix B
const VERIFIER = 'dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk';
const CHALLENGE = 'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM';

let server;
let rp;
let browser;
let page;
let alice;
let jwks;
const apps = {}; // a, b: { client, alg, cb, bye, bc, idToken }

before(async () => {
  server = await startPortcullis();
  rp = await startRp();
  alice = addUser(server, { username: 'alice', email: 'alice@example.com' });
  for (const [key, name, alg] of [['a', 'Wiki', 'RS256'], ['b', 'Chat', 'EdDSA']]) {
    const cb = `${rp.url}/cb-${key}`;
    const bye = `${rp.url}/bye-${key}`;
    const bc = `${rp.url}/bc/${key}`;
    const client = addClient(server, { name, redirectUris: [cb], postLogoutRedirectUris: [bye], backchannelLogoutUri: bc, signingAlg: alg });
    assert.equal(client.backchannel_logout_uri, bc);
    apps[key] = { client, alg, cb, bye, bc };
  }
  jwks = createRemoteJWKSet(new URL(`${server.url}/jwks`));
  browser = await launchBrowser();
  page = await newPage(browser, server);
});

after(async () => {
  await browser?.close();
  await rp?.close();
  await server?.stop();
});

/** Sign in to one app in the shared browser and redeem the code; returns the ID token. */
async function signInTo(app) {
  const url = new URL(`${server.url}/authorize`);
  url.search = new URLSearchParams({
    response_type: 'code', client_id: app.client.client_id, redirect_uri: app.cb, scope: 'openid email',
    state: 'st', nonce: `n-${app.client.client_id}`, code_challenge: CHALLENGE, code_challenge_method: 'S256',
  }).toString();
  const cb = new URL(await authorizeInBrowser(page, url.href, app.cb, { username: 'alice' }));
  const tok = await postForm(`${server.url}/token`, {
    grant_type: 'authorization_code', code: cb.searchParams.get('code'), redirect_uri: app.cb,
    code_verifier: VERIFIER, client_id: app.client.client_id, client_secret: app.client.client_secret,
  });
  assert.equal(tok.status, 200, tok.text);
  const { payload } = await jwtVerify(tok.json.id_token, jwks, { issuer: server.url, audience: app.client.client_id });
  assert.ok(payload.sid, 'ID token carries sid (backchannel_logout_session_supported)');
  return tok.json.id_token;
}

const bcPosts = (app) => (r) => r.method === 'POST' && r.path === new URL(app.bc).pathname;

/** Check one back-channel logout request and return its verified claims. */
async function checkLogoutRequest(req, app) {
  assert.match(req.headers['content-type'] ?? '', /^application\/x-www-form-urlencoded/);
  const form = new URLSearchParams(req.body);
  assert.deepEqual([...form.keys()], ['logout_token'], `logout_token is the only form field: ${req.body}`);
  const token = form.get('logout_token');
  const { payload, protectedHeader } = await jwtVerify(token, jwks, {
    issuer: server.url,
    audience: app.client.client_id,
    typ: 'logout+jwt',
    maxTokenAge: '2 minutes',
  });
  assert.equal(protectedHeader.typ, 'logout+jwt');
  assert.equal(protectedHeader.alg, app.alg, 'signed with the client\'s ID token algorithm');
  assert.deepEqual(payload.events, { [EVENT]: {} }, 'events claim is exactly the back-channel logout event');
  assert.equal(payload.nonce, undefined, 'a logout token never carries a nonce');
  assert.ok(payload.jti, 'jti');
  assert.ok(payload.iat, 'iat');
  assert.ok(payload.exp > payload.iat, 'exp after iat');
  return payload;
}

test('two apps in one browser session share the sid', T, async () => {
  apps.a.idToken = await signInTo(apps.a);
  apps.b.idToken = await signInTo(apps.b);
  const sa = decodeJwt(apps.a.idToken).payload;
  const sb = decodeJwt(apps.b.idToken).payload;
  assert.equal(sa.sid, sb.sid, 'one browser session, one sid');
  assert.equal(sa.sub, alice.id);
  assert.equal(sb.sub, alice.id);
  assert.equal(decodeJwt(apps.b.idToken).header.alg, 'EdDSA');
});

test('a forged post_logout_redirect_uri is not followed and does not sign out', T, async () => {
  const forged = [
    'https://evil.example/after-logout',
    `${apps.a.bye}/../evil`,
    `${apps.a.bye}?x=1`,
    apps.b.bye, // registered, but for the other app
  ];
  for (const uri of forged) {
    const nav = await page.goto(`${server.url}/logout?${new URLSearchParams({ id_token_hint: apps.a.idToken, post_logout_redirect_uri: uri, state: 'forged' })}`);
    assert.equal(new URL(page.url()).origin, server.url, `stayed on the issuer for ${uri}`);
    assert.equal(nav.status(), 400, `error status for ${uri}`);
  }
  assert.equal(rp.requests.filter((r) => r.path.startsWith('/bye')).length, 0, 'no post-logout redirect reached the RP');
  await page.goto(`${server.url}/account`);
  assert.equal(new URL(page.url()).pathname, '/account', 'still signed in after refused logout requests');
  assert.equal(rp.requests.filter((r) => r.path.startsWith('/bc/')).length, 0, 'no back-channel logout yet');
});

test('RP-initiated logout with id_token_hint: redirect with state; both apps get a logout token', T, async () => {
  const sid = decodeJwt(apps.a.idToken).payload.sid;
  await page.goto(`${server.url}/logout?${new URLSearchParams({ id_token_hint: apps.a.idToken, post_logout_redirect_uri: apps.a.bye, state: 'xyz 1/2' })}`);
  await assertAt(page, apps.a.bye);
  const landed = new URL(page.url());
  assert.equal(`${landed.origin}${landed.pathname}`, apps.a.bye);
  assert.deepEqual([...landed.searchParams], [['state', 'xyz 1/2']], 'only state is added to the post-logout URI');

  for (const app of [apps.a, apps.b]) {
    const [req] = await rp.waitFor(bcPosts(app), { timeoutMs: 15_000 });
    const claims = await checkLogoutRequest(req, app);
    assert.equal(claims.sid, sid, 'same sid as the ID tokens');
    assert.equal(claims.sub, alice.id);
  }
  // The session is gone.
  await page.goto(`${server.url}/account`);
  assert.equal(new URL(page.url()).pathname, '/login');
  // Exactly one delivery per app (the RP answered 200).
  await new Promise((r) => setTimeout(r, 300));
  assert.equal(rp.requests.filter(bcPosts(apps.a)).length, 1);
  assert.equal(rp.requests.filter(bcPosts(apps.b)).length, 1);
});

test('signing out from the account page also notifies the app over the back channel', T, async () => {
  const before = rp.requests.filter(bcPosts(apps.a)).length;
  const idToken = await signInTo(apps.a);
  const sid = decodeJwt(idToken).payload.sid;
  assert.notEqual(sid, decodeJwt(apps.a.idToken).payload.sid, 'a new session has a new sid');
  await page.goto(`${server.url}/account`);
  await clickAndWait(page, page.locator('form[action="/signout"]').getByRole('button', { name: 'Sign out' }));
  await page.waitForLoadState('load');
  const reqs = await rp.waitFor(bcPosts(apps.a), { count: before + 1, timeoutMs: 15_000 });
  const claims = await checkLogoutRequest(reqs.at(-1), apps.a);
  assert.equal(claims.sid, sid);
  assert.equal(rp.requests.filter(bcPosts(apps.b)).length, 1, 'the app not used in this session is not told again');
});
