// Disks by the state nosd gives each one. A real nosd serves fixture facts
// (`[pipeline] fixture_facts`, as the demo's dry-run mode does; nosd classifies them again, so
// `state` and `reasons` are the host's own): a blank disk and a blank loop device are the only
// free disks, shown by model, serial and size; a loop device with a GPT partition table and an
// ext4 partition holds data and offers "Wipe…", which opens the wizard on disk-wipe with the
// device filled in and a preview that says what it destroys and names the disk; disks with a
// mounted partition or in a mounted pool are in use. A mocked facts answer checks that a device
// without a known state is never free. No agent runs: nothing here is applied.

import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';

import { REPO, axeViolations, launchBrowser, login, openPage, screenshot, setupAdmin, startNosd } from './lib/harness.js';

const FIXTURE = path.join(REPO, 'tests', 'ui', 'fixtures', 'disk-states.json');

/** A built plugin's directory: plugins/target/dist (every host build copies them there), else
 *  the newest nos-host build script output. */
function pluginDir(name) {
  const dist = path.join(REPO, 'plugins', 'target', 'dist', name);
  if (existsSync(path.join(dist, 'plugin.toml'))) return dist;
  const build = path.join(process.env.CARGO_TARGET_DIR ?? path.join(REPO, 'target'), 'debug', 'build');
  const found = (existsSync(build) ? readdirSync(build) : []).filter((entry) => entry.startsWith('nos-host-'))
    .map((entry) => path.join(build, entry, 'out', 'plugins', name)).filter((dir) => existsSync(path.join(dir, 'plugin.toml')))
    .sort((a, b) => statSync(b).mtimeMs - statSync(a).mtimeMs);
  if (!found.length) throw new Error(`no built ${name} plugin: build nosd first (cargo build -p nos-host --bin nosd)`);
  return found[0];
}

let scratch;
let server;
let browser;
let admin;

before(async () => {
  // The agent socket is never connected to: facts come from the file, plans are judged by nosd.
  scratch = mkdtempSync(path.join(tmpdir(), 'nos-ui-disks-'));
  const tokenFile = path.join(scratch, 'agent.token');
  writeFileSync(tokenFile, 'unused\n', { mode: 0o600 });
  server = await startNosd([
    '[pipeline]',
    `agent_socket = "${path.join(scratch, 'agent.sock')}"`,
    `token_file = "${tokenFile}"`,
    `plugins = ${JSON.stringify([pluginDir('btrfs-pool'), pluginDir('disk-wipe')])}`,
    `fixture_facts = "${FIXTURE}"`,
    'dangerous_grant_all_plugins = true',
  ].join('\n'));
  browser = await launchBrowser();
  admin = await setupAdmin(server);
});

after(async () => {
  await browser?.close();
  await server?.stop();
  if (scratch) rmSync(scratch, { recursive: true, force: true });
});

/** The list items of one dashboard section (by its heading), as {path, text, reasons}. */
async function diskItems(page, heading) {
  const region = page.getByRole('region', { name: heading, exact: true });
  await region.waitFor();
  return region.locator('li[data-disk]').evaluateAll((items) => items.map((item) => ({
    path: item.dataset.disk,
    text: item.textContent,
    reasons: [...item.querySelectorAll('ul.reasons > li')].map((li) => li.textContent),
  })));
}

test('dashboard: free only when blank, what the others hold or why they are in use, Wipe… into the wizard', async () => {
  const { page, context, problems } = await openPage(browser);
  await login(page, server, 'admin', await admin.authenticator.nextCode());
  // Fixture facts: every page says the disks are not this machine's.
  await page.getByRole('status').filter({ hasText: 'Dry run: the disks shown come from a fixture file' }).waitFor();

  const free = await diskItems(page, 'Free disks');
  assert.deepEqual(free.map((disk) => disk.path), ['/dev/sdb', '/dev/loop0']);
  for (const token of ['WDC WD40EFRX-68N32N0', 'serial WD-WCC7K1AAA001', '3.6 TiB']) assert.ok(free[0].text.includes(token), `${token} not in ${free[0].text}`);
  for (const token of ['loop device', 'no serial', '1.0 GiB']) assert.ok(free[1].text.includes(token), `${token} not in ${free[1].text}`);

  // The GPT disk of the bug, and an empty GPT (no partition, no signature, no holder: free
  // by the old rule): not free, hold data, with each reason on a line of its own.
  const holding = await diskItems(page, 'Disks that hold data');
  assert.deepEqual(holding.map((disk) => disk.path), ['/dev/loop3', '/dev/sde']);
  assert.deepEqual(holding[0].reasons, ['has a gpt partition table', "partition loop3p1: ext4 'data', 1022 MiB"]);
  assert.deepEqual(holding[1].reasons, ['has a gpt partition table']);
  assert.ok(holding[1].text.includes('Samsung SSD 870 EVO 1TB, serial S6PTNZ0AAA004, 931.5 GiB'), holding[1].text);
  const wipe = page.locator('li[data-disk="/dev/loop3"]').getByRole('link', { name: 'Wipe…' });
  const href = new URL(await wipe.getAttribute('href'), server.url);
  assert.equal(href.pathname, '/storage');
  assert.equal(href.searchParams.get('plugin'), 'disk-wipe');
  assert.equal(href.searchParams.get('device'), '/dev/loop3');
  assert.equal(await page.getByRole('link', { name: 'Wipe…' }).count(), 2);
  assert.equal(await page.locator('li[data-disk="/dev/sde"]').getByRole('link', { name: 'Wipe…' }).getAttribute('href'), '/storage?plugin=disk-wipe&device=/dev/sde');

  const inUse = await diskItems(page, 'Disks in use');
  assert.deepEqual(inUse.map((disk) => disk.path).sort(), ['/dev/sdc', '/dev/sdd']);
  const sdc = inUse.find((disk) => disk.path === '/dev/sdc');
  assert.ok(sdc.reasons.includes('sdc1 is mounted at /mnt/x'), sdc.reasons.join(' | '));
  assert.ok(sdc.text.includes('serial ZGY0AAA2'));
  const sdd = inUse.find((disk) => disk.path === '/dev/sdd');
  assert.ok(sdd.reasons.some((reason) => reason.includes("member of the mounted btrfs filesystem 'tank'")), sdd.reasons.join(' | '));
  // Partitions are devices of their own, never listed as disks.
  assert.equal(await page.locator('li[data-disk$="p1"], li[data-disk="/dev/sdc1"]').count(), 0);
  await screenshot(page, 'dashboard-disk-states');

  // Wipe…: the wizard opens on disk-wipe with the device filled in and identified.
  await wipe.click();
  await page.waitForURL(`${server.url}/storage?plugin=disk-wipe&device=/dev/loop3`);
  await page.getByRole('heading', { name: '2. Wipe a disk' }).waitFor();
  const device = page.getByLabel('Device', { exact: true });
  assert.equal(await device.inputValue(), '/dev/loop3');
  assert.equal(await page.locator('p.disk-identity').textContent(), 'That is /dev/loop3 (loop device, no serial, 1.0 GiB).');
  await page.getByRole('button', { name: 'Preview the plan' }).click();

  // The preview: what is destroyed first, every step's device by identity, the prompt naming the disk.
  await page.getByRole('heading', { name: '3. Review the plan' }).waitFor();
  const destroy = page.getByRole('region', { name: 'This will destroy:' });
  const doomed = await destroy.locator('li').allTextContents();
  assert.equal(doomed.length, 2, doomed.join(' | '));
  assert.match(doomed[0], /^partition \/dev\/loop3p1: the ext4 signature 'data' .* is destroyed$/);
  assert.match(doomed[1], /^\/dev\/loop3 \(1\.0 GiB\): the partition table \(1 partition\).* cannot be recovered$/);
  assert.deepEqual(await page.locator('ol.plan > li[data-step]').evaluateAll((steps) => steps.map((step) => step.dataset.step)), ['wipe-loop3p1', 'wipe-loop3']);
  assert.equal(await page.locator('ol.plan > li.destructive[data-verdict="allowed"]').count(), 2);
  assert.equal(await page.locator('li[data-step="wipe-loop3p1"] p.disk-identity').textContent(),
    '/dev/loop3p1: partition, 1022.0 MiB, on /dev/loop3 (loop device, no serial, 1.0 GiB)');
  assert.equal(await page.locator('li[data-step="wipe-loop3"] p.disk-identity').textContent(), '/dev/loop3: loop device, no serial, 1.0 GiB');
  assert.ok(await page.getByLabel('Type loop3 to confirm').isVisible());
  assert.match(await page.locator('.field .hint').filter({ hasText: 'This erases' }).textContent(), /^This erases what is on \/dev\/loop3 \(loop device, no serial, 1\.0 GiB\)\.$/);
  await screenshot(page, 'storage-wipe-preview');
  assert.deepEqual(problems, []);
  await context.close();
});

test('storage wizard: the pool form offers only the blank disks, by identity, and has no force', async () => {
  const { page, context, problems } = await openPage(browser);
  await login(page, server, 'admin', admin.recoveryCodes[0], '/storage');
  await page.getByRole('radio', { name: /Create a btrfs pool/ }).check();
  await page.getByRole('button', { name: 'Continue' }).click();
  await page.getByRole('heading', { name: '2. Create a btrfs pool' }).waitFor();
  const offered = await page.locator('fieldset input[type="checkbox"]').evaluateAll((boxes) => boxes.map((box) => box.value));
  assert.deepEqual(offered, ['/dev/sdb', '/dev/loop0']);
  assert.ok(await page.getByRole('checkbox', { name: '/dev/sdb — WDC WD40EFRX-68N32N0, serial WD-WCC7K1AAA001, 3.6 TiB, rotational' }).isVisible());
  assert.equal(await page.getByText(/force/i).count(), 0);
  assert.equal(await page.getByRole('checkbox', { name: /force/i }).count(), 0);

  // Wiping a real disk: the prompt names it by model, serial, size and path.
  await page.goto(`${server.url}/storage?plugin=disk-wipe&device=/dev/sde`);
  await page.getByRole('button', { name: 'Preview the plan' }).click();
  await page.getByRole('heading', { name: '3. Review the plan' }).waitFor();
  assert.ok(await page.getByLabel('Type S6PTNZ0AAA004 to confirm').isVisible(), 'the confirmation word is the disk\'s serial');
  assert.equal(await page.locator('.field .hint').filter({ hasText: 'This erases' }).textContent(),
    'This erases what is on /dev/sde (Samsung SSD 870 EVO 1TB, serial S6PTNZ0AAA004, 931.5 GiB).');
  assert.equal(await page.locator('li[data-step="wipe-sde"] p.disk-identity').textContent(), '/dev/sde: Samsung SSD 870 EVO 1TB, serial S6PTNZ0AAA004, 931.5 GiB');
  assert.equal(await page.getByRole('region', { name: 'This will destroy:' }).locator('li').count(), 1);

  // A link to a planner that is not there says so and offers the others.
  await page.goto(`${server.url}/storage?plugin=no-such-planner&device=/dev/sdb`);
  await page.getByRole('alert').filter({ hasText: 'no-such-planner cannot be used here: no such planner is loaded.' }).waitFor();
  assert.ok(await page.getByRole('radio', { name: /Wipe a disk/ }).isVisible());
  assert.deepEqual(problems, []);
  await context.close();
});

test('dashboard: a device whose state is missing or unknown is never free (mocked facts)', async () => {
  const { page, context, problems } = await openPage(browser);
  const device = (kname, more) => ({ path: `/dev/${kname}`, kname, size_bytes: 1 << 30, rotational: false, device_type: 'disk', fstype: null, label: null, uuid: null, mountpoints: [], holders: [], by_id: [], parent: null, model: null, serial: null, wwn: null, partition_table: null, usage: null, reasons: [], ...more });
  const facts = {
    block_devices: [
      device('vda', {}), // no state at all: the old rule called this free
      device('vdb', { state: 'maybe' }),
      device('vdc', { state: 'blank', model: 'QEMU HARDDISK', serial: 'QM0001' }),
      device('vdc1', { state: 'blank', device_type: 'part', parent: 'vdc' }),
      device('dm-0', { state: 'blank', device_type: 'crypt' }),
    ],
    filesystems: [],
  };
  await page.route('**/api/v1/facts*', (route) => route.fulfill({ status: 200, contentType: 'application/json', body: JSON.stringify({ facts }) }));
  await login(page, server, 'admin', admin.recoveryCodes[1]);
  assert.deepEqual((await diskItems(page, 'Free disks')).map((disk) => disk.path), ['/dev/vdc']);
  const inUse = await diskItems(page, 'Disks in use');
  assert.deepEqual(inUse.map((disk) => [disk.path, disk.reasons]), [
    ['/dev/vda', ['its state is unknown (none given)']],
    ['/dev/vdb', ['its state is unknown (maybe)']],
  ]);
  assert.ok(await page.getByText('No disk holds data.').isVisible());
  assert.deepEqual(problems, []);
  await context.close();
});

test('axe finds no WCAG 2.1 AA violation on the disk lists and the wipe preview', async () => {
  const { page, context } = await openPage(browser, { bypassCSP: true });
  await login(page, server, 'admin', admin.recoveryCodes[2]);
  const report = { '/dashboard with disks in every state': await axeViolations(page) };
  await page.goto(`${server.url}/storage?plugin=disk-wipe&device=/dev/loop3`);
  await page.getByRole('button', { name: 'Preview the plan' }).click();
  await page.getByRole('heading', { name: '3. Review the plan' }).waitFor();
  report['/storage disk-wipe preview'] = await axeViolations(page);
  const failing = Object.fromEntries(Object.entries(report).filter(([, found]) => found.length > 0));
  assert.deepEqual(failing, {});
  await context.close();
});
