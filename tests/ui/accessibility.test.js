// Accessibility: axe-core (WCAG 2.1 A and AA rules) finds no violation on any page, on the
// setup wizard, or with a confirmation dialog open.
//
// axe is injected as a script, which the UI's CSP rightly forbids; this test's context alone
// bypasses the CSP for that (every other test runs under the real policy).

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';

import { axeViolations as violations, launchBrowser, login, openPage, setupAdmin, startNosd } from './lib/harness.js';

let server;
let browser;

before(async () => {
  server = await startNosd();
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await server?.stop();
});

test('axe finds no WCAG 2.1 AA violation on any page', async () => {
  const { page, context } = await openPage(browser, { bypassCSP: true });
  const report = {};
  await page.goto(server.url + '/setup');
  await page.getByLabel('Setup token').waitFor();
  report['/setup'] = await violations(page);
  // The token step with an error shown next to the field.
  await page.getByRole('button', { name: 'Continue' }).click();
  await page.locator('.field-error').first().waitFor();
  report['/setup with an error'] = await violations(page);

  const admin = await setupAdmin(server);
  await page.goto(server.url + '/login');
  await page.getByLabel('Username').waitFor();
  report['/login'] = await violations(page);
  await login(page, server, 'admin', await admin.authenticator.nextCode());
  for (const path of ['/dashboard', '/pool', '/alerts', '/storage', '/plugins', '/allowlist', '/audit', '/sessions', '/security']) {
    await page.goto(server.url + path);
    await page.locator('#page[data-ready]').waitFor({ state: 'attached' });
    report[path] = await violations(page);
  }
  await page.getByRole('button', { name: 'Generate new recovery codes' }).click();
  await page.getByRole('dialog').waitFor();
  report['/security with a dialog'] = await violations(page);
  const failing = Object.fromEntries(Object.entries(report).filter(([, found]) => found.length > 0));
  assert.deepEqual(failing, {});
  await context.close();
});
