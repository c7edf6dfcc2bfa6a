// Upstream federated sign-in in headless Chromium: Node's `oidc-provider` (in-memory, with its
// development login and consent pages) is the upstream OpenID Provider on 127.0.0.1; Portcullis
// (on localhost, so the two servers' cookies stay apart) offers "Upstream ID" on its sign-in
// page, creates the account just in time, and the downstream app receives an ID token for the
// LOCAL user with amr "fed". Screenshots of the sign-in page with the provider button. Last, an
// administrator adds a second provider through the console (/admin/upstream) and a new person
// signs in through it; screenshots of the console pages.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Provider } from 'oidc-provider';
import { startPortcullis, launchBrowser, screenshot, cli } from './lib.mjs';
import { addUser, addClient, startRp, clickAndWait, decodeJwt, postForm, basicAuth, newPage, fillLogin, assertAt } from './helpers.mjs';

const text = async (p) => (await p.locator('body').innerText()).replace(/\s+/g, ' ').trim();

const T = { timeout: 60_000 };
const UPSTREAM_SECRET = 'upstream-client-secret-0123456789';
// The client the administrator registers through the console.
const CONSOLE_CLIENT = { id: 'portcullis-console', secret: 'console-client-secret-9876543210' };
// A small key-shaped icon as a data: URL (the CSP allows data: images).
const ICON = `data:image/svg+xml;base64,${Buffer.from(
  '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 24 24"><circle cx="8" cy="12" r="5" fill="none" stroke="#4f7cff" stroke-width="2.5"/><path d="M13 12h9m-3 0v4m-3-4v3" stroke="#4f7cff" stroke-width="2.5" fill="none"/></svg>',
).toString('base64')}`;

let server;
let upstream; // { url, close }
let rp;
let browser;
let app; // the downstream app registered on Portcullis
let supported = true;

/** oidc-provider on 127.0.0.1:0 with one client (Portcullis) and accounts made up on the fly. */
async function startUpstream(redirectUri) {
  const http = await import('node:http');
  const srv = http.createServer();
  await new Promise((resolve) => srv.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${srv.address().port}`;
  const provider = new Provider(url, {
    clients: [[ 'portcullis', UPSTREAM_SECRET ], [ CONSOLE_CLIENT.id, CONSOLE_CLIENT.secret ]].map(([client_id, client_secret]) => ({
      client_id,
      client_secret,
      redirect_uris: [redirectUri],
      grant_types: ['authorization_code'],
      response_types: ['code'],
      token_endpoint_auth_method: 'client_secret_basic',
    })),
    // Any login name is an account; its claims are derived from the name.
    async findAccount(ctx, id) {
      return {
        accountId: id,
        async claims() {
          return {
            sub: `upstream-${id}`,
            email: `${id}@upstream.example`,
            email_verified: true,
            preferred_username: id,
            name: `${id[0].toUpperCase()}${id.slice(1)} Upstream`,
          };
        },
      };
    },
    claims: {
      openid: ['sub'],
      email: ['email', 'email_verified'],
      profile: ['name', 'preferred_username'],
    },
    pkce: { required: () => true },
    features: { devInteractions: { enabled: true } },
    cookies: { keys: ['e2e-upstream-cookie-key'] },
  });
  provider.on('server_error', (_ctx, err) => console.error('oidc-provider server_error', err));
  srv.on('request', provider.callback());
  srv.keepAliveTimeout = 500;
  return {
    url,
    close() {
      srv.closeAllConnections?.();
      return new Promise((resolve) => srv.close(() => resolve()));
    },
  };
}

before(async () => {
  server = await startPortcullis();
  // `portcullis upstream` is wired into main.rs by the lead (see src/upstream/cli.rs).
  const probe = cli(server.dataDir, ['upstream', 'list'], { env: { PORTCULLIS_PUBLIC_URL: server.url } });
  if (probe.status !== 0) {
    supported = false;
    return;
  }
  upstream = await startUpstream(`${server.url}/login/upstream/callback`);
  const add = cli(server.dataDir, [
    'upstream', 'add', '--slug', 'upstream', '--name', 'Upstream ID', '--issuer', upstream.url,
    '--client-id', 'portcullis', '--client-secret-stdin', '--policy', 'create',
    '--default-group', 'family', '--icon', ICON, '--json',
  ], { stdin: `${UPSTREAM_SECRET}\n`, env: { PORTCULLIS_PUBLIC_URL: server.url } });
  assert.equal(add.status, 0, `upstream add failed:\n${add.stderr}\n${add.stdout}`);
  const added = JSON.parse(add.stdout);
  assert.equal(added.redirect_uri, `${server.url}/login/upstream/callback`);
  assert.equal(added.has_client_secret, true);
  rp = await startRp();
  app = addClient(server, { name: 'Photos', redirectUris: [`${rp.url}/cb`] });
  addUser(server, { username: 'alice' });
  addUser(server, { username: 'root', admin: true });
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await rp?.close();
  await upstream?.close();
  await server?.stop();
});

function authorizeUrl(extra = {}) {
  const u = new URL(`${server.url}/authorize`);
  const params = {
    response_type: 'code',
    client_id: app.client_id,
    redirect_uri: `${rp.url}/cb`,
    scope: 'openid profile email',
    state: 'app-state',
    nonce: 'app-nonce',
    // RFC 7636 Appendix B
    code_challenge: 'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM',
    code_challenge_method: 'S256',
    ...extra,
  };
  for (const [k, v] of Object.entries(params)) u.searchParams.set(k, v);
  return u.href;
}

/** At oidc-provider's development pages: sign in as `login`, then confirm the consent. */
async function signInUpstream(page, login) {
  await page.waitForLoadState('load');
  assert.ok(page.url().startsWith(upstream.url), `expected the upstream, at ${page.url()}`);
  await page.locator('input[name="login"]').fill(login);
  await page.locator('input[name="password"]').fill('any');
  await clickAndWait(page, page.locator('button[type="submit"]'));
  if (page.url().startsWith(upstream.url)) {
    // consent prompt
    await clickAndWait(page, page.locator('button[type="submit"]'));
  }
}

/** From wherever the browser is on Portcullis, allow consent and return the RP callback URL. */
async function finishAtPortcullis(page) {
  for (let i = 0; i < 4; i++) {
    await page.waitForLoadState('load');
    const here = page.url();
    if (here.startsWith(`${rp.url}/cb`)) return here;
    if (new URL(here).pathname === '/consent') {
      await clickAndWait(page, page.getByRole('button', { name: 'Allow', exact: true }));
      continue;
    }
    const text = (await page.locator('body').innerText().catch(() => '')).replace(/\s+/g, ' ');
    assert.fail(`unexpected page ${here}: ${text.slice(0, 400)}`);
  }
  assert.fail(`did not reach the app; at ${page.url()}`);
}

async function redeem(callback) {
  const code = new URL(callback).searchParams.get('code');
  assert.ok(code, `no code in ${callback}`);
  const r = await postForm(`${server.url}/token`, {
    grant_type: 'authorization_code',
    code,
    redirect_uri: `${rp.url}/cb`,
    code_verifier: 'dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk',
  }, { headers: { authorization: basicAuth(app.client_id, app.client_secret) } });
  assert.equal(r.status, 200, r.text);
  return decodeJwt(r.json.id_token).payload;
}

test('the sign-in page offers the upstream provider, and signing in through it reaches the app as a new local user', T, async (t) => {
  if (!supported) return t.skip('`portcullis upstream` is not wired into main.rs yet');
  const page = await newPage(browser, server);
  await page.goto(authorizeUrl());
  await assertAt(page, '/login');
  const button = page.getByRole('link', { name: 'Continue with Upstream ID' });
  assert.equal(await button.count(), 1, 'one button for the provider');
  assert.equal(await button.locator('img').getAttribute('src'), ICON);
  await page.emulateMedia({ colorScheme: 'light', reducedMotion: 'reduce' });
  await screenshot(page, 'login-upstream');
  await page.emulateMedia({ colorScheme: 'dark', reducedMotion: 'reduce' });
  await screenshot(page, 'login-upstream-dark');
  await page.emulateMedia({ colorScheme: 'light', reducedMotion: 'reduce' });

  await clickAndWait(page, button);
  await signInUpstream(page, 'dana');
  const callback = await finishAtPortcullis(page);
  const url = new URL(callback);
  assert.equal(url.searchParams.get('state'), 'app-state');
  const claims = await redeem(callback);
  assert.notEqual(claims.sub, 'upstream-dana', 'the local user id, not the upstream subject');
  assert.ok(claims.amr.includes('fed'), `amr ${JSON.stringify(claims.amr)}`);
  assert.equal(claims.email, 'dana@upstream.example');
  assert.equal(claims.preferred_username, 'dana');

  // The account exists locally, linked; the account page lists the link.
  const users = JSON.parse(cli(server.dataDir, ['user', 'list', '--json']).stdout);
  const dana = users.find((u) => u.username === 'dana');
  assert.ok(dana, JSON.stringify(users));
  assert.equal(dana.id, claims.sub);
  await page.goto(`${server.url}/account`);
  await assertAt(page, '/account');
  assert.ok((await page.getByRole('heading', { name: 'Linked sign-ins' }).count()) === 1);
  await screenshot(page, 'account-linked-sign-ins');
  await page.context().close();
});

test('a second sign-in finds the same user, and kc_idp_hint goes straight to the provider', T, async (t) => {
  if (!supported) return t.skip('`portcullis upstream` is not wired into main.rs yet');
  const page = await newPage(browser, server);
  await page.goto(authorizeUrl({ kc_idp_hint: 'upstream' }));
  await signInUpstream(page, 'dana');
  const claims = await redeem(await finishAtPortcullis(page));
  const users = JSON.parse(cli(server.dataDir, ['user', 'list', '--json']).stdout);
  assert.equal(users.filter((u) => u.username.startsWith('dana')).length, 1, 'no second account');
  assert.equal(claims.sub, users.find((u) => u.username === 'dana').id);
  await page.context().close();
});

test('cancelling at the provider ends on a clear page that leads back to the sign-in page', T, async (t) => {
  if (!supported) return t.skip('`portcullis upstream` is not wired into main.rs yet');
  const page = await newPage(browser, server);
  await page.goto(authorizeUrl());
  await clickAndWait(page, page.getByRole('link', { name: 'Continue with Upstream ID' }));
  assert.ok(page.url().startsWith(upstream.url));
  // oidc-provider's development page links to its abort endpoint ("[ Cancel ]").
  const abort = page.locator('a[href*="/abort"]');
  await clickAndWait(page, abort);
  await page.waitForLoadState('load');
  assert.equal(new URL(page.url()).pathname, '/login/upstream/callback');
  assert.equal(await page.getByRole('heading', { name: 'Sign-in cancelled' }).count(), 1);
  await screenshot(page, 'upstream-cancelled');
  await clickAndWait(page, page.getByRole('link', { name: 'Go back' }));
  await assertAt(page, '/login');
  // Back on the same request: a password sign-in still completes it.
  await fillLogin(page, 'alice');
  const claims = await redeem(await finishAtPortcullis(page));
  assert.deepEqual(claims.amr, ['pwd']);
  await page.context().close();
});

test('an administrator adds an OpenID Connect provider in the console, and a new person signs in through it', T, async (t) => {
  if (!supported) return t.skip('`portcullis upstream` is not wired into main.rs yet');
  const admin = await newPage(browser, server);
  await admin.emulateMedia({ colorScheme: 'light', reducedMotion: 'reduce' });
  await admin.goto(`${server.url}/admin/upstream`);
  await assertAt(admin, '/login');
  await fillLogin(admin, 'root');
  await assertAt(admin, '/admin/upstream');
  const nav = admin.getByRole('navigation', { name: 'Administration' });
  assert.equal(await nav.getByRole('link', { name: 'Sign-in providers', exact: true }).count(), 1);
  assert.match(await text(admin), /Upstream ID/, 'the provider added with the CLI is listed');
  await screenshot(admin, 'admin-upstream-list');
  await admin.emulateMedia({ colorScheme: 'dark', reducedMotion: 'reduce' });
  await screenshot(admin, 'admin-upstream-list-dark');
  await admin.emulateMedia({ colorScheme: 'light', reducedMotion: 'reduce' });

  await clickAndWait(admin, admin.getByRole('link', { name: 'Add provider' }).first());
  await assertAt(admin, '/admin/upstream/new');
  await screenshot(admin, 'admin-upstream-choose');
  await clickAndWait(admin, admin.getByRole('link', { name: 'Set up OpenID Connect' }));
  assert.equal((await admin.locator('#redirect-uri').innerText()).trim(), `${server.url}/login/upstream/callback`);
  await admin.getByLabel('Name', { exact: true }).fill('Console IdP');
  await admin.getByLabel('Short name', { exact: true }).fill('console');
  await admin.getByLabel('Issuer URL').fill(upstream.url);
  await admin.getByLabel('Client ID', { exact: true }).fill(CONSOLE_CLIENT.id);
  await admin.getByLabel('Client secret').fill(CONSOLE_CLIENT.secret);
  await admin.getByLabel('Make a new account for everyone new').check();
  await screenshot(admin, 'admin-upstream-new');
  await clickAndWait(admin, admin.getByRole('button', { name: 'Add provider', exact: true }));
  await assertAt(admin, '/admin/upstream/console');
  assert.match(await text(admin), /The provider is added/);
  assert.ok(!(await admin.content()).includes(CONSOLE_CLIENT.secret), 'the secret is never shown back');

  // A person new to Portcullis signs in through it from an app.
  const page = await newPage(browser, server);
  await page.goto(authorizeUrl());
  await assertAt(page, '/login');
  const button = page.getByRole('link', { name: 'Continue with Console IdP' });
  assert.equal(await button.count(), 1, 'the new provider has its button');
  await clickAndWait(page, button);
  await signInUpstream(page, 'erin');
  const claims = await redeem(await finishAtPortcullis(page));
  assert.equal(claims.email, 'erin@upstream.example');
  assert.ok(claims.amr.includes('fed'), `amr ${JSON.stringify(claims.amr)}`);
  // Made just in time without a password: the account page offers to set one.
  await page.goto(`${server.url}/account`);
  await page.emulateMedia({ colorScheme: 'light', reducedMotion: 'reduce' });
  assert.equal(await page.getByRole('heading', { name: 'Set a password' }).count(), 1);
  assert.equal(await page.getByLabel('Current password').count(), 0);
  await screenshot(page, 'account-set-password');
  await page.context().close();

  // The provider page lists her; her user page lists the link, with Unlink.
  await admin.goto(`${server.url}/admin/upstream/console`);
  const person = admin.locator('table.list a', { hasText: 'Erin Upstream' });
  assert.equal(await person.count(), 1, await text(admin));
  await screenshot(admin, 'admin-upstream-provider');
  await admin.emulateMedia({ colorScheme: 'dark', reducedMotion: 'reduce' });
  await screenshot(admin, 'admin-upstream-provider-dark');
  await admin.emulateMedia({ colorScheme: 'light', reducedMotion: 'reduce' });
  await clickAndWait(admin, person);
  assert.equal(new URL(admin.url()).pathname, `/admin/users/${claims.sub}`);
  const linked = admin.locator('#linked');
  assert.match(await linked.innerText(), /Console IdP/);
  assert.match(await linked.innerText(), /erin@upstream.example/);
  assert.equal(await linked.getByRole('button', { name: 'Unlink Console IdP' }).count(), 1);
  await linked.scrollIntoViewIfNeeded();
  await screenshot(admin, 'admin-user-linked-sign-ins');
  // Her only way in: the console refuses to unlink it, and says why.
  await clickAndWait(admin, linked.getByRole('button', { name: 'Unlink Console IdP' }));
  assert.match(await text(admin), /only way to sign in/);
  await screenshot(admin, 'admin-user-unlink-refused');
  assert.match(await linked.innerText(), /Console IdP/);

  // The delete confirmation says who would be left without a way in.
  await admin.goto(`${server.url}/admin/upstream/console/delete`);
  assert.match(await text(admin), /1 linked sign-in is removed/);
  assert.match(await text(admin), /1 person has no other way to sign in/);
  await screenshot(admin, 'admin-upstream-delete');
  await admin.context().close();
});
