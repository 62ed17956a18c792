// Entry point of every page: finds who is signed in (for pages in the navigation), wires the
// sign-out button and security notices, then hands the page to its module.

import { ApiError, get, post, toLogin } from './api.js';
import { h, replace } from './dom.js';

const page = document.body.dataset.page;
const root = document.getElementById('page');
const nav = document.getElementById('nav');

async function start() {
  const ctx = { me: null };
  if (!nav.hidden) {
    try {
      ctx.me = await get('/api/v1/me');
    } catch (error) {
      if (error instanceof ApiError && error.status === 401) {
        toLogin();
        return;
      }
      replace(root, h('p', { class: 'form-status error', role: 'alert' }, `Cannot load your account: ${error.message}`));
      return;
    }
    document.getElementById('who-name').textContent = ctx.me.username;
    document.getElementById('who').hidden = false;
    document.getElementById('logout').addEventListener('click', async () => {
      try {
        await post('/api/v1/auth/logout');
      } catch {
        // Already signed out, or the server is gone: the login page is right either way.
      }
      location.assign('/login');
    });
    showNotices(ctx.me);
  }
  const flash = sessionStorage.getItem('nos.flash');
  if (flash) {
    sessionStorage.removeItem('nos.flash');
    root.before(h('p', { class: 'form-status info', role: 'status' }, flash));
  }
  const module = await import(`./pages/${page}.js`);
  await module.render(root, ctx);
  // Tests (and anyone curious) can tell when the page has finished loading its data.
  root.dataset.ready = 'true';
}

function showNotices(me) {
  if (!me.notices?.length) return;
  const box = h('div', { class: 'notices', role: 'region', 'aria-label': 'Security notices' },
    h('h2', {}, 'Security notices'),
    h('ul', {}, me.notices.map((notice) => h('li', {}, `${new Date(notice.at * 1000).toLocaleString()}: ${notice.detail}`))),
    h('button', {
      type: 'button',
      class: 'secondary',
      onclick: async (event) => {
        await post('/api/v1/auth/notices/clear');
        event.target.closest('.notices').remove();
      },
    }, 'I have read these'));
  root.before(box);
}

start().catch((error) => {
  replace(root, h('p', { class: 'form-status error', role: 'alert' }, `This page failed to load: ${error.message}`));
});
