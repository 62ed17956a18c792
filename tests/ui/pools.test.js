// The pools page and the dashboard's pool health, on mocked `/api/v1/pools` answers: the body
// nosd gave in host/tests/attacks/pools.rs (captured facts and readings of a real raid1), and
// the same pool with a member missing. No agent runs.

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';

import { axeViolations, launchBrowser, login, openPage, screenshot, setupAdmin, startNosd } from './lib/harness.js';

const UUID = '00b3a85f-67a1-4ead-97e8-a2c61cc26544';
/** `GET /api/v1/pools` as nosd answered it in host/tests/attacks/pools.rs. */
const ANSWERED = {"importable":[],"observed_at":1796316097,"pools":[{"data_profile":"unknown","encrypted":false,"health":"ok","label":"fixpool","last_good":{"at":1796316097,"n_members":2,"size_bytes":0},"last_scrub":{"bytes_scrubbed":203948032,"corrected_errors":0,"duration_seconds":0,"resumed":false,"since":1796229637,"state":"finished","uncorrectable_errors":0},"scrub_history":[{"bytes_scrubbed":203948032,"corrected_errors":0,"duration_seconds":0,"resumed":false,"since":1796229637,"state":"finished","uncorrectable_errors":0}],"members":[{"by_id":null,"counters":{"corruption_errs":0,"flush_io_errs":0,"generation_errs":0,"read_io_errs":0,"write_io_errs":0},"devid":1,"missing":false,"path":"/dev/loop6"},{"by_id":null,"counters":{"corruption_errs":0,"flush_io_errs":0,"generation_errs":0,"read_io_errs":0,"write_io_errs":0},"devid":2,"missing":false,"path":"/dev/loop7"}],"metadata_profile":"unknown","mountpoint":"/tmp/nos-capture.1PB2A1/mnt-fixpool","mounted":true,"mounted_at":null,"mount_input":null,"reasons":["size unknown: fullness is not judged"],"state":"mounted","uuid":UUID}]};

/** The same pool with devid 2 gone, as reconcile reports it (reasons from health::Finding). */
function degraded() {
  const pool = structuredClone(ANSWERED.pools[0]);
  pool.state = 'members-missing';
  pool.mounted = true;
  pool.health = 'degraded';
  pool.reasons = ['1 of 2 devices missing (devid 2): the pool has lost redundancy until the missing device is replaced or removed', ...pool.reasons];
  pool.members[1].missing = true;
  return { ...ANSWERED, pools: [pool] };
}

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

/**
 * Serves `answer` for the list and its pool for the pool's own URL.
 * @param {import('playwright-core').Page} page
 */
async function mockPools(page, answer) {
  await page.route('**/api/v1/pools*', (route) => route.fulfill({ status: 200, contentType: 'application/json', body: JSON.stringify(answer) }));
  // What nosd answers for a loop device (tests/tests/smart.rs reads it through the real agent).
  await page.route('**/api/v1/disks/*/smart', (route) => {
    const disk = decodeURIComponent(new URL(route.request().url()).pathname.split('/')[4]);
    route.fulfill({ status: 200, contentType: 'application/json', body: JSON.stringify({ disk, state: 'not-available', reasons: [`/dev/${disk}: Unable to detect device type`], model: null, serial: null, protocol: null, temperature_celsius: null, power_on_hours: null, exit_status: 1 }) });
  });
  await page.route(`**/api/v1/pools/${UUID}`, (route) => route.fulfill({ status: 200, contentType: 'application/json', body: JSON.stringify(answer.pools[0]) }));
}

test('pools page: health at a glance, then one pool with its reasons, members and last scrub', async () => {
  const { page, context, problems } = await openPage(browser);
  const answer = degraded();
  await mockPools(page, answer);
  await login(page, server, 'admin', await admin.authenticator.nextCode(), '/pool');
  const item = page.locator('li.pool-health[data-pool="fixpool"]');
  assert.equal(await item.getAttribute('data-health'), 'degraded');
  assert.match(await item.textContent() ?? '', /degraded \(members missing\)1 of 2 devices missing \(devid 2\)/);
  assert.equal(await page.locator('#page[data-ready]').getAttribute('data-ready'), 'true');
  await screenshot(page, 'pools-list');

  await item.getByRole('link', { name: 'fixpool' }).click();
  await page.getByRole('heading', { level: 2, name: 'Pool fixpool' }).waitFor();
  const reasons = await page.getByRole('region', { name: 'Reasons' }).locator('li').allTextContents();
  assert.deepEqual(reasons, answer.pools[0].reasons);
  await page.locator('td.smart[data-smart="not-available"]').waitFor();
  const rows = await page.getByRole('region', { name: 'Members' }).locator('tbody tr').evaluateAll((trs) => trs.map((tr) => [...tr.querySelectorAll('td')].map((td) => td.textContent)));
  assert.deepEqual(rows, [
    ['1', '/dev/loop6', 'present', '0', '0', '0', '0', '0', 'not-available/dev/loop6: Unable to detect device type'],
    ['2', '/dev/loop7', 'missing', '0', '0', '0', '0', '0', '—'],
  ]);
  const scrub = await page.getByRole('region', { name: 'Last scrub' }).textContent();
  assert.ok(scrub?.includes('finished, started') && scrub.includes('0 uncorrectable errors'), scrub ?? '');
  // The repair of a pool mounted degraded: replace the missing devid, or drop it, then the
  // profiles; each a link into the wizard with its planner and fields filled in.
  const actions = await page.getByRole('region', { name: 'Actions' }).locator('a').evaluateAll((links) => links.map((a) => [a.textContent, a.getAttribute('href')]));
  assert.deepEqual(actions.slice(0, 3), [
    ['Replace missing devid 2…', '/storage?plugin=btrfs-devices&action=replace&pool=/tmp/nos-capture.1PB2A1/mnt-fixpool&devid=2'],
    ['Remove the missing devices…', '/storage?plugin=btrfs-devices&action=remove-missing&pool=/tmp/nos-capture.1PB2A1/mnt-fixpool'],
    ['Repair profiles (after a degraded mount)', '/storage?plugin=btrfs-maintenance&action=repair-profiles&pool=/tmp/nos-capture.1PB2A1/mnt-fixpool'],
  ]);
  const history = await page.getByRole('region', { name: 'Scrub history' }).locator('tbody tr').count();
  assert.equal(history, 1);
  await screenshot(page, 'pool-degraded');
  assert.deepEqual(problems, []);
  await context.close();
});

test('a pool that is not mounted offers its mount plan; one with a member missing the degraded mount', async () => {
  const { page, context, problems } = await openPage(browser);
  const answer = degraded();
  answer.pools[0].mounted = false;
  await mockPools(page, answer);
  await login(page, server, 'admin', await admin.authenticator.nextCode(), `/pool?uuid=${UUID}`);
  const region = page.getByRole('region', { name: 'Actions' });
  const mount = region.getByRole('link', { name: 'Mount degraded (repair)…' });
  assert.equal(await mount.getAttribute('href'), `/storage?plugin=btrfs-lifecycle&action=mount-degraded&pool=${UUID}&mountpoint=/tmp/nos-capture.1PB2A1/mnt-fixpool`);
  assert.equal(await region.getByRole('link', { name: 'Mount', exact: true }).count(), 0);
  assert.equal(await region.getByRole('link', { name: 'Scrub now' }).count(), 0);
  assert.deepEqual(problems, []);
  await context.close();
});

test('axe finds no WCAG 2.1 AA violation on the pools list and a pool page', async () => {
  // axe injects a script, which the CSP (Trusted Types) rightly refuses.
  const { page, context } = await openPage(browser, { bypassCSP: true });
  await mockPools(page, degraded());
  await login(page, server, 'admin', await admin.authenticator.nextCode(), '/pool');
  const report = { '/pool': await axeViolations(page) };
  await page.goto(`${server.url}/pool?uuid=${UUID}`);
  await page.locator('#page[data-ready]').waitFor({ state: 'attached' });
  report['/pool?uuid'] = await axeViolations(page);
  assert.deepEqual(report, { '/pool': [], '/pool?uuid': [] });
  await context.close();
});
