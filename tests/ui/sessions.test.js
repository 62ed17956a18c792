// Sessions: a second browser context signs in, the first ends its session from the sessions
// page, and the second finds itself signed out.

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';

import { launchBrowser, login, openPage, screenshot, setupAdmin, startNosd } from './lib/harness.js';

let server;
let browser;
let admin;

before(async () => {
  server = await startNosd();
  browser = await launchBrowser();
  admin = await setupAdmin(server);
});

after(async () => {
  await browser?.close();
  await server?.stop();
});

test('revoking a session from another browser context signs that context out', async () => {
  const first = await openPage(browser);
  const second = await openPage(browser, { userAgent: 'Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:140.0) Gecko/20100101 Firefox/140.0' });
  await login(first.page, server, 'admin', await admin.authenticator.nextCode(), '/dashboard');
  await login(second.page, server, 'admin', admin.recoveryCodes[0], '/dashboard');

  await first.page.goto(server.url + '/sessions');
  const rows = first.page.locator('tbody tr');
  await rows.nth(1).waitFor();
  assert.equal(await rows.count(), 2);
  await first.page.getByText('this browser').waitFor();
  await first.page.getByRole('rowheader', { name: 'Firefox on Windows' }).waitFor();
  await screenshot(first.page, 'sessions');

  // The explanation comes first; Cancel changes nothing.
  await first.page.getByRole('button', { name: /End session: Firefox on Windows/ }).click();
  const dialog = first.page.getByRole('dialog', { name: 'End this session?' });
  await dialog.waitFor();
  assert.match(await dialog.textContent(), /signed out at its next request/);
  await screenshot(first.page, 'sessions-confirm');
  await dialog.getByRole('button', { name: 'Cancel' }).click();
  assert.equal(await rows.count(), 2);

  // From the keyboard: Enter opens the explanation with the focus on Cancel, Escape closes it
  // and the focus returns to the button.
  const endButton = first.page.getByRole('button', { name: /End session: Firefox on Windows/ });
  await endButton.focus();
  await first.page.keyboard.press('Enter');
  await dialog.waitFor();
  assert.equal(await first.page.evaluate(() => document.activeElement?.textContent), 'Cancel');
  await first.page.keyboard.press('Escape');
  await dialog.waitFor({ state: 'detached' });
  assert.equal(await endButton.evaluate((el) => el === document.activeElement), true);
  assert.equal(await rows.count(), 2);

  await first.page.getByRole('button', { name: /End session: Firefox on Windows/ }).click();
  await dialog.getByRole('button', { name: 'End session' }).click();
  await first.page.getByRole('status').filter({ hasText: 'Ended the session' }).waitFor();
  assert.equal(await first.page.locator('tbody tr').count(), 1);

  // The other context is signed out at its next request.
  await second.page.goto(server.url + '/sessions');
  await second.page.waitForURL(/\/login\?next=%2Fsessions$/);
  await second.page.getByRole('heading', { name: 'Sign in' }).waitFor();

  // The first is still signed in.
  await first.page.reload();
  await first.page.getByText('this browser').waitFor();
  assert.deepEqual(first.problems, []);
  assert.deepEqual(second.problems, []);
  await first.context.close();
  await second.context.close();
});
