// Token exchange (RFC 8693) as real software does it: openid-client v6 signs a person in to
// the portal through the real pages in Chromium and exchanges the access token with its
// genericGrantRequest; the downstream API verifies the result offline with `jose` against
// the JWKS, as a resource server would (signature, aud, exp, roles, act).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as client from 'openid-client';
import { createRemoteJWKSet, jwtVerify, errors as joseErrors } from 'jose';
import { startPortcullis, launchBrowser, cli } from './lib.mjs';
import { addUser, addClient, cliJson, startRp, authorizeInBrowser, newPage } from './helpers.mjs';

const T = { timeout: 60_000 };
const GRANT = 'urn:ietf:params:oauth:grant-type:token-exchange';
const ACCESS = 'urn:ietf:params:oauth:token-type:access_token';

let server;
let rp;
let browser;
let page;
let portal;
let api;
let cfg;

before(async () => {
  server = await startPortcullis();
  rp = await startRp();
  addUser(server, { username: 'alice' });
  portal = addClient(server, { name: 'Portal', redirectUris: [`${rp.url}/cb`], skipConsent: true });
  api = cliJson(server, ['client', 'add', '--name', 'Photos API', '--redirect-uri', 'https://photos.example.com/cb',
    '--signing-alg', 'ES256', '--exchange-from', portal.client_id]);
  for (const args of [
    ['role', 'add', '--app', api.client_id, 'uploader'],
    ['role', 'grant', '--app', api.client_id, '--user', 'alice', 'uploader'],
  ]) {
    const r = cli(server.dataDir, args);
    assert.equal(r.status, 0, r.stderr);
  }
  cfg = await client.discovery(new URL(server.url), portal.client_id, {}, client.ClientSecretBasic(portal.client_secret), {
    execute: [client.allowInsecureRequests],
    timeout: 10,
  });
  browser = await launchBrowser();
  page = await newPage(browser, server);
});

after(async () => {
  await browser?.close();
  await rp?.close();
  await server?.stop();
});

async function signIn() {
  const pkceCodeVerifier = client.randomPKCECodeVerifier();
  const state = client.randomState();
  const url = client.buildAuthorizationUrl(cfg, {
    redirect_uri: `${rp.url}/cb`,
    scope: 'openid profile',
    code_challenge: await client.calculatePKCECodeChallenge(pkceCodeVerifier),
    code_challenge_method: 'S256',
    state,
  });
  const cb = await authorizeInBrowser(page, url.href, `${rp.url}/cb`, { username: 'alice' });
  return client.authorizationCodeGrant(cfg, new URL(cb), { pkceCodeVerifier, expectedState: state });
}

test('discovery advertises the token exchange grant', T, () => {
  assert.ok(cfg.serverMetadata().grant_types_supported.includes(GRANT));
});

test('the exchanged token verifies offline at the downstream API, with roles and actor', T, async () => {
  const tokens = await signIn();
  const exchanged = await client.genericGrantRequest(cfg, GRANT, {
    subject_token: tokens.access_token,
    subject_token_type: ACCESS,
    audience: api.client_id,
  });
  assert.equal(exchanged.issued_token_type, ACCESS);
  assert.equal(exchanged.token_type.toLowerCase(), 'bearer');
  assert.equal(exchanged.expires_in, 60);

  const jwks = createRemoteJWKSet(new URL(`${server.url}/jwks`));
  const { payload, protectedHeader } = await jwtVerify(exchanged.access_token, jwks, {
    issuer: server.url,
    audience: api.client_id,
    typ: 'at+jwt',
    algorithms: ['ES256'],
  });
  assert.equal(protectedHeader.alg, 'ES256');
  assert.deepEqual(payload.roles, ['uploader']);
  assert.deepEqual(payload.act, { sub: portal.client_id });
  assert.equal(payload.client_id, portal.client_id);
  assert.equal(payload.sub, tokens.claims().sub);
  assert.ok(payload.exp - payload.iat === 60 && payload.exp > Date.now() / 1000);

  // Addressed to the API only: the portal (or anyone else) would refuse it.
  await assert.rejects(
    jwtVerify(exchanged.access_token, jwks, { issuer: server.url, audience: portal.client_id }),
    joseErrors.JWTClaimValidationFailed,
  );
  // And once expired, jose refuses it too (checked at a clock 61 s ahead).
  await assert.rejects(
    jwtVerify(exchanged.access_token, jwks, { issuer: server.url, audience: api.client_id, currentDate: new Date((payload.exp + 1) * 1000) }),
    joseErrors.JWTExpired,
  );
});

test('an exchange for an application that does not exist is invalid_target', T, async () => {
  const tokens = await signIn();
  await assert.rejects(
    client.genericGrantRequest(cfg, GRANT, { subject_token: tokens.access_token, subject_token_type: ACCESS, audience: 'no-such-app' }),
    (e) => e instanceof client.ResponseBodyError && e.error === 'invalid_target',
  );
  await assert.rejects(
    client.genericGrantRequest(cfg, GRANT, { subject_token: 'garbage', subject_token_type: ACCESS, audience: api.client_id }),
    (e) => e instanceof client.ResponseBodyError && e.error === 'invalid_grant',
  );
});
