// @ts-check
// First-run setup: setup token → first admin → TOTP enrolment → recovery codes → done.
// Every step is its own form; the heading of each new step takes the focus.

import { ApiError, get, messageOf, post } from '../api.js';
import { codesList, enrolmentView, savedCodesForm, showThrottled } from '../components.js';
import { field, focus, h, replace, statusArea } from '../dom.js';

/** @typedef {import('../types.js').Enrolment} Enrolment */
/** @typedef {import('../types.js').SetupAdminReply} SetupAdminReply */
/** @typedef {import('../dom.js').Child} Child */

const STEPS = ['Setup token', 'First admin', 'Two-factor authentication', 'Recovery codes', 'Done'];

/** @param {HTMLElement} root */
export async function render(root) {
  try {
    await get('/api/v1/setup');
  } catch (error) {
    if (error instanceof ApiError && error.status === 410) {
      replace(root, h('p', {}, 'Setup is already complete. ', h('a', { href: '/login' }, 'Sign in')), '.');
      return;
    }
    throw error;
  }

  /** @type {{ token: string, username: string, password: string, codes: string[] }} */
  const state = { token: '', username: '', password: '', codes: [] };
  const progress = h('ol', { class: 'steps', 'aria-label': 'Setup steps' });
  const body = h('div');
  replace(root, progress, body);

  /**
   * @param {number} stepIdx
   * @param {...Child} content
   */
  const show = (stepIdx, ...content) => {
    replace(progress, STEPS.map((name, idx) => h('li', { 'aria-current': idx === stepIdx ? 'step' : false, class: idx < stepIdx ? 'done' : '' }, name)));
    const heading = h('h2', {}, `Step ${stepIdx + 1} of ${STEPS.length}: ${STEPS[stepIdx]}`);
    replace(body, heading, ...content);
    focus(heading);
  };

  /** @param {string} [tokenError] Why the token was refused. */
  function tokenStep(tokenError) {
    const status = statusArea();
    const token = field({
      label: 'Setup token',
      name: 'token',
      value: state.token,
      hint: 'nosd printed it in its log at start, and wrote it to the file setup-token in its state directory (readable by root and nos only). It is valid for 15 minutes.',
      attrs: { autocapitalize: 'none', spellcheck: 'false', autocomplete: 'off' },
    });
    const form = h('form', { novalidate: true }, status.el, token.wrap, h('div', { class: 'actions' }, h('button', { type: 'submit', class: 'primary' }, 'Continue')));
    form.addEventListener('submit', (event) => {
      event.preventDefault();
      const value = token.input.value.trim().toLowerCase();
      if (!/^[0-9a-f]{32}$/.test(value)) {
        token.setError('The setup token is 32 characters, 0–9 and a–f.');
        token.input.focus();
        return;
      }
      state.token = value;
      adminStep();
    });
    show(0, h('p', {}, 'No administrator exists yet. Prove you have access to this machine with the setup token.'), form);
    if (tokenError) {
      token.setError(tokenError);
      token.input.focus();
    }
  }

  /** @param {{ password?: string }} [errors] Why the server refused the password. */
  function adminStep(errors = {}) {
    const status = statusArea();
    const username = field({ label: 'Username', name: 'username', autocomplete: 'username', value: state.username, hint: '3–32 characters: lowercase letters, digits, - and _, starting with a letter.', attrs: { autocapitalize: 'none', spellcheck: 'false' } });
    const password = field({ label: 'Password', name: 'new-password', type: 'password', autocomplete: 'new-password', hint: 'At least 12 characters; a passphrase of several words is best. Common passwords are refused.' });
    const again = field({ label: 'Password again', name: 'new-password-again', type: 'password', autocomplete: 'new-password' });
    const back = h('button', { type: 'button', class: 'secondary', onclick: () => tokenStep() }, 'Back');
    const submit = h('button', { type: 'submit', class: 'primary' }, 'Continue');
    const form = h('form', { novalidate: true }, status.el, username.wrap, password.wrap, again.wrap, h('div', { class: 'actions' }, back, submit));
    form.addEventListener('submit', async (event) => {
      event.preventDefault();
      [username, password, again].forEach((f) => f.setError(null));
      status.clear();
      const name = username.input.value.trim();
      /** @type {HTMLInputElement | null} */
      let firstInvalid = null;
      if (!/^[a-z][a-z0-9_-]{2,31}$/.test(name)) { username.setError('Use 3–32 characters: lowercase letters, digits, - and _, starting with a letter.'); firstInvalid ??= username.input; }
      if (password.input.value.length < 12) { password.setError('Use at least 12 characters.'); firstInvalid ??= password.input; }
      else if (password.input.value !== again.input.value) { again.setError('The two passwords differ.'); firstInvalid ??= again.input; }
      if (firstInvalid) { firstInvalid.focus(); return; }
      submit.disabled = true;
      try {
        const enrolment = /** @type {Enrolment} */ (await post('/api/v1/setup/totp', { token: state.token, username: name }));
        state.username = name;
        state.password = password.input.value;
        totpStep(enrolment);
      } catch (error) {
        submit.disabled = false;
        if (error instanceof ApiError && error.code === 'setup.refused') tokenStep('This setup token is wrong or has expired. Restart nosd for a new one if it expired.');
        else if (error instanceof ApiError && error.code === 'setup.complete') location.assign('/login');
        else if (!showThrottled(status, error)) { username.setError(messageOf(error)); username.input.focus(); }
      }
    });
    show(1, h('p', {}, 'Choose the first administrator’s name and password.'), form);
    if (errors.password) { password.setError(errors.password); password.input.focus(); }
  }

  /** @param {Enrolment} enrolment */
  function totpStep(enrolment) {
    const status = statusArea();
    const code = field({ label: 'Code from the app', name: 'code', autocomplete: 'one-time-code', inputmode: 'numeric', hint: 'The 6 digits the app shows now.', attrs: { pattern: '[0-9]{6}', maxlength: 6 } });
    const back = h('button', { type: 'button', class: 'secondary', onclick: () => adminStep() }, 'Back');
    const submit = h('button', { type: 'submit', class: 'primary' }, 'Create administrator');
    const form = h('form', { novalidate: true }, status.el, code.wrap, h('div', { class: 'actions' }, back, submit));
    form.addEventListener('submit', async (event) => {
      event.preventDefault();
      code.setError(null);
      status.clear();
      const typed = code.input.value.replace(/\s/g, '');
      if (!/^\d{6}$/.test(typed)) { code.setError('Enter the 6 digits the app shows.'); code.input.focus(); return; }
      submit.disabled = true;
      status.info('Creating the administrator…');
      try {
        const reply = /** @type {SetupAdminReply} */ (await post('/api/v1/setup/admin', { token: state.token, username: state.username, password: state.password, code: typed }));
        state.password = '';
        state.codes = reply.recovery_codes;
        codesStep();
      } catch (error) {
        submit.disabled = false;
        status.clear();
        if (error instanceof ApiError && error.code === 'setup.refused') tokenStep('This setup token is wrong or has expired. Restart nosd for a new one if it expired.');
        else if (error instanceof ApiError && error.code === 'setup.complete') location.assign('/login');
        else if (showThrottled(status, error)) { /* shown */ }
        else if (/totp|code/i.test(messageOf(error))) { code.setError('This code does not match. Check the app’s clock and use the code it shows now.'); code.input.focus(); }
        else if (/username/i.test(messageOf(error))) adminStep();
        else adminStep({ password: `This password is refused: ${messageOf(error)}.` });
      }
    });
    show(2, h('p', {}, 'Sign-in needs a second factor. Add nos to an authenticator app, then type the code it shows to prove it works.'),
      enrolmentView(enrolment), form);
  }

  function codesStep() {
    const form = savedCodesForm('Continue', () => {
      state.codes = [];
      doneStep();
    });
    show(3,
      h('p', {}, 'If you lose your authenticator, each of these codes signs you in once instead of the 6-digit code. Store them somewhere safe, away from this machine. They are shown only now.'),
      codesList(state.codes, 'Recovery codes'),
      form);
  }

  function doneStep() {
    show(4, h('p', {}, `The administrator ${state.username} exists and setup is closed for good.`),
      h('p', {}, h('a', { href: '/login', class: 'button primary' }, 'Sign in')));
  }

  tokenStep();
}
