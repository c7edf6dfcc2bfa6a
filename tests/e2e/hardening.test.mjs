// What an attacker found (issue 14), tried again in a real browser: a hostile `next` after
// sign-in (password and passkey) must leave Chromium on Portcullis, never on another origin.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startPortcullis, launchBrowser, addVirtualAuthenticator } from './lib.mjs';
import { addUser, startRp, fillLogin, clickAndWait, newPage, assertAt } from './helpers.mjs';

const T = { timeout: 90_000 };

let server;
let evil; // the "other origin": records every request a browser makes to it
let browser;

before(async () => {
  server = await startPortcullis();
  evil = await startRp();
  browser = await launchBrowser();
  addUser(server, { username: 'erin', name: 'Erin Example' });
});

after(async () => {
  await browser?.close();
  await evil?.close();
  await server?.stop();
});

/** `next` values that browsers would follow to `evil` if they reached a Location header. */
function hostile() {
  const hostPort = new URL(evil.url).host;
  return [
    `/\t/${hostPort}/tab`,
    `/\n/${hostPort}/lf`,
    `//${hostPort}/scheme-relative`,
    `/\\${hostPort}/backslash`,
    `https:/\\${hostPort}/mixed`,
    `${evil.url}/absolute`,
    `http://erin@${hostPort}/userinfo`,
  ];
}

test('a hostile next after password sign-in keeps the browser on Portcullis', T, async () => {
  const page = await newPage(browser, server);
  for (const next of hostile()) {
    // Signed out: the value rides the login form through a correct-password POST.
    await page.context().clearCookies();
    await page.goto(`${server.url}/login?next=${encodeURIComponent(next)}`);
    await fillLogin(page, 'erin');
    await assertAt(page, '/account');
    // Signed in: GET /login?next=… redirects at once.
    await page.goto(`${server.url}/login?next=${encodeURIComponent(next)}`);
    await page.waitForLoadState('load');
    await assertAt(page, '/account');
  }
  assert.deepEqual(evil.requests.map((r) => r.url), [], 'the other origin was never reached');
  await page.context().close();
});

test('a hostile next after passkey sign-in keeps the browser on Portcullis', T, async () => {
  const page = await newPage(browser, server);
  const authenticator = await addVirtualAuthenticator(page);
  await page.goto(`${server.url}/login`);
  await fillLogin(page, 'erin');
  await page.getByLabel('Name for the new passkey').fill('Test laptop');
  await authenticator.setPresence(true);
  await clickAndWait(page, page.getByRole('button', { name: 'Add a passkey' }));
  await page.getByText('Your passkey is added').waitFor();
  await authenticator.setPresence(false);
  for (const next of hostile()) {
    await clickAndWait(page, page.getByRole('button', { name: 'Sign out', exact: true }));
    await page.goto(`${server.url}/login?next=${encodeURIComponent(next)}`);
    const button = page.getByRole('button', { name: 'Sign in with a passkey' });
    await button.waitFor();
    const landed = page.waitForURL((u) => u.pathname === '/account', { timeout: 15_000 });
    await authenticator.setPresence(true);
    await button.click({ noWaitAfter: true }).catch(() => {}); // autofill may sign in first
    await landed;
    await authenticator.setPresence(false);
    await assertAt(page, '/account');
  }
  assert.deepEqual(evil.requests.map((r) => r.url), [], 'the other origin was never reached');
  await page.context().close();
});
