// Re-authentication: state-changing actions that need a recent sign-in (security settings,
// plugin grants, applying a plan) ask for the password and a code in a dialog when the server
// answers auth.reauth_required, then retry once.

import { ApiError, post } from './api.js';
import { field, h, statusArea, uid } from './dom.js';

/** Asks for password and code in a modal form; resolves true once re-authenticated. */
export function reauthDialog() {
  return new Promise((resolve) => {
    const titleId = uid('reauth-title');
    const status = statusArea();
    const password = field({ label: 'Password', name: 'reauth-password', type: 'password', autocomplete: 'current-password' });
    const code = field({ label: 'Code', name: 'reauth-code', autocomplete: 'one-time-code', hint: 'From your authenticator app, or a recovery code.', required: false });
    const cancel = h('button', { type: 'button', class: 'secondary' }, 'Cancel');
    const submit = h('button', { type: 'submit', class: 'primary' }, 'Confirm');
    const form = h('form', { novalidate: true, method: 'dialog' }, status.el, password.wrap, code.wrap, h('div', { class: 'actions' }, cancel, submit));
    const dialog = h('dialog', { 'aria-labelledby': titleId }, h('h2', { id: titleId }, 'Confirm it is you'),
      h('p', {}, 'This change needs your password and a code from the last five minutes.'), form);
    const previous = document.activeElement;
    let done = false;
    const finish = (answer) => {
      if (done) return;
      done = true;
      dialog.close();
      dialog.remove();
      if (previous instanceof HTMLElement) previous.focus();
      resolve(answer);
    };
    cancel.addEventListener('click', () => finish(false));
    dialog.addEventListener('cancel', () => finish(false));
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
        if (error instanceof ApiError && (error.status === 429 || error.status === 503)) status.countdown('Too many attempts. Try again in {s} s.', error.retryAfter ?? 60);
        else if (error instanceof ApiError && error.code === 'auth.failed') status.error('The password or code is wrong.');
        else status.error(`That did not work: ${error.message}.`);
      }
    });
    document.body.append(dialog);
    dialog.showModal();
    password.input.focus();
  });
}

/** Runs `action`; when the server wants a fresh sign-in, asks for it once and retries. */
export async function withReauth(action) {
  try {
    return await action();
  } catch (error) {
    if (!(error instanceof ApiError) || error.code !== 'auth.reauth_required') throw error;
    if (!(await reauthDialog())) return undefined;
    return action();
  }
}
