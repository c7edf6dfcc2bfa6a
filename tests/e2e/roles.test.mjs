// An application's roles in the console, in Chromium: define one, grant it from the list,
// see it on the person's page, delete it only after the confirmation; the app page's
// Grafana block built from the roles; the audit page filtered by a pattern. Each page at
// 390 px and 1280 px, light and dark, with axe-core.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startPortcullis, launchBrowser, cli } from './lib.mjs';
import { addUser, addClient, fillLogin, newPage, assertAt, clickAndWait, look } from './helpers.mjs';

const T = { timeout: 120_000 };

let server;
let browser;
let page;
let app;
let alice;

before(async () => {
  server = await startPortcullis();
  browser = await launchBrowser();
  addUser(server, { username: 'ada', name: 'Ada Admin', admin: true });
  alice = addUser(server, { username: 'alice', name: 'Alice Example' });
  app = addClient(server, { name: 'Grafana', redirectUris: ['https://grafana.example.com/login/generic_oauth'] });
  for (const args of [
    ['group', 'add', 'editors'],
    ['role', 'add', '--app', app.client_id, 'Admin', '--description', 'Everything, including users and data sources'],
    ['role', 'add', '--app', app.client_id, 'Viewer'],
    ['role', 'grant', '--app', app.client_id, '--group', 'editors', 'Viewer'],
  ]) {
    const r = cli(server.dataDir, args);
    assert.equal(r.status, 0, r.stderr);
  }
  page = await newPage(browser, server);
  await page.goto(`${server.url}/login?next=/admin`);
  await fillLogin(page, 'ada');
  await assertAt(page, '/admin');
});

after(async () => {
  await browser?.close();
  await server?.stop();
});

test('define, grant, show and delete a role through the Roles tab', T, async () => {
  const tab = `${server.url}/admin/apps/${app.client_id}/roles`;
  await page.goto(`${server.url}/admin/apps/${app.client_id}`);
  await clickAndWait(page, page.getByRole('link', { name: 'Roles', exact: true }));
  await assertAt(page, `/admin/apps/${app.client_id}/roles`);

  // A name with a space: refused, what was typed kept, the field named.
  await page.getByLabel('Name', { exact: true }).fill('Read only');
  await page.getByLabel('Description (optional)').fill('Looks at dashboards');
  await clickAndWait(page, page.getByRole('button', { name: 'Add role' }));
  assert.match(await page.locator('.field-error').innerText(), /cannot contain spaces or commas/);
  assert.equal(await page.getByLabel('Description (optional)').inputValue(), 'Looks at dashboards');
  await page.getByLabel('Name', { exact: true }).fill('Editor');
  await clickAndWait(page, page.getByRole('button', { name: 'Add role' }));
  assert.match(await page.locator('.alert').first().innerText(), /The role is added/);

  // Grant Editor to Alice from the list.
  await page.getByLabel('Person or group to grant Editor to').selectOption({ label: 'Alice Example (alice)' });
  await clickAndWait(page, page.getByRole('button', { name: 'Grant Editor' }));
  assert.match(await page.locator('.alert').first().innerText(), /The role is granted/);
  const editor = page.locator('section.role', { has: page.getByRole('heading', { name: 'Editor' }) });
  assert.match(await editor.locator('table').innerText(), /Alice Example/);

  await look(page.context(), tab, 'admin-app-roles', async (p) => {
    assert.equal(await p.locator('section.role').count(), 3);
  });
  await look(page.context(), `${server.url}/admin/users/${alice.id}`, 'admin-user-roles', async (p) => {
    assert.match(await p.locator('section', { has: p.getByRole('heading', { name: 'Roles in apps' }) }).innerText(), /Grafana\s+Editor/);
  });
  await look(page.context(), `${server.url}/admin/apps/${app.client_id}`, 'admin-app-grafana-roles', async (p) => {
    const block = await p.locator('pre', { hasText: 'role_attribute_path' }).innerText();
    assert.match(block, /role_attribute_path = contains\(roles\[\*\], 'Admin'\) && 'Admin' \|\| contains\(roles\[\*\], 'Editor'\) && 'Editor' \|\| contains\(roles\[\*\], 'Viewer'\) && 'Viewer'\n/);
    assert.match(block, /role_attribute_strict = true/);
  });

  // Delete: the confirmation page first; the role goes, and Alice's grant with it.
  await page.goto(tab);
  await clickAndWait(page, editor.getByRole('link', { name: 'Delete role…' }));
  await look(page.context(), page.url(), 'admin-role-delete');
  await page.getByLabel('Yes, delete Editor and revoke it from everyone').check();
  await clickAndWait(page, page.getByRole('button', { name: 'Delete role' }));
  assert.match(await page.locator('.alert').first().innerText(), /The role is deleted/);
  assert.equal(await page.locator('section.role').count(), 2);
  await page.goto(`${server.url}/admin/users/${alice.id}`);
  assert.match(await page.locator('body').innerText(), /They hold no role in any app/);
});

test('the audit page filters by pattern and names each kind in words', T, async () => {
  const url = `${server.url}/admin/audit?action=${encodeURIComponent('role.*')}&app=Grafana`;
  await look(page.context(), url, 'admin-audit-roles', async (p) => {
    const table = await p.locator('table.list').innerText();
    for (const words of ['Role defined', 'Role granted', 'Role deleted (and revoked from everyone)']) {
      assert.ok(table.includes(words), `${words} in the audit table`);
    }
    assert.ok(!table.includes('Application added'), 'only role events');
  });
});
