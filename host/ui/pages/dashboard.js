// Dashboard: pools (label, mount point, profiles, devices, usage), free disks, and recent
// jobs, from GET /api/v1/facts and GET /api/v1/jobs. Says so plainly when this nosd has no
// storage pipeline.

import { get, isMissingApi } from '../api.js';
import { bytes, h, replace, section, timeAgo } from '../dom.js';

export function missingApiNote(what) {
  return h('p', { class: 'form-status info', role: 'status' }, `${what} needs the storage API (/api/v1/facts, /api/v1/plans …), which this nosd does not serve (no storage pipeline is configured).`);
}

/** Whole disks (or loop devices) with no filesystem signature, mount, holder or pool. */
export function freeDisks(facts) {
  const inPools = new Set((facts.filesystems ?? []).flatMap((fs) => (fs.devices ?? []).map((device) => device.path)));
  return (facts.block_devices ?? []).filter((disk) => ['disk', 'loop'].includes(disk.device_type)
    && !disk.fstype && (disk.mountpoints ?? []).length === 0 && (disk.holders ?? []).length === 0
    && disk.size_bytes > 0 && !inPools.has(disk.path));
}

/** One pool (a btrfs filesystem from the facts) as a card. */
export function poolCard(pool) {
  const name = pool.label ?? pool.uuid;
  const used = pool.used_bytes ?? 0;
  const size = pool.size_bytes ?? 0;
  return h('li', { class: 'card', 'data-pool': name },
    h('h3', {}, name),
    h('p', {}, 'Mounted at ', h('code', {}, pool.mountpoint || '–')),
    h('p', {}, `Data ${pool.data_profile}, metadata ${pool.metadata_profile}`),
    h('p', {}, 'Devices: ', (pool.devices ?? []).map((device) => h('code', {}, device.path)).flatMap((el, idx) => (idx ? [', ', el] : [el]))),
    h('div', {}, h('progress', { max: size || 1, value: used, 'aria-label': `${name} usage` }), ` ${bytes(used)} of ${bytes(size)} used`));
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
  let jobs;
  try {
    [{ facts }, { jobs }] = await Promise.all([get('/api/v1/facts'), get('/api/v1/jobs')]);
  } catch (error) {
    if (isMissingApi(error)) { replace(root, intro, missingApiNote('The pools, disks and jobs view'), account); return; }
    throw error;
  }
  const pools = facts.filesystems ?? [];
  const disks = freeDisks(facts);
  replace(root, intro,
    section('Pools', pools.length === 0 ? h('p', {}, 'No pools yet.') : h('ul', { class: 'cards' }, pools.map(poolCard))),
    section('Free disks', disks.length === 0 ? h('p', {}, 'No free disks.') : h('ul', {}, disks.map((disk) => h('li', {}, h('code', {}, disk.path), ` ${bytes(disk.size_bytes)}`)))),
    section('Jobs', jobs.length === 0 ? h('p', {}, 'No jobs yet.') : h('ul', { class: 'jobs' }, jobs.slice(0, 10).map((job) => h('li', { 'data-job-state': job.state },
      h('strong', {}, job.state.replace('_', ' ')), ` ${job.plugin} on ${job.pool}, by ${job.username}, started `, timeAgo(job.created_at))))),
    account);
}
