// @ts-check
// Pools: every registered pool with its health (`/pool`), or one pool (`/pool?uuid=…`): its
// state, health and every reason, members with their error counters, and the last scrub, from
// GET /api/v1/pools and GET /api/v1/pools/{uuid}. Read-only: every action is a link into the
// storage wizard with its planner and fields filled in (mount, the degraded repair, scrub,
// export, destroy, import), so each one is a plan the admin previews and confirms.

import { get, isMissingApi, messageOf } from '../api.js';
import { dataTable, missingApiNote, poolHealth, wizardHref } from '../components.js';
import { bytes, h, replace, section, timeAgo } from '../dom.js';

/** @typedef {import('../types.js').Pool} Pool */
/** @typedef {import('../types.js').PoolsReply} PoolsReply */
/** @typedef {import('../types.js').PoolMember} PoolMember */
/** @typedef {import('../types.js').SmartReading} SmartReading */

/** @param {Pool} pool */
function stateLine(pool) {
  switch (pool.state) {
    case 'mounted': return h('p', {}, 'Mounted at ', h('code', {}, pool.mountpoint), '.');
    case 'not-mounted': return h('p', { class: 'warn' }, 'Not mounted; nos mounts it at ', h('code', {}, pool.mountpoint), '.');
    case 'mounted-elsewhere': return h('p', { class: 'warn' }, pool.mounted_at ? ['Mounted at ', h('code', {}, pool.mounted_at)] : 'Mounted outside nos\'s view', ', not at ', h('code', {}, pool.mountpoint), '.');
    case 'members-missing': return h('p', { class: 'warn' }, 'Devices are missing: the pool is degraded.');
    default: return h('p', {}, `State: ${pool.state}`);
  }
}

/** @param {PoolMember} member */
function memberRow(member) {
  const counters = member.counters;
  const cells = counters
    ? [counters.write_io_errs, counters.read_io_errs, counters.flush_io_errs, counters.corruption_errs, counters.generation_errs].map((n) => h('td', {}, String(n)))
    : [h('td', { colspan: '5' }, 'not read')];
  return h('tr', { 'data-devid': String(member.devid), 'data-missing': String(member.missing) },
    h('td', {}, String(member.devid)),
    h('td', {}, h('code', {}, member.path), member.by_id ? [h('br'), h('code', {}, member.by_id)] : ''),
    h('td', {}, member.missing ? 'missing' : 'present'),
    cells,
    smartCell(member));
}

/**
 * The member's SMART reading, filled in when it arrives (read now by nosd through the agent);
 * a missing member has none.
 * @param {PoolMember} member
 */
function smartCell(member) {
  const cell = h('td', { class: 'smart' }, member.missing ? '—' : 'reading…');
  if (member.missing) return cell;
  get(`/api/v1/disks/${encodeURIComponent(member.path.replace(/^\/dev\//, ''))}/smart`).then(
    (reply) => {
      const smart = /** @type {SmartReading} */ (reply);
      cell.dataset.smart = smart.state;
      replace(cell, h('strong', { class: smart.state === 'ok' || smart.state === 'not-available' ? '' : 'warn' }, smart.state),
        smart.reasons.length ? [h('br'), smart.reasons.join('; ')] : '',
        smart.temperature_celsius === null ? '' : [h('br'), `${smart.temperature_celsius} °C`]);
    },
    (error) => replace(cell, `not read: ${messageOf(error)}`));
  return cell;
}

/** @param {Pool} pool */
function scrubHistory(pool) {
  if (pool.scrub_history.length === 0) return null;
  return section('Scrub history', dataTable({
    caption: `Scrubs of ${pool.label ?? pool.uuid}, newest first`,
    columns: ['Started', 'State', 'Ran', 'Checked', 'Corrected', 'Uncorrectable'],
    body: h('tbody', {}, pool.scrub_history.map((run) => h('tr', {},
      h('td', {}, timeAgo(run.since), run.resumed ? ' (resumed)' : ''),
      h('td', {}, run.state),
      h('td', {}, `${run.duration_seconds} s`),
      h('td', {}, bytes(run.bytes_scrubbed)),
      h('td', { class: run.corrected_errors ? 'warn' : '' }, String(run.corrected_errors)),
      h('td', { class: run.uncorrectable_errors ? 'warn' : '' }, String(run.uncorrectable_errors))))),
  }));
}

/** @param {Pool} pool */
function scrubSection(pool) {
  const scrub = pool.last_scrub;
  if (!scrub) return section('Last scrub', h('p', {}, 'No scrub recorded.'));
  return section('Last scrub', h('ul', {},
    h('li', {}, `${scrub.state}, ${scrub.resumed ? 'resumed' : 'started'} `, timeAgo(scrub.since), `, ran ${scrub.duration_seconds} s`),
    h('li', {}, `${bytes(scrub.bytes_scrubbed)} checked`),
    h('li', { class: scrub.corrected_errors ? 'warn' : '' }, `${scrub.corrected_errors} errors corrected`),
    h('li', { class: scrub.uncorrectable_errors ? 'warn' : '' }, `${scrub.uncorrectable_errors} uncorrectable errors`)));
}

/**
 * A link into the storage wizard: `plugin`'s form with `fields` filled in.
 * @param {string} label
 * @param {string} plugin
 * @param {Record<string, string | number>} fields
 */
function wizardLink(label, plugin, fields) {
  return h('a', { href: wizardHref(plugin, fields), class: 'button', 'data-action': `${plugin}:${fields.action}` }, label);
}

/**
 * What an admin may do with the pool now, by its state: each a plan to preview and confirm.
 * @param {Pool} pool
 */
function actions(pool) {
  const where = pool.mountpoint;
  const missing = pool.members.filter((member) => member.missing);
  /** @type {HTMLElement[]} */
  const links = [];
  if (pool.mounted) {
    if (pool.state === 'members-missing') {
      for (const member of missing) {
        links.push(wizardLink(`Replace missing devid ${member.devid}…`, 'btrfs-devices', { action: 'replace', pool: where, devid: member.devid }));
      }
      links.push(wizardLink('Remove the missing devices…', 'btrfs-devices', { action: 'remove-missing', pool: where }));
    }
    links.push(wizardLink('Repair profiles (after a degraded mount)', 'btrfs-maintenance', { action: 'repair-profiles', pool: where }));
    links.push(wizardLink('Scrub now', 'btrfs-maintenance', { action: 'scrub-start', pool: where }));
    links.push(wizardLink('Unmount', 'btrfs-lifecycle', { action: 'unmount', pool: where }));
    links.push(wizardLink('Export…', 'btrfs-lifecycle', { action: 'export', pool: where }));
  } else {
    if (pool.state === 'members-missing') {
      links.push(wizardLink('Mount degraded (repair)…', 'btrfs-lifecycle', { action: 'mount-degraded', pool: pool.uuid, mountpoint: where }));
    } else {
      links.push(wizardLink('Mount', 'btrfs-lifecycle', { action: 'mount', pool: pool.uuid, mountpoint: where }));
    }
    links.push(wizardLink('Export…', 'btrfs-lifecycle', { action: 'export', pool: pool.uuid, mountpoint: where }));
    links.push(wizardLink('Destroy (wipe its disks)…', 'btrfs-lifecycle', { action: 'destroy', pool: pool.uuid, mountpoint: where }));
  }
  return section('Actions', h('p', { class: 'actions' }, links.flatMap((link, idx) => (idx ? [' ', link] : [link]))));
}

/** @param {Pool} pool */
function poolView(pool) {
  const name = pool.label ?? pool.uuid;
  return [
    h('p', { 'data-health': pool.health }, 'Health: ', h('strong', { class: 'health' }, pool.health)),
    stateLine(pool),
    h('p', {}, `UUID `, h('code', {}, pool.uuid), `. Data ${pool.data_profile}, metadata ${pool.metadata_profile}${pool.encrypted ? ', encrypted' : ''}.`),
    section('Reasons', pool.reasons.length ? h('ul', { class: 'reasons' }, pool.reasons.map((reason) => h('li', {}, reason))) : h('p', {}, 'Nothing found.')),
    section('Members', dataTable({
      caption: `Members of ${name}`,
      columns: ['devid', 'Device', 'State', 'write', 'read', 'flush', 'corruption', 'generation', 'SMART'],
      body: h('tbody', {}, pool.members.map(memberRow)),
    })),
    scrubSection(pool),
    scrubHistory(pool),
    actions(pool),
  ];
}

/**
 * @param {HTMLElement} root
 * @param {import('../main.js').PageContext} _ctx
 */
export async function render(root, _ctx) {
  const uuid = new URLSearchParams(location.search).get('uuid');
  try {
    if (uuid) {
      const pool = /** @type {Pool} */ (await get(`/api/v1/pools/${encodeURIComponent(uuid)}`));
      const heading = h('h2', {}, `Pool ${pool.label ?? pool.uuid}`);
      replace(root, h('p', {}, h('a', { href: '/pool' }, 'All pools')), heading, poolView(pool));
      return;
    }
    const reply = /** @type {PoolsReply} */ (await get('/api/v1/pools'));
    replace(root,
      section('Pools', reply.pools.length === 0 ? h('p', {}, 'No registered pools.') : h('ul', { class: 'pool-health-list' }, reply.pools.map(poolHealth))),
      section('Importable', reply.importable.length === 0 ? h('p', {}, 'No other btrfs filesystem found on the disks.') : h('ul', {},
        reply.importable.map((found) => h('li', { 'data-importable': found.uuid }, h('strong', {}, found.label ?? found.uuid), ' on ',
          found.devices.map((device) => h('code', {}, device)).flatMap((el, idx) => (idx ? [', ', el] : [el])),
          found.n_missing ? ` (${found.n_missing} devices missing)` : '', ' ',
          wizardLink('Import…', 'btrfs-lifecycle', { action: 'import', pool: found.uuid }))))),
      h('p', { class: 'hint' }, 'Observed ', timeAgo(reply.observed_at), '.'));
  } catch (error) {
    if (isMissingApi(error)) { replace(root, missingApiNote('The pools view')); return; }
    throw error;
  }
}
