// Dashboard: pools (label, mount point, profiles, devices, usage), free disks, running jobs,
// from GET /api/v1/facts. Written against the storage API contract; says so plainly when this
// server does not have that API yet.

import { get, isMissingApi } from '../api.js';
import { bytes, h, replace, section } from '../dom.js';

export function missingApiNote(what) {
  return h('p', { class: 'form-status info', role: 'status' }, `${what} needs the storage API (/api/v1/facts, /api/v1/plans …), which this nosd does not serve (no storage pipeline is configured).`);
}

/** What the account API already tells: second factor, recovery codes, session expiry. */
function accountSection(me) {
  const low = me.recovery_codes_left <= 3;
  return section('Your account', h('ul', {},
    h('li', {}, 'Two-factor authentication is ', h('strong', {}, me.totp_enrolled ? 'on' : 'off'), me.totp_enrolled ? '.' : ['. ', h('a', { href: '/security' }, 'Turn it on'), '.']),
    h('li', { class: low ? 'warn' : '' }, `${me.recovery_codes_left} of 10 recovery codes left.`, low ? [' ', h('a', { href: '/security' }, 'Generate new ones'), '.'] : ''),
    h('li', {}, `This session ends at the latest at ${new Date(me.expires_at * 1000).toLocaleString()}. `, h('a', { href: '/sessions' }, 'Your sessions'), '.')));
}

export async function render(root, ctx) {
  const intro = h('p', {}, `Signed in as ${ctx.me.username}. `, h('a', { href: '/storage' }, 'Create or change a pool'), ' with the storage wizard.');
  const account = accountSection(ctx.me);
  let facts;
  try {
    facts = await get('/api/v1/facts');
  } catch (error) {
    if (isMissingApi(error)) { replace(root, intro, missingApiNote('The pools, disks and jobs view'), account); return; }
    throw error;
  }
  const pools = facts.pools ?? [];
  const disks = (facts.disks ?? facts.block_devices ?? []).filter((disk) => !disk.in_use && !disk.mounted);
  const jobs = (facts.jobs ?? []).filter((job) => job.state === 'running' || job.state === 'queued');
  const usage = (pool) => {
    const used = pool.used_bytes ?? 0;
    const size = pool.size_bytes ?? 0;
    return h('div', {}, h('progress', { max: size || 1, value: used, 'aria-label': `${pool.label} usage` }), ` ${bytes(used)} of ${bytes(size)}`);
  };
  replace(root, intro,
    section('Pools', pools.length === 0 ? h('p', {}, 'No pools yet.') : h('ul', { class: 'cards' }, pools.map((pool) => h('li', { class: 'card' },
      h('h3', {}, pool.label),
      h('p', {}, 'Mounted at ', h('code', {}, pool.mountpoint ?? pool.mount_point ?? '–')),
      h('p', {}, `Data ${pool.profiles?.data ?? '?'}, metadata ${pool.profiles?.metadata ?? '?'}`),
      h('p', {}, 'Devices: ', (pool.devices ?? []).map((device) => h('code', {}, typeof device === 'string' ? device : device.path)).flatMap((el, idx) => (idx ? [', ', el] : [el]))),
      usage(pool))))),
    section('Free disks', disks.length === 0 ? h('p', {}, 'No free disks.') : h('ul', {}, disks.map((disk) => h('li', {}, h('code', {}, disk.path), ` ${bytes(disk.size_bytes)} ${disk.model ?? ''}`)))),
    section('Running jobs', jobs.length === 0 ? h('p', {}, 'Nothing is running.') : h('ul', {}, jobs.map((job) => h('li', {}, `${job.title ?? job.id}: ${job.state}`)))),
    account);
}
