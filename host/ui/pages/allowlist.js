// @ts-check
// The allowlist as an auditor reads it: a check box for any argv, the audit findings, and
// every rule with the full language it accepts (the engine's own `explain` text).

import { ApiError, get, messageOf, post } from '../api.js';
import { dataTable } from '../components.js';
import { field, h, replace, section, statusArea } from '../dom.js';

/** @typedef {import('../types.js').AllowlistReply} AllowlistReply */
/** @typedef {import('../types.js').CheckReply} CheckReply */

const SEVERITY_ORDER = ['critical', 'high', 'medium', 'low', 'info'];

/** @param {HTMLElement} root */
export async function render(root) {
  let listing;
  try {
    listing = /** @type {AllowlistReply} */ (await get('/api/v1/allowlist'));
  } catch (error) {
    if (error instanceof ApiError && error.code === 'allowlist.unavailable') {
      replace(root, h('p', { class: 'form-status error', role: 'alert' }, `The allowlist cannot be loaded: ${error.message}`));
      return;
    }
    throw error;
  }
  const ruleIds = new Set(listing.rules.map((rule) => rule.id));
  /** @param {string} id */
  const ruleLink = (id) => (ruleIds.has(id) ? h('a', { href: `#rule-${id}` }, id) : h('code', {}, id));

  // Check.
  const checkStatus = statusArea();
  const argv = field({
    label: 'Command',
    name: 'argv',
    hint: 'The program and its arguments separated by spaces, e.g. btrfs device add /dev/sdb /srv/pool. No token may contain a space, so splitting on spaces is exact.',
    attrs: { autocapitalize: 'none', spellcheck: 'false', autocomplete: 'off', class: 'mono' },
  });
  const verdict = h('div', { class: 'verdict', role: 'status' });
  const checkForm = h('form', { novalidate: true }, checkStatus.el, argv.wrap, h('div', { class: 'actions' }, h('button', { type: 'submit', class: 'primary' }, 'Check')), verdict);
  checkForm.addEventListener('submit', async (event) => {
    event.preventDefault();
    argv.setError(null);
    checkStatus.clear();
    const tokens = argv.input.value.trim().split(/\s+/).filter(Boolean);
    if (tokens.length === 0) { argv.setError('Type a command to check.'); argv.input.focus(); return; }
    try {
      const reply = /** @type {CheckReply} */ (await post('/api/v1/allowlist/check', { argv: tokens }));
      replace(verdict, reply.allowed
        ? h('div', { class: 'allowed' },
          h('p', {}, h('strong', {}, 'Allowed'), ' by rule ', ruleLink(reply.rule), ` (effect: ${reply.effect}).`),
          h('p', {}, 'What the agent would run:'),
          h('pre', { class: 'argv' }, reply.argv.join(' ')))
        : h('div', { class: 'denied' },
          h('p', {}, h('strong', {}, 'Denied'), reply.rule ? [' (closest rule: ', ruleLink(reply.rule), ')'] : null, '.'),
          // The closest rule is already linked above.
          h('p', {}, reply.reason.replace(/ \(closest rule: [^)]*\)$/, '')),
          h('p', { class: 'tokens', 'aria-label': 'The command, token by token' }, tokens.map((token, idx) =>
            h(idx === reply.token ? 'mark' : 'span', { class: 'token', title: `token ${idx}` }, token, idx === reply.token ? h('span', { class: 'visually-hidden' }, ' (this token)') : null)))));
    } catch (error) {
      checkStatus.error(`The check failed: ${messageOf(error)}.`);
    }
  });

  // Findings.
  const findings = [...listing.findings].sort((a, b) => SEVERITY_ORDER.indexOf(a.severity) - SEVERITY_ORDER.indexOf(b.severity));
  const counts = SEVERITY_ORDER.map((severity) => /** @type {[string, number]} */ ([severity, findings.filter((f) => f.severity === severity).length]))
    .filter(([, n]) => n > 0);
  const findingsView = findings.length === 0
    ? h('p', {}, 'No findings.')
    : [h('p', {}, `${findings.length} finding${findings.length === 1 ? '' : 's'}: `, counts.map(([severity, n]) => `${n} ${severity}`).join(', '), '.'),
      h('div', { class: 'table-wrap' }, dataTable({
        caption: 'Audit findings',
        columns: ['Severity', 'Finding', 'About', 'Details'],
        body: h('tbody', {}, findings.map((finding) => h('tr', {},
          h('td', {}, h('span', { class: `severity ${finding.severity}` }, finding.severity)),
          h('td', {}, h('code', {}, finding.code)),
          h('td', {}, ruleLink(finding.subject)),
          h('td', {}, finding.message)))),
      }))];

  // Rules.
  const rulesView = h('div', { class: 'rules' }, listing.rules.map((rule) => h('details', { id: `rule-${rule.id}` },
    h('summary', {}, h('code', {}, rule.id), ' ', h('span', { class: `effect ${rule.effect}` }, rule.effect), rule.kind === 'managed' ? h('span', { class: 'badge' }, 'managed file') : null, ' ', h('span', { class: 'hint' }, rule.description)),
    h('pre', { class: 'explain' }, rule.explain))));
  // Opening a rule from a link expands it.
  const openFromHash = () => {
    const target = location.hash.startsWith('#rule-') ? document.getElementById(location.hash.slice(1)) : null;
    if (target instanceof HTMLDetailsElement) { target.open = true; target.querySelector('summary')?.focus(); }
  };
  window.addEventListener('hashchange', openFromHash);

  replace(root,
    h('p', {}, 'Every command nos may ever run as root is one of these rules, read from ', h('code', {}, listing.path), ' (and allowlist.d/ beside it). A command runs only when it matches exactly one rule.'),
    section('Check a command', checkForm),
    section('Audit findings', findingsView),
    section(`Rules (${listing.rules.length})`, h('p', { class: 'hint' }, 'Open a rule to read the full language it accepts.'), rulesView));
  openFromHash();
}
