// @ts-check
// Storage wizard: choose a planner → a form rendered from its describe() JSON Schema (disks
// picked from the free ones in the facts) → the plan preview (each step's title, exact argv,
// the identity of every disk it names, effect, and the allowlist rule that permits it or why it
// is refused; what a destructive plan destroys first) → the confirmation word → live progress
// from the job's event stream, the final record, and the pool as the facts now show it.
// `/storage?plugin=NAME&FIELD=VALUE…` opens NAME's form with those fields filled in (the
// dashboard's "Wipe…" links).
//
// Nothing here knows a particular planner, so a third-party planner gets a form without UI
// code. API: GET /api/v1/plugins, GET /api/v1/facts, POST /api/v1/plans {plugin, input},
// POST /api/v1/plans/{id}/apply {confirm}, GET /api/v1/jobs/{id}/events (SSE), GET /api/v1/jobs/{id}.

import { ApiError, get, isMissingApi, messageOf, post } from '../api.js';
import {
  aboutDevice, describeDevice, findDevice, freeDisks, identity, isWholeDisk, missingApiNote, poolCard, withReauth,
} from '../components.js';
import { field, focus, h, replace, section, statusArea, uid } from '../dom.js';

/** @typedef {import('../types.js').ApplyReply} ApplyReply */
/** @typedef {import('../types.js').BlockDevice} BlockDevice */
/** @typedef {import('../types.js').Facts} Facts */
/** @typedef {import('../types.js').FactsReply} FactsReply */
/** @typedef {import('../types.js').JobEvent} JobEvent */
/** @typedef {import('../types.js').JobReply} JobReply */
/** @typedef {import('../types.js').JsonSchema} JsonSchema */
/** @typedef {import('../types.js').Plan} Plan */
/** @typedef {import('../types.js').PlanReply} PlanReply */
/** @typedef {import('../types.js').PlanRequest} PlanRequest */
/** @typedef {import('../types.js').PlanStep} PlanStep */
/** @typedef {import('../types.js').PluginInfo} PluginInfo */
/** @typedef {import('../types.js').PluginsReply} PluginsReply */

/**
 * A planner whose form can be shown: granted, enabled, with an input schema.
 * @typedef {PluginInfo & { input_schema: JsonSchema }} UsablePlanner
 */

/**
 * One form control of a planner's form.
 * @typedef {object} Control
 * @property {HTMLElement} el
 * @property {() => unknown} read The value for the planner's input; `undefined` when empty.
 * @property {(message: string | null) => void} setError
 * @property {() => void} focus
 */

/**
 * Whether a schema property is a list of block devices, picked from the free disks.
 * @param {string} name
 * @param {JsonSchema} schema
 */
function isDeviceList(name, schema) {
  return schema.type === 'array' && (schema['x-nos-kind'] === 'devices' || schema.items?.format === 'device' || /device|disk/i.test(name));
}

/**
 * Whether a schema property names one block device, typed in and identified from the facts.
 * @param {string} name
 * @param {JsonSchema} schema
 */
function isDevice(name, schema) {
  return schema.type === 'string' && (schema['x-nos-kind'] === 'device' || schema.format === 'device' || /device|disk/i.test(name));
}

/**
 * "data_profile" → "Data profile", unless the schema gives a title.
 * @param {string} name
 * @param {JsonSchema} schema
 */
function labelOf(name, schema) {
  if (typeof schema.title === 'string' && schema.title) return schema.title;
  const words = name.replace(/[_-]+/g, ' ').trim();
  return words.charAt(0).toUpperCase() + words.slice(1);
}

/**
 * One form control per schema property, `initial` (a string from the URL) filled in.
 * @param {string} name
 * @param {JsonSchema} schema
 * @param {boolean} required
 * @param {Facts} facts
 * @param {string | undefined} initial
 * @returns {Control}
 */
function control(name, schema, required, facts, initial) {
  const label = labelOf(name, schema);
  const id = uid(name);
  const errorEl = h('p', { class: 'field-error', id: `${id}-error`, hidden: true });
  /** @param {string | null} message */
  const setError = (message) => { errorEl.textContent = message ?? ''; errorEl.hidden = !message; };
  const hint = schema.description ? h('p', { class: 'hint' }, schema.description) : null;
  if (isDeviceList(name, schema)) {
    const wanted = (initial ?? '').split(',').map((item) => item.trim());
    const boxes = freeDisks(facts).map((disk) => {
      const boxId = uid('disk');
      const input = h('input', { type: 'checkbox', id: boxId, value: disk.path, checked: wanted.includes(disk.path), 'aria-describedby': `${id}-error` });
      return { input, el: h('div', { class: 'check-row' }, input, h('label', { for: boxId }, h('code', {}, disk.path), ` — ${identity(disk)}${disk.rotational ? ', rotational' : ''}`)) };
    });
    return {
      el: h('fieldset', { class: 'field' }, h('legend', {}, label), hint,
        boxes.length ? boxes.map((box) => box.el)
          : h('p', { class: 'hint' }, 'No free disks. A disk that holds data is offered only once it is wiped: see ', h('a', { href: '/dashboard' }, 'the dashboard'), '.'),
        errorEl),
      read: () => boxes.filter((box) => box.input.checked).map((box) => box.input.value),
      setError,
      focus: () => boxes[0]?.input.focus(),
    };
  }
  if (schema.type === 'boolean') {
    const input = h('input', { type: 'checkbox', id, checked: schema.default === true });
    return {
      el: h('div', { class: 'field check' }, h('div', { class: 'check-row' }, input, h('label', { for: id }, label)), hint, errorEl),
      read: () => input.checked,
      setError,
      focus: () => input.focus(),
    };
  }
  const choices = schema.enum;
  if (Array.isArray(choices)) {
    const options = choices.map((option) => h('option', { value: String(option), selected: option === schema.default }, String(option)));
    const select = h('select', { id, name, required, 'aria-describedby': `${id}-error` },
      required ? null : h('option', { value: '', selected: schema.default === undefined }, '(the planner decides)'), options);
    return {
      el: h('div', { class: 'field' }, h('label', { for: id }, label), hint, select, errorEl),
      read: () => (select.value === '' ? undefined : choices.find((option) => String(option) === select.value)),
      setError,
      focus: () => select.focus(),
    };
  }
  const numeric = schema.type === 'integer' || schema.type === 'number';
  const list = schema.type === 'array';
  const input = field({
    label, name, type: numeric ? 'number' : 'text', required,
    hint: list ? [schema.description, 'Separate several with commas.'].filter(Boolean).join(' ') : schema.description,
    value: initial ?? schema.default, attrs: { min: schema.minimum, max: schema.maximum, pattern: schema.pattern, autocapitalize: 'none', spellcheck: 'false' },
  });
  if (isDevice(name, schema)) {
    // Which disk the typed name is, as the facts tell it, while it is typed.
    const which = h('p', { class: 'hint disk-identity', 'aria-live': 'polite' });
    const show = () => {
      const text = input.input.value.trim();
      const device = text ? findDevice(facts, text) : undefined;
      which.textContent = !text ? '' : device ? `That is ${describeDevice(facts, device)}.` : `No block device ${text} in the facts.`;
    };
    input.input.addEventListener('input', show);
    show();
    input.input.after(which);
  }
  return {
    el: input.wrap,
    read() {
      const text = input.input.value.trim();
      if (text === '') return undefined;
      if (numeric) return Number(text);
      return list ? text.split(',').map((item) => item.trim()).filter(Boolean) : text;
    },
    setError: input.setError,
    focus: () => input.input.focus(),
  };
}

/**
 * A request as the API shows it: the argv tokens, or a managed-file request's description.
 * @param {PlanRequest | null} request
 */
function requestText(request) {
  if (!request) return '';
  return 'argv' in request ? request.argv.join(' ') : String(request.managed ?? '');
}

/**
 * The devices of the facts a request names (`/dev/...` tokens of its argv), in order.
 * @param {Facts} facts
 * @param {PlanRequest | null} request
 */
function devicesIn(facts, request) {
  const tokens = request && 'argv' in request ? request.argv : [];
  const found = tokens.filter((token) => token.startsWith('/dev/')).map((token) => findDevice(facts, token))
    .filter((device) => device !== undefined);
  return [...new Set(found)];
}

/**
 * The whole disks a plan's destructive steps erase something on (a partition's disk).
 * @param {Facts} facts
 * @param {PlanStep[]} steps
 */
function destroyedDisks(facts, steps) {
  const disks = steps.filter((step) => step.effect === 'destructive').flatMap((step) => devicesIn(facts, step.request))
    .map((device) => (isWholeDisk(device) || !device.parent ? device : findDevice(facts, device.parent) ?? device));
  return [...new Set(disks)];
}

/**
 * One step of the preview: what it runs, on which disks, and the allowlist's verdict.
 * @param {Facts} facts
 * @param {PlanStep} step
 * @param {number} idx
 */
function stepView(facts, step, idx) {
  const verdict = step.verdict;
  return h('li', { class: `step ${step.effect}`, 'data-step': step.id, 'data-verdict': verdict.allowed ? 'allowed' : 'refused' },
    h('h3', {}, `${idx + 1}. ${step.title}`),
    h('p', {}, h('span', { class: `effect ${step.effect}` }, step.effect), step.confirmation ? ` — confirmed with ${step.confirmation}` : ''),
    h('pre', { class: 'argv' }, requestText(step.request)),
    devicesIn(facts, step.request).map((device) => h('p', { class: 'disk-identity' }, h('code', {}, device.path), `: ${aboutDevice(facts, device)}`)),
    verdict.allowed
      ? h('p', { class: 'verdict allowed' }, 'Allowed by rule ', h('a', { href: `/allowlist#rule-${verdict.rule_id}` }, verdict.rule_id), '; runs as ', h('code', {}, verdict.canonical))
      : h('p', { class: 'field-error verdict refused' }, `Refused: ${verdict.reason}`),
    step.rollback ? h('p', { class: 'hint' }, 'If a later step fails, undone with ', h('code', {}, requestText(step.rollback)),
      step.rollback_verdict && !step.rollback_verdict.allowed ? ` (refused: ${step.rollback_verdict.reason})` : '') : null);
}

/** @param {HTMLElement} root */
export async function render(root) {
  /** @type {PluginInfo[]} */
  let plugins;
  /** @type {Facts} */
  let facts;
  try {
    const replies = await Promise.all([get('/api/v1/plugins'), get('/api/v1/facts')]);
    ({ plugins } = /** @type {PluginsReply} */ (replies[0]));
    ({ facts } = /** @type {FactsReply} */ (replies[1]));
  } catch (error) {
    if (isMissingApi(error)) { replace(root, missingApiNote('The storage wizard')); return; }
    throw error;
  }
  const planners = plugins.filter((plugin) => plugin.kind === 'planner');
  const usable = planners.filter(/** @returns {plugin is UsablePlanner} */ (plugin) => Boolean(plugin.granted && plugin.enabled && plugin.input_schema));
  const body = h('div');
  replace(root, body);
  // A link may choose the planner and fill in fields: /storage?plugin=disk-wipe&device=/dev/sdb.
  const query = new URLSearchParams(location.search);
  const asked = query.get('plugin');
  const initial = Object.fromEntries([...query].filter(([key]) => key !== 'plugin'));

  /** @param {string} [note] Why the asked-for planner is not shown. */
  function choose(note) {
    const name = uid('planner');
    const radios = usable.map((planner, idx) => {
      const id = uid('planner');
      const input = h('input', { type: 'radio', name, id, value: planner.name, checked: usable.some((one) => one.name === asked) ? planner.name === asked : idx === 0 });
      return h('div', { class: 'check-row' }, input, h('label', { for: id }, h('strong', {}, planner.input_schema.title ?? planner.name), ' ', h('span', { class: 'hint' }, `${planner.name}: ${planner.summary ?? ''}`)));
    });
    const unusable = planners.filter((planner) => !usable.some((one) => one === planner));
    const form = h('form', { novalidate: true }, h('fieldset', {}, h('legend', {}, 'Planner'), radios), h('div', { class: 'actions' }, h('button', { type: 'submit', class: 'primary' }, 'Continue')));
    form.addEventListener('submit', (event) => {
      event.preventDefault();
      const picked = /** @type {HTMLInputElement | null} */ (form.querySelector(`input[name="${name}"]:checked`))?.value;
      const planner = usable.find((one) => one.name === picked);
      if (planner) fill(planner);
    });
    replace(body, section('1. Choose what to do', note ? h('p', { class: 'form-status error', role: 'alert' }, note) : null,
      usable.length ? form : h('p', {}, 'No planner is granted and enabled.'),
      unusable.length ? h('p', { class: 'hint' }, `Not granted or disabled: ${unusable.map((one) => one.name).join(', ')}. `, h('a', { href: '/plugins' }, 'Manage plugins'), '.') : null));
  }

  /** @param {UsablePlanner} planner */
  function fill(planner) {
    const schema = planner.input_schema;
    const required = new Set(schema.required ?? []);
    /** @type {Record<string, string>} */
    const prefill = planner.name === asked ? initial : {};
    const controls = Object.entries(schema.properties ?? {})
      .map(([name, property]) => /** @type {[string, Control]} */ ([name, control(name, property, required.has(name), facts, prefill[name])]));
    const status = statusArea();
    const form = h('form', { novalidate: true }, status.el, controls.map(([, one]) => one.el),
      h('div', { class: 'actions' }, h('button', { type: 'button', class: 'secondary', onclick: () => choose() }, 'Back'), h('button', { type: 'submit', class: 'primary' }, 'Preview the plan')));
    form.addEventListener('submit', async (event) => {
      event.preventDefault();
      status.clear();
      /** @type {Record<string, unknown>} */
      const input = {};
      /** @type {Control | null} */
      let firstInvalid = null;
      for (const [name, one] of controls) {
        one.setError(null);
        const value = one.read();
        const empty = value === undefined || (Array.isArray(value) && value.length === 0);
        if (required.has(name) && empty) { one.setError('Required.'); firstInvalid ??= one; }
        if (!empty) input[name] = value;
      }
      if (firstInvalid) { firstInvalid.focus(); return; }
      try {
        const reply = /** @type {PlanReply} */ (await post('/api/v1/plans', { plugin: planner.name, input }));
        preview(planner, reply.plan);
      } catch (error) {
        status.error(error instanceof ApiError && error.code === 'plan.refused' ? `The planner refused: ${error.message}.` : `No plan: ${messageOf(error)}.`);
      }
    });
    const heading = h('h2', {}, `2. ${schema.title ?? planner.name}`);
    replace(body, h('section', {}, heading, h('p', { class: 'hint' }, planner.summary ?? ''), form));
    focus(heading);
  }

  /**
   * @param {UsablePlanner} planner
   * @param {Plan} plan
   */
  function preview(planner, plan) {
    const steps = plan.steps ?? [];
    const status = statusArea();
    const word = plan.confirmation;
    const destructive = steps.some((step) => step.effect === 'destructive');
    // The prompt names each disk by what tells it apart (model, serial, size), not by /dev/sdX alone.
    const doomed = destroyedDisks(facts, steps).map((disk) => describeDevice(facts, disk));
    const erases = doomed.length ? `This erases what is on ${doomed.join('; ')}.` : 'Destructive steps erase what is on the chosen disks.';
    const confirm = field({ label: `Type ${word} to confirm`, name: 'confirm', hint: destructive ? erases : 'Nothing is erased.', attrs: { autocomplete: 'off', autocapitalize: 'none', spellcheck: 'false' } });
    const apply = h('button', { type: 'submit', class: destructive ? 'danger' : 'primary', disabled: !plan.applicable }, 'Apply the plan');
    const form = h('form', { novalidate: true }, status.el, plan.applicable ? confirm.wrap : null,
      h('div', { class: 'actions' }, h('button', { type: 'button', class: 'secondary', onclick: () => fill(planner) }, 'Back'), apply));
    form.addEventListener('submit', async (event) => {
      event.preventDefault();
      confirm.setError(null);
      status.clear();
      // The server compares the words; a mismatch comes back as plan.confirmation_mismatch.
      try {
        const reply = /** @type {ApplyReply | undefined} */ (await withReauth(() => post(`/api/v1/plans/${encodeURIComponent(plan.id)}/apply`, { confirm: confirm.input.value })));
        if (reply === undefined) { status.error('Not applied: applying needs your password and a code.'); return; }
        progress(plan, reply.job);
      } catch (error) {
        if (error instanceof ApiError && error.code === 'plan.confirmation_mismatch') { confirm.setError(`Not applied: ${error.message}.`); confirm.input.focus(); } else status.error(`Not applied: ${messageOf(error)}.`);
      }
    });
    const heading = h('h2', {}, '3. Review the plan');
    replace(body, h('section', {}, heading,
      h('p', {}, `Plan ${plan.id.slice(0, 12)} for ${plan.pool} by ${plan.plugin}, valid until ${new Date(plan.expires_at * 1000).toLocaleTimeString()}. sha256 `, h('code', { class: 'hash' }, plan.sha256)),
      warningsView(plan, destructive, doomed),
      plan.applicable ? null : h('p', { class: 'form-status error', role: 'alert' }, `${plan.n_rejected} step(s) are refused by the allowlist; this plan cannot run.`),
      h('ol', { class: 'plan' }, steps.map((step, idx) => stepView(facts, step, idx))), form));
    focus(heading);
  }

  /**
   * @param {Plan} plan
   * @param {string} jobId
   */
  function progress(plan, jobId) {
    const log = h('ol', { class: 'events', 'aria-live': 'polite' });
    const state = h('p', { role: 'status', 'data-job': jobId }, 'Running…');
    const result = h('div');
    const heading = h('h2', {}, '4. Progress');
    replace(body, h('section', {}, heading, state, log, result));
    focus(heading);
    const source = new EventSource(`/api/v1/jobs/${encodeURIComponent(jobId)}/events`);
    /** @param {MessageEvent} event */
    const onEvent = (event) => {
      /** @type {JobEvent} */
      let data;
      try { data = JSON.parse(event.data); } catch { return; }
      log.append(h('li', { 'data-kind': data.kind }, h('strong', {}, data.kind.replace(/_/g, ' ')), data.step ? [' ', h('code', {}, data.step)] : '', data.message ? `: ${data.message}` : ''));
    };
    for (const kind of ['step_started', 'progress', 'step_finished', 'step_failed', 'rollback_started', 'rollback_finished', 'rollback_failed', 'job_finished', 'job_interrupted']) {
      source.addEventListener(kind, onEvent);
    }
    source.addEventListener('end', async () => {
      source.close();
      await finished(plan, jobId, state, result);
    });
    source.onerror = () => {
      if (source.readyState === EventSource.CLOSED) state.textContent = 'The event stream ended; reload the dashboard for the job state.';
    };
  }

  /**
   * The job's record and the pool as the facts now show it.
   * @param {Plan} plan
   * @param {string} jobId
   * @param {HTMLElement} state
   * @param {HTMLElement} result
   */
  async function finished(plan, jobId, state, result) {
    const replies = await Promise.all([get(`/api/v1/jobs/${encodeURIComponent(jobId)}`), get('/api/v1/facts?refresh=true')]);
    const { job } = /** @type {JobReply} */ (replies[0]);
    const { facts: now } = /** @type {FactsReply} */ (replies[1]);
    state.dataset.state = job.state;
    state.textContent = job.state === 'succeeded' ? 'Done: every step succeeded.' : `Finished: ${job.state.replace('_', ' ')}.`;
    const pool = (now.filesystems ?? []).find((fs) => fs.mountpoint === plan.pool || fs.label === plan.pool);
    replace(result,
      section('Steps', h('ol', { class: 'plan' }, job.steps.map((step) => h('li', { 'data-step': step.id, 'data-state': step.state },
        h('h3', {}, `${step.title}: ${step.state.replace(/_/g, ' ')}`),
        step.ran ? h('pre', { class: 'argv' }, step.ran) : null,
        step.output ? h('pre', { class: 'output' }, step.output.slice(-2000)) : null)))),
      section('The pool now', pool ? h('ul', { class: 'cards' }, poolCard(pool)) : h('p', {}, `No mounted pool at ${plan.pool}.`)));
  }

  const wanted = planners.find((planner) => planner.name === asked);
  const usableWanted = usable.find((planner) => planner === wanted);
  if (!asked) choose();
  else if (usableWanted) fill(usableWanted);
  else choose(`${asked} cannot be used here: ${wanted ? 'it is not granted or disabled' : 'no such planner is loaded'}.`);
}

/**
 * A destructive plan's warnings are what it destroys, listed first; others stay warnings.
 * @param {Plan} plan
 * @param {boolean} destructive
 * @param {string[]} doomed The destroyed disks, described.
 */
function warningsView(plan, destructive, doomed) {
  const warnings = plan.warnings ?? [];
  if (!destructive) return warnings.map((warning) => h('p', { class: 'form-status error' }, warning));
  const id = uid('destroy');
  const items = warnings.length ? warnings : doomed.map((disk) => `everything on ${disk}`);
  if (items.length === 0) return null;
  return h('div', { class: 'destroy', role: 'region', 'aria-labelledby': id },
    h('h3', { id }, 'This will destroy:'),
    h('ul', {}, items.map((item) => h('li', {}, item))),
    doomed.length && warnings.length ? h('p', {}, `On ${doomed.join('; ')}.`) : null);
}
