// @ts-check
// Entry point of every page: finds who is signed in (for pages in the navigation), wires the
// sign-out button and security notices, then hands the page to its module.

import { ApiError, get, messageOf, post, toLogin } from './api.js';
import { byId, h, replace } from './dom.js';

/** @typedef {import('./types.js').Me} Me */

/**
 * What every page module gets besides its root: who is signed in (`null` on the pages outside
 * the navigation: home, setup, login).
 * @typedef {object} PageContext
 * @property {Me | null} me
 */

/**
 * A page module (`pages/<id>.js`).
 * @typedef {object} PageModule
 * @property {(root: HTMLElement, ctx: PageContext) => void | Promise<void>} render
 */

const page = document.body.dataset.page;
const root = byId('page');
const nav = byId('nav');

async function start() {
  /** @type {PageContext} */
  const ctx = { me: null };
  if (!nav.hidden) {
    /** @type {Me} */
    let me;
    try {
      me = /** @type {Me} */ (await get('/api/v1/me'));
    } catch (error) {
      if (error instanceof ApiError && error.status === 401) {
        toLogin();
        return;
      }
      replace(root, h('p', { class: 'form-status error', role: 'alert' }, `Cannot load your account: ${messageOf(error)}`));
      return;
    }
    ctx.me = me;
    byId('who-name').textContent = me.username;
    byId('who').hidden = false;
    byId('logout').addEventListener('click', async () => {
      try {
        await post('/api/v1/auth/logout');
      } catch {
        // Already signed out, or the server is gone: the login page is right either way.
      }
      location.assign('/login');
    });
    showNotices(me);
    if (me.fixture_facts) {
      root.before(h('p', { class: 'form-status info simulation', role: 'status' },
        'Dry run: the disks shown come from a fixture file, not from this machine.'));
    }
  }
  const flash = sessionStorage.getItem('nos.flash');
  if (flash) {
    sessionStorage.removeItem('nos.flash');
    root.before(h('p', { class: 'form-status info', role: 'status' }, flash));
  }
  const module = /** @type {PageModule} */ (await import(`./pages/${page}.js`));
  await module.render(root, ctx);
  // Tests (and anyone curious) can tell when the page has finished loading its data.
  root.dataset.ready = 'true';
}

/** @param {Me} me */
function showNotices(me) {
  if (!me.notices?.length) return;
  const box = h('div', { class: 'notices', role: 'region', 'aria-label': 'Security notices' },
    h('h2', {}, 'Security notices'),
    h('ul', {}, me.notices.map((notice) => h('li', {}, `${new Date(notice.at * 1000).toLocaleString()}: ${notice.detail}`))),
    h('button', {
      type: 'button',
      class: 'secondary',
      onclick: async () => {
        await post('/api/v1/auth/notices/clear');
        box.remove();
      },
    }, 'I have read these'));
  root.before(box);
}

start().catch((error) => {
  replace(root, h('p', { class: 'form-status error', role: 'alert' }, `This page failed to load: ${messageOf(error)}`));
});
