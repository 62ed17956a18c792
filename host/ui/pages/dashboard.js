// @ts-check
// Dashboard: pools (label, mount point, profiles, devices, usage), whole disks by the state the
// host gave each (free, holding data, in use), recent jobs and each registered pool's health,
// from GET /api/v1/facts, GET /api/v1/jobs and GET /api/v1/pools. Says so plainly when this
// nosd has no storage pipeline.

import { get, isMissingApi } from '../api.js';
import { freeDisks, identity, isWholeDisk, missingApiNote, poolCard, poolHealth, wizardHref } from '../components.js';
import { h, replace, section, timeAgo, uid } from '../dom.js';

/** @typedef {import('../types.js').BlockDevice} BlockDevice */
/** @typedef {import('../types.js').Facts} Facts */
/** @typedef {import('../types.js').FactsReply} FactsReply */
/** @typedef {import('../types.js').JobsReply} JobsReply */
/** @typedef {import('../types.js').Me} Me */
/** @typedef {import('../types.js').PoolsReply} PoolsReply */
/** @typedef {import('../dom.js').Child} Child */

/**
 * A disk's path and identity as list-item content; `id` names the identity for a link.
 * @param {BlockDevice} disk
 * @param {string} id
 */
function diskLine(disk, id) {
  return [h('code', {}, disk.path), ' ', h('span', { id }, identity(disk))];
}

/**
 * @param {BlockDevice} disk
 * @param {string} fallback What to say when the host gave no reasons.
 */
function reasonList(disk, fallback) {
  const reasons = disk.reasons?.length ? disk.reasons : [fallback];
  return h('ul', { class: 'reasons' }, reasons.map((reason) => h('li', {}, reason)));
}

/**
 * Where the wizard opens with `disk-wipe` chosen and this disk filled in.
 * @param {BlockDevice} disk
 */
function wipeHref(disk) {
  return wizardHref('disk-wipe', { device: disk.path });
}

/**
 * Free disks, disks that hold data (with a way to wipe them) and disks in use, by `state`.
 * @param {Facts} facts
 */
function diskSections(facts) {
  const disks = (facts.block_devices ?? []).filter(isWholeDisk);
  const free = freeDisks(facts);
  const holding = disks.filter((disk) => disk.state === 'holds-data');
  // The host's own default: a device that was never classified is in use, never free.
  const inUse = disks.filter((disk) => !free.includes(disk) && !holding.includes(disk));
  /**
   * One disk; a function in `more` gets the id of the disk's identity (for aria-describedby).
   * @param {BlockDevice} disk
   * @param {...(Child | ((id: string) => Child))} more
   */
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

/**
 * What the account API already tells: second factor, recovery codes, session expiry.
 * @param {Me} me
 */
function accountSection(me) {
  const low = me.recovery_codes_left <= 3;
  return section('Your account', h('ul', {},
    h('li', {}, 'Two-factor authentication is ', h('strong', {}, me.totp_enrolled ? 'on' : 'off'), me.totp_enrolled ? '.' : ['. ', h('a', { href: '/security' }, 'Turn it on'), '.']),
    h('li', { class: low ? 'warn' : '' }, `${me.recovery_codes_left} of 10 recovery codes left.`, low ? [' ', h('a', { href: '/security' }, 'Generate new ones'), '.'] : ''),
    h('li', {}, `This session ends at the latest at ${new Date(me.expires_at * 1000).toLocaleString()}. `, h('a', { href: '/sessions' }, 'Your sessions'), '.')));
}

/**
 * @param {HTMLElement} root
 * @param {import('../main.js').PageContext} ctx
 */
export async function render(root, ctx) {
  // In the navigation, so main.js has loaded the account.
  const me = ctx.me;
  if (!me) throw new Error('no account is signed in');
  const intro = h('p', {}, `Signed in as ${me.username}. `, h('a', { href: '/storage' }, 'Create or change a pool'), ' with the storage wizard.');
  const account = accountSection(me);
  let facts;
  let jobs;
  let health;
  try {
    const replies = await Promise.all([get('/api/v1/facts'), get('/api/v1/jobs'), get('/api/v1/pools')]);
    ({ facts } = /** @type {FactsReply} */ (replies[0]));
    ({ jobs } = /** @type {JobsReply} */ (replies[1]));
    health = /** @type {PoolsReply} */ (replies[2]).pools;
  } catch (error) {
    if (isMissingApi(error)) { replace(root, intro, missingApiNote('The pools, disks and jobs view'), account); return; }
    throw error;
  }
  const pools = facts.filesystems ?? [];
  replace(root, intro,
    section('Pool health', health.length === 0 ? h('p', {}, 'No registered pools.') : [
      h('ul', { class: 'pool-health-list' }, health.map(poolHealth)), h('p', {}, h('a', { href: '/pool' }, 'All pools'))]),
    section('Pools', pools.length === 0 ? h('p', {}, 'No pools yet.') : h('ul', { class: 'cards' }, pools.map(poolCard))),
    diskSections(facts),
    section('Jobs', jobs.length === 0 ? h('p', {}, 'No jobs yet.') : h('ul', { class: 'jobs' }, jobs.slice(0, 10).map((job) => h('li', { 'data-job-state': job.state },
      h('strong', {}, job.state.replace('_', ' ')), ` ${job.plugin} on ${job.pool}, by ${job.username}, started `, timeAgo(job.created_at))))),
    account);
}
