// Storage wizard: choose a planner → a form rendered from its describe() JSON Schema (disks
// picked from the facts) → the plan preview (each step's title, exact argv, effect, and the
// allowlist rule that permits it or why it is refused) → the confirmation word typed exactly
// → live progress from the job's event stream.
//
// Written against the storage API contract (GET /api/v1/plugins, GET /api/v1/facts,
// POST /api/v1/plans, POST /api/v1/plans/{id}/apply, GET /api/v1/jobs/{id}/events); nothing
// here knows any particular planner, so a third-party planner gets a form without UI code.
//
// UNTESTED: that API is not on main yet. The JSON shapes this page assumes (align either side):
//   GET  /api/v1/plugins  → {plugins: [{name, kind: "planner", version, api_version, sha256, scope: [rule id],
//                            describe: {title, description, schema: <JSON Schema, type object>}}]}
//   GET  /api/v1/facts    → {pools: [...], disks: [{path, size_bytes, model, in_use}], jobs: [{id, title, state}]}
//   POST /api/v1/plans {planner, input} → {id, expires_at, confirmation: word|null, warnings: [text],
//                            steps: [{id, title, argv: [token] | request: text, effect, rule | refusal}]}
//   POST /api/v1/plans/{id}/apply {confirm} → {job_id}
//   GET  /api/v1/jobs/{id}/events (SSE) → data: {step, state, message, output, final}
// A device list is a schema property of type array whose items have format "device", or
// "x-nos-kind": "devices", or whose name says device/disk.

import { ApiError, get, isMissingApi, post } from '../api.js';
import { bytes, field, focus, h, replace, section, statusArea, uid } from '../dom.js';
import { missingApiNote } from './dashboard.js';

/** Whether a schema property is a list of block devices, picked from the facts. */
function isDeviceList(name, schema) {
  return schema.type === 'array' && (schema['x-nos-kind'] === 'devices' || schema.items?.format === 'device' || /device|disk/i.test(name));
}

/** One form control per schema property; returns {el, read(), setError()}. */
function control(name, schema, required, disks) {
  const label = schema.title ?? name;
  if (isDeviceList(name, schema)) {
    const id = uid(name);
    const errorEl = h('p', { class: 'field-error', id: `${id}-error`, hidden: true });
    const boxes = disks.map((disk) => {
      const boxId = uid('disk');
      const input = h('input', { type: 'checkbox', id: boxId, value: disk.path, 'aria-describedby': `${id}-error` });
      return { input, el: h('div', { class: 'check-row' }, input, h('label', { for: boxId }, h('code', {}, disk.path), ` ${bytes(disk.size_bytes)} ${disk.model ?? ''}`)) };
    });
    return {
      el: h('fieldset', { class: 'field' }, h('legend', {}, label), schema.description ? h('p', { class: 'hint' }, schema.description) : null,
        boxes.length ? boxes.map((box) => box.el) : h('p', { class: 'hint' }, 'No free disks.'), errorEl),
      read: () => boxes.filter((box) => box.input.checked).map((box) => box.input.value),
      setError(message) { errorEl.textContent = message ?? ''; errorEl.hidden = !message; },
      focus: () => boxes[0]?.input.focus(),
    };
  }
  if (schema.type === 'boolean') {
    const id = uid(name);
    const input = h('input', { type: 'checkbox', id, checked: schema.default === true });
    const errorEl = h('p', { class: 'field-error', hidden: true });
    return {
      el: h('div', { class: 'field check' }, h('div', { class: 'check-row' }, input, h('label', { for: id }, label)), schema.description ? h('p', { class: 'hint' }, schema.description) : null, errorEl),
      read: () => input.checked,
      setError(message) { errorEl.textContent = message ?? ''; errorEl.hidden = !message; },
      focus: () => input.focus(),
    };
  }
  if (Array.isArray(schema.enum)) {
    const id = uid(name);
    const select = h('select', { id, name, required }, schema.enum.map((option) => h('option', { value: option, selected: option === schema.default }, String(option))));
    const errorEl = h('p', { class: 'field-error', hidden: true });
    return {
      el: h('div', { class: 'field' }, h('label', { for: id }, label), schema.description ? h('p', { class: 'hint' }, schema.description) : null, select, errorEl),
      read: () => (schema.type === 'integer' ? Number(select.value) : select.value),
      setError(message) { errorEl.textContent = message ?? ''; errorEl.hidden = !message; },
      focus: () => select.focus(),
    };
  }
  const numeric = schema.type === 'integer' || schema.type === 'number';
  const input = field({ label, name, type: numeric ? 'number' : 'text', hint: schema.description, required, value: schema.default, attrs: { min: schema.minimum, max: schema.maximum, pattern: schema.pattern, autocapitalize: 'none', spellcheck: 'false' } });
  return {
    el: input.wrap,
    read: () => (numeric ? (input.input.value === '' ? undefined : Number(input.input.value)) : input.input.value.trim() || undefined),
    setError: input.setError,
    focus: () => input.input.focus(),
  };
}

export async function render(root) {
  let plugins;
  let facts;
  try {
    [plugins, facts] = await Promise.all([get('/api/v1/plugins'), get('/api/v1/facts')]);
  } catch (error) {
    if (isMissingApi(error)) { replace(root, missingApiNote('The storage wizard')); return; }
    throw error;
  }
  const planners = (plugins.plugins ?? []).filter((plugin) => (plugin.kind ?? 'planner') === 'planner');
  const disks = (facts.disks ?? facts.block_devices ?? []).filter((disk) => !disk.in_use && !disk.mounted);
  const body = h('div');
  replace(root, body);

  function choose() {
    const name = uid('planner');
    const radios = planners.map((planner, idx) => {
      const id = uid('planner');
      const input = h('input', { type: 'radio', name, id, value: planner.name, checked: idx === 0 });
      const describe = planner.describe ?? {};
      return h('div', { class: 'check-row' }, input, h('label', { for: id }, h('strong', {}, describe.title ?? planner.name), ' ', h('span', { class: 'hint' }, describe.description ?? '')));
    });
    const form = h('form', { novalidate: true }, h('fieldset', {}, h('legend', {}, 'Planner'), radios), h('div', { class: 'actions' }, h('button', { type: 'submit', class: 'primary' }, 'Continue')));
    form.addEventListener('submit', (event) => {
      event.preventDefault();
      const picked = form.querySelector(`input[name="${name}"]:checked`)?.value;
      const planner = planners.find((one) => one.name === picked);
      if (planner) fill(planner);
    });
    replace(body, section('1. Choose what to do', planners.length ? form : h('p', {}, 'No planner is installed.')));
  }

  function fill(planner) {
    const schema = planner.schema ?? planner.describe?.schema ?? planner.describe ?? {};
    const required = new Set(schema.required ?? []);
    const controls = Object.entries(schema.properties ?? {}).map(([name, property]) => [name, control(name, property, required.has(name), disks)]);
    const status = statusArea();
    const form = h('form', { novalidate: true }, status.el, controls.map(([, one]) => one.el),
      h('div', { class: 'actions' }, h('button', { type: 'button', class: 'secondary', onclick: choose }, 'Back'), h('button', { type: 'submit', class: 'primary' }, 'Preview the plan')));
    form.addEventListener('submit', async (event) => {
      event.preventDefault();
      status.clear();
      const input = {};
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
        preview(planner, await post('/api/v1/plans', { planner: planner.name, input }));
      } catch (error) {
        status.error(`The planner refused: ${error.message}.`);
      }
    });
    const heading = h('h2', {}, `2. ${planner.describe?.title ?? planner.name}`);
    replace(body, h('section', {}, heading, form));
    focus(heading);
  }

  function preview(planner, plan) {
    const steps = plan.steps ?? [];
    const refused = steps.filter((step) => step.refusal || step.allowed === false);
    const word = plan.confirmation ?? steps.find((step) => step.confirmation)?.confirmation ?? null;
    const rows = steps.map((step, idx) => h('li', { class: `step ${step.effect}` },
      h('h3', {}, `${idx + 1}. ${step.title}`),
      h('p', {}, h('span', { class: `effect ${step.effect}` }, step.effect)),
      h('pre', { class: 'argv' }, Array.isArray(step.argv) ? step.argv.join(' ') : String(step.request ?? '')),
      step.refusal || step.allowed === false
        ? h('p', { class: 'field-error' }, `Refused: ${step.refusal ?? step.reason}`)
        : h('p', {}, 'Allowed by ', h('a', { href: `/allowlist#rule-${step.rule}` }, step.rule))));
    const status = statusArea();
    const confirm = word ? field({ label: `Type ${word} to confirm`, name: 'confirm', hint: 'Destructive steps erase what is on the chosen disks.', attrs: { autocomplete: 'off', autocapitalize: 'none', spellcheck: 'false' } }) : null;
    const apply = h('button', { type: 'submit', class: word ? 'danger' : 'primary', disabled: refused.length > 0 }, 'Apply the plan');
    const form = h('form', { novalidate: true }, status.el, confirm?.wrap, h('div', { class: 'actions' }, h('button', { type: 'button', class: 'secondary', onclick: () => fill(planner) }, 'Back'), apply));
    form.addEventListener('submit', async (event) => {
      event.preventDefault();
      confirm?.setError(null);
      if (word && confirm.input.value !== word) { confirm.setError(`Type ${word} exactly, in capitals.`); confirm.input.focus(); return; }
      try {
        const reply = await post(`/api/v1/plans/${encodeURIComponent(plan.id)}/apply`, { confirm: word ? confirm.input.value : '' });
        progress(reply.job_id ?? reply.job?.id ?? reply.id);
      } catch (error) {
        if (error instanceof ApiError && error.code === 'auth.reauth_required') status.error('Applying needs a recent sign-in: confirm it is you on the Security page, then apply again.');
        else status.error(`Apply failed: ${error.message}.`);
      }
    });
    const heading = h('h2', {}, '3. Review the plan');
    replace(body, h('section', {}, heading,
      (plan.warnings ?? []).map((warning) => h('p', { class: 'form-status error' }, warning)),
      refused.length ? h('p', { class: 'form-status error', role: 'alert' }, `${refused.length} step(s) are refused by the allowlist; this plan cannot run.`) : null,
      h('ol', { class: 'plan' }, rows), form));
    focus(heading);
  }

  function progress(jobId) {
    const log = h('ol', { class: 'events', 'aria-live': 'polite' });
    const state = h('p', { role: 'status' }, 'Running…');
    const heading = h('h2', {}, '4. Progress');
    replace(body, h('section', {}, heading, state, log));
    focus(heading);
    const source = new EventSource(`/api/v1/jobs/${encodeURIComponent(jobId)}/events`);
    source.onmessage = (event) => {
      let data;
      try { data = JSON.parse(event.data); } catch { data = { message: event.data }; }
      log.append(h('li', {}, h('strong', {}, data.step ?? ''), ` ${data.state ?? ''} `, data.message ?? '', data.output ? h('pre', { class: 'output' }, data.output) : null));
      if (data.state === 'succeeded' || data.state === 'failed' || data.final) {
        state.textContent = data.state === 'succeeded' ? 'Done.' : `Finished: ${data.state}.`;
        source.close();
      }
    };
    source.onerror = () => { state.textContent = 'The event stream ended.'; source.close(); };
  }

  choose();
}
