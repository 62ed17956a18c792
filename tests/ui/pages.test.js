// Every page loads without console errors or CSP violations, with a screenshot of each; the
// allowlist page checks commands; the security page regenerates recovery codes after a
// re-authentication; the login page is readable on a phone.

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';

import { PASSWORD, launchBrowser, login, openPage, screenshot, setupAdmin, startNosd } from './lib/harness.js';

let server;
let browser;
let admin;

before(async () => {
  // A short re-authentication window, so the security page has to ask.
  server = await startNosd('[session]\nreauth_seconds = 1\n');
  browser = await launchBrowser();
  admin = await setupAdmin(server);
});

after(async () => {
  await browser?.close();
  await server?.stop();
});

test('every page renders without console errors or CSP violations', async () => {
  const { page, context, problems } = await openPage(browser);
  await login(page, server, 'admin', await admin.authenticator.nextCode());
  for (const [path, heading] of [['/dashboard', 'Dashboard'], ['/pool', 'Pools'], ['/alerts', 'Alerts'], ['/storage', 'Storage wizard'], ['/plugins', 'Plugins'], ['/allowlist', 'Allowlist'], ['/audit', 'Audit log'], ['/sessions', 'Sessions'], ['/security', 'Security']]) {
    await page.goto(server.url + path);
    await page.getByRole('heading', { level: 1, name: heading }).waitFor();
    await page.locator('#page[data-ready]').waitFor({ state: 'attached' });
    assert.equal(await page.locator(`nav a[aria-current="page"]`).textContent(), heading);
    await screenshot(page, `page${path.replace('/', '-')}`);
    // No table runs off the page (the audit log's long details wrap in their column).
    const overflowing = await page.locator('.table-wrap').evaluateAll((wraps) => wraps.filter((wrap) => wrap.scrollWidth > wrap.clientWidth + 1).length);
    assert.equal(overflowing, 0, `${path}: a table is wider than the page`);
  }
  assert.deepEqual(problems, []);
  // The CSP really forbids parsing HTML from script (Trusted Types, no policy), and the
  // harness does see a violation when one happens.
  const blocked = await page.evaluate(() => {
    try { document.body.insertAdjacentHTML('beforeend', '<b>x</b>'); return false; } catch { return true; }
  });
  assert.equal(blocked, true);
  await page.waitForFunction(() => true);
  await new Promise((resolve) => setTimeout(resolve, 200));
  assert.ok(problems.some((problem) => problem.startsWith('CSP violation: require-trusted-types-for')), problems.join('\n'));
  await context.close();
});

test('allowlist page: rules, findings, and a check of an allowed and a denied argv', async () => {
  const { page, context, problems } = await openPage(browser);
  await login(page, server, 'admin', admin.recoveryCodes[0], '/allowlist');
  await page.getByRole('heading', { name: /^Rules \(\d+\)$/ }).waitFor();
  await page.getByRole('heading', { name: 'Audit findings' }).waitFor();
  assert.ok(await page.locator('details[id^="rule-"]').count() > 5);

  await page.getByLabel('Command', { exact: true }).fill('btrfs device add /dev/sdb /srv/pool');
  await page.getByRole('button', { name: 'Check' }).click();
  await page.locator('.verdict .allowed').waitFor();
  assert.match(await page.locator('.verdict').textContent(), /Allowed by rule btrfs\.device\.add/);
  assert.match(await page.locator('.verdict pre').textContent(), /^\/usr\/bin\/btrfs device add -- \/dev\/sdb \/srv\/pool$/);

  await page.getByLabel('Command', { exact: true }).fill('mount -t btrfs -o bind /dev/sdb /srv/pool');
  await page.getByRole('button', { name: 'Check' }).click();
  await page.locator('.verdict .denied').waitFor();
  assert.match(await page.locator('.verdict').textContent(), /token 4: options `bind`/);
  assert.equal(await page.locator('.verdict mark.token').textContent(), 'bind (this token)');
  await screenshot(page, 'allowlist-check');

  // A rule link opens the rule's explanation.
  await page.locator('.verdict a').first().click();
  await page.locator('details[open] pre.explain').first().waitFor();
  assert.deepEqual(problems, []);
  await context.close();
});

test('security page: regenerating recovery codes is explained, re-authenticated, shown once', async () => {
  const { page, context, problems } = await openPage(browser);
  await login(page, server, 'admin', admin.recoveryCodes[1], '/security');
  await page.locator('[data-codes-left="8"]').waitFor();
  // Past this server's 1 s re-authentication window (whole seconds: strictly more than 1 s later).
  await page.waitForTimeout(2100);
  await page.getByRole('button', { name: 'Generate new recovery codes' }).click();
  const explain = page.getByRole('dialog', { name: 'Generate new recovery codes?' });
  await explain.waitFor();
  assert.match(await explain.textContent(), /current recovery codes stop working/);
  await explain.getByRole('button', { name: 'Generate new codes' }).click();
  const reauth = page.getByRole('dialog', { name: 'Confirm it is you' });
  await reauth.waitFor();
  await reauth.getByLabel('Password').fill(PASSWORD);
  await reauth.getByLabel('Code').fill(await admin.authenticator.nextCode());
  await screenshot(page, 'security-reauth');
  await reauth.getByRole('button', { name: 'Confirm' }).click();
  await page.getByRole('heading', { name: 'Your new recovery codes' }).waitFor();
  admin.recoveryCodes = await page.locator('ol.codes code').allTextContents();
  assert.equal(admin.recoveryCodes.length, 10);
  // The codes can be downloaded as a file and copied in one click.
  const download = page.getByRole('link', { name: 'Download as a file' });
  assert.equal(await download.getAttribute('download'), 'nos-recovery-codes.txt');
  const href = await download.getAttribute('href');
  assert.equal(decodeURIComponent(href.slice(href.indexOf(',') + 1)), `${admin.recoveryCodes.join('\n')}\n`);
  await page.getByRole('button', { name: 'Copy', exact: true }).click();
  await page.getByRole('status').filter({ hasText: /Copied the codes|The codes are selected/ }).waitFor();
  await screenshot(page, 'security-new-codes');
  await page.getByLabel('I saved them').check();
  await page.getByRole('button', { name: 'Hide the codes' }).click();
  await page.locator('[data-codes-left="10"]').waitFor();
  assert.deepEqual(problems, []);
  await context.close();
});

/** Answers the re-authentication dialog, if the server asks for it, with a recovery code. */
async function reauthIfAsked(page) {
  const reauth = page.getByRole('dialog', { name: 'Confirm it is you' });
  await page.waitForTimeout(300);
  if (!(await reauth.isVisible())) return;
  await reauth.getByLabel('Password').fill(PASSWORD);
  await reauth.getByLabel('Code').fill(admin.recoveryCodes.shift());
  await reauth.getByRole('button', { name: 'Confirm' }).click();
  await reauth.waitFor({ state: 'detached' });
}

test('security page: re-enrol and turn off two-factor, change the password', async () => {
  const { page, context, problems } = await openPage(browser);
  await login(page, server, 'admin', admin.recoveryCodes.shift(), '/security');
  await page.waitForTimeout(2100);

  // Re-enrol: explained first, then re-authenticated, then the new key confirmed with a code.
  await page.getByRole('button', { name: 'Set up a new authenticator' }).click();
  const explain = page.getByRole('dialog', { name: 'Replace your authenticator?' });
  assert.match(await explain.textContent(), /old authenticator stops working/);
  await explain.getByRole('button', { name: 'Continue' }).click();
  await reauthIfAsked(page);
  await page.getByRole('heading', { name: 'Scan the new key' }).waitFor();
  const secret = await page.locator('[data-totp-secret]').getAttribute('data-totp-secret');
  const { Authenticator } = await import('./lib/totp.js');
  const fresh = new Authenticator(secret);
  await page.getByLabel('Code from the app').fill(await fresh.nextCode());
  await page.getByRole('button', { name: 'Confirm new authenticator' }).click();
  await page.getByRole('status').filter({ hasText: 'The new authenticator is active' }).waitFor();
  admin.authenticator = fresh;

  // Turn off: the danger is spelled out before anything happens.
  await page.waitForTimeout(2100);
  await page.getByRole('button', { name: 'Turn off two-factor authentication' }).click();
  const off = page.getByRole('dialog', { name: 'Turn off two-factor authentication?' });
  assert.match(await off.textContent(), /password alone signs in/);
  await screenshot(page, 'security-disable-confirm');
  await off.getByRole('button', { name: 'Turn off' }).click();
  await reauthIfAsked(page);
  await page.getByRole('status').filter({ hasText: 'Two-factor authentication is off' }).waitFor();
  await page.getByRole('button', { name: 'Set up two-factor authentication' }).waitFor();

  // Change the password: a refused one is explained next to the field.
  await page.getByLabel('New password', { exact: true }).fill('password1234');
  await page.getByLabel('New password again').fill('password1234');
  await page.getByRole('button', { name: 'Change password' }).click();
  await reauthIfAsked(page);
  await page.locator('.field-error', { hasText: 'Refused' }).waitFor();
  await page.getByLabel('New password', { exact: true }).fill(`${PASSWORD} and more`);
  await page.getByLabel('New password again').fill(`${PASSWORD} and more`);
  await page.getByRole('button', { name: 'Change password' }).click();
  await reauthIfAsked(page);
  await page.getByRole('status').filter({ hasText: 'Password changed' }).waitFor();

  // Without two-factor authentication the code stays empty; a hostile `next` is ignored.
  await page.getByRole('button', { name: 'Sign out' }).click();
  await page.waitForURL(`${server.url}/login`);
  await page.goto(`${server.url}/login?next=${encodeURIComponent('/\\evil.example/x')}`);
  await page.getByLabel('Username').fill('admin');
  await page.getByLabel('Password').fill(`${PASSWORD} and more`);
  await page.keyboard.press('Enter');
  await page.getByLabel('Code', { exact: true }).waitFor();
  await page.keyboard.press('Enter');
  await page.waitForURL(`${server.url}/dashboard`);
  assert.deepEqual(problems, []);
  await context.close();
});

test('pages are readable on a phone', async () => {
  const { page, context, problems } = await openPage(browser, { viewport: { width: 375, height: 740 }, isMobile: true, hasTouch: true });
  const noSideScrolling = async (where) => {
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
    assert.ok(overflow <= 0, `${where}: no horizontal scrolling (${overflow}px)`);
  };
  await page.goto(server.url + '/login');
  await page.getByLabel('Username').waitFor();
  await noSideScrolling('/login');
  await screenshot(page, 'phone-login');
  // The earlier test turned two-factor authentication off and changed the password.
  await page.getByLabel('Username').fill('admin');
  await page.getByLabel('Password').fill(`${PASSWORD} and more`);
  await page.getByRole('button', { name: 'Continue' }).click();
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.waitForURL(`${server.url}/dashboard`);
  for (const path of ['/sessions', '/allowlist', '/security']) {
    await page.goto(server.url + path);
    await page.locator('#page[data-ready]').waitFor({ state: 'attached' });
    await noSideScrolling(path);
    await screenshot(page, `phone${path.replace('/', '-')}`);
  }
  assert.deepEqual(problems, []);
  await context.close();
});
