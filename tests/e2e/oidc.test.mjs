// openid-client v6 (the RP library Immich uses) against Portcullis, through the real login
// and consent pages in headless Chromium; plus negative checks with plain fetch.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as client from 'openid-client';
import { createRemoteJWKSet, jwtVerify } from 'jose';
import { startPortcullis, launchBrowser } from './lib.mjs';
import { addUser, addClient, startRp, authorizeInBrowser, decodeJwt, postForm, basicAuth, newPage } from './helpers.mjs';

const T = { timeout: 60_000 };
const SCOPE = 'openid profile email offline_access';

let server;
let rp;
let browser;
let page;
let alice;
let redirectUri;
let conf; // confidential RS256 client (CLI JSON)
let jwks;
let config; // openid-client Configuration for `conf`, client_secret_post

// State carried between the sequential tests below.
const flow = {};

before(async () => {
  server = await startPortcullis();
  rp = await startRp();
  redirectUri = `${rp.url}/cb`;
  alice = addUser(server, { username: 'alice', email: 'alice@example.com', name: 'Alice Example' });
  conf = addClient(server, { name: 'Photos', redirectUris: [redirectUri] });
  jwks = createRemoteJWKSet(new URL(`${server.url}/jwks`));
  browser = await launchBrowser();
  page = await newPage(browser, server);
});

after(async () => {
  await browser?.close();
  await rp?.close();
  await server?.stop();
});

/** openid-client Configuration by discovery against the http issuer. */
async function discover(clientId, metadata, auth) {
  const cfg = await client.discovery(new URL(server.url), clientId, metadata, auth, {
    execute: [client.allowInsecureRequests],
    timeout: 10,
  });
  // Validate ID token signatures against the JWKS even though they come from the token endpoint.
  client.enableNonRepudiationChecks(cfg);
  return cfg;
}

/** One full code flow with PKCE/state/nonce in the shared browser; returns { tokens, claims, callback }. */
async function codeFlow(cfg, { scope = SCOPE, extra = {} } = {}) {
  const pkceCodeVerifier = client.randomPKCECodeVerifier();
  const code_challenge = await client.calculatePKCECodeChallenge(pkceCodeVerifier);
  const state = client.randomState();
  const nonce = client.randomNonce();
  const url = client.buildAuthorizationUrl(cfg, {
    redirect_uri: redirectUri,
    scope,
    code_challenge,
    code_challenge_method: 'S256',
    state,
    nonce,
    ...extra,
  });
  const callback = await authorizeInBrowser(page, url.href, redirectUri, { username: 'alice' });
  const cb = new URL(callback);
  assert.equal(cb.searchParams.get('state'), state);
  assert.equal(cb.searchParams.get('iss'), server.url, 'RFC 9207 iss on the authorization response');
  assert.ok(cb.searchParams.get('code'), `no code in ${callback}`);
  const tokens = await client.authorizationCodeGrant(cfg, cb, {
    pkceCodeVerifier,
    expectedState: state,
    expectedNonce: nonce,
    idTokenExpected: true,
  });
  const claims = tokens.claims();
  assert.equal(claims.nonce, nonce);
  return { tokens, claims, callback: cb, pkceCodeVerifier };
}

/** Only the code: run the browser part and return { code, verifier }. */
async function getCode(clientId, { verifier = client.randomPKCECodeVerifier(), scope = 'openid email' } = {}) {
  const url = new URL(`${server.url}/authorize`);
  url.search = new URLSearchParams({
    response_type: 'code',
    client_id: clientId,
    redirect_uri: redirectUri,
    scope,
    state: client.randomState(),
    nonce: client.randomNonce(),
    code_challenge: await client.calculatePKCECodeChallenge(verifier),
    code_challenge_method: 'S256',
  }).toString();
  const cb = new URL(await authorizeInBrowser(page, url.href, redirectUri, { username: 'alice' }));
  const code = cb.searchParams.get('code');
  assert.ok(code, `no code in ${cb}`);
  return { code, verifier };
}

async function verifyIdToken(idToken, clientId, alg) {
  const { payload, protectedHeader } = await jwtVerify(idToken, jwks, { issuer: server.url, audience: clientId });
  assert.equal(protectedHeader.alg, alg);
  assert.ok(protectedHeader.kid, 'ID token header has a kid');
  return payload;
}

test('discovery document', T, async () => {
  config = await discover(conf.client_id, conf.client_secret);
  const md = config.serverMetadata();
  assert.equal(md.issuer, server.url);
  assert.equal(md.authorization_endpoint, `${server.url}/authorize`);
  assert.equal(md.token_endpoint, `${server.url}/token`);
  assert.equal(md.end_session_endpoint, `${server.url}/logout`);
  assert.ok(md.supportsPKCE('S256'));
  assert.deepEqual(md.response_types_supported, ['code']);
});

test('authorization code + PKCE + state + nonce through the real pages (client_secret_post)', T, async () => {
  const { tokens, claims, callback, pkceCodeVerifier } = await codeFlow(config);
  assert.equal(claims.iss, server.url);
  assert.equal(claims.aud, conf.client_id);
  assert.equal(claims.sub, alice.id);
  assert.ok(claims.sid, 'ID token carries sid');
  assert.ok(claims.auth_time, 'ID token carries auth_time');
  if (claims.email !== undefined) assert.equal(claims.email, 'alice@example.com');
  assert.equal(tokens.token_type.toLowerCase(), 'bearer');
  assert.ok(tokens.access_token);
  assert.ok(tokens.refresh_token, 'offline_access gives a refresh token');
  assert.ok(tokens.expires_in > 0);
  const payload = await verifyIdToken(tokens.id_token, conf.client_id, 'RS256');
  assert.equal(payload.sub, alice.id);
  flow.main = { tokens, claims, code: callback.searchParams.get('code'), pkceCodeVerifier };
});

test('userinfo: sub matches the ID token', T, async () => {
  const { tokens, claims } = flow.main;
  const info = await client.fetchUserInfo(config, tokens.access_token, claims.sub);
  assert.equal(info.sub, alice.id);
  assert.equal(info.email, 'alice@example.com');
  assert.equal(info.preferred_username, 'alice');
  assert.equal(info.name, 'Alice Example');
  // And a wrong expected subject is caught by the RP library.
  await assert.rejects(client.fetchUserInfo(config, tokens.access_token, 'someone-else'));
});

test('code replay is refused with invalid_grant', T, async () => {
  const { code, pkceCodeVerifier } = flow.main;
  const r = await postForm(`${server.url}/token`, {
    grant_type: 'authorization_code',
    code,
    redirect_uri: redirectUri,
    code_verifier: pkceCodeVerifier,
    client_id: conf.client_id,
    client_secret: conf.client_secret,
  });
  assert.equal(r.status, 400, r.text);
  assert.equal(r.json?.error, 'invalid_grant');
  assert.match(r.headers.get('cache-control') ?? '', /no-store/);
  // RFC 6749 §4.1.2: tokens issued from a replayed code SHOULD be revoked (the server says it does).
  const { tokens } = flow.main;
  assert.equal((await client.tokenIntrospection(config, tokens.access_token)).active, false, 'access token from the replayed code is revoked');
  assert.equal((await client.tokenIntrospection(config, tokens.refresh_token)).active, false, 'refresh token from the replayed code is revoked');
});

test('refresh token grant rotates the refresh token', T, async () => {
  // (A fresh flow: the replay above may legitimately have revoked the first grant's tokens.)
  const { tokens } = await codeFlow(config);
  const refreshed = await client.refreshTokenGrant(config, tokens.refresh_token);
  assert.ok(refreshed.access_token);
  assert.notEqual(refreshed.access_token, tokens.access_token);
  assert.ok(refreshed.refresh_token, 'a rotated refresh token is returned');
  assert.notEqual(refreshed.refresh_token, tokens.refresh_token);
  if (refreshed.id_token) {
    const c = refreshed.claims();
    assert.equal(c.sub, alice.id);
    await verifyIdToken(refreshed.id_token, conf.client_id, 'RS256');
  }
  flow.refreshed = refreshed;
});

test('introspection: live access token is active', T, async () => {
  const r = await client.tokenIntrospection(config, flow.refreshed.access_token);
  assert.equal(r.active, true);
  assert.equal(r.sub, alice.id);
  assert.equal(r.client_id, conf.client_id);
  const rt = await client.tokenIntrospection(config, flow.refreshed.refresh_token);
  assert.equal(rt.active, true, 'a live refresh token introspects as active');
  const junk = await client.tokenIntrospection(config, 'not-a-token');
  assert.equal(junk.active, false);
});

test('revocation: revoked refresh token no longer refreshes; its access token goes inactive', T, async () => {
  const { refresh_token, access_token } = flow.refreshed;
  await client.tokenRevocation(config, refresh_token, { token_type_hint: 'refresh_token' });
  await assert.rejects(client.refreshTokenGrant(config, refresh_token), (err) => {
    assert.ok(err instanceof client.ResponseBodyError, `expected ResponseBodyError, got ${err}`);
    assert.equal(err.error, 'invalid_grant');
    assert.equal(err.status, 400);
    return true;
  });
  assert.equal((await client.tokenIntrospection(config, refresh_token)).active, false);
  assert.equal((await client.tokenIntrospection(config, access_token)).active, false);
});

test('client_secret_basic works; revoking an access token makes it inactive', T, async () => {
  const cfg = await discover(conf.client_id, undefined, client.ClientSecretBasic(conf.client_secret));
  const { tokens } = await codeFlow(cfg, { scope: 'openid email' });
  assert.equal(decodeJwt(tokens.id_token).payload.aud, conf.client_id);
  assert.equal((await client.tokenIntrospection(cfg, tokens.access_token)).active, true);
  await client.tokenRevocation(cfg, tokens.access_token, { token_type_hint: 'access_token' });
  assert.equal((await client.tokenIntrospection(cfg, tokens.access_token)).active, false);
  // userinfo refuses the revoked token
  await assert.rejects(client.fetchUserInfo(cfg, tokens.access_token, alice.id));
});

test('explicit client_secret_post works', T, async () => {
  const cfg = await discover(conf.client_id, undefined, client.ClientSecretPost(conf.client_secret));
  const { tokens, claims } = await codeFlow(cfg, { scope: 'openid' });
  assert.equal(claims.sub, alice.id);
  assert.equal(decodeJwt(tokens.id_token).payload.aud, conf.client_id);
});

test('public client with PKCE and client.None()', T, async () => {
  const pub = addClient(server, { name: 'Phone App', redirectUris: [redirectUri], isPublic: true });
  assert.equal(pub.client_secret, undefined);
  const cfg = await discover(pub.client_id, undefined, client.None());
  const { tokens, claims } = await codeFlow(cfg);
  assert.equal(claims.aud, pub.client_id);
  await verifyIdToken(tokens.id_token, pub.client_id, 'RS256');
  const info = await client.fetchUserInfo(cfg, tokens.access_token, claims.sub);
  assert.equal(info.sub, alice.id);
  if (tokens.refresh_token) {
    const r = await client.refreshTokenGrant(cfg, tokens.refresh_token);
    assert.notEqual(r.refresh_token, tokens.refresh_token);
  }
  // A public client's code without a code_verifier is refused.
  const { code } = await getCode(pub.client_id);
  const r = await postForm(`${server.url}/token`, { grant_type: 'authorization_code', code, redirect_uri: redirectUri, client_id: pub.client_id });
  assert.equal(r.status, 400, r.text);
  assert.ok(['invalid_grant', 'invalid_request'].includes(r.json?.error), r.text);
});

for (const alg of ['ES256', 'EdDSA']) {
  test(`${alg} client: ID token validates against the JWKS`, T, async () => {
    const c = addClient(server, { name: `App ${alg}`, redirectUris: [redirectUri], signingAlg: alg });
    const cfg = await discover(c.client_id, { client_secret: c.client_secret, id_token_signed_response_alg: alg });
    const { tokens, claims } = await codeFlow(cfg, { scope: 'openid email' });
    assert.equal(decodeJwt(tokens.id_token).header.alg, alg);
    const payload = await verifyIdToken(tokens.id_token, c.client_id, alg);
    assert.equal(payload.sub, alice.id);
    assert.equal(claims.sub, alice.id);
    const info = await client.fetchUserInfo(cfg, tokens.access_token, claims.sub);
    assert.equal(info.email, 'alice@example.com');
  });
}

test('prompt=none with a session returns a code without any page', T, async () => {
  const url = client.buildAuthorizationUrl(config, {
    redirect_uri: redirectUri, scope: 'openid', state: 's1', nonce: 'n1',
    code_challenge: await client.calculatePKCECodeChallenge(client.randomPKCECodeVerifier()),
    code_challenge_method: 'S256', prompt: 'none',
  });
  await page.goto(url.href);
  const cb = new URL(page.url());
  assert.equal(`${cb.origin}${cb.pathname}`, redirectUri);
  assert.ok(cb.searchParams.get('code'), `expected a code, got ${cb}`);
  assert.equal(cb.searchParams.get('state'), 's1');
});

test('negative: redirect_uri mismatch shows an error page and does not redirect', T, async () => {
  const url = new URL(`${server.url}/authorize`);
  url.search = new URLSearchParams({
    response_type: 'code', client_id: conf.client_id, redirect_uri: `${rp.url}/cb/evil`, scope: 'openid', state: 'x',
    code_challenge: 'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM', code_challenge_method: 'S256',
  }).toString();
  // Only callback hits count: a browser may still fetch e.g. /favicon.ico from the RP.
  const callbacks = () => rp.requests.filter((r) => r.path.startsWith('/cb')).length;
  const before = callbacks();
  const res = await fetch(url, { redirect: 'manual', headers: { accept: 'text/html' }, signal: AbortSignal.timeout(10_000) });
  const body = await res.text();
  assert.equal(res.status, 400, body);
  assert.equal(res.headers.get('location'), null);
  assert.match(res.headers.get('content-type') ?? '', /text\/html/);
  // Also a prefix and a different port of the registered URI are refused.
  for (const bad of [`${redirectUri}x`, redirectUri.replace('127.0.0.1', 'localhost')]) {
    url.searchParams.set('redirect_uri', bad);
    const r = await fetch(url, { redirect: 'manual', signal: AbortSignal.timeout(10_000) });
    await r.arrayBuffer();
    assert.equal(r.status, 400, `redirect_uri ${bad}`);
    assert.equal(r.headers.get('location'), null);
  }
  assert.equal(callbacks(), before, 'the RP was never contacted');
});

test('negative: PKCE wrong verifier is invalid_grant', T, async () => {
  const { code } = await getCode(conf.client_id);
  const r = await postForm(`${server.url}/token`, {
    grant_type: 'authorization_code', code, redirect_uri: redirectUri,
    code_verifier: client.randomPKCECodeVerifier(),
  }, { headers: { authorization: basicAuth(conf.client_id, conf.client_secret) } });
  assert.equal(r.status, 400, r.text);
  assert.equal(r.json?.error, 'invalid_grant');
});

test('negative: bad client secret is 401 invalid_client', T, async () => {
  const { code, verifier } = await getCode(conf.client_id);
  const form = { grant_type: 'authorization_code', code, redirect_uri: redirectUri, code_verifier: verifier };
  const basic = await postForm(`${server.url}/token`, form, { headers: { authorization: basicAuth(conf.client_id, 'wrong-secret') } });
  assert.equal(basic.status, 401, basic.text);
  assert.equal(basic.json?.error, 'invalid_client');
  assert.match(basic.headers.get('www-authenticate') ?? '', /^Basic/i, 'RFC 6749 §5.2: 401 with WWW-Authenticate when Basic was used');
  const post = await postForm(`${server.url}/token`, { ...form, client_id: conf.client_id, client_secret: 'wrong-secret' });
  assert.equal(post.status, 401, post.text);
  assert.equal(post.json?.error, 'invalid_client');
  // A failed authentication does not burn the code: the right secret still redeems it.
  const ok = await postForm(`${server.url}/token`, form, { headers: { authorization: basicAuth(conf.client_id, conf.client_secret) } });
  assert.equal(ok.status, 200, ok.text);
  assert.ok(ok.json?.access_token);
});

test('negative: prompt=none without a session redirects with login_required', T, async () => {
  const url = new URL(`${server.url}/authorize`);
  url.search = new URLSearchParams({
    response_type: 'code', client_id: conf.client_id, redirect_uri: redirectUri, scope: 'openid', state: 'st-none',
    nonce: 'n', prompt: 'none',
    code_challenge: 'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM', code_challenge_method: 'S256',
  }).toString();
  const res = await fetch(url, { redirect: 'manual', signal: AbortSignal.timeout(10_000) });
  await res.arrayBuffer();
  assert.ok([302, 303].includes(res.status), `status ${res.status}`);
  const loc = new URL(res.headers.get('location'));
  assert.equal(`${loc.origin}${loc.pathname}`, redirectUri);
  assert.equal(loc.searchParams.get('error'), 'login_required');
  assert.equal(loc.searchParams.get('state'), 'st-none');
  assert.equal(loc.searchParams.get('iss'), server.url);
  assert.equal(loc.searchParams.get('code'), null);
});
