// Audit log: entries from GET /api/v1/audit with the chain verification status, filterable
// (the storage API contract).

import { get, isMissingApi } from '../api.js';
import { field, h, replace } from '../dom.js';
import { missingApiNote } from './dashboard.js';

export async function render(root) {
  let reply;
  try {
    reply = await get('/api/v1/audit');
  } catch (error) {
    if (isMissingApi(error)) { replace(root, missingApiNote('The audit log')); return; }
    throw error;
  }
  const entries = reply.entries ?? [];
  const chain = reply.chain ?? {};
  const filter = field({ label: 'Filter', name: 'filter', required: false, hint: 'Shows entries whose kind, user or detail contains this text.' });
  const body = h('tbody');
  const draw = () => {
    const needle = filter.input.value.trim().toLowerCase();
    replace(body, entries.filter((entry) => !needle || JSON.stringify(entry).toLowerCase().includes(needle)).map((entry) => h('tr', {},
      h('td', {}, new Date((entry.at ?? 0) * 1000).toLocaleString()),
      h('td', {}, h('code', {}, entry.kind ?? '')),
      h('td', {}, entry.username ?? ''),
      h('td', {}, entry.detail ?? ''))));
  };
  filter.input.addEventListener('input', draw);
  draw();
  replace(root,
    h('p', { class: `form-status ${chain.verified ? 'info' : 'error'}`, role: 'status' }, chain.verified ? 'The hash chain of the log verifies.' : `The hash chain does not verify${chain.error ? `: ${chain.error}` : ''}.`),
    filter.wrap,
    h('div', { class: 'table-wrap' }, h('table', {}, h('caption', { class: 'visually-hidden' }, 'Audit entries'),
      h('thead', {}, h('tr', {}, ['Time', 'Kind', 'User', 'Detail'].map((name) => h('th', { scope: 'col' }, name)))), body)));
}
