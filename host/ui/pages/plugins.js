// Plugins: installed plugins with version, hash, API version and declared scope, from
// GET /api/v1/plugins (the storage API contract).

import { get, isMissingApi } from '../api.js';
import { h, replace } from '../dom.js';
import { missingApiNote } from './dashboard.js';

export async function render(root) {
  let reply;
  try {
    reply = await get('/api/v1/plugins');
  } catch (error) {
    if (isMissingApi(error)) { replace(root, missingApiNote('The plugin list')); return; }
    throw error;
  }
  const plugins = reply.plugins ?? [];
  replace(root, h('p', {}, 'Plugins compute plans; they cannot run anything. A plugin may only emit the allowlist rules in its granted scope.'),
    h('div', { class: 'table-wrap' }, h('table', {},
      h('caption', { class: 'visually-hidden' }, 'Installed plugins'),
      h('thead', {}, h('tr', {}, ['Name', 'Kind', 'Version', 'API', 'sha256', 'Scope'].map((name) => h('th', { scope: 'col' }, name)))),
      h('tbody', {}, plugins.map((plugin) => h('tr', {},
        h('th', { scope: 'row' }, plugin.name),
        h('td', {}, plugin.kind ?? ''),
        h('td', {}, plugin.version ?? ''),
        h('td', {}, plugin.api_version ?? ''),
        h('td', {}, h('code', { class: 'hash' }, (plugin.sha256 ?? '').slice(0, 16)), (plugin.sha256 ?? '').length > 16 ? '…' : ''),
        h('td', {}, (plugin.scope ?? []).map((rule) => h('a', { href: `/allowlist#rule-${rule}`, class: 'scope' }, rule)))))))));
}
