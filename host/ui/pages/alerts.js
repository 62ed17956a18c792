// @ts-check
// Notices: every alert nosd raised (open first, then recently cleared) from GET /api/v1/alerts,
// each with what it is about and since when; an admin acknowledges an open one
// (POST /api/v1/alerts/{id}/ack), which the audit log records.

import { ApiError, get, isMissingApi, messageOf, post } from '../api.js';
import { dataTable, missingApiNote } from '../components.js';
import { h, replace, section, timeAgo } from '../dom.js';

/** @typedef {import('../types.js').AlertInfo} AlertInfo */
/** @typedef {import('../types.js').AlertsReply} AlertsReply */

/** @param {AlertInfo} alert */
function subjectOf(alert) {
  const subject = alert.subject;
  switch (subject.type) {
    case 'pool': return h('a', { href: `/pool?uuid=${encodeURIComponent(subject.pool_uuid ?? '')}` }, subject.pool_label ?? subject.pool_uuid ?? '');
    case 'device': return [h('a', { href: `/pool?uuid=${encodeURIComponent(subject.pool_uuid ?? '')}` }, subject.pool_label ?? subject.pool_uuid ?? ''), ` devid ${subject.devid ?? '?'}`];
    case 'job': return `job ${subject.job_id ?? ''}`;
    default: return '';
  }
}

/**
 * @param {AlertInfo} alert
 * @param {() => Promise<void>} redraw
 */
function row(alert, redraw) {
  const status = h('span', { class: 'hint', role: 'status' });
  const ack = alert.state === 'raised'
    ? h('button', {
      type: 'button',
      class: 'small',
      onclick: async () => {
        try {
          await post(`/api/v1/alerts/${alert.id}/ack`);
          await redraw();
        } catch (error) {
          status.textContent = error instanceof ApiError && error.status === 403 ? 'Only an admin acknowledges alerts.' : `Not acknowledged: ${messageOf(error)}`;
        }
      },
    }, 'Acknowledge')
    : null;
  const state = alert.state === 'acknowledged' ? `acknowledged by ${alert.acknowledged_by ?? '?'}` : alert.state;
  return h('tr', { 'data-alert': String(alert.id), 'data-state': alert.state },
    h('td', {}, h('span', { class: `severity ${alert.severity}` }, alert.severity)),
    h('td', {}, h('code', {}, alert.kind)),
    h('td', {}, subjectOf(alert)),
    h('td', { class: 'detail' }, alert.message),
    h('td', {}, 'first ', timeAgo(alert.first_seen), ', last ', timeAgo(alert.last_seen)),
    h('td', {}, state),
    h('td', { class: 'actions' }, ack, status));
}

/**
 * @param {HTMLElement} root
 * @param {import('../main.js').PageContext} _ctx
 */
export async function render(root, _ctx) {
  const draw = async () => {
    const reply = /** @type {AlertsReply} */ (await get('/api/v1/alerts'));
    replace(root, section('Alerts',
      h('p', {}, `${reply.n_open} open, ${reply.n_unacknowledged} not acknowledged.`),
      reply.alerts.length === 0 ? h('p', {}, 'No alerts.') : h('div', { class: 'table-wrap' }, dataTable({
        caption: 'Alerts',
        columns: ['Severity', 'Kind', 'About', 'What', 'Seen', 'State', ''],
        body: h('tbody', {}, reply.alerts.map((alert) => row(alert, draw))),
      }))));
  };
  try {
    await draw();
  } catch (error) {
    if (isMissingApi(error)) { replace(root, missingApiNote('The alerts view')); return; }
    throw error;
  }
}
