// The storage pages against the real stack (scripts/demo as root: nos-agent in a private mount
// namespace, loop devices, real btrfs): revoking and granting a plugin on the plugins page; the
// storage wizard from planner choice to a raid1 pool on two loop devices, with a wrong
// confirmation word refused first and nothing run; the dashboard and the audit log afterwards,
// checked against `btrfs` itself; and axe on the new pages and states.
//
// Without root, loop devices or btrfs-progs every test is a named skip.

import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { execFileSync, spawnSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';

import { axeViolations, launchBrowser, login, openPage, screenshot, setupAdmin } from './lib/harness.js';
import { demoUnavailable, startDemo } from './lib/demo.js';

const SKIP = demoUnavailable();
const LABEL = 'uitank';
const MOUNTPOINT = `/srv/${LABEL}`;

let demo;
let browser;
let admin;

before(async () => {
  if (SKIP) return;
  demo = await startDemo();
  browser = await launchBrowser();
  admin = await setupAdmin(demo);
});

after(async () => {
  await browser?.close();
  await demo?.stop();
});

/** A same-origin API call from inside the page (its cookies and CSRF token). */
function pageApi(page, method, urlPath, body) {
  return page.evaluate(async ([method, urlPath, body]) => {
    const csrf = document.cookie.split(';').map((pair) => pair.trim().split('=')).find(([name]) => name === '__Host-nos_csrf')?.[1] ?? 'none';
    const response = await fetch(urlPath, { method, headers: { 'content-type': 'application/json', 'x-nos-csrf': csrf }, body: body === undefined ? undefined : JSON.stringify(body) });
    return { status: response.status, body: await response.json() };
  }, [method, urlPath, body]);
}

/** Audit rows of one kind on the audit page (newest first), as {verdict, detail}. */
async function auditRows(page, kind) {
  await page.getByLabel('Kind').selectOption(kind);
  return page.locator(`tbody tr[data-kind="${kind}"]`).evaluateAll((rows) => rows.map((row) => ({ verdict: row.cells[3].textContent, detail: row.cells[5].textContent })));
}

/** The filesystem type blkid finds on a device, or null (exit 2: no signature at all). */
function signature(device) {
  const result = spawnSync('blkid', ['-p', '-o', 'value', '-s', 'TYPE', device], { encoding: 'utf8' });
  return result.status === 0 ? result.stdout.trim() : null;
}

test('plugins page: revoke and grant a planner by its sha256', { skip: SKIP ?? false }, async () => {
  const { page, context, problems } = await openPage(browser);
  await login(page, demo, 'admin', admin.recoveryCodes[0], '/plugins');
  const row = page.locator('tr[data-plugin="btrfs-pool"]');
  await row.waitFor();
  // The sha256 shown is the component nosd loaded, computed here from the file itself.
  const pluginDir = demo.pluginDirs().find((dir) => path.basename(dir) === 'btrfs-pool');
  const wasm = readdirSync(pluginDir).find((name) => name.endsWith('.wasm'));
  const sha256 = createHash('sha256').update(readFileSync(path.join(pluginDir, wasm))).digest('hex');
  assert.equal(await row.locator('code.hash').textContent(), sha256);
  assert.ok(await row.locator('a.scope').count() >= 3);
  assert.equal(await row.locator('[data-granted]').getAttribute('data-granted'), 'true');

  await page.getByRole('button', { name: 'Revoke btrfs-pool' }).click();
  const revoke = page.getByRole('dialog', { name: 'Revoke btrfs-pool?' });
  assert.match(await revoke.textContent(), /can no longer make plans/);
  await screenshot(page, 'plugins-revoke-confirm');
  await revoke.getByRole('button', { name: 'Revoke' }).click();
  await page.getByRole('alert').filter({ hasText: 'btrfs-pool: not granted, enabled.' }).waitFor();
  assert.equal(await row.locator('[data-granted]').getAttribute('data-granted'), 'false');

  // Revoked: the wizard does not offer it, and the API refuses to plan with it.
  await page.goto(`${demo.url}/storage`);
  await page.locator('#page[data-ready]').waitFor({ state: 'attached' });
  await page.getByText('Not granted or disabled: btrfs-pool').waitFor();
  assert.equal(await page.getByRole('radio', { name: /btrfs-pool/ }).count(), 0);
  const refused = await pageApi(page, 'POST', '/api/v1/plans', { plugin: 'btrfs-pool', input: { devices: [demo.loops[0]], label: 'x', mountpoint: '/srv/x' } });
  assert.equal(refused.status, 403);
  assert.equal(refused.body.error.code, 'plugin.not_granted');
  // A grant for another component (a stale page) is refused and changes nothing.
  const stale = await pageApi(page, 'POST', '/api/v1/plugins/btrfs-pool/grant', { sha256: '0'.repeat(64) });
  assert.equal(stale.status, 409);
  assert.equal(stale.body.error.code, 'plugin.hash_mismatch');

  await page.goto(`${demo.url}/plugins`);
  await page.getByRole('button', { name: 'Grant btrfs-pool' }).click();
  const grant = page.getByRole('dialog', { name: 'Grant btrfs-pool?' });
  assert.ok((await grant.textContent()).includes(sha256));
  await grant.getByRole('button', { name: 'Grant' }).click();
  await page.getByRole('alert').filter({ hasText: 'btrfs-pool: granted, enabled.' }).waitFor();
  assert.equal(await row.locator('[data-granted]').getAttribute('data-granted'), 'true');
  await screenshot(page, 'plugins-granted');

  await page.goto(`${demo.url}/audit`);
  await page.locator('[data-chain="verified"]').waitFor();
  const revoked = await auditRows(page, 'plugin_revoked');
  assert.equal(revoked.length, 1);
  assert.equal(revoked[0].verdict, 'ok');
  assert.ok(revoked[0].detail.includes(sha256), revoked[0].detail);
  const granted = await auditRows(page, 'plugin_granted');
  assert.deepEqual(granted.map((row) => row.verdict), ['ok', 'refused']);
  assert.deepEqual(problems, []);
  await context.close();
});

test('storage wizard: raid1 on two loop devices, a wrong word refused, then applied and watched', { skip: SKIP ?? false, timeout: 180_000 }, async () => {
  const [first, second] = demo.loops;
  const { page, context, problems } = await openPage(browser);
  await login(page, demo, 'admin', admin.recoveryCodes[1], '/storage');
  await page.getByRole('radio', { name: /Create a btrfs pool/ }).check();
  await page.getByRole('button', { name: 'Continue' }).click();
  await page.getByRole('heading', { name: '2. Create a btrfs pool' }).waitFor();
  // The fields come in the planner's order (its schema's), each with its hint, not sorted.
  const fields = await page.locator('main form > .field').evaluateAll((els) => els.map((el) => el.querySelector('legend, label')?.textContent ?? ''));
  assert.deepEqual(fields, ['Label', 'Mount point', 'Disks', 'Data profile', 'Metadata profile', 'Encrypt (LUKS2)', 'Mount options']);
  for (const loop of [first, second]) await page.getByRole('checkbox', { name: new RegExp(`^${loop} `) }).check();
  await page.getByLabel('Label', { exact: true }).fill(LABEL);
  await page.getByLabel('Mount point').fill(MOUNTPOINT);
  await page.getByLabel('Data profile', { exact: true }).selectOption('raid1');
  await page.getByLabel('Metadata profile').selectOption('raid1');
  await screenshot(page, 'storage-form');
  await page.getByRole('button', { name: 'Preview the plan' }).click();

  // The preview: every step with its argv, effect and verdict; all allowed by a named rule.
  await page.getByRole('heading', { name: '3. Review the plan' }).waitFor();
  const steps = page.locator('ol.plan > li[data-step]');
  const nSteps = await steps.count();
  assert.ok(nSteps >= 3, `only ${nSteps} steps`);
  assert.equal(await page.locator('ol.plan > li[data-verdict="allowed"]').count(), nSteps);
  const mkfs = page.locator('ol.plan > li[data-step="mkfs"]');
  const argv = await mkfs.locator('pre.argv').textContent();
  for (const token of ['-d raid1', '-m raid1', first, second]) assert.ok(argv.includes(token), `${token} not in ${argv}`);
  assert.match(await mkfs.locator('.verdict').textContent(), /Allowed by rule \S+; runs as \/\S*mkfs\.btrfs /);
  assert.equal(await mkfs.getAttribute('class'), 'step destructive');
  const confirm = page.getByLabel(/^Type .+ to confirm$/);
  const word = /^Type (.+) to confirm$/.exec(await page.locator('label', { hasText: /^Type .+ to confirm$/ }).textContent())[1];
  await screenshot(page, 'storage-preview');

  // A wrong word: refused next to the field, and nothing ran.
  await confirm.fill(`${word}-not`);
  await page.getByRole('button', { name: 'Apply the plan' }).click();
  const fieldError = page.locator('.field-error').filter({ hasText: 'Not applied' });
  await fieldError.waitFor();
  assert.match(await fieldError.textContent(), new RegExp(`type exactly "${word}" to apply`));
  await screenshot(page, 'storage-wrong-word');
  assert.deepEqual((await pageApi(page, 'GET', '/api/v1/jobs')).body.jobs, []);
  assert.equal(signature(first), null);
  assert.equal(signature(second), null);

  // The right word: the job runs through the real agent; the page follows its events.
  await confirm.fill(word);
  await page.getByRole('button', { name: 'Apply the plan' }).click();
  await page.getByRole('heading', { name: '4. Progress' }).waitFor();
  const state = page.locator('p[data-job]');
  await page.locator('p[data-job][data-state]').waitFor({ timeout: 120_000 });
  assert.equal(await state.getAttribute('data-state'), 'succeeded', await page.locator('main').textContent());
  assert.ok(await page.locator('ol.events li[data-kind="step_finished"]').count() >= nSteps);
  assert.equal(await page.locator('ol.plan li[data-state="done"]').count(), nSteps);
  const card = page.locator(`li.card[data-pool="${LABEL}"]`);
  await card.waitFor();
  assert.match(await card.textContent(), /Data raid1, metadata raid1/i);
  await screenshot(page, 'storage-done');

  // The real state: btrfs sees both members; in the agent's namespace it is mounted, RAID1.
  const show = execFileSync('btrfs', ['filesystem', 'show', LABEL], { encoding: 'utf8' });
  assert.match(show, /Total devices 2/);
  for (const loop of [first, second]) assert.ok(show.includes(loop), show);
  const pid = demo.agentPid();
  assert.ok(pid, 'the agent is running');
  const df = execFileSync('nsenter', ['-t', String(pid), '-m', 'btrfs', 'filesystem', 'df', MOUNTPOINT], { encoding: 'utf8' });
  assert.match(df, /^Data, RAID1/m);
  assert.match(df, /^Metadata, RAID1/m);

  // The dashboard shows the pool and the finished job.
  await page.goto(`${demo.url}/dashboard`);
  await page.locator('#page[data-ready]').waitFor({ state: 'attached' });
  const poolCard = page.locator(`li.card[data-pool="${LABEL}"]`);
  assert.match(await poolCard.textContent(), new RegExp(`Mounted at ${MOUNTPOINT}`));
  for (const loop of [first, second]) assert.ok((await poolCard.textContent()).includes(loop));
  assert.equal(await page.locator('ul.jobs li[data-job-state="succeeded"]').count(), 1);
  await screenshot(page, 'dashboard-pool');

  // The audit log: the refused word, the confirmation, each step run, the job's end.
  await page.goto(`${demo.url}/audit`);
  await page.locator('[data-chain="verified"]').waitFor();
  const refusedRows = await auditRows(page, 'plan_apply_refused');
  assert.equal(refusedRows.length, 1);
  assert.match(refusedRows[0].detail, /plan\.confirmation_mismatch/);
  assert.equal((await auditRows(page, 'plan_confirmed')).length, 1);
  assert.ok((await auditRows(page, 'step_ran')).length >= nSteps);
  const finished = await auditRows(page, 'job_finished');
  assert.equal(finished.length, 1);
  await screenshot(page, 'audit-after-apply');
  assert.deepEqual(problems, []);
  await context.close();
});

test('axe finds no WCAG 2.1 AA violation on the storage pages with real data', { skip: SKIP ?? false }, async () => {
  const { page, context } = await openPage(browser, { bypassCSP: true });
  await login(page, demo, 'admin', admin.recoveryCodes[2], '/plugins');
  const report = {};
  await page.getByRole('button', { name: 'Revoke btrfs-devices' }).click();
  await page.getByRole('dialog').waitFor();
  report['/plugins with the revoke dialog'] = await axeViolations(page);
  await page.getByRole('dialog').getByRole('button', { name: 'Cancel' }).click();
  for (const where of ['/dashboard', '/audit']) {
    await page.goto(demo.url + where);
    await page.locator('#page[data-ready]').waitFor({ state: 'attached' });
    report[where] = await axeViolations(page);
  }
  await page.goto(`${demo.url}/storage`);
  await page.getByRole('radio', { name: /Create a btrfs pool/ }).check();
  await page.getByRole('button', { name: 'Continue' }).click();
  await page.getByRole('button', { name: 'Preview the plan' }).click();
  await page.locator('.field-error').filter({ hasText: 'Required.' }).first().waitFor();
  report['/storage form with errors'] = await axeViolations(page);
  await page.getByRole('checkbox', { name: new RegExp(`^${demo.loops[2]} `) }).check();
  await page.getByLabel('Label', { exact: true }).fill('axetank');
  await page.getByLabel('Mount point').fill('/srv/axetank');
  await page.getByRole('button', { name: 'Preview the plan' }).click();
  await page.getByRole('heading', { name: '3. Review the plan' }).waitFor();
  report['/storage plan preview'] = await axeViolations(page);
  const failing = Object.fromEntries(Object.entries(report).filter(([, found]) => found.length > 0));
  assert.deepEqual(failing, {});
  await context.close();
});
