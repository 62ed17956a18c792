// @ts-check
// The pieces more than one page shows, each written once: the note for a missing API, disks
// and pools as the facts tell them, tables, the modal dialogs (confirm a change; re-authenticate
// and retry), the TOTP enrolment view and the recovery-code list. Pages import from here,
// never from each other.

import { ApiError, messageOf, post } from './api.js';
import { bytes, checkbox, field, h, statusArea, uid } from './dom.js';

/** @typedef {import('./types.js').BlockDevice} BlockDevice */
/** @typedef {import('./types.js').BtrfsFilesystem} BtrfsFilesystem */
/** @typedef {import('./types.js').Enrolment} Enrolment */
/** @typedef {import('./types.js').Facts} Facts */
/** @typedef {import('./dom.js').Child} Child */
/** @typedef {import('./dom.js').StatusArea} StatusArea */

// --- Missing APIs -------------------------------------------------------------------------

/**
 * Says that `what` needs the storage API, which this nosd does not serve.
 * @param {string} what
 */
export function missingApiNote(what) {
  return h('p', { class: 'form-status info', role: 'status' }, `${what} needs the storage API (/api/v1/facts, /api/v1/plans …), which this nosd does not serve (no storage pipeline is configured).`);
}

// --- Disks and pools ----------------------------------------------------------------------

/**
 * A whole disk or loop device; partitions are listed as devices of their own, with `parent`.
 * @param {BlockDevice} device
 */
export function isWholeDisk(device) {
  return ['disk', 'loop'].includes(device.device_type) && !device.parent;
}

/**
 * Whole disks (or loop devices) the host classified as blank. Nothing else is ever free: a
 * device whose state is missing or unknown is not, whatever its other fields say.
 * @param {Facts} facts
 */
export function freeDisks(facts) {
  return (facts.block_devices ?? []).filter((disk) => isWholeDisk(disk) && disk.state === 'blank' && disk.size_bytes > 0);
}

/**
 * The device the facts know by this path, kernel name or by-id link.
 * @param {Facts} facts
 * @param {string} name
 */
export function findDevice(facts, name) {
  return (facts.block_devices ?? []).find((device) => device.path === name || device.kname === name || (device.by_id ?? []).includes(name));
}

/**
 * "WDC WD40EFRX, serial WD-AAA1, 3.6 TiB": what tells one disk from another besides its path.
 * @param {BlockDevice} disk
 */
export function identity(disk) {
  const model = disk.model?.trim() || (disk.device_type === 'loop' ? 'loop device' : 'unknown model');
  const serial = disk.serial?.trim() ? `serial ${disk.serial.trim()}` : 'no serial';
  return `${model}, ${serial}, ${bytes(disk.size_bytes)}`;
}

/**
 * What a device is, without its path: a disk's identity, or a partition and its disk.
 * @param {Facts} facts
 * @param {BlockDevice} device
 * @returns {string}
 */
export function aboutDevice(facts, device) {
  if (device.device_type !== 'part') return identity(device);
  const disk = device.parent ? findDevice(facts, device.parent) : undefined;
  return `partition, ${bytes(device.size_bytes)}${disk ? `, on ${describeDevice(facts, disk)}` : ''}`;
}

/**
 * A device named in full: "/dev/sdb (WDC WD40EFRX, serial WD-1, 3.6 TiB)".
 * @param {Facts} facts
 * @param {BlockDevice} device
 */
export function describeDevice(facts, device) {
  return `${device.path} (${aboutDevice(facts, device)})`;
}

/**
 * One pool (a btrfs filesystem from the facts) as a card.
 * @param {BtrfsFilesystem} pool
 */
export function poolCard(pool) {
  const name = pool.label ?? pool.uuid;
  const used = pool.used_bytes ?? 0;
  const size = pool.size_bytes ?? 0;
  return h('li', { class: 'card', 'data-pool': name },
    h('h3', {}, name),
    h('p', {}, 'Mounted at ', h('code', {}, pool.mountpoint || '–')),
    h('p', {}, `Data ${pool.data_profile}, metadata ${pool.metadata_profile}`),
    h('p', {}, 'Devices: ', (pool.devices ?? []).map((device) => h('code', {}, device.path)).flatMap((el, idx) => (idx ? [', ', el] : [el]))),
    h('div', {}, h('progress', { max: size || 1, value: used, 'aria-label': `${name} usage` }), ` ${bytes(used)} of ${bytes(size)} used`));
}

// --- Tables -------------------------------------------------------------------------------

/**
 * A table with a caption for screen readers and one row of column headings.
 * @param {{ caption: string, columns: string[], body: HTMLTableSectionElement, className?: string }} options
 */
export function dataTable({ caption, columns, body, className }) {
  return h('table', { class: className },
    h('caption', { class: 'visually-hidden' }, caption),
    h('thead', {}, h('tr', {}, columns.map((name) => h('th', { scope: 'col' }, name)))),
    body);
}

/**
 * A wide table in a labelled region that scrolls sideways and takes the focus, so a keyboard
 * can scroll it.
 * @param {string} label
 * @param {HTMLTableElement} table
 */
export function scrollingTable(label, table) {
  return h('div', { class: 'table-wrap', role: 'region', tabindex: 0, 'aria-label': label }, table);
}

// --- Dialogs ------------------------------------------------------------------------------

/**
 * Shows `dialog` modally and resolves with the answer `wire`'s controls give through
 * `finish`; Escape answers false. Closing removes the dialog and gives the focus back to the
 * element that had it.
 * @param {HTMLDialogElement} dialog
 * @param {HTMLElement} initialFocus
 * @param {(finish: (answer: boolean) => void) => void} wire
 * @returns {Promise<boolean>}
 */
function modal(dialog, initialFocus, wire) {
  return new Promise((resolve) => {
    const previous = document.activeElement;
    let answered = false;
    /** @param {boolean} answer */
    const finish = (answer) => {
      if (answered) return;
      answered = true;
      dialog.close();
      dialog.remove();
      if (previous instanceof HTMLElement) previous.focus();
      resolve(answer);
    };
    dialog.addEventListener('cancel', () => finish(false));
    wire(finish);
    document.body.append(dialog);
    dialog.showModal();
    initialFocus.focus();
  });
}

/**
 * Explains a destructive action and asks for confirmation in a modal dialog. Resolves to true
 * only when the admin pressed the confirm button. Focus starts on Cancel and returns to the
 * element that had it.
 * @param {{ title: string, explain: string | string[], confirmLabel: string, danger?: boolean }} options
 */
export function confirmDialog({ title, explain, confirmLabel, danger = true }) {
  const titleId = uid('dialog-title');
  const bodyId = uid('dialog-body');
  const cancel = h('button', { type: 'button', class: 'secondary' }, 'Cancel');
  const confirm = h('button', { type: 'button', class: danger ? 'danger' : 'primary' }, confirmLabel);
  const dialog = h('dialog', { 'aria-labelledby': titleId, 'aria-describedby': bodyId },
    h('h2', { id: titleId }, title),
    h('div', { id: bodyId }, [explain].flat().map((text) => h('p', {}, text))),
    h('div', { class: 'actions' }, cancel, confirm));
  return modal(dialog, cancel, (finish) => {
    cancel.addEventListener('click', () => finish(false));
    confirm.addEventListener('click', () => finish(true));
  });
}

/**
 * Counts down in `status` when `error` is the server throttling (429, or 503 when busy).
 * @param {StatusArea} status
 * @param {unknown} error
 * @returns {boolean} Whether it was.
 */
export function showThrottled(status, error) {
  if (error instanceof ApiError && (error.status === 429 || error.status === 503)) {
    status.countdown('Too many attempts. Try again in {s} s.', error.retryAfter ?? 60);
    return true;
  }
  return false;
}

/**
 * Re-authentication: asks for password and code in a modal form; resolves true once the
 * server accepted them (`POST /api/v1/auth/reauth`).
 */
function reauthDialog() {
  const titleId = uid('reauth-title');
  const status = statusArea();
  const password = field({ label: 'Password', name: 'reauth-password', type: 'password', autocomplete: 'current-password' });
  const code = field({ label: 'Code', name: 'reauth-code', autocomplete: 'one-time-code', hint: 'From your authenticator app, or a recovery code.', required: false });
  const cancel = h('button', { type: 'button', class: 'secondary' }, 'Cancel');
  const submit = h('button', { type: 'submit', class: 'primary' }, 'Confirm');
  const form = h('form', { novalidate: true, method: 'dialog' }, status.el, password.wrap, code.wrap, h('div', { class: 'actions' }, cancel, submit));
  const dialog = h('dialog', { 'aria-labelledby': titleId }, h('h2', { id: titleId }, 'Confirm it is you'),
    h('p', {}, 'This change needs your password and a code from the last five minutes.'), form);
  return modal(dialog, password.input, (finish) => {
    cancel.addEventListener('click', () => finish(false));
    form.addEventListener('submit', async (event) => {
      event.preventDefault();
      password.setError(null);
      if (!password.input.value) { password.setError('Enter your password.'); password.input.focus(); return; }
      submit.disabled = true;
      try {
        await post('/api/v1/auth/reauth', { password: password.input.value, code: code.input.value.trim() });
        finish(true);
      } catch (error) {
        submit.disabled = false;
        if (showThrottled(status, error)) return;
        if (error instanceof ApiError && error.code === 'auth.failed') status.error('The password or code is wrong.');
        else status.error(`That did not work: ${messageOf(error)}.`);
      }
    });
  });
}

/**
 * Runs `action`; when the server wants a fresh sign-in (security settings, plugin grants,
 * applying a plan), asks for it once in a dialog and retries. `undefined` when the admin
 * cancelled the dialog.
 * @template T
 * @param {() => Promise<T>} action
 * @returns {Promise<T | undefined>}
 */
export async function withReauth(action) {
  try {
    return await action();
  } catch (error) {
    if (!(error instanceof ApiError) || error.code !== 'auth.reauth_required') throw error;
    if (!(await reauthDialog())) return undefined;
    return action();
  }
}

// --- TOTP enrolment -----------------------------------------------------------------------

const PATH_DATA = /^[MmHhVvLlZz0-9 .,-]+$/;

/**
 * The server's QR code comes as SVG text; it is not parsed as markup (Trusted Types forbid
 * that) but read for its viewBox and path data, checked, and rebuilt with DOM calls.
 * @param {string} svgText
 */
function qrElement(svgText) {
  const viewBox = /viewBox="([0-9 .]+)"/.exec(svgText)?.[1];
  const paths = [...svgText.matchAll(/<path\b[^>]*?\bd="([^"]*)"[^>]*>/g)];
  if (!viewBox || paths.length === 0) return h('p', { class: 'hint' }, 'The QR code is not available; type the key below instead.');
  const svg = h('svg', { viewBox, class: 'qr', role: 'img', 'aria-label': 'QR code for your authenticator app (the same key is written out below)' });
  svg.append(h('rect', { x: 0, y: 0, width: '100%', height: '100%', fill: '#fff' }));
  for (const [tag, data] of paths) {
    if (!PATH_DATA.test(data)) continue;
    const fill = /fill="(#[0-9a-fA-F]{3,6})"/.exec(tag)?.[1] ?? '#000';
    if (fill.toLowerCase() === '#fff' || fill.toLowerCase() === '#ffffff') continue;
    svg.append(h('path', { d: data, fill: '#000' }));
  }
  return svg;
}

/**
 * The key in groups of four, as authenticator apps accept it.
 * @param {string} secret
 */
function keyElement(secret) {
  const grouped = secret.replace(/(.{4})/g, '$1 ').trim();
  return h('p', { class: 'manual-key' }, h('span', { class: 'label' }, 'Key: '), h('code', { 'data-totp-secret': secret }, grouped));
}

/**
 * A TOTP enrolment: the QR code and the manual key.
 * @param {Enrolment} enrolment
 */
export function enrolmentView(enrolment) {
  return h('div', { class: 'enrol' },
    h('figure', { class: 'qr-figure' }, qrElement(enrolment.qr_svg),
      h('figcaption', {}, 'Scan with an authenticator app (TOTP, 6 digits, 30 s).')),
    h('div', {},
      h('p', {}, 'Or enter this key by hand, as a time-based key:'),
      keyElement(enrolment.secret)));
}

// --- Recovery codes -----------------------------------------------------------------------

/**
 * Freshly generated recovery codes, shown once.
 * @param {string[]} codes
 * @param {string} label
 */
export function codesList(codes, label) {
  const list = h('ol', { class: 'codes', 'aria-label': label }, codes.map((one) => h('li', {}, h('code', {}, one))));
  const text = `${codes.join('\n')}\n`;
  const said = h('p', { class: 'hint', role: 'status' });
  const copy = h('button', {
    type: 'button',
    class: 'secondary',
    onclick: async () => {
      try {
        await navigator.clipboard.writeText(text);
        said.textContent = 'Copied the codes.';
      } catch {
        // No clipboard outside a secure context: select them for Ctrl+C instead.
        const range = document.createRange();
        range.selectNodeContents(list);
        getSelection()?.removeAllRanges();
        getSelection()?.addRange(range);
        said.textContent = 'The codes are selected: press Ctrl+C to copy them.';
      }
    },
  }, 'Copy');
  const download = h('a', {
    class: 'button secondary',
    href: `data:text/plain;charset=utf-8,${encodeURIComponent(text)}`,
    download: 'nos-recovery-codes.txt',
  }, 'Download as a file');
  return h('div', { class: 'codes-box' }, list, h('div', { class: 'actions' }, copy, download), said);
}

/**
 * "I saved them" and a button: calls `onSaved` only once the box is checked, since the codes
 * are not shown again.
 * @param {string} submitLabel
 * @param {() => void} onSaved
 */
export function savedCodesForm(submitLabel, onSaved) {
  const saved = checkbox({ label: 'I saved them', name: 'saved' });
  const form = h('form', { novalidate: true }, saved.wrap, h('div', { class: 'actions' }, h('button', { type: 'submit', class: 'primary' }, submitLabel)));
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    if (!saved.input.checked) { saved.setError('Confirm that you saved the codes: they are not shown again.'); saved.input.focus(); return; }
    onSaved();
  });
  return form;
}

// --- Pool health --------------------------------------------------------------------------

/** @typedef {import('./types.js').Pool} Pool */

/**
 * A pool's health at a glance: its name linking to its page, the health word (also as
 * `data-health`, for the colour) and the first reason.
 * @param {Pool} pool
 */
export function poolHealth(pool) {
  const name = pool.label ?? pool.uuid;
  return h('li', { class: 'pool-health', 'data-pool': name, 'data-health': pool.health },
    h('a', { href: `/pool?${new URLSearchParams({ uuid: pool.uuid })}` }, name), ' ',
    h('strong', { class: 'health' }, pool.health), ` (${pool.state.replaceAll('-', ' ')})`,
    pool.reasons.length ? h('p', { class: 'hint' }, pool.reasons[0]) : '');
}

/**
 * The storage wizard's URL with `plugin`'s form and `fields` filled in (slashes kept readable).
 * @param {string} plugin
 * @param {Record<string, string | number>} fields
 */
export function wizardHref(plugin, fields) {
  const query = new URLSearchParams({ plugin, ...Object.fromEntries(Object.entries(fields).map(([key, value]) => [key, String(value)])) });
  return `/storage?${query.toString().replaceAll('%2F', '/')}`;
}
