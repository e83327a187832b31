// Calls to the Oracle's JSON API on this origin, with the session's bearer token. Errors become
// ApiError {status, code, message} from the API's {"error": {code, message}}. A 401 means the
// session is over: the page's place is kept, the user goes to the login page, and comes back
// there afterwards (form input is already kept as drafts by session.bindDraft).
import * as session from './session.js';

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message || code || `HTTP ${status}`);
    this.status = status;
    this.code = code;
  }
}

let expiring = false;

export function sessionExpired() {
  if (expiring) return;
  expiring = true;
  session.setReturn(location.hash);
  session.signOut();
  location.hash = '#/login?expired=1';
  setTimeout(() => { expiring = false; }, 500);
}

// api('GET', '/v1/vms') -> parsed JSON. opts: {signal, auth (default true), quiet401}
export async function api(method, path, body, opts = {}) {
  const headers = { Accept: 'application/json' };
  const tok = session.token();
  if (opts.auth !== false && tok) headers.Authorization = `Bearer ${tok}`;
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  let res;
  try {
    res = await fetch(path, {
      method, headers, body: body === undefined ? undefined : JSON.stringify(body),
      signal: opts.signal, cache: 'no-store', credentials: 'omit',
    });
  } catch (e) {
    if (e.name === 'AbortError') throw e;
    throw new ApiError(0, 'network', `the Oracle cannot be reached (${e.message})`);
  }
  const text = await res.text();
  let json = null;
  if (text) {
    try { json = JSON.parse(text); } catch { json = null; }
  }
  if (!res.ok) {
    const err = json && json.error ? json.error : {};
    if (res.status === 401 && opts.auth !== false && !opts.quiet401) sessionExpired();
    throw new ApiError(res.status, err.code || 'http', err.message || `${method} ${path}: HTTP ${res.status}`);
  }
  return json;
}

export const get = (path, opts) => api('GET', path, undefined, opts);
export const post = (path, body, opts) => api('POST', path, body ?? {}, opts);
export const put = (path, body, opts) => api('PUT', path, body, opts);
export const patch = (path, body, opts) => api('PATCH', path, body, opts);
export const del = (path, opts) => api('DELETE', path, undefined, opts);

export const enc = encodeURIComponent;
