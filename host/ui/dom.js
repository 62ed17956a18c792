// DOM helpers. The CSP requires Trusted Types with no policy, so nothing in the UI may parse an
// HTML string: every node is built here with createElement and text nodes.

let nextId = 0;

/** A unique element id with a readable prefix. */
export function uid(prefix) {
  nextId += 1;
  return `${prefix}-${nextId}`;
}

/** h('p', {class: 'hint'}, 'text', child, [more]) builds an element. `on*` attributes become listeners. */
export function h(tag, attrs = {}, ...children) {
  const el = tag === 'svg' || tag === 'path' || tag === 'rect'
    ? document.createElementNS('http://www.w3.org/2000/svg', tag)
    : document.createElement(tag);
  for (const [key, value] of Object.entries(attrs ?? {})) {
    if (value === false || value === null || value === undefined) continue;
    if (key.startsWith('on') && typeof value === 'function') {
      el.addEventListener(key.slice(2), value);
    } else if (value === true) {
      el.setAttribute(key, '');
    } else {
      el.setAttribute(key, String(value));
    }
  }
  append(el, children);
  return el;
}

export function append(el, children) {
  for (const child of [children].flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : String(child));
  }
  return el;
}

/** Replaces the content of `el`. */
export function replace(el, ...children) {
  el.replaceChildren();
  return append(el, children);
}

/**
 * A labelled input with an optional hint and an error slot tied to it by aria-describedby,
 * so a screen reader reads the error with the field.
 */
export function field({ label, name, type = 'text', hint, autocomplete, required = true, inputmode, value, attrs = {} }) {
  const id = uid(name);
  const input = h('input', { id, name, type, autocomplete, required, inputmode, value, ...attrs });
  const hintEl = hint ? h('p', { class: 'hint', id: `${id}-hint` }, hint) : null;
  const errorEl = h('p', { class: 'field-error', id: `${id}-error`, hidden: true });
  input.setAttribute('aria-describedby', [hintEl ? `${id}-hint` : null, `${id}-error`].filter(Boolean).join(' '));
  const wrap = h('div', { class: 'field' }, h('label', { for: id }, label), hintEl, input, errorEl);
  return {
    wrap,
    input,
    error: errorEl,
    setError(message) {
      errorEl.textContent = message ?? '';
      errorEl.hidden = !message;
      if (message) input.setAttribute('aria-invalid', 'true');
      else input.removeAttribute('aria-invalid');
    },
  };
}

/** A checkbox with its label and an error slot. */
export function checkbox({ label, name, hint }) {
  const id = uid(name);
  const input = h('input', { id, name, type: 'checkbox' });
  const errorEl = h('p', { class: 'field-error', id: `${id}-error`, hidden: true });
  const hintEl = hint ? h('p', { class: 'hint', id: `${id}-hint` }, hint) : null;
  input.setAttribute('aria-describedby', [hintEl ? `${id}-hint` : null, `${id}-error`].filter(Boolean).join(' '));
  const wrap = h('div', { class: 'field check' }, h('div', { class: 'check-row' }, input, h('label', { for: id }, label)), hintEl, errorEl);
  return {
    wrap,
    input,
    setError(message) {
      errorEl.textContent = message ?? '';
      errorEl.hidden = !message;
      if (message) input.setAttribute('aria-invalid', 'true');
      else input.removeAttribute('aria-invalid');
    },
  };
}

/** A form-level message area: `role=alert` for errors, `role=status` for progress. */
export function statusArea() {
  const el = h('div', { class: 'form-status', role: 'alert', hidden: true });
  let timer = null;
  const stop = () => { if (timer) { clearInterval(timer); timer = null; } };
  return {
    el,
    error(message) { stop(); el.className = 'form-status error'; el.textContent = message; el.hidden = false; },
    info(message) { stop(); el.className = 'form-status info'; el.textContent = message; el.hidden = false; },
    clear() { stop(); el.textContent = ''; el.hidden = true; },
    /** Counts down `seconds` in the message (`{s}` is replaced); calls `done` at zero. */
    countdown(template, seconds, done) {
      stop();
      let left = Math.max(1, Math.ceil(seconds));
      el.className = 'form-status error';
      el.hidden = false;
      el.textContent = template.replace('{s}', String(left));
      timer = setInterval(() => {
        left -= 1;
        if (left <= 0) { stop(); el.textContent = 'You can try again now.'; el.className = 'form-status info'; done?.(); return; }
        // Only the number changes; the alert role is not re-announced for each second.
        el.textContent = template.replace('{s}', String(left));
      }, 1000);
    },
  };
}

/** A section with a heading (h2) whose id labels it. */
export function section(title, ...children) {
  const id = uid('section');
  return h('section', { 'aria-labelledby': id }, h('h2', { id }, title), ...children);
}

/** Moves focus to `el` (made focusable if needed), e.g. the heading of a new wizard step. */
export function focus(el) {
  if (!el) return;
  if (!el.hasAttribute('tabindex') && !['INPUT', 'BUTTON', 'SELECT', 'TEXTAREA', 'A'].includes(el.tagName)) {
    el.setAttribute('tabindex', '-1');
  }
  el.focus();
}

/**
 * Explains a destructive action and asks for confirmation in a modal dialog. Resolves to true
 * only when the admin pressed the confirm button. Focus starts on Cancel and returns to the
 * element that had it.
 */
export function confirmDialog({ title, explain, confirmLabel, danger = true }) {
  return new Promise((resolve) => {
    const titleId = uid('dialog-title');
    const bodyId = uid('dialog-body');
    const previous = document.activeElement;
    const cancel = h('button', { type: 'button', class: 'secondary' }, 'Cancel');
    const confirm = h('button', { type: 'button', class: danger ? 'danger' : 'primary' }, confirmLabel);
    const dialog = h('dialog', { 'aria-labelledby': titleId, 'aria-describedby': bodyId },
      h('h2', { id: titleId }, title),
      h('div', { id: bodyId }, [explain].flat().map((text) => h('p', {}, text))),
      h('div', { class: 'actions' }, cancel, confirm));
    let answered = false;
    const finish = (answer) => {
      if (answered) return;
      answered = true;
      dialog.close();
      dialog.remove();
      if (previous instanceof HTMLElement) previous.focus();
      resolve(answer);
    };
    cancel.addEventListener('click', () => finish(false));
    confirm.addEventListener('click', () => finish(true));
    dialog.addEventListener('cancel', () => finish(false));
    document.body.append(dialog);
    dialog.showModal();
    cancel.focus();
  });
}

/** "42 s ago", "3 min ago", with the exact local time for a tooltip. */
export function timeAgo(unixSeconds) {
  const seconds = Math.max(0, Math.round(Date.now() / 1000 - unixSeconds));
  let text;
  if (seconds < 60) text = `${seconds} s ago`;
  else if (seconds < 3600) text = `${Math.floor(seconds / 60)} min ago`;
  else if (seconds < 86400) text = `${Math.floor(seconds / 3600)} h ago`;
  else text = `${Math.floor(seconds / 86400)} d ago`;
  const exact = new Date(unixSeconds * 1000);
  return h('time', { datetime: exact.toISOString(), title: exact.toLocaleString() }, text);
}

/** A byte count for people. */
export function bytes(n) {
  if (typeof n !== 'number' || !Number.isFinite(n)) return '–';
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];
  let value = n;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) { value /= 1024; unit += 1; }
  return `${value.toFixed(unit === 0 ? 0 : 1)} ${units[unit]}`;
}
