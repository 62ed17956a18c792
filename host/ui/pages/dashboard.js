// Dashboard: pools (label, mount point, profiles, devices, usage), whole disks by the state the
// host gave each (free, holding data, in use), and recent jobs, from GET /api/v1/facts and
// GET /api/v1/jobs. Says so plainly when this nosd has no storage pipeline.

import { get, isMissingApi } from '../api.js';
import { bytes, h, replace, section, timeAgo, uid } from '../dom.js';

export function missingApiNote(what) {
  return h('p', { class: 'form-status info', role: 'status' }, `${what} needs the storage API (/api/v1/facts, /api/v1/plans …), which this nosd does not serve (no storage pipeline is configured).`);
}

/** A whole disk or loop device; partitions are listed as devices of their own, with `parent`. */
export function isWholeDisk(device) {
  return ['disk', 'loop'].includes(device.device_type) && !device.parent;
}

/**
 * Whole disks (or loop devices) the host classified as blank. Nothing else is ever free: a
 * device whose state is missing or unknown is not, whatever its other fields say.
 */
export function freeDisks(facts) {
  return (facts.block_devices ?? []).filter((disk) => isWholeDisk(disk) && disk.state === 'blank' && disk.size_bytes > 0);
}

/** The device the facts know by this path, kernel name or by-id link. */
export function findDevice(facts, name) {
  return (facts.block_devices ?? []).find((device) => device.path === name || device.kname === name || (device.by_id ?? []).includes(name));
}

/** "WDC WD40EFRX, serial WD-AAA1, 3.6 TiB": what tells one disk from another besides its path. */
export function identity(disk) {
  const model = disk.model?.trim() || (disk.device_type === 'loop' ? 'loop device' : 'unknown model');
  const serial = disk.serial?.trim() ? `serial ${disk.serial.trim()}` : 'no serial';
  return `${model}, ${serial}, ${bytes(disk.size_bytes)}`;
}

/** What a device is, without its path: a disk's identity, or a partition and its disk. */
export function aboutDevice(facts, device) {
  if (device.device_type !== 'part') return identity(device);
  const disk = device.parent ? findDevice(facts, device.parent) : undefined;
  return `partition, ${bytes(device.size_bytes)}${disk ? `, on ${describeDevice(facts, disk)}` : ''}`;
}

/** A device named in full: "/dev/sdb (WDC WD40EFRX, serial WD-1, 3.6 TiB)". */
export function describeDevice(facts, device) {
  return `${device.path} (${aboutDevice(facts, device)})`;
}

/** A disk's path and identity as list-item content; `id` names the identity for a link. */
function diskLine(disk, id) {
  return [h('code', {}, disk.path), ' ', h('span', { id }, identity(disk))];
}

function reasonList(disk, fallback) {
  const reasons = disk.reasons?.length ? disk.reasons : [fallback];
  return h('ul', { class: 'reasons' }, reasons.map((reason) => h('li', {}, reason)));
}

/** Where the wizard opens with `disk-wipe` chosen and this disk filled in. */
export function wipeHref(disk) {
  return `/storage?${new URLSearchParams({ plugin: 'disk-wipe', device: disk.path }).toString().replaceAll('%2F', '/')}`;
}

/** Free disks, disks that hold data (with a way to wipe them) and disks in use, by `state`. */
function diskSections(facts) {
  const disks = (facts.block_devices ?? []).filter(isWholeDisk);
  const free = freeDisks(facts);
  const holding = disks.filter((disk) => disk.state === 'holds-data');
  // The host's own default: a device that was never classified is in use, never free.
  const inUse = disks.filter((disk) => !free.includes(disk) && !holding.includes(disk));
  const item = (disk, ...more) => {
    const id = uid('disk');
    return h('li', { 'data-disk': disk.path, 'data-state': disk.state ?? 'unknown' }, diskLine(disk, id), more.map((one) => (typeof one === 'function' ? one(id) : one)));
  };
  return [
    section('Free disks', free.length === 0 ? h('p', {}, 'No free disks.') : h('ul', { class: 'disks' }, free.map((disk) => item(disk)))),
    section('Disks that hold data', holding.length === 0 ? h('p', {}, 'No disk holds data.') : [
      h('p', { class: 'hint' }, 'Not offered for a new pool: wipe one first if its data can go.'),
      h('ul', { class: 'disks' }, holding.map((disk) => item(disk, reasonList(disk, 'holds data'),
        (id) => h('a', { href: wipeHref(disk), class: 'button', 'aria-describedby': id }, 'Wipe…'))))]),
    section('Disks in use', inUse.length === 0 ? h('p', {}, 'No disk is in use.') : h('ul', { class: 'disks' },
      inUse.map((disk) => item(disk, reasonList(disk, disk.state === 'in-use' ? 'in use' : `its state is unknown (${disk.state ?? 'none given'})`))))),
  ];
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
  replace(root, intro,
    section('Pools', pools.length === 0 ? h('p', {}, 'No pools yet.') : h('ul', { class: 'cards' }, pools.map(poolCard))),
    diskSections(facts),
    section('Jobs', jobs.length === 0 ? h('p', {}, 'No jobs yet.') : h('ul', { class: 'jobs' }, jobs.slice(0, 10).map((job) => h('li', { 'data-job-state': job.state },
      h('strong', {}, job.state.replace('_', ' ')), ` ${job.plugin} on ${job.pool}, by ${job.username}, started `, timeAgo(job.created_at))))),
    account);
}
