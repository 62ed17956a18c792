// @ts-check
// "/": sends the browser where it belongs: setup while no admin exists, else the dashboard or
// the login page.

import { ApiError, get } from '../api.js';
import { h, replace } from '../dom.js';

/** @param {HTMLElement} root */
export async function render(root) {
  replace(root, h('p', { role: 'status' }, 'Loading…'));
  try {
    await get('/api/v1/setup');
    location.replace('/setup');
    return;
  } catch (error) {
    if (!(error instanceof ApiError) || error.status !== 410) throw error;
  }
  try {
    await get('/api/v1/me');
    location.replace('/dashboard');
  } catch (error) {
    if (error instanceof ApiError && error.status === 401) location.replace('/login');
    else throw error;
  }
}
