// Lockout: repeated failures get 429 with Retry-After, and the login page says honestly how
// long to wait, without saying which part was wrong.

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';

import { launchBrowser, openPage, screenshot, setupAdmin, startNosd } from './lib/harness.js';

let server;
let browser;

before(async () => {
  // Three free failures, then 60 s.
  server = await startNosd('[limits]\nfree_failures = 3\nbase_lock_seconds = 60\n');
  browser = await launchBrowser();
  await setupAdmin(server);
});

after(async () => {
  await browser?.close();
  await server?.stop();
});

test('the lockout message shows the wait from Retry-After', async () => {
  const { page, context, problems, apiRefusals } = await openPage(browser);
  await page.goto(server.url + '/login');
  const attempt = async () => {
    await page.getByLabel('Username').fill('admin');
    await page.getByLabel('Password').fill('wrong password number one');
    await page.getByRole('button', { name: 'Continue' }).click();
    await page.getByLabel('Code', { exact: true }).fill('123456');
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('alert').filter({ hasText: /Sign-in failed|Try again in/ }).waitFor();
    return (await page.getByRole('alert').filter({ hasText: /Sign-in failed|Try again in/ }).textContent()).trim();
  };
  let message = '';
  for (let n = 0; n < 6 && !message.includes('Try again in'); n += 1) message = await attempt();
  assert.match(message, /^Too many failed attempts\. Try again in \d+ s\.$/);
  const seconds = Number(/in (\d+) s/.exec(message)[1]);
  assert.ok(seconds > 0 && seconds <= 60, `wait ${seconds}`);
  assert.ok(!/password|username|code/i.test(message.replace('failed attempts', '')), 'no hint which part was wrong');
  assert.equal(await page.getByRole('button', { name: 'Continue' }).isDisabled(), true);
  await screenshot(page, 'login-lockout');
  // The countdown runs.
  await page.waitForFunction((start) => {
    const match = /in (\d+) s/.exec(document.querySelector('.form-status')?.textContent ?? '');
    return match && Number(match[1]) < start;
  }, seconds, { timeout: 5000 });
  assert.ok(apiRefusals.length >= 4, 'the failures were API answers');
  assert.deepEqual(problems, []);
  await context.close();
});
