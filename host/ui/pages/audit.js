// @ts-check
// Audit log: the newest entries from GET /api/v1/audit (newest first) with the hash chain's
// verification status, filterable by kind and by text.

import { get, isMissingApi } from '../api.js';
import { dataTable, missingApiNote, scrollingTable } from '../components.js';
import { field, h, replace, uid } from '../dom.js';

/** @typedef {import('../types.js').AuditReply} AuditReply */

/** @param {HTMLElement} root */
export async function render(root) {
  let reply;
  try {
    reply = /** @type {AuditReply} */ (await get('/api/v1/audit?limit=1000'));
  } catch (error) {
    if (isMissingApi(error)) { replace(root, missingApiNote('The audit log')); return; }
    throw error;
  }
  const entries = (reply.records ?? []).slice().reverse();
  const chain = reply.chain;
  const kinds = [...new Set(entries.map((entry) => entry.kind))].sort();
  const kindId = uid('kind');
  const kind = h('select', { id: kindId, name: 'kind' }, h('option', { value: '' }, 'All kinds'), kinds.map((one) => h('option', { value: one }, one)));
  const filter = field({ label: 'Text', name: 'filter', required: false, hint: 'Shows entries whose user, verdict or detail contains this text.' });
  const count = h('p', { role: 'status' });
  const body = h('tbody');
  const draw = () => {
    const needle = filter.input.value.trim().toLowerCase();
    const shown = entries.filter((entry) => (!kind.value || entry.kind === kind.value)
      && (!needle || [entry.username, entry.verdict, entry.detail].join(' ').toLowerCase().includes(needle)));
    count.textContent = `${shown.length} of ${entries.length} entries.`;
    replace(body, shown.map((entry) => h('tr', { 'data-kind': entry.kind },
      h('td', {}, String(entry.seq)),
      h('td', {}, new Date(entry.at * 1000).toLocaleString()),
      h('td', {}, h('code', {}, entry.kind)),
      h('td', {}, entry.verdict ?? ''),
      h('td', {}, entry.username ?? ''),
      h('td', { class: 'detail' }, entry.detail))));
  };
  kind.addEventListener('change', draw);
  filter.input.addEventListener('input', draw);
  draw();
  const status = chain.verified
    ? h('p', { class: 'form-status info', role: 'status', 'data-chain': 'verified' }, `The hash chain verifies: ${chain.records} entries in ${chain.files} file(s).`)
    : h('p', { class: 'form-status error', role: 'alert', 'data-chain': 'broken' }, `The hash chain does not verify: ${chain.error ?? 'unknown error'}.`);
  replace(root, status,
    h('div', { class: 'filters' }, h('div', { class: 'field' }, h('label', { for: kindId }, 'Kind'), kind), filter.wrap),
    count,
    scrollingTable('Audit entries', dataTable({ caption: 'Audit entries, newest first', columns: ['#', 'Time', 'Kind', 'Verdict', 'User', 'Detail'], body })));
}
