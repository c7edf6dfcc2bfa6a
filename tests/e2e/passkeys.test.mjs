// Passkeys in a real browser: Chromium's virtual authenticator (CDP WebAuthn, resident keys
// and user verification on). Register a passkey from the account page, sign out, sign in with
// the passkey alone through an OIDC authorization request, and check the ID token's amr.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as client from 'openid-client';
import { startPortcullis, launchBrowser, screenshot, addVirtualAuthenticator } from './lib.mjs';
import { addUser, addClient, startRp, fillLogin, clickAndWait, newPage, assertAt } from './helpers.mjs';

const T = { timeout: 90_000 };

let server;
let rp;
let browser;

before(async () => {
  server = await startPortcullis(); // issuer http://localhost:PORT (WebAuthn refuses IP rp ids)
  rp = await startRp();
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await rp?.close();
  await server?.stop();
});

test('register a passkey, sign out, sign in with the passkey alone through an OIDC request', T, async () => {
  addUser(server, { username: 'dana', name: 'Dana Example' });
  const redirectUri = `${rp.url}/cb`;
  const app = addClient(server, { name: 'Photos', redirectUris: [redirectUri], skipConsent: true });
  const page = await newPage(browser, server);
  const authenticator = await addVirtualAuthenticator(page);

  // Password sign-in, then "Add a passkey" on the account page.
  await page.goto(`${server.url}/login`);
  await fillLogin(page, 'dana');
  await assertAt(page, '/account');
  await page.getByLabel('Name for the new passkey').fill('Test laptop');
  await authenticator.setPresence(true);
  await clickAndWait(page, page.getByRole('button', { name: 'Add a passkey' }));
  await authenticator.setPresence(false);
  await assertAt(page, '/account');
  await page.getByText('Your passkey is added').waitFor();
  assert.equal(await page.locator('input[value="Test laptop"]').count(), 1);
  const creds = await authenticator.credentials();
  assert.equal(creds.length, 1);
  assert.equal(creds[0].isResidentCredential, true, 'a discoverable credential');
  await screenshot(page, 'account-passkey');

  // Sign out from the account page.
  await clickAndWait(page, page.getByRole('button', { name: 'Sign out', exact: true }));
  await page.getByRole('heading', { name: 'You are signed out' }).waitFor();

  // An OIDC authorization request from the app; sign in with the passkey alone.
  const cfg = await client.discovery(new URL(server.url), app.client_id, app.client_secret, undefined, {
    execute: [client.allowInsecureRequests],
  });
  const verifier = client.randomPKCECodeVerifier();
  const nonce = client.randomNonce();
  const url = client.buildAuthorizationUrl(cfg, {
    redirect_uri: redirectUri,
    scope: 'openid profile',
    code_challenge: await client.calculatePKCECodeChallenge(verifier),
    code_challenge_method: 'S256',
    nonce,
  });
  await page.goto(url.href);
  await assertAt(page, '/login');
  await page.getByRole('button', { name: 'Sign in with a passkey' }).waitFor();
  await screenshot(page, 'login-passkey');
  await authenticator.setPresence(true);
  const landed = page.waitForURL((u) => u.href.startsWith(redirectUri), { timeout: 15_000 });
  await page.getByRole('button', { name: 'Sign in with a passkey' }).click();
  await landed;
  await authenticator.setPresence(false);

  const tokens = await client.authorizationCodeGrant(cfg, new URL(page.url()), {
    pkceCodeVerifier: verifier,
    expectedNonce: nonce,
  });
  const claims = tokens.claims();
  assert.equal(claims.preferred_username, 'dana');
  assert.ok(Array.isArray(claims.amr), `amr: ${JSON.stringify(claims.amr)}`);
  assert.ok(claims.amr.includes('mfa'), `amr: ${JSON.stringify(claims.amr)}`);
  assert.ok(claims.amr.includes('hwk') || claims.amr.includes('swk'), `amr: ${JSON.stringify(claims.amr)}`);
  assert.ok(!claims.amr.includes('pwd'), 'no password was used');
  await page.context().close();
});

test('without WebAuthn the login page keeps the password path and hides the passkey button', T, async () => {
  const context = await browser.newContext({ javaScriptEnabled: false });
  const page = await context.newPage();
  await page.goto(`${server.url}/login`);
  assert.equal(await page.getByRole('button', { name: 'Sign in with a passkey' }).isVisible(), false);
  assert.equal(await page.getByRole('button', { name: 'Sign in', exact: true }).isVisible(), true);
  await context.close();
});
