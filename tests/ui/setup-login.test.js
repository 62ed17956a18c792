// The whole setup wizard in the browser (reading the TOTP key from the page and computing the
// codes here), then sign-in with a TOTP code, with a recovery code, and with the keyboard only.

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';

import { PASSWORD, launchBrowser, login, openPage, screenshot, startNosd } from './lib/harness.js';
import { Authenticator } from './lib/totp.js';

let server;
let browser;
const admin = { authenticator: null, recoveryCodes: [] };

before(async () => {
  server = await startNosd();
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await server?.stop();
});

test('setup wizard: token, first admin, TOTP enrolment, recovery codes, done', async () => {
  const { page, context, problems } = await openPage(browser);
  await page.goto(server.url + '/');
  await page.waitForURL(server.url + '/setup');
  await page.getByRole('heading', { name: /Step 1 of 5: Setup token/ }).waitFor();
  await screenshot(page, 'setup-1-token');

  // A malformed token is refused next to the field, before any request.
  await page.getByLabel('Setup token').fill('not-a-token');
  await page.getByRole('button', { name: 'Continue' }).click();
  const tokenError = page.locator('.field-error', { hasText: '32 characters' });
  await tokenError.waitFor();
  assert.equal(await page.getByLabel('Setup token').getAttribute('aria-invalid'), 'true');

  // A well-formed but wrong token comes back from the server to the token step.
  await page.getByLabel('Setup token').fill('0'.repeat(32));
  await page.getByRole('button', { name: 'Continue' }).click();
  await page.getByLabel('Username').fill('admin');
  await page.getByLabel('Password', { exact: true }).fill(PASSWORD);
  await page.getByLabel('Password again').fill(PASSWORD);
  await page.getByRole('button', { name: 'Continue' }).click();
  await page.locator('.field-error', { hasText: 'wrong or has expired' }).waitFor();

  await page.getByLabel('Setup token').fill(server.setupToken());
  await page.getByRole('button', { name: 'Continue' }).click();
  await page.getByRole('heading', { name: /Step 2 of 5: First admin/ }).waitFor();
  await page.getByLabel('Username').fill('admin');
  await page.getByLabel('Password', { exact: true }).fill(PASSWORD);
  await page.getByLabel('Password again').fill('something else entirely');
  await page.getByRole('button', { name: 'Continue' }).click();
  await page.locator('.field-error', { hasText: 'The two passwords differ' }).waitFor();
  await page.getByLabel('Password again').fill(PASSWORD);
  await screenshot(page, 'setup-2-admin');
  await page.getByRole('button', { name: 'Continue' }).click();

  await page.getByRole('heading', { name: /Step 3 of 5: Two-factor/ }).waitFor();
  assert.equal(await page.locator('svg.qr path').count() > 0, true, 'the QR code is drawn');
  const secret = await page.locator('[data-totp-secret]').getAttribute('data-totp-secret');
  const shown = (await page.locator('[data-totp-secret]').textContent()).replace(/\s/g, '');
  assert.equal(shown, secret, 'the key shown is the key');
  await screenshot(page, 'setup-3-totp');
  admin.authenticator = new Authenticator(secret);

  // A wrong code is shown next to the code field.
  await page.getByLabel('Code from the app').fill('000000');
  await page.getByRole('button', { name: 'Create administrator' }).click();
  const wrong = page.locator('.field-error', { hasText: 'does not match' });
  // 000000 could be the real code once in a million; then setup simply succeeds.
  await Promise.race([wrong.waitFor(), page.getByRole('heading', { name: /Step 4/ }).waitFor()]);
  if (await wrong.isVisible()) {
    await page.getByLabel('Code from the app').fill(await admin.authenticator.nextCode());
    await page.getByRole('button', { name: 'Create administrator' }).click();
  }

  await page.getByRole('heading', { name: /Step 4 of 5: Recovery codes/ }).waitFor();
  admin.recoveryCodes = await page.locator('ol.codes code').allTextContents();
  assert.equal(admin.recoveryCodes.length, 10);
  await screenshot(page, 'setup-4-recovery-codes');
  await page.getByRole('button', { name: 'Continue' }).click();
  await page.locator('.field-error', { hasText: 'not shown again' }).waitFor();
  await page.getByLabel('I saved them').check();
  await page.getByRole('button', { name: 'Continue' }).click();
  await page.getByRole('heading', { name: /Step 5 of 5: Done/ }).waitFor();
  await screenshot(page, 'setup-5-done');

  // Setup is closed for good.
  await page.goto(server.url + '/setup');
  await page.getByText('Setup is already complete').waitFor();
  assert.deepEqual(problems, []);
  await context.close();
});

test('login with a TOTP code lands on the dashboard', async () => {
  const { page, context, problems } = await openPage(browser);
  await page.goto(server.url + '/login');
  await screenshot(page, 'login-1-password');
  await login(page, server, 'admin', await admin.authenticator.nextCode());
  await page.getByRole('heading', { name: 'Dashboard' }).waitFor();
  await page.locator('#who-name', { hasText: 'admin' }).waitFor();
  await screenshot(page, 'dashboard');
  await page.getByRole('button', { name: 'Sign out' }).click();
  await page.waitForURL(server.url + '/login');
  assert.deepEqual(problems, []);
  await context.close();
});

test('a wrong code says only that something was wrong', async () => {
  const { page, context, problems } = await openPage(browser);
  await page.goto(server.url + '/login');
  await page.getByLabel('Username').fill('admin');
  await page.getByLabel('Password').fill(PASSWORD);
  await page.getByRole('button', { name: 'Continue' }).click();
  await page.getByLabel('Code', { exact: true }).fill('123456');
  await page.getByRole('button', { name: 'Sign in' }).click();
  const alert = page.getByRole('alert').filter({ hasText: 'Sign-in failed' });
  await alert.waitFor();
  assert.equal((await alert.textContent()).trim(), 'Sign-in failed: the username, password or code is wrong.');
  await screenshot(page, 'login-failed');
  assert.deepEqual(problems, []);
  await context.close();
});

test('keyboard only: login with a recovery code', async () => {
  const { page, context, problems } = await openPage(browser);
  await page.goto(server.url + '/login?next=/security');
  // The username field has the focus on arrival; everything else is Tab, typing and Enter.
  await page.waitForFunction(() => document.activeElement?.getAttribute('autocomplete') === 'username');
  await page.keyboard.type('admin');
  await page.keyboard.press('Tab');
  await page.keyboard.type(PASSWORD);
  await page.keyboard.press('Enter');
  await page.waitForFunction(() => document.activeElement?.getAttribute('autocomplete') === 'one-time-code');
  await screenshot(page, 'login-2-code');
  await page.keyboard.type(admin.recoveryCodes[0]);
  await page.keyboard.press('Enter');
  await page.waitForURL(server.url + '/security');
  await page.getByText('You signed in with a recovery code').waitFor();
  await page.locator('[data-codes-left="9"]').waitFor();

  // The same recovery code does not work twice.
  await page.getByRole('button', { name: 'Sign out' }).click();
  await page.waitForURL(server.url + '/login');
  await page.getByLabel('Username').fill('admin');
  await page.getByLabel('Password').fill(PASSWORD);
  await page.keyboard.press('Enter');
  await page.getByLabel('Code', { exact: true }).fill(admin.recoveryCodes[0]);
  await page.keyboard.press('Enter');
  await page.getByRole('alert').filter({ hasText: 'Sign-in failed' }).waitFor();
  assert.deepEqual(problems, []);
  await context.close();
});
