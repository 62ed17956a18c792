// @ts-check
// Sign in: username and password, then the TOTP or a recovery code, sent together in one
// request. The server answers the same way whichever part was wrong, and so does this page.

import { ApiError, messageOf, post } from '../api.js';
import { byId, field, focus, h, replace, statusArea } from '../dom.js';

/** @typedef {import('../types.js').LoginReply} LoginReply */

/** Where to go after signing in: only a page of this server (no `//host` or `/\host` tricks). */
function nextPath() {
  const next = new URLSearchParams(location.search).get('next');
  if (!next || !/^\/(?![\/\\])/.test(next)) return '/dashboard';
  const target = new URL(next, location.origin);
  if (target.origin !== location.origin || target.pathname.startsWith('/login')) return '/dashboard';
  return target.pathname + target.search + target.hash;
}

/** @param {HTMLElement} root */
export function render(root) {
  const status = statusArea();
  const username = field({ label: 'Username', name: 'username', autocomplete: 'username', attrs: { autocapitalize: 'none', spellcheck: 'false', autofocus: true } });
  const password = field({ label: 'Password', name: 'password', type: 'password', autocomplete: 'current-password' });
  const code = field({
    label: 'Code',
    name: 'code',
    autocomplete: 'one-time-code',
    hint: 'The 6-digit code from your authenticator app, or one of your recovery codes. Leave it empty only if two-factor authentication is off for your account.',
    required: false,
    attrs: { autocapitalize: 'none', spellcheck: 'false' },
  });
  const stepOneHeading = h('h2', {}, 'Account');
  const stepTwoHeading = h('h2', {}, 'Second factor');
  const continueButton = h('button', { type: 'submit', class: 'primary' }, 'Continue');
  const signInButton = h('button', { type: 'submit', class: 'primary' }, 'Sign in');
  const backButton = h('button', { type: 'button', class: 'secondary' }, 'Back');

  const stepOne = h('form', { novalidate: true, 'aria-labelledby': 'login-step-1' }, stepOneHeading, username.wrap, password.wrap, h('div', { class: 'actions' }, continueButton));
  stepOneHeading.id = 'login-step-1';
  const stepTwo = h('form', { novalidate: true, hidden: true, 'aria-labelledby': 'login-step-2' }, stepTwoHeading,
    h('p', { class: 'hint' }, 'Signing in as ', h('strong', { id: 'login-as' }), '.'),
    code.wrap, h('div', { class: 'actions' }, backButton, signInButton));
  stepTwoHeading.id = 'login-step-2';

  /** @param {1 | 2} which */
  const showStep = (which) => {
    stepOne.hidden = which !== 1;
    stepTwo.hidden = which !== 2;
    (which === 1 ? (username.input.value ? password.input : username.input) : code.input).focus();
  };

  let lockedUntil = 0;
  /**
   * @param {number} seconds
   * @param {string} template The message, `{s}` the seconds left.
   */
  const setLocked = (seconds, template) => {
    lockedUntil = Date.now() + seconds * 1000;
    continueButton.disabled = true;
    signInButton.disabled = true;
    status.countdown(template, seconds, () => {
      continueButton.disabled = false;
      signInButton.disabled = false;
    });
  };

  stepOne.addEventListener('submit', (event) => {
    event.preventDefault();
    username.setError(null);
    password.setError(null);
    /** @type {HTMLInputElement | null} */
    let firstInvalid = null;
    if (!username.input.value.trim()) { username.setError('Enter your username.'); firstInvalid ??= username.input; }
    if (!password.input.value) { password.setError('Enter your password.'); firstInvalid ??= password.input; }
    if (firstInvalid) { firstInvalid.focus(); return; }
    byId('login-as').textContent = username.input.value.trim();
    if (Date.now() >= lockedUntil) status.clear();
    showStep(2);
  });
  backButton.addEventListener('click', () => showStep(1));

  stepTwo.addEventListener('submit', async (event) => {
    event.preventDefault();
    code.setError(null);
    const typed = code.input.value.trim();
    if (Date.now() < lockedUntil) return;
    signInButton.disabled = true;
    status.info('Signing in…');
    try {
      /** @type {{ username: string, password: string, code?: string }} */
      const body = { username: username.input.value.trim(), password: password.input.value };
      if (typed) body.code = typed;
      const reply = /** @type {LoginReply} */ (await post('/api/v1/auth/login', body));
      if (typed && !/^\d{6}$/.test(typed)) {
        sessionStorage.setItem('nos.flash', `You signed in with a recovery code; it cannot be used again. ${reply.recovery_codes_left} recovery codes are left (Security page).`);
      }
      location.assign(nextPath());
    } catch (error) {
      signInButton.disabled = false;
      code.input.value = '';
      if (error instanceof ApiError && error.status === 429) {
        password.input.value = '';
        showStep(1);
        setLocked(error.retryAfter ?? 60, 'Too many failed attempts. Try again in {s} s.');
      } else if (error instanceof ApiError && error.status === 503) {
        setLocked(error.retryAfter ?? 1, 'The server is busy. Try again in {s} s.');
      } else if (error instanceof ApiError && error.code === 'auth.failed') {
        password.input.value = '';
        showStep(1);
        status.error('Sign-in failed: the username, password or code is wrong.');
      } else {
        status.error(`Sign-in failed: ${messageOf(error)}.`);
      }
    }
  });

  replace(root, status.el, stepOne, stepTwo,
    h('p', { class: 'hint' }, 'Lost your authenticator and your recovery codes? Recovery mode (nos.recovery=1 on the kernel command line) lets root reset the account.'));
  focus(username.input);
}
