// @ts-check
// Plugins: installed plugins with version, component sha256, API version and declared scope
// (the allowlist rule ids it may emit), from GET /api/v1/plugins; grant or revoke a plugin's
// scope and enable or disable it. A grant names the sha256 shown here, so it can only ever
// apply to the component the admin reviewed. Each change is explained first and needs a recent
// sign-in.

import { ApiError, get, isMissingApi, messageOf, post } from '../api.js';
import { confirmDialog, dataTable, missingApiNote, scrollingTable, withReauth } from '../components.js';
import { h, replace, statusArea } from '../dom.js';

/** @typedef {import('../types.js').PluginChangeReply} PluginChangeReply */
/** @typedef {import('../types.js').PluginInfo} PluginInfo */
/** @typedef {import('../types.js').PluginsReply} PluginsReply */

/**
 * What one button changes.
 * @typedef {object} Change
 * @property {string} label
 * @property {string} path The endpoint under /api/v1/plugins/{name}/.
 * @property {object} body
 * @property {boolean} danger
 * @property {string} title
 * @property {string[]} explain
 */

/**
 * The change a button makes: endpoint, body, and the explanation shown before it.
 * @param {PluginInfo} plugin
 * @returns {Record<'grant' | 'revoke' | 'enable' | 'disable', Change>}
 */
function changes(plugin) {
  const scope = (plugin.scope ?? []).join(', ') || 'no rules';
  return {
    grant: {
      label: 'Grant', path: 'grant', body: { sha256: plugin.sha256 }, danger: false,
      title: `Grant ${plugin.name}?`,
      explain: [`${plugin.name} ${plugin.version} (sha256 ${plugin.sha256}) may then propose commands matching these allowlist rules: ${scope}.`,
        'Nothing runs until you review a plan and type its confirmation word.'],
    },
    revoke: {
      label: 'Revoke', path: 'revoke', body: { sha256: plugin.sha256 }, danger: true,
      title: `Revoke ${plugin.name}?`,
      explain: [`${plugin.name} can no longer make plans, and plans it made that are not applied yet are refused. Jobs already running finish.`],
    },
    enable: {
      label: 'Enable', path: 'enable', body: { enabled: true }, danger: false,
      title: `Enable ${plugin.name}?`, explain: [`${plugin.name} is offered in the storage wizard again (when granted).`],
    },
    disable: {
      label: 'Disable', path: 'enable', body: { enabled: false }, danger: true,
      title: `Disable ${plugin.name}?`, explain: [`${plugin.name} is no longer offered and cannot make plans; its grant is kept.`],
    },
  };
}

/** @param {HTMLElement} root */
export async function render(root) {
  const status = statusArea();
  const body = h('tbody');
  const failedList = h('ul', { class: 'failed-plugins' });
  const draw = async () => {
    const reply = /** @type {PluginsReply} */ (await get('/api/v1/plugins'));
    replace(failedList, (reply.failed ?? []).map((failure) => h('li', { 'data-failed-plugin': failure.path },
      h('strong', {}, 'Failed to load: '), h('code', {}, failure.path), ` — ${failure.reason}`)));
    replace(body, (reply.plugins ?? []).map((plugin) => {
      const all = changes(plugin);
      const buttons = [plugin.granted ? all.revoke : all.grant, plugin.enabled ? all.disable : all.enable].map((change) => {
        const button = h('button', { type: 'button', class: change.danger ? 'danger' : 'secondary', 'aria-label': `${change.label} ${plugin.name}` }, change.label);
        button.addEventListener('click', async () => {
          status.clear();
          if (!(await confirmDialog({ title: change.title, explain: change.explain, confirmLabel: change.label, danger: change.danger }))) return;
          try {
            const done = /** @type {PluginChangeReply | undefined} */ (await withReauth(() => post(`/api/v1/plugins/${encodeURIComponent(plugin.name)}/${change.path}`, change.body)));
            if (done === undefined) return;
            await draw();
            status.info(`${plugin.name}: ${done.granted ? 'granted' : 'not granted'}, ${done.enabled ? 'enabled' : 'disabled'}.`);
          } catch (error) {
            if (error instanceof ApiError && error.code === 'plugin.hash_mismatch') { await draw(); status.error(`${error.message}.`); } else status.error(`That did not work: ${messageOf(error)}.`);
          }
        });
        return button;
      });
      return h('tr', { 'data-plugin': plugin.name },
        h('th', { scope: 'row' }, plugin.name, plugin.summary ? h('p', { class: 'hint' }, plugin.summary) : null),
        h('td', {}, plugin.kind ?? ''),
        h('td', {}, plugin.version ?? ''),
        h('td', {}, plugin.api_version ?? ''),
        h('td', {}, h('code', { class: 'hash', title: plugin.sha256 }, plugin.sha256)),
        h('td', {}, (plugin.scope ?? []).map((rule) => h('a', { href: `/allowlist#rule-${rule}`, class: 'scope' }, rule))),
        h('td', { 'data-granted': String(plugin.granted) }, h('strong', {}, plugin.granted ? 'Granted' : 'Not granted'), plugin.enabled ? '' : ', disabled'),
        h('td', { class: 'actions' }, buttons));
    }));
  };
  try {
    await draw();
  } catch (error) {
    if (isMissingApi(error)) { replace(root, missingApiNote('The plugin list')); return; }
    throw error;
  }
  replace(root, h('p', {}, 'Plugins compute plans; they cannot run anything. A plugin may only emit the allowlist rules in its scope, and only once you grant it. A grant is for the exact component (its sha256): a changed plugin is a new plugin.'),
    status.el,
    scrollingTable('Installed plugins', dataTable({
      caption: 'Installed plugins',
      columns: ['Name', 'Kind', 'Version', 'API', 'sha256', 'Scope (allowlist rules)', 'Grant', 'Change'],
      body,
    })),
    failedList);
}
