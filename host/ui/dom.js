// @ts-check
// DOM helpers. The CSP requires Trusted Types with no policy, so nothing in the UI may parse an
// HTML string: every node is built here with createElement and text nodes.

/**
 * What `h` and `append` accept as children: nodes, text, numbers, nested lists; `null`,
 * `undefined` and `false` are skipped.
 * @typedef {Node | string | number | boolean | null | undefined | ChildList} Child
 * @typedef {Child[]} ChildList
 */

/**
 * Attributes for `h`: `on*` functions become listeners, `true` an empty attribute; `false`,
 * `null` and `undefined` leave the attribute out; anything else is set as its string.
 * @typedef {Record<string, unknown>} Attrs
 */

/** The SVG elements `h` builds in the SVG namespace. */
const SVG_TAGS = ['svg', 'path', 'rect'];

let nextId = 0;

/**
 * A unique element id with a readable prefix.
 * @param {string} prefix
 */
export function uid(prefix) {
  nextId += 1;
  return `${prefix}-${nextId}`;
}

/**
 * The element of the shell with this id; the shell always has it.
 * @param {string} id
 * @returns {HTMLElement}
 */
export function byId(id) {
  const el = document.getElementById(id);
  if (!el) throw new Error(`the page has no element #${id}`);
  return el;
}

/**
 * The element type `h(tag)` builds: HTML by its tag name, else SVG, else a plain Element.
 * @template {string} K
 * @typedef {K extends keyof HTMLElementTagNameMap ? HTMLElementTagNameMap[K]
 *   : K extends keyof SVGElementTagNameMap ? SVGElementTagNameMap[K] : Element} ElementOf
 */

/**
 * h('p', {class: 'hint'}, 'text', child, [more]) builds an element. `on*` attributes become listeners.
 * @template {string} K
 * @param {K} tag
 * @param {Attrs | null} [attrs]
 * @param {...Child} children
 * @returns {ElementOf<K>}
 */
export function h(tag, attrs = {}, ...children) {
  const el = SVG_TAGS.includes(tag)
    ? document.createElementNS('http://www.w3.org/2000/svg', tag)
    : document.createElement(tag);
  for (const [key, value] of Object.entries(attrs ?? {})) {
    if (value === false || value === null || value === undefined) continue;
    if (key.startsWith('on') && typeof value === 'function') {
      el.addEventListener(key.slice(2), /** @type {EventListener} */ (value));
    } else if (value === true) {
      el.setAttribute(key, '');
    } else {
      el.setAttribute(key, String(value));
    }
  }
  append(el, children);
  return /** @type {ElementOf<K>} */ (/** @type {unknown} */ (el));
}

/**
 * Appends `children` (see `Child`) to `el`.
 * @template {Element} E
 * @param {E} el
 * @param {Child} children
 * @returns {E}
 */
export function append(el, children) {
  for (const child of /** @type {unknown[]} */ ([children]).flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : String(child));
  }
  return el;
}

/**
 * Replaces the content of `el`.
 * @template {Element} E
 * @param {E} el
 * @param {...Child} children
 * @returns {E}
 */
export function replace(el, ...children) {
  el.replaceChildren();
  return append(el, children);
}

/**
 * The error paragraph under a control, tied to it by aria-describedby (after the hint, if
 * any), so a screen reader reads the error with the field.
 * @param {string} id The control's id.
 * @param {HTMLElement} control
 * @param {HTMLElement | null} hintEl
 */
function errorSlot(id, control, hintEl) {
  const el = h('p', { class: 'field-error', id: `${id}-error`, hidden: true });
  control.setAttribute('aria-describedby', [hintEl ? `${id}-hint` : null, `${id}-error`].filter(Boolean).join(' '));
  return {
    el,
    /** @param {string | null} message The error, or `null` to clear it. */
    setError(message) {
      el.textContent = message ?? '';
      el.hidden = !message;
      if (message) control.setAttribute('aria-invalid', 'true');
      else control.removeAttribute('aria-invalid');
    },
  };
}

/**
 * @typedef {object} FieldOptions
 * @property {string} label
 * @property {string} name
 * @property {string} [type]
 * @property {string} [hint]
 * @property {string} [autocomplete]
 * @property {boolean} [required]
 * @property {string} [inputmode]
 * @property {unknown} [value]
 * @property {Attrs} [attrs]
 */

/**
 * A labelled input with an optional hint and an error slot tied to it by aria-describedby,
 * so a screen reader reads the error with the field.
 * @param {FieldOptions} options
 */
export function field({ label, name, type = 'text', hint, autocomplete, required = true, inputmode, value, attrs = {} }) {
  const id = uid(name);
  const input = h('input', { id, name, type, autocomplete, required, inputmode, value, ...attrs });
  const hintEl = hint ? h('p', { class: 'hint', id: `${id}-hint` }, hint) : null;
  const error = errorSlot(id, input, hintEl);
  const wrap = h('div', { class: 'field' }, h('label', { for: id }, label), hintEl, input, error.el);
  return { wrap, input, setError: error.setError };
}

/**
 * A checkbox with its label and an error slot.
 * @param {{ label: string, name: string, hint?: string }} options
 */
export function checkbox({ label, name, hint }) {
  const id = uid(name);
  const input = h('input', { id, name, type: 'checkbox' });
  const hintEl = hint ? h('p', { class: 'hint', id: `${id}-hint` }, hint) : null;
  const error = errorSlot(id, input, hintEl);
  const wrap = h('div', { class: 'field check' }, h('div', { class: 'check-row' }, input, h('label', { for: id }, label)), hintEl, error.el);
  return { wrap, input, setError: error.setError };
}

/**
 * A form-level message area: `role=alert` for errors, `role=status` for progress.
 * @typedef {ReturnType<typeof statusArea>} StatusArea
 */
export function statusArea() {
  const el = h('div', { class: 'form-status', role: 'alert', hidden: true });
  /** @type {ReturnType<typeof setInterval> | null} */
  let timer = null;
  const stop = () => { if (timer) { clearInterval(timer); timer = null; } };
  return {
    el,
    /** @param {string} message */
    error(message) { stop(); el.className = 'form-status error'; el.textContent = message; el.hidden = false; },
    /** @param {string} message */
    info(message) { stop(); el.className = 'form-status info'; el.textContent = message; el.hidden = false; },
    clear() { stop(); el.textContent = ''; el.hidden = true; },
    /**
     * Counts down `seconds` in the message (`{s}` is replaced); calls `done` at zero.
     * @param {string} template
     * @param {number} seconds
     * @param {() => void} [done]
     */
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

/**
 * A section with a heading (h2) whose id labels it.
 * @param {string} title
 * @param {...Child} children
 */
export function section(title, ...children) {
  const id = uid('section');
  return h('section', { 'aria-labelledby': id }, h('h2', { id }, title), ...children);
}

/**
 * Moves focus to `el` (made focusable if needed), e.g. the heading of a new wizard step.
 * @param {HTMLElement | null | undefined} el
 */
export function focus(el) {
  if (!el) return;
  if (!el.hasAttribute('tabindex') && !['INPUT', 'BUTTON', 'SELECT', 'TEXTAREA', 'A'].includes(el.tagName)) {
    el.setAttribute('tabindex', '-1');
  }
  el.focus();
}

/**
 * "42 s ago", "3 min ago", with the exact local time for a tooltip.
 * @param {number} unixSeconds
 */
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

/**
 * A byte count for people.
 * @param {unknown} n
 */
export function bytes(n) {
  if (typeof n !== 'number' || !Number.isFinite(n)) return '–';
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];
  let value = n;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) { value /= 1024; unit += 1; }
  return `${value.toFixed(unit === 0 ? 0 : 1)} ${units[unit]}`;
}
