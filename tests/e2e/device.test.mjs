// Device sign-in (RFC 8628) with Node's openid-client 6 as the device and Chromium as the
// person: initiateDeviceAuthorization, the real /device pages (sign in, type the code in lower
// case without the dash, Allow), pollDeviceAuthorizationGrant → tokens that work at userinfo;
// Deny → access_denied. Screenshots of the code entry and confirmation pages at 390 px and
// 1280 px, light and dark, with axe-core on each (serious and critical violations fail).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as client from 'openid-client';
import { startPortcullis, launchBrowser, screenshot } from './lib.mjs';
import { addUser, cliJson, fillLogin, newPage, assertAt, clickAndWait, decodeJwt, axe, sideScroll, PHONE, DESKTOP } from './helpers.mjs';

const T = { timeout: 90_000 };
const APP = 'Living Room TV';

let server;
let browser;
let tv; // the public client allowed device sign-in
let cfg; // its openid-client Configuration

before(async () => {
  server = await startPortcullis();
  browser = await launchBrowser();
  addUser(server, { username: 'alice', name: 'Alice Example' });
  tv = cliJson(server, ['client', 'add', '--name', APP, '--public', '--device-code']);
  cfg = await client.discovery(new URL(server.url), tv.client_id, undefined, client.None(), {
    execute: [client.allowInsecureRequests],
    timeout: 10,
  });
});

after(async () => {
  await browser?.close();
  await server?.stop();
});

const heading = async (p) => (await p.locator('h1').first().innerText()).replace(/\s+/g, ' ').trim();

/** A signed-in page for alice (through /device, which sends her to sign in and back). */
async function signedInPage(options = {}) {
  const page = await newPage(browser, server, options);
  await page.goto(`${server.url}/device`);
  await assertAt(page, '/login');
  await fillLogin(page, 'alice');
  await assertAt(page, '/device');
  return page;
}

test('discovery lists the device endpoint and grant', T, async () => {
  const m = cfg.serverMetadata();
  assert.equal(m.device_authorization_endpoint, `${server.url}/device_authorization`);
  assert.ok(m.grant_types_supported.includes('urn:ietf:params:oauth:grant-type:device_code'));
});

test('a device signs in: code typed in lower case without the dash, Allow → tokens', T, async () => {
  const started = await client.initiateDeviceAuthorization(cfg, { scope: 'openid profile offline_access' });
  assert.match(started.user_code, /^[BCDFGHJKLMNPQRSTVWXZ]{4}-[BCDFGHJKLMNPQRSTVWXZ]{4}$/);
  assert.equal(started.verification_uri, `${server.url}/device`);
  const polling = client.pollDeviceAuthorizationGrant(cfg, started);

  const page = await signedInPage();
  assert.equal(await heading(page), 'Sign in on a device');
  await page.getByLabel('Code').fill(started.user_code.replace('-', '').toLowerCase());
  await clickAndWait(page, page.getByRole('button', { name: 'Continue', exact: true }));
  assert.equal(await heading(page), `Sign in to ${APP} on a device?`);
  const text = await page.locator('main').innerText();
  assert.match(text, /Only continue if you started this sign-in yourself on a device in front of you\. If someone gave you this code, deny\./);
  assert.match(text, new RegExp(started.user_code));
  assert.match(text, /127\.0\.0\.1/);
  assert.match(text, /your name and username/);
  await clickAndWait(page, page.getByRole('button', { name: 'Allow', exact: true }));
  assert.equal(await heading(page), 'Your device is signed in');

  const tokens = await polling;
  assert.ok(tokens.access_token);
  assert.ok(tokens.refresh_token, 'offline_access with refresh tokens on');
  const claims = tokens.claims();
  assert.equal(claims.aud, tv.client_id);
  assert.equal(decodeJwt(tokens.id_token).payload.preferred_username, 'alice');
  const info = await client.fetchUserInfo(cfg, tokens.access_token, claims.sub);
  assert.equal(info.preferred_username, 'alice');
  await page.context().close();
});

test('Deny → openid-client gets access_denied', T, async () => {
  const started = await client.initiateDeviceAuthorization(cfg, { scope: 'openid' });
  const polling = client.pollDeviceAuthorizationGrant(cfg, started);
  const page = await signedInPage();
  await page.goto(started.verification_uri_complete);
  assert.equal(await page.getByLabel('Code').inputValue(), started.user_code, 'the link fills the code in');
  await clickAndWait(page, page.getByRole('button', { name: 'Continue', exact: true }));
  await clickAndWait(page, page.getByRole('button', { name: 'Deny', exact: true }));
  assert.equal(await heading(page), 'Device sign-in denied');
  await assert.rejects(polling, (err) => {
    assert.ok(err instanceof client.ResponseBodyError, `expected ResponseBodyError, got ${err}`);
    assert.equal(err.error, 'access_denied');
    return true;
  });
  await page.context().close();
});

test('code entry and confirmation pages: 390 and 1280 px, light and dark, axe', T, async () => {
  const started = await client.initiateDeviceAuthorization(cfg, { scope: 'openid profile email offline_access' });
  const first = await signedInPage();
  const cookies = await first.context().cookies();
  await first.context().close();
  for (const [size, options] of [['phone', PHONE], ['desktop', DESKTOP]]) {
    const context = await browser.newContext(options);
    await context.addCookies(cookies);
    const page = await context.newPage();
    page.setDefaultTimeout(5_000);
    for (const scheme of ['light', 'dark']) {
      const suffix = `${size}${scheme === 'dark' ? '-dark' : ''}`;
      await page.emulateMedia({ colorScheme: scheme, reducedMotion: 'reduce' });
      await page.goto(started.verification_uri_complete);
      await assertAt(page, '/device');
      await screenshot(page, `device-enter-${suffix}`);
      assert.deepEqual(await axe(page), [], `code entry ${suffix}`);
      const overflow = await sideScroll(page);
      assert.ok(overflow <= 0, `no horizontal scrolling (${suffix}: ${overflow}px)`);
      await clickAndWait(page, page.getByRole('button', { name: 'Continue', exact: true }));
      assert.equal(await heading(page), `Sign in to ${APP} on a device?`);
      await screenshot(page, `device-confirm-${suffix}`);
      assert.deepEqual(await axe(page), [], `confirmation ${suffix}`);
      const wide = await sideScroll(page);
      assert.ok(wide <= 0, `no horizontal scrolling (${suffix}: ${wide}px)`);
    }
    // A wrong code: the same words whatever the reason.
    await page.goto(`${server.url}/device`);
    await page.getByLabel('Code').fill('bcdf-ghjk');
    await clickAndWait(page, page.getByRole('button', { name: 'Continue', exact: true }));
    assert.equal(await page.getByRole('alert').innerText(), 'That code is not valid. Check it on your device, or start again there.');
    await screenshot(page, `device-wrong-code-${size}`);
    assert.deepEqual(await axe(page), [], `wrong code ${size}`);
    await context.close();
  }
});
