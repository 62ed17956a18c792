// @ts-check
// Security: change the password, enrol / re-enrol / turn off TOTP, regenerate recovery codes.
// Every one of these needs a recent sign-in; when the server says so, a dialog asks for the
// password and a code first and then retries.

import { ApiError, get, messageOf, post } from '../api.js';
import { codesList, confirmDialog, enrolmentView, savedCodesForm, withReauth } from '../components.js';
import { field, focus, h, replace, section, statusArea } from '../dom.js';

/** @typedef {import('../types.js').Enrolment} Enrolment */
/** @typedef {import('../types.js').Me} Me */
/** @typedef {import('../types.js').RecoveryCodesReply} RecoveryCodesReply */

/** @param {HTMLElement} root */
export async function render(root) {
  const me = /** @type {Me} */ (await get('/api/v1/me'));
  const status = h('p', { role: 'status', class: 'form-status info', hidden: true });
  /** @param {string} message */
  const say = (message) => { status.textContent = message; status.hidden = false; };

  // Password.
  const passwordStatus = statusArea();
  const newPassword = field({ label: 'New password', name: 'new-password', type: 'password', autocomplete: 'new-password', hint: 'At least 12 characters; common passwords are refused.' });
  const again = field({ label: 'New password again', name: 'new-password-again', type: 'password', autocomplete: 'new-password' });
  const passwordForm = h('form', { novalidate: true }, passwordStatus.el,
    h('p', {}, 'Changing the password signs out every other browser signed in to your account.'),
    newPassword.wrap, again.wrap, h('div', { class: 'actions' }, h('button', { type: 'submit', class: 'primary' }, 'Change password')));
  passwordForm.addEventListener('submit', async (event) => {
    event.preventDefault();
    newPassword.setError(null);
    again.setError(null);
    passwordStatus.clear();
    if (newPassword.input.value.length < 12) { newPassword.setError('Use at least 12 characters.'); newPassword.input.focus(); return; }
    if (newPassword.input.value !== again.input.value) { again.setError('The two passwords differ.'); again.input.focus(); return; }
    try {
      const done = await withReauth(() => post('/api/v1/auth/password', { new_password: newPassword.input.value }));
      if (done === undefined) return;
      newPassword.input.value = '';
      again.input.value = '';
      say('Password changed; other sessions were ended.');
    } catch (error) {
      if (error instanceof ApiError && error.code === 'password.rejected') { newPassword.setError(`Refused: ${error.message}.`); newPassword.input.focus(); }
      else passwordStatus.error(`That did not work: ${messageOf(error)}.`);
    }
  });

  // Two-factor.
  const totpBox = h('div');
  const totpStatus = statusArea();
  function renderTotp() {
    const enrolButton = h('button', { type: 'button', class: me.totp_enrolled ? 'secondary' : 'primary' }, me.totp_enrolled ? 'Set up a new authenticator' : 'Set up two-factor authentication');
    enrolButton.addEventListener('click', async () => {
      if (me.totp_enrolled) {
        const ok = await confirmDialog({
          title: 'Replace your authenticator?',
          explain: ['You will scan a new key. Once you confirm it with a code, the old authenticator stops working and every other browser is signed out.'],
          confirmLabel: 'Continue', danger: false,
        });
        if (!ok) return;
      }
      try {
        const enrolment = /** @type {Enrolment | undefined} */ (await withReauth(() => post('/api/v1/auth/totp/enrol')));
        if (enrolment) showEnrolment(enrolment);
      } catch (error) {
        totpStatus.error(`That did not work: ${messageOf(error)}.`);
      }
    });
    const disableButton = me.totp_enrolled ? h('button', { type: 'button', class: 'danger' }, 'Turn off two-factor authentication') : null;
    disableButton?.addEventListener('click', async () => {
      const ok = await confirmDialog({
        title: 'Turn off two-factor authentication?',
        explain: ['Afterwards the password alone signs in to this account, so anyone who learns it gets in.',
          'Every other browser is signed out. You can set up an authenticator again at any time.'],
        confirmLabel: 'Turn off',
      });
      if (!ok) return;
      try {
        const done = await withReauth(() => post('/api/v1/auth/totp/disable'));
        if (done === undefined) return;
        me.totp_enrolled = false;
        renderTotp();
        say('Two-factor authentication is off.');
      } catch (error) {
        totpStatus.error(`That did not work: ${messageOf(error)}.`);
      }
    });
    replace(totpBox, totpStatus.el,
      h('p', {}, 'Two-factor authentication is ', h('strong', {}, me.totp_enrolled ? 'on' : 'off'), '.'),
      h('div', { class: 'actions' }, enrolButton, disableButton));
  }
  /** @param {Enrolment} enrolment */
  function showEnrolment(enrolment) {
    const code = field({ label: 'Code from the app', name: 'totp-code', autocomplete: 'one-time-code', inputmode: 'numeric', hint: 'The 6 digits the app shows for the new key.', attrs: { maxlength: 6 } });
    const cancel = h('button', { type: 'button', class: 'secondary', onclick: () => renderTotp() }, 'Cancel');
    const form = h('form', { novalidate: true }, code.wrap, h('div', { class: 'actions' }, cancel, h('button', { type: 'submit', class: 'primary' }, 'Confirm new authenticator')));
    form.addEventListener('submit', async (event) => {
      event.preventDefault();
      code.setError(null);
      const typed = code.input.value.replace(/\s/g, '');
      if (!/^\d{6}$/.test(typed)) { code.setError('Enter the 6 digits the app shows.'); code.input.focus(); return; }
      try {
        const done = await withReauth(() => post('/api/v1/auth/totp/confirm', { code: typed }));
        if (done === undefined) return;
        me.totp_enrolled = true;
        renderTotp();
        say('The new authenticator is active; other sessions were ended.');
      } catch (error) {
        if (error instanceof ApiError && error.code === 'totp.mismatch') { code.setError('This code does not match the new key.'); code.input.focus(); }
        else totpStatus.error(`That did not work: ${messageOf(error)}.`);
      }
    });
    const heading = h('h3', {}, 'Scan the new key');
    replace(totpBox, totpStatus.el, heading, enrolmentView(enrolment), form);
    focus(heading);
  }
  renderTotp();

  // Recovery codes.
  const codesBox = h('div');
  const codesStatus = statusArea();
  function renderCodes() {
    const regenerate = h('button', { type: 'button', class: 'danger' }, 'Generate new recovery codes');
    regenerate.addEventListener('click', async () => {
      const ok = await confirmDialog({
        title: 'Generate new recovery codes?',
        explain: ['All your current recovery codes stop working at once, including any you have printed or stored.',
          'The 10 new codes are shown once on this page.'],
        confirmLabel: 'Generate new codes',
      });
      if (!ok) return;
      try {
        const reply = /** @type {RecoveryCodesReply | undefined} */ (await withReauth(() => post('/api/v1/auth/recovery-codes')));
        if (!reply) return;
        me.recovery_codes_left = reply.recovery_codes.length;
        const heading = h('h3', {}, 'Your new recovery codes');
        replace(codesBox, heading, h('p', {}, 'Each code signs you in once instead of a 6-digit code. Store them somewhere safe; they are shown only now.'),
          codesList(reply.recovery_codes, 'New recovery codes'), savedCodesForm('Hide the codes', renderCodes));
        focus(heading);
      } catch (error) {
        codesStatus.error(`That did not work: ${messageOf(error)}.`);
      }
    });
    replace(codesBox, codesStatus.el,
      h('p', { 'data-codes-left': me.recovery_codes_left }, h('strong', {}, `${me.recovery_codes_left} of 10`), ' recovery codes left.',
        me.recovery_codes_left <= 3 ? ' Generate new ones soon.' : ''),
      h('div', { class: 'actions' }, regenerate));
  }
  renderCodes();

  replace(root, status,
    section('Password', passwordForm),
    section('Two-factor authentication', totpBox),
    section('Recovery codes', codesBox));
}
