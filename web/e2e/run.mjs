// End-to-end test of the web client against the real stack, driven by
// playwright-core in Debian's Chromium (/usr/bin/chromium, or CHROMIUM).
//
//   npm run build && node e2e/run.mjs
//
// It starts a private stack (e2e/stack.mjs: fresh database, own NATS, own
// index prefix, free port), creates two tenants with random names, their
// users and a superuser with the saas CLI, plays the scenarios below in
// several browser contexts, writes screenshots to e2e/screenshots/, and
// undoes everything. The last line says how many steps passed and failed;
// the exit code is 1 if any failed.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { chromium } from 'playwright-core';
import { get, startStack, webDir } from './stack.mjs';

const chromiumPath = process.env.CHROMIUM ?? '/usr/bin/chromium';
const shots = path.join(webDir, 'e2e', 'screenshots');
const started = Date.now();
const results = [];
let stack = null;
let browser = null;

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const log = (m) => console.log(m);

/** until polls f until it returns a truthy value, else fails with what. */
async function until(what, f, ms = 20_000, every = 200) {
  const end = Date.now() + ms;
  let last;
  while (Date.now() < end) {
    try {
      const v = await f();
      if (v) return v;
    } catch (e) {
      last = e;
    }
    await sleep(every);
  }
  throw new Error(`timed out after ${ms} ms waiting for ${what}${last ? `: ${last.message}` : ''}`);
}

async function shot(page, name) {
  fs.mkdirSync(shots, { recursive: true });
  await page.screenshot({ path: path.join(shots, `${name}.png`) });
}

let failShots = 0;
/** step runs one scenario step and records it; a failure does not stop the run. */
async function step(name, f, pageForFailure) {
  const t0 = Date.now();
  try {
    await f();
    results.push({ name, ok: true });
    log(`  ✓ ${name} (${((Date.now() - t0) / 1000).toFixed(1)} s)`);
  } catch (e) {
    results.push({ name, ok: false });
    log(`  ✗ ${name} (${((Date.now() - t0) / 1000).toFixed(1)} s)\n      ${String(e?.stack ?? e).split('\n').slice(0, 4).join('\n      ')}`);
    if (pageForFailure) await shot(pageForFailure, `failed-${++failShots}`).catch(() => {});
  }
}

function finish(code) {
  const passed = results.filter((r) => r.ok).length;
  const failed = results.length - passed;
  const secs = ((Date.now() - started) / 1000).toFixed(1);
  log(`\ne2e: ${passed} passed, ${failed} failed (${secs} s)`);
  process.exit(code ?? (failed > 0 ? 1 : 0));
}

async function cleanup() {
  if (browser) await browser.close().catch(() => {});
  browser = null;
  if (stack) {
    const s = stack;
    stack = null;
    await s.stop();
  }
}

for (const sig of ['SIGINT', 'SIGTERM']) {
  process.on(sig, async () => {
    log(`\n${sig}: cleaning up`);
    await cleanup();
    finish(130);
  });
}

// ---- helpers on pages ------------------------------------------------------

async function signIn(page, url, email, password) {
  await page.goto(url);
  await page.getByLabel('Email').fill(email);
  await page.getByLabel('Password').fill(password);
  await page.getByRole('button', { name: 'Sign in' }).click();
}

/** unread returns the number on the bell (0 when it shows none). */
async function unread(page) {
  const badge = page.getByTestId('unread-count');
  return (await badge.count()) === 0 ? 0 : Number(await badge.textContent());
}

async function liveState(page) {
  const open = await page.getByRole('dialog', { name: 'Notifications' }).count();
  if (!open) await page.getByTestId('bell').click();
  const s = await page.getByTestId('live-state').textContent();
  if (!open) await page.getByTestId('bell').click();
  return s;
}

/** api calls the API from the page, with the page's session. */
function api(page, p, init = {}) {
  return page.evaluate(
    async ([p, init]) => {
      const key = Object.keys(localStorage).find((k) => k.startsWith('saas.session.'));
      const token = key ? JSON.parse(localStorage.getItem(key)).token : '';
      const res = await fetch(p, { ...init, headers: { ...(init.headers ?? {}), Authorization: `Bearer ${token}`, 'Content-Type': 'application/json' } });
      return { status: res.status, body: res.status === 204 ? null : await res.json() };
    },
    [p, init],
  );
}

/** overflowsAt reports whether the page is wider than its viewport (a sideways scroll). */
function overflows(page) {
  return page.evaluate(() => document.documentElement.scrollWidth > window.innerWidth + 1);
}

// ---- the run -----------------------------------------------------------------

async function main() {
  if (!fs.existsSync(chromiumPath)) throw new Error(`${chromiumPath} not found: apt-get install -y chromium (or set CHROMIUM)`);
  fs.rmSync(shots, { recursive: true, force: true });
  log('e2e: starting a private stack');
  stack = await startStack({ log: (m) => log(`  ${m}`) });
  const s = stack;
  const pw = 'correct-horse-9';
  const acme = { schema: `${s.prefix}_acme`, name: `Acme ${s.id}`, domain: `${s.prefix}-acme.localhost` };
  const globex = { schema: `${s.prefix}_globex`, name: `Globex ${s.id}`, domain: `${s.prefix}-globex.localhost` };
  const fresh = { schema: `${s.prefix}_fresh`, name: `Fresh ${s.id}`, domain: `${s.prefix}-fresh.localhost` };
  const alice = 'alice@acme.test';
  const bob = 'bob@acme.test';
  const carol = 'carol@acme.test';
  const dave = 'dave@globex.test';
  const root = `root-${s.id}@platform.test`;
  await s.createTenant(acme.schema, acme.name, acme.domain);
  await s.createTenant(globex.schema, globex.name, globex.domain);
  await s.createUser(acme.schema, alice, pw, true);
  await s.createUser(acme.schema, bob, pw, true);
  await s.createUser(acme.schema, carol, pw, false);
  await s.createUser(globex.schema, dave, pw, true);
  await s.createSuperuser(root, pw);
  log(`  stack on :${s.port}, tenants ${acme.schema} and ${globex.schema}`);

  browser = await chromium.launch({
    executablePath: chromiumPath,
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  const viewport = { width: 1000, height: 640 };
  const ctxA = await browser.newContext({ viewport });
  const ctxB = await browser.newContext({ viewport });
  const ctxC = await browser.newContext({ viewport });
  const ctxD = await browser.newContext({ viewport });
  const ctxP = await browser.newContext({ viewport });
  for (const c of [ctxA, ctxB, ctxC, ctxD, ctxP]) c.setDefaultTimeout(15_000);

  // B's WebSocket goes through a route the test can cut, to show that a
  // reconnect asks for since=<last id> and misses nothing.
  const bSockets = [];
  let bBlocked = false;
  await ctxB.routeWebSocket(/\/ws\/notifications\//, (ws) => {
    const entry = { url: ws.url(), ws };
    bSockets.push(entry);
    if (bBlocked) {
      ws.close({ code: 4000, reason: 'e2e: network down' });
      return;
    }
    ws.connectToServer();
  });

  const pageErrors = [];
  for (const c of [ctxA, ctxB, ctxC, ctxD, ctxP]) {
    c.on('page', (p) => p.on('pageerror', (e) => pageErrors.push(`${p.url()}: ${e.message}`)));
  }

  const acmeURL = s.url(acme.domain);
  const a = await ctxA.newPage();
  const b = await ctxB.newPage();
  const c = await ctxC.newPage();
  const d = await ctxD.newPage();
  const p = await ctxP.newPage();
  const sku = `KETTLE-${s.id}`.toUpperCase();
  const productName = `Teal kettle ${s.id}`;
  let productId = '';

  log('e2e: tenant side');
  await step('an unknown host gets the API’s JSON 404, not the client', async () => {
    const r = await get(s.port, `${s.prefix}-nobody.localhost`, '/');
    assert.equal(r.status, 404);
    assert.match(r.body, /"not_found"/);
    const api404 = await get(s.port, acme.domain, '/api/nothing/');
    assert.notEqual(api404.status, 200);
    assert.match(api404.headers['content-type'], /json/);
  });

  await step('sign-in says what is wrong, next to the field or plainly', async () => {
    await a.goto(acmeURL);
    await a.waitForURL(/\/signin$/);
    await a.getByRole('heading', { name: acme.name }).waitFor();
    await a.getByRole('button', { name: 'Sign in' }).click();
    await a.locator('[data-field-error=email]').filter({ hasText: 'Email must be a valid email address.' }).waitFor();
    await a.locator('[data-field-error=password]').filter({ hasText: 'Password is required.' }).waitFor();
    await shot(a, 'signin-errors');
    await a.getByLabel('Email').fill(alice);
    await a.getByLabel('Password').fill('wrong-password');
    await a.getByRole('button', { name: 'Sign in' }).click();
    await a.getByRole('alert').filter({ hasText: 'Invalid email or password.' }).waitFor();
    await a.getByLabel('Password').fill(pw);
    await a.getByRole('button', { name: 'Sign in' }).click();
    await a.getByRole('heading', { name: 'Products', exact: true }).waitFor();
    await a.getByText('No products yet.').waitFor();
  }, a);

  await step('staff B, non-staff C and the other tenant’s D sign in; their bells are empty and live', async () => {
    await signIn(b, acmeURL, bob, pw);
    await signIn(c, acmeURL, carol, pw);
    await signIn(d, s.url(globex.domain), dave, pw);
    for (const pg of [a, b, c, d]) {
      await pg.getByRole('heading', { name: 'Products', exact: true }).waitFor();
      await until('the bell to be live', async () => (await liveState(pg)) === 'Live', 15_000);
      assert.equal(await unread(pg), 0);
    }
    assert.equal(await c.getByRole('link', { name: 'New product' }).count(), 0, 'non-staff see no New product');
    assert.equal(await c.getByRole('link', { name: 'Users' }).count(), 0, 'non-staff see no admin');
  }, b);

  await step('A creates a product; a bad price is refused next to the price field first', async () => {
    await a.getByRole('link', { name: 'New product' }).first().click();
    await a.getByLabel('SKU').fill(sku);
    await a.getByLabel('Name').fill(productName);
    await a.getByLabel('Description').fill('Two litres, whistles when ready.');
    await a.getByLabel('Price').fill('12.345');
    await a.getByLabel('Stock').fill('7');
    await a.getByRole('button', { name: 'Create' }).click();
    await a.locator('[data-field-error=price]').waitFor();
    assert.equal(await a.locator('[data-field-error]').count(), 1, 'only the price is wrong');
    await a.getByLabel('Price').fill('34.50');
    await a.getByRole('button', { name: 'Create' }).click();
    await a.getByText(`Created ${sku}.`).waitFor();
    const row = a.locator(`tr[data-sku="${sku}"]`);
    await row.waitFor();
    productId = (await row.getByRole('link').getAttribute('href')).split('/').pop();
    assert.match(productId, /^[0-9a-f-]{36}$/);
    await shot(a, 'products-staff');
  }, a);

  await step('B’s bell shows the new product without a reload; B’s list shows it too', async () => {
    await until('B’s bell to count 1', async () => (await unread(b)) === 1);
    await b.getByTestId('bell').click();
    await b.getByTestId('notification').filter({ hasText: `New product: ${productName}` }).waitFor();
    await b.locator(`tr[data-sku="${sku}"]`).waitFor();
    await shot(b, 'products-live');
    await b.getByTestId('bell').click();
  }, b);

  await step('the non-staff user’s bell stays empty (staff only are notified)', async () => {
    await sleep(1500);
    assert.equal(await unread(c), 0);
    await c.getByTestId('bell').click();
    await c.getByText('No notifications yet.').waitFor();
    await c.getByTestId('bell').click();
  }, c);

  await step('the search box finds the product as one types, debounced', async () => {
    const searches = [];
    const onReq = (r) => r.url().includes('/api/catalog/products/search/') && searches.push(r.url());
    a.on('request', onReq);
    const box = a.getByRole('combobox', { name: 'Search products' });
    const word = `kettle ${s.id}`;
    // Indexing follows the write by a moment: type again until it is found.
    await until(
      'the product in the search results',
      async () => {
        await box.fill('');
        await box.pressSequentially(word, { delay: 40 });
        const item = a.getByRole('option').filter({ hasText: productName });
        try {
          await item.waitFor({ timeout: 2500 });
          return true;
        } catch {
          return false;
        }
      },
      25_000,
      0,
    );
    // One request per pause in typing, not one per key (the last round of typing).
    const last = searches.filter((u) => new URL(u).searchParams.get('q') === word);
    assert.ok(last.length >= 1, 'a search for the whole word was sent');
    const partial = searches.filter((u) => word.startsWith(new URL(u).searchParams.get('q') ?? '') && new URL(u).searchParams.get('q') !== word);
    assert.ok(partial.length <= searches.length / 2, `typing ${word.length} keys sent ${searches.length} searches in all`);
    a.off('request', onReq);
    await shot(a, 'search');
    await a.getByRole('option').filter({ hasText: productName }).click();
    await a.getByRole('heading', { name: `Edit ${productName}` }).waitFor();
  }, a);

  await step('B misses nothing while disconnected: the reconnect asks since=<last id>', async () => {
    const mine = await api(b, '/api/notifications/');
    const lastId = Math.max(...mine.body.results.map((n) => n.id));
    bBlocked = true;
    const before = bSockets.length;
    bSockets[bSockets.length - 1].ws.close({ code: 4000, reason: 'e2e: network down' });
    await until('B to notice the drop', async () => /Connection lost|Reconnecting/.test(await liveState(b)));
    // While B is away, A creates a second product.
    const r = await api(a, '/api/catalog/products/', { method: 'POST', body: JSON.stringify({ sku: `${sku}-2`, name: `${productName} (large)`, price: '41.00', currency: 'EUR', stock: 1 }) });
    assert.equal(r.status, 201);
    await until('bob’s notification row to exist', async () => (await api(b, '/api/notifications/')).body.results.length === 2);
    assert.equal(await unread(b), 1, 'nothing live while disconnected');
    bBlocked = false;
    await until('B to reconnect and catch up', async () => (await unread(b)) === 2, 40_000);
    const retried = bSockets.slice(before);
    assert.ok(retried.length >= 1);
    for (const r of retried) assert.equal(new URL(r.url).searchParams.get('since'), String(lastId), 'every retry asks for what came after the last id seen');
    await b.getByTestId('bell').click();
    assert.equal(await b.getByTestId('notification').filter({ hasText: '(large)' }).count(), 1, 'the missed one, once');
    assert.equal(await b.getByTestId('notification').count(), 2);
    assert.equal(await liveState(b), 'Live');
    await b.getByTestId('bell').click();
  }, b);

  await step('B marks a notification read, then all', async () => {
    await b.getByTestId('bell').click();
    await b.getByRole('button', { name: `Mark “New product: ${productName}” read` }).click();
    await until('the count to drop to 1', async () => (await unread(b)) === 1);
    await b.getByRole('button', { name: 'Mark all read' }).click();
    await until('the count to drop to 0', async () => (await unread(b)) === 0);
    const mine = await api(b, '/api/notifications/?unread=true');
    assert.equal(mine.body.results.length, 0, 'read on the server too');
    await b.getByTestId('bell').click();
  }, b);

  await step('the tenant moves to the other PostgreSQL cluster while B is signed in; B is notified before and after', async () => {
    const clusterOf = async () => /^cluster\s+(\S+)/m.exec(await s.saas('tenant', 'show', '--schema', acme.schema))[1];
    const from = await clusterOf();
    const to = from === 'main' ? 'pg2' : 'main';
    // A write caught by the switch is answered 503 with a Retry-After;
    // like any client, A tries again.
    const made = [];
    const create = (suffix) =>
      until(`A’s create of ${suffix}`, async () => {
        const r = await api(a, '/api/catalog/products/', {
          method: 'POST',
          body: JSON.stringify({ sku: `${sku}-${suffix}`, name: `${productName} ${suffix}`, price: '9.00', currency: 'EUR', stock: 1 }),
        });
        if (r.status === 503) return false;
        assert.equal(r.status, 201, JSON.stringify(r.body));
        made.push(r.body.id);
        return true;
      }, 20_000, 1000);
    const before = await unread(b);
    await create('BM');
    await until('B’s bell to count the one made before the move', async () => (await unread(b)) === before + 1);
    const out = await s.saas('tenant', 'move', '--schema', acme.schema, '--to', to);
    assert.match(out, new RegExp(`moved tenant ${acme.schema} from ${from} to ${to}`));
    assert.equal(await clusterOf(), to);
    await create('AM');
    await until('B’s bell to count the one made after the move', async () => (await unread(b)) === before + 2, 30_000);
    assert.equal(await liveState(b), 'Live');
    await b.getByTestId('bell').click();
    await b.getByTestId('notification').filter({ hasText: `${productName} AM` }).waitFor();
    await b.getByRole('button', { name: 'Mark all read' }).click();
    await until('B’s bell to be empty again', async () => (await unread(b)) === 0);
    await b.getByTestId('bell').click();
    // The later steps count the products: these two go.
    for (const id of made) assert.equal((await api(a, `/api/catalog/products/${id}/`, { method: 'DELETE' })).status, 204);
    log(`    moved ${acme.schema} from ${from} to ${to}`);
  }, b);

  await step('A edits while a stale form is open in another tab, and sees the conflict plainly', async () => {
    const a2 = await ctxA.newPage();
    await a2.goto(s.url(acme.domain, `/products/${productId}`));
    await a2.getByRole('heading', { name: `Edit ${productName}` }).waitFor();
    // a (the first tab) has had the form open since the search: it is about to be stale.
    await a2.getByLabel('Price').fill('29.90');
    await a2.getByRole('button', { name: 'Save' }).click();
    await a2.getByText(`Saved ${sku}.`).waitFor();
    await a.getByLabel('Name').fill(`${productName} (renamed)`);
    await a.getByRole('button', { name: 'Save' }).click();
    const conflict = a.getByTestId('conflict');
    await conflict.waitFor();
    assert.match(await conflict.textContent(), /Someone else saved this product first\./);
    await shot(a, 'conflict');
    await a.getByRole('button', { name: 'Reload their version' }).click();
    await until('their price in the form', async () => (await a.getByLabel('Price').inputValue()) === '29.90');
    assert.equal(await a.getByLabel('Name').inputValue(), productName);
    await a.getByLabel('Name').fill(`${productName} (renamed)`);
    await a.getByRole('button', { name: 'Save' }).click();
    await a.getByText(`Saved ${sku}.`).waitFor();
    await a.locator(`tr[data-sku="${sku}"]`).filter({ hasText: '(renamed)' }).waitFor();
    await a2.close();
  }, a);

  await step('A edits a product; its History panel shows the change with A’s email', async () => {
    const note = `Audited ${s.id}`;
    await a.goto(s.url(acme.domain, `/products/${productId}`));
    await a.getByRole('button', { name: 'Save' }).waitFor();
    await a.getByLabel('Description').fill(note);
    await a.getByRole('button', { name: 'Save' }).click();
    await a.getByText(`Saved ${sku}.`).waitFor();
    await a.goto(s.url(acme.domain, `/products/${productId}`));
    const history = a.getByRole('region', { name: 'History' });
    const change = history.locator('li.history-item[data-action="product.update"]').filter({ hasText: `description: ` }).filter({ hasText: `→ ${note}` });
    await change.waitFor();
    const text = await change.textContent();
    assert.ok(text.includes(`update by ${alice}`), `the change names its author: ${text}`);
    await history.locator('li.history-item[data-action="product.create"]').filter({ hasText: alice }).waitFor();
    await shot(a, 'product-history');
  }, a);

  await step('the other tenant’s user sees none of it', async () => {
    await d.reload();
    await d.getByText('No products yet.').waitFor();
    assert.equal(await unread(d), 0);
    const box = d.getByRole('combobox', { name: 'Search products' });
    await box.fill('kettle');
    await d.getByText('No products match “kettle”.').waitFor();
    const other = await api(d, `/api/catalog/products/${productId}/`);
    assert.equal(other.status, 404);
    await shot(d, 'other-tenant');
  }, d);

  await step('tenant admin: create a user (field error first), deactivate, reset password', async () => {
    await a.getByRole('link', { name: 'Users' }).click();
    await a.getByRole('heading', { name: 'Users', exact: true }).waitFor();
    const form = a.getByRole('form', { name: 'New user' });
    await form.getByLabel('Email').fill('erin@acme.test');
    await form.getByLabel('Password').fill('short');
    await form.getByRole('button', { name: 'Create user' }).click();
    await form.locator('[data-field-error=password]').waitFor();
    await form.getByLabel('Password').fill('long-enough-1');
    await form.getByRole('button', { name: 'Create user' }).click();
    await form.getByText('Created erin@acme.test.').waitFor();
    const erin = a.locator('li[data-email="erin@acme.test"]');
    await erin.waitFor();
    await erin.getByRole('button', { name: 'Deactivate' }).click();
    await erin.getByText('deactivated').first().waitFor();
    await erin.getByRole('button', { name: 'Reset password' }).click();
    await erin.getByLabel('New password', { exact: true }).fill('another-pass-2');
    await erin.getByRole('button', { name: 'Set password', exact: true }).click();
    await erin.getByText('Password changed.').waitFor();
    // Your own staff flag cannot be dropped: said in your row.
    const me = a.locator(`li[data-email="${alice}"]`);
    await me.getByRole('button', { name: 'Revoke staff' }).click();
    await me.getByRole('alert').waitFor();
    await shot(a, 'admin-users');
    await a.getByRole('link', { name: 'Notifications' }).click();
    await a.locator('tbody tr').filter({ hasText: `New product: ${productName}` }).first().waitFor();
  }, a);

  await step('delete asks first, then the product is gone', async () => {
    await a.getByRole('link', { name: 'Products' }).click();
    const row = a.locator(`tr[data-sku="${sku}-2"]`);
    await row.waitFor();
    await row.getByRole('button', { name: 'Delete' }).click();
    const dialog = a.getByRole('dialog', { name: 'Delete this product?' });
    await dialog.waitFor();
    await dialog.getByRole('button', { name: 'Cancel' }).click();
    await row.waitFor();
    await row.getByRole('button', { name: 'Delete' }).click();
    await dialog.getByRole('button', { name: 'Delete' }).click();
    await row.waitFor({ state: 'detached' });
  }, a);

  await step('staff select three products and delete them at once, after a confirm', async () => {
    const bulk = [];
    for (let i = 1; i <= 3; i++) {
      const r = await api(a, '/api/catalog/products/', { method: 'POST', body: JSON.stringify({ sku: `BULK-${s.id}-${i}`, name: `Bulk item ${i}`, price: '1.00', currency: 'EUR' }) });
      assert.equal(r.status, 201);
      bulk.push(r.body);
    }
    await a.reload();
    const rows = bulk.map((p) => a.locator(`tr[data-sku="${p.sku}"]`));
    for (const row of rows) await row.waitFor();
    for (const p of bulk) await a.getByRole('checkbox', { name: `Select ${p.sku}`, exact: true }).check();
    await a.getByText('3 selected').waitFor();
    await a.getByRole('button', { name: 'Delete selected' }).click();
    const dialog = a.getByRole('dialog', { name: 'Delete 3 products?' });
    await dialog.waitFor();
    await dialog.getByRole('button', { name: 'Delete them' }).click();
    await a.getByText('Deleted 3 products.').waitFor();
    for (const row of rows) await row.waitFor({ state: 'detached' });
    for (const p of bulk) assert.equal((await api(a, `/api/catalog/products/${p.id}/`)).status, 404);
    // The next step starts from the list as a fresh visit shows it.
    await a.reload();
    await a.getByTestId('products-table').waitFor();
  }, a);

  await step('the table sorts by a column and pages with the next cursor', async () => {
    const skus = [];
    for (let i = 1; i <= 12; i++) {
      const n = String(i).padStart(2, '0');
      skus.push(`PAGE-${s.id}-${n}`);
      const r = await api(a, '/api/catalog/products/', { method: 'POST', body: JSON.stringify({ sku: skus[i - 1], name: `Page item ${n}`, price: `${i}.00`, currency: 'EUR' }) });
      assert.equal(r.status, 201);
    }
    await a.getByLabel('Per page').selectOption('10');
    const table = a.getByTestId('products-table');
    const rows = table.locator('tbody tr');
    const firstSku = () => rows.first().getAttribute('data-sku');
    // By SKU: the kettle (K...) first, then PAGE-...-01 to -12. (Not by
    // price here: the API's ordering=price sorts the first page as text.)
    await table.getByRole('button', { name: 'SKU' }).click();
    // The sort state follows the click once React has re-rendered (the
    // page-size change just before re-renders the table too).
    await until('sorted by SKU, ascending', async () => (await table.locator('th', { hasText: 'SKU' }).getAttribute('aria-sort')) === 'ascending');
    // The new products reach the list as their events are handled.
    await until('a full first page, the kettle first', async () => (await rows.count()) === 10 && (await firstSku()) === sku, 20_000);
    assert.equal(await rows.nth(1).getAttribute('data-sku'), skus[0]);
    await a.getByRole('button', { name: 'Next →' }).click();
    await a.getByText('Page 2').waitFor();
    await until('the last three on page 2', async () => (await rows.count()) === 3 && (await firstSku()) === skus[9]);
    assert.equal(await rows.last().getAttribute('data-sku'), skus[11]);
    assert.equal(await a.getByRole('button', { name: 'Next →' }).isDisabled(), true);
    await a.getByRole('button', { name: 'Previous' }).click();
    await until('page 1 again', async () => (await firstSku()) === sku);
    await table.getByRole('button', { name: 'SKU' }).click();
    await until('sorted by SKU, descending', async () => (await table.locator('th', { hasText: 'SKU' }).getAttribute('aria-sort')) === 'descending');
    await until('the last SKU first', async () => (await firstSku()) === skus[11]);
    await shot(a, 'products-sorted');
  }, a);

  await step('staff import a CSV: a bad row is shown by its line and nothing is imported; a good file shows the counts', async () => {
    await a.getByRole('link', { name: 'Products' }).click();
    const header = 'sku,name,description,price,currency,stock\n';
    const good = `IMP-${s.id}-1,Imported lamp,"says ""hi""",12.5,EUR,3\n`;
    await a.getByTestId('import-file').setInputFiles({
      name: 'bad.csv',
      mimeType: 'text/csv',
      buffer: Buffer.from(header + good + `IMP-${s.id}-2,Imported chair,,free,EUR,1\n`),
    });
    const line = a.getByTestId('import-errors').locator('li[data-line="3"]');
    await line.waitFor();
    assert.match(await line.innerText(), /Line 3: price: must be/);
    await shot(a, 'import-bad-line');
    const before = await api(a, `/api/admin/products/?ordering=sku&limit=100`);
    assert.equal(before.body.results.filter((x) => x.sku.startsWith(`IMP-${s.id}`)).length, 0);
    await a.getByTestId('import-file').setInputFiles({ name: 'good.csv', mimeType: 'text/csv', buffer: Buffer.from(header + good) });
    await a.getByText('Imported: 1 created, 0 updated.').waitFor();
    const after = await api(a, `/api/admin/products/?ordering=sku&limit=100`);
    assert.equal(after.body.results.filter((x) => x.sku === `IMP-${s.id}-1`).length, 1);
  }, a);

  await step('at 360 px wide nothing scrolls sideways', async () => {
    for (const [ctx, url, name] of [
      [ctxA, acmeURL, 'mobile-products'],
      [ctxA, s.url(acme.domain, `/products/${productId}`), 'mobile-edit'],
      [ctxA, s.url(acme.domain, '/admin/users'), 'mobile-users'],
      [ctxP, s.url('localhost'), 'mobile-signin'],
    ]) {
      const m = await ctx.newPage();
      await m.setViewportSize({ width: 360, height: 740 });
      await m.goto(url);
      await m.locator('h1').first().waitFor();
      await m.waitForLoadState('networkidle').catch(() => {});
      if (name === 'mobile-products') {
        await m.getByTestId('bell').click();
        await m.getByRole('dialog', { name: 'Notifications' }).waitFor();
      }
      assert.equal(await overflows(m), false, `${url} is wider than 360 px`);
      await shot(m, name);
      await m.close();
    }
  }, a);

  log('e2e: platform admin');
  await step('the superuser signs in on the public domain and sees the tenants', async () => {
    await signIn(p, s.url('localhost'), root, pw);
    await p.getByRole('heading', { name: 'Tenants', exact: true }).waitFor();
    await p.locator(`tr[data-schema="${acme.schema}"]`).waitFor();
    await p.locator(`tr[data-schema="${globex.schema}"]`).waitFor();
  }, p);

  await step('a bad schema is refused next to its field', async () => {
    const form = p.getByRole('form', { name: 'New tenant' });
    await form.getByLabel('Schema').fill('pg_nope');
    await form.getByLabel('Name').fill('Nope');
    await form.getByRole('button', { name: 'Create tenant' }).click();
    await form.locator('[data-field-error=schema]').waitFor();
  }, p);

  await step('creating a tenant shows progress until it is ready', async () => {
    // Hold the answer a moment, so that the progress is seen whatever the machine.
    await p.route('**/api/platform/tenants/', async (route) => {
      if (route.request().method() === 'POST') await sleep(1200);
      await route.continue();
    });
    const form = p.getByRole('form', { name: 'New tenant' });
    await form.getByLabel('Schema').fill(fresh.schema);
    await form.getByLabel('Name').fill(fresh.name);
    assert.equal(await form.getByLabel('Domain').inputValue(), fresh.domain, 'the domain is suggested from the schema');
    await form.getByRole('button', { name: 'Create tenant' }).click();
    await p.getByTestId('create-progress').waitFor();
    await p.locator('tr.row-pending').filter({ hasText: fresh.schema }).waitFor();
    await sleep(700);
    await shot(p, 'platform-creating');
    await p.getByTestId('tenant-ready').waitFor({ timeout: 60_000 });
    assert.match(await p.getByTestId('tenant-ready').textContent(), /is active/);
    await p.locator(`tr[data-schema="${fresh.schema}"]`).filter({ hasText: 'active' }).waitFor();
    await p.unroute('**/api/platform/tenants/');
    await shot(p, 'platform-tenants');
  }, p);

  await step('a user of the new tenant signs in on its domain', async () => {
    await s.createUser(fresh.schema, 'owner@fresh.test', pw, true);
    const f = await ctxP.newPage();
    await signIn(f, s.url(fresh.domain), 'owner@fresh.test', pw);
    await f.getByRole('heading', { name: 'Products', exact: true }).waitFor();
    await f.getByText('No products yet.').waitFor();
    assert.equal(await f.locator('.brand').textContent(), fresh.name);
    await f.close();
  }, p);

  await step('domains: a bad one is refused at its field, a good one added, then removed', async () => {
    await p.locator(`tr[data-schema="${fresh.schema}"]`).getByRole('link').click();
    await p.getByRole('heading', { name: fresh.name }).waitFor();
    const form = p.getByRole('form', { name: 'Add a domain' });
    await form.getByLabel('New domain').fill('not a domain');
    await form.getByRole('button', { name: 'Add domain' }).click();
    await form.locator('[data-field-error=domain]').waitFor();
    const second = `${s.prefix}-fresh2.localhost`;
    await form.getByLabel('New domain').fill(second);
    await form.getByRole('button', { name: 'Add domain' }).click();
    const li = p.locator(`li[data-domain="${second}"]`);
    await li.waitFor();
    assert.equal((await get(s.port, second, '/')).status, 200, 'the new domain serves the client');
    await li.getByRole('button', { name: 'Remove' }).click();
    await li.waitFor({ state: 'detached' });
    await until('the removed domain to stop answering', async () => (await get(s.port, second, '/')).status === 404, 10_000);
  }, p);

  await step('the tenant moves to the other PostgreSQL cluster from its page, its progress shown until done', async () => {
    const from = (await p.getByTestId('tenant-cluster').textContent()).trim();
    const to = from === 'main' ? 'pg2' : 'main';
    const card = p.getByRole('region', { name: 'Move to another cluster' });
    await card.getByLabel('Cluster').fill(to);
    await card.getByRole('button', { name: 'Move tenant' }).click();
    await card.locator('[data-testid="move-state"]').waitFor();
    await card.locator('[data-testid="move-state"][data-state="done"]').waitFor({ timeout: 60_000 });
    assert.match(await card.getByTestId('move-state').textContent(), new RegExp(`^Moved from ${from} to ${to}: \\d+ rows copied`));
    await until('the page to show the new cluster', async () => (await p.getByTestId('tenant-cluster').textContent()).trim() === to, 10_000);
    assert.equal((await get(s.port, fresh.domain, '/')).status, 200, 'the moved tenant still serves its domain');
    await shot(p, 'platform-moved');
  }, p);

  await step('deleting a tenant needs its schema name typed, then it is gone', async () => {
    await p.getByRole('button', { name: 'Delete tenant…' }).click();
    const dialog = p.getByRole('dialog', { name: `Delete ${fresh.name}?` });
    await dialog.waitFor();
    const confirm = dialog.getByRole('button', { name: 'Delete tenant' });
    assert.equal(await confirm.isDisabled(), true);
    await dialog.getByLabel(`Type ${fresh.schema} to confirm`).fill(fresh.name);
    assert.equal(await confirm.isDisabled(), true, 'the display name is not the schema');
    await dialog.getByLabel(`Type ${fresh.schema} to confirm`).fill(fresh.schema);
    await shot(p, 'platform-delete');
    await confirm.click();
    await p.getByText(`Deleted ${fresh.schema}`).waitFor({ timeout: 60_000 });
    assert.equal(await p.locator(`tr[data-schema="${fresh.schema}"]`).count(), 0);
    await until('its domain to stop answering', async () => (await get(s.port, fresh.domain, '/')).status === 404, 10_000);
  }, p);

  const tenantRows = p.getByTestId('tenants-table').locator('tbody tr');
  const schemas = async () => Promise.all((await tenantRows.all()).map((r) => r.getAttribute('data-schema')));
  const mainNav = (pg) => pg.getByRole('navigation', { name: 'Main' });

  await step('the tenant list searches as one types (debounced), and keeps its search in the URL', async () => {
    await p.getByRole('heading', { name: 'Tenants', exact: true }).waitFor();
    const lists = [];
    const onReq = (r) => {
      const u = new URL(r.url());
      if (u.pathname === '/api/platform/tenants/' && r.method() === 'GET') lists.push(u);
    };
    p.on('request', onReq);
    // Part of globex's domain only (not of its schema or name), in capitals.
    const word = '-GLOBEX.LOCALHOST';
    const box = p.getByRole('searchbox', { name: 'Search tenants' });
    await box.pressSequentially(word, { delay: 40 });
    await until('the URL to keep the search', async () => new URL(p.url()).searchParams.get('q') === word);
    await until('globex alone in the list', async () => (await schemas()).join() === globex.schema);
    p.off('request', onReq);
    const searched = lists.filter((u) => u.searchParams.has('q'));
    assert.equal(searched.at(-1)?.searchParams.get('q'), word);
    assert.ok(searched.length <= 4, `typing ${word.length} keys sent ${searched.length} searches`);
    await shot(p, 'platform-search');
    // A reload shows the same list.
    await p.reload();
    await until('the same list after a reload', async () => (await schemas()).join() === globex.schema);
    assert.equal(await box.inputValue(), word);
    // The Tenants link is the whole list again, its box emptied.
    await mainNav(p).getByRole('link', { name: 'Tenants' }).click();
    await until('every tenant again', async () => (await schemas()).length === 2);
    assert.equal(await box.inputValue(), '');
  }, p);

  await step('the tenant list sorts by a column and pages with the next cursor, its size and sort in the URL', async () => {
    await p.goto(s.url('localhost', '/?limit=1&ordering=-schema'));
    const table = p.getByTestId('tenants-table');
    await until('globex first, by schema descending', async () => (await schemas()).join() === globex.schema);
    assert.equal(await table.locator('th', { hasText: 'Schema' }).getAttribute('aria-sort'), 'descending');
    assert.equal(await p.getByLabel('Per page').inputValue(), '1');
    await p.getByRole('button', { name: 'Next →' }).click();
    await p.getByText('Page 2').waitFor();
    await until('acme on page 2', async () => (await schemas()).join() === acme.schema);
    assert.equal(await p.getByRole('button', { name: 'Next →' }).isDisabled(), true, 'two tenants, two pages');
    await p.getByRole('button', { name: '← Previous' }).click();
    await until('globex on page 1 again', async () => (await schemas()).join() === globex.schema);
    // Another sort starts again at page 1, and the URL says so.
    await p.getByRole('button', { name: 'Next →' }).click();
    await p.getByText('Page 2').waitFor();
    await table.getByRole('button', { name: 'Schema' }).click();
    await until('sorted by schema, ascending', async () => new URL(p.url()).searchParams.get('ordering') === 'schema');
    await until('acme first, on page 1', async () => (await schemas()).join() === acme.schema && (await p.getByText('Page 1', { exact: true }).count()) === 1);
    assert.equal(new URL(p.url()).searchParams.get('limit'), '1');
    const m = await ctxP.newPage();
    await m.setViewportSize({ width: 360, height: 740 });
    await m.goto(s.url('localhost', '/?q=globex&state=active'));
    await m.getByTestId('tenants-table').waitFor();
    assert.equal(await overflows(m), false, 'the tenant list is wider than 360 px');
    await shot(m, 'mobile-tenants');
    await m.close();
  }, p);

  await step('the admin finds a tenant by searching and suspends it; its signed-in user is told so on their next action', async () => {
    await p.goto(s.url('localhost', '/'));
    await p.getByRole('searchbox', { name: 'Search tenants' }).fill(globex.name.toLowerCase());
    await until('globex found by its name', async () => (await schemas()).join() === globex.schema);
    await p.locator(`tr[data-schema="${globex.schema}"]`).getByRole('link').click();
    await p.getByRole('heading', { name: globex.name }).waitFor();
    await p.getByRole('button', { name: 'Suspend tenant…' }).click();
    const dialog = p.getByRole('dialog', { name: `Suspend ${globex.name}?` });
    await dialog.waitFor();
    await dialog.getByRole('button', { name: 'Cancel' }).click();
    await dialog.waitFor({ state: 'hidden' });
    assert.equal(await p.locator('h1 .tag-state-active').count(), 1, 'cancel suspends nothing');
    await p.getByRole('button', { name: 'Suspend tenant…' }).click();
    await dialog.getByRole('button', { name: 'Suspend tenant' }).click();
    await p.locator('h1 .tag-state-suspended').waitFor();
    await p.getByTestId('suspended').getByRole('button', { name: 'Resume tenant' }).waitFor();
    await shot(p, 'platform-suspended');
    // Dave has been signed in on globex all along: his next click is refused, plainly.
    await d.keyboard.press('Escape');
    await mainNav(d).getByRole('link', { name: 'Users' }).click();
    await d.getByRole('main').getByRole('alert').filter({ hasText: 'This workspace is suspended' }).first().waitFor();
    await shot(d, 'tenant-suspended');
    // Signing in is refused the same way.
    const f = await ctxP.newPage();
    await signIn(f, s.url(globex.domain), dave, pw);
    await f.getByRole('alert').filter({ hasText: 'This workspace is suspended' }).waitFor();
    await f.close();
    // The list marks it, and its state filter finds it alone.
    await mainNav(p).getByRole('link', { name: 'Tenants' }).click();
    await p.getByLabel('State').selectOption('suspended');
    await until('the state in the URL', async () => new URL(p.url()).searchParams.get('state') === 'suspended');
    await until('globex alone, suspended', async () => (await schemas()).join() === globex.schema);
    await p.locator(`tr[data-schema="${globex.schema}"] .tag-state-suspended`).waitFor();
  }, p);

  await step('the admin resumes it, and the user works again', async () => {
    await p.locator(`tr[data-schema="${globex.schema}"]`).getByRole('link').click();
    await p.getByRole('button', { name: 'Resume tenant' }).click();
    await p.locator('h1 .tag-state-active').waitFor();
    await p.getByText(`Resumed ${globex.schema}`).waitFor();
    await d.getByRole('main').getByRole('alert').filter({ hasText: 'This workspace is suspended' }).getByRole('button', { name: 'Retry' }).first().click();
    await d.locator(`li[data-email="${dave}"]`).waitFor();
    assert.equal(await d.getByText('This workspace is suspended').count(), 0);
    // Its live notifications come back on their own too: the socket kept
    // retrying with its backoff, so the next try may be half a minute away.
    await until('dave’s bell to be live again', async () => (await liveState(d)) === 'Live', 60_000);
    await p.goBack();
    await until('no suspended tenant left', async () => (await p.getByText('No tenant is suspended.').count()) === 1);
  }, d);

  await step('no page threw an uncaught error', async () => {
    assert.deepEqual(pageErrors, []);
  });
}

try {
  await main();
} catch (e) {
  results.push({ name: 'setup', ok: false });
  log(`  ✗ setup failed: ${e?.stack ?? e}`);
}
if (results.some((r) => !r.ok) && stack?.logFile && fs.existsSync(stack.logFile)) {
  const lines = fs.readFileSync(stack.logFile, 'utf8').trim().split('\n');
  const bad = lines.filter((l) => /"level":"(ERROR|WARN)"/.test(l)).slice(-15);
  if (bad.length) log(`\nlast warnings and errors of saas dev:\n${bad.join('\n')}`);
}
await cleanup();
finish();
