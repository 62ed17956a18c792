// @ts-check
// Your sessions: device, address, sign-in time, last activity; end one or all others.

import { del, get, messageOf } from '../api.js';
import { confirmDialog, dataTable } from '../components.js';
import { h, replace, section, statusArea, timeAgo } from '../dom.js';

/** @typedef {import('../types.js').SessionInfo} SessionInfo */
/** @typedef {import('../types.js').SessionsReply} SessionsReply */

/** @param {HTMLElement} root */
export async function render(root) {
  const status = h('p', { role: 'status', class: 'form-status info', hidden: true });
  const errors = statusArea();
  const table = h('div');
  replace(root, h('p', {}, 'Every browser signed in to your account. Ending a session signs that browser out at its next request; it can sign in again with your password and a code.'),
    errors.el, status, section('Signed-in browsers', table));

  /** @param {string} message */
  const say = (message) => { status.textContent = message; status.hidden = false; };

  async function load() {
    const { sessions } = /** @type {SessionsReply} */ (await get('/api/v1/auth/sessions'));
    sessions.sort((a, b) => (Number(b.current) - Number(a.current)) || (b.last_seen_at - a.last_seen_at));
    const others = sessions.filter((one) => !one.current);
    /** @param {SessionInfo} one */
    const describe = (one) => `${one.device || 'Unknown browser'} at ${one.client_ip}`;
    const rows = sessions.map((one) => h('tr', { 'data-session': one.id },
      h('th', { scope: 'row' }, one.device || 'Unknown browser', one.current ? h('span', { class: 'badge' }, 'this browser') : null),
      h('td', { 'data-label': 'IP address' }, h('code', {}, one.client_ip)),
      h('td', { 'data-label': 'Signed in' }, timeAgo(one.created_at)),
      h('td', { 'data-label': 'Last seen' }, timeAgo(one.last_seen_at)),
      h('td', { 'data-label': 'Action' }, one.current
        ? h('span', { class: 'hint' }, 'Use “Sign out”')
        : h('button', {
          type: 'button',
          class: 'danger small',
          'aria-label': `End session: ${describe(one)}`,
          onclick: async () => {
            const ok = await confirmDialog({
              title: 'End this session?',
              explain: [`${describe(one)}, signed in ${new Date(one.created_at * 1000).toLocaleString()}, is signed out at its next request.`,
                'If that was not you, also change your password on the Security page.'],
              confirmLabel: 'End session',
            });
            if (!ok) return;
            await run(async () => { await del(`/api/v1/auth/sessions/${encodeURIComponent(one.id)}`); say(`Ended the session of ${describe(one)}.`); });
          },
        }, 'End session'))));
    const endOthers = others.length === 0 ? h('p', { class: 'hint' }, 'No other browser is signed in.') : h('button', {
      type: 'button',
      class: 'danger',
      onclick: async () => {
        const ok = await confirmDialog({
          title: `End ${others.length} other session${others.length === 1 ? '' : 's'}?`,
          explain: ['Every browser but this one is signed out at its next request: ' + others.map(describe).join('; ') + '.'],
          confirmLabel: 'End other sessions',
        });
        if (!ok) return;
        await run(async () => {
          for (const one of others) await del(`/api/v1/auth/sessions/${encodeURIComponent(one.id)}`);
          say(`Ended ${others.length} other session${others.length === 1 ? '' : 's'}.`);
        });
      },
    }, 'End all other sessions');
    replace(table,
      h('div', { class: 'table-wrap' }, dataTable({
        caption: 'Your sessions',
        columns: ['Device', 'IP address', 'Signed in', 'Last seen', 'Action'],
        body: h('tbody', {}, rows),
        className: 'stack',
      })),
      h('div', { class: 'actions' }, endOthers));
  }

  /** @param {() => Promise<void>} action */
  async function run(action) {
    errors.clear();
    try {
      await action();
    } catch (error) {
      errors.error(`That did not work: ${messageOf(error)}.`);
    }
    await load();
  }

  await load();
}
