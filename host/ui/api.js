// @ts-check
// The one way the UI talks to nosd: same-origin fetch of /api/v1 with the CSRF header on every
// unsafe request. Errors keep the API's stable code and public message, and Retry-After.
// Bodies come back as `unknown`: each caller names the shape it expects (types.js).

export class ApiError extends Error {
  /**
   * @param {number} status The HTTP status; 0 when the server could not be reached.
   * @param {string} code The API's stable error code, e.g. `auth.failed`.
   * @param {string} message The API's public message.
   * @param {number | null} retryAfter Seconds, from Retry-After.
   */
  constructor(status, code, message, retryAfter) {
    super(message);
    this.status = status;
    this.code = code;
    this.retryAfter = retryAfter;
  }
}

const CSRF_COOKIE = '__Host-nos_csrf';

/** The session's CSRF token (the one cookie scripts may read), or null before login. */
function csrfToken() {
  for (const pair of document.cookie.split(';')) {
    const [name, ...rest] = pair.trim().split('=');
    if (name === CSRF_COOKIE) return rest.join('=');
  }
  return null;
}

/**
 * @param {string} method
 * @param {string} path
 * @param {unknown} [body] Sent as JSON when given.
 * @returns {Promise<unknown>} The JSON body, or null for 204.
 */
export async function api(method, path, body) {
  /** @type {Record<string, string>} */
  const headers = { accept: 'application/json' };
  /** @type {RequestInit} */
  const init = { method, headers, credentials: 'same-origin', cache: 'no-store', redirect: 'error' };
  if (method !== 'GET' && method !== 'HEAD') {
    // Before login there is no session token; any non-empty value proves a same-origin script
    // (a cross-site form cannot set headers). After login the server compares it to the session's.
    headers['x-nos-csrf'] = csrfToken() ?? 'none';
  }
  if (body !== undefined) {
    headers['content-type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(path, init);
  } catch {
    throw new ApiError(0, 'network', 'the server cannot be reached; check that nosd is running', null);
  }
  if (response.status === 204) return null;
  let data = null;
  try {
    data = await response.json();
  } catch {
    data = null;
  }
  if (!response.ok) {
    const error = /** @type {Partial<import('./types.js').ErrorBody> | null} */ (data)?.error;
    const retryAfter = Number.parseInt(response.headers.get('retry-after') ?? '', 10);
    const apiError = new ApiError(response.status, error?.code ?? `http.${response.status}`, error?.message ?? `HTTP ${response.status}`,
      Number.isFinite(retryAfter) ? retryAfter : null);
    // A session that ended (idle, revoked elsewhere) sends a signed-in page back to the login.
    if (apiError.code === 'auth.required' && !['home', 'login', 'setup'].includes(document.body.dataset.page ?? '')) toLogin();
    throw apiError;
  }
  return data;
}

/** @param {string} path */
export const get = (path) => api('GET', path);
/** @param {string} path @param {unknown} [body] `{}` when left out. */
export const post = (path, body) => api('POST', path, body ?? {});
/** @param {string} path */
export const del = (path) => api('DELETE', path);

/** Sends the browser to the login page, coming back here afterwards. */
export function toLogin() {
  const next = location.pathname + location.search;
  location.assign(`/login?next=${encodeURIComponent(next)}`);
}

/**
 * Whether an error means "this server does not serve that API": not built in (404), or the
 * storage pipeline is not configured (503 pipeline.unavailable).
 * @param {unknown} error
 */
export function isMissingApi(error) {
  return error instanceof ApiError
    && ((error.status === 404 && error.code === 'not_found')
      || (error.status === 503 && error.code === 'pipeline.unavailable'));
}

/**
 * What to tell the admin about a failure: an ApiError's public message, or the error's own.
 * @param {unknown} error
 */
export function messageOf(error) {
  return error instanceof Error ? error.message : String(error);
}
