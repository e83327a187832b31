// Shared by the browser test (tests/ui/browser.test.mjs) and bench/ui (tests/ui/bench.mjs):
// playwright-core from ui/node_modules (where `npm ci --prefix ui` installs it), Debian's
// Chromium, the Oracle's API from Node, and logging in through the login page.
import { createRequire } from 'node:module';
import { readFileSync } from 'node:fs';

const require = createRequire(new URL('../../ui/package.json', import.meta.url));
export const { chromium } = require('playwright-core');

// Debian's chromium package; playwright-core never downloads a browser of its own.
export async function launch() {
  return chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    // root in a container: Chromium's sandbox needs user namespaces it may not have
    args: ['--no-sandbox', '--disable-dev-shm-usage'],
  });
}

// A fresh context (its own session storage, i.e. its own login). The cluster's Oracle is HTTPS
// with a certificate of the cluster's own CA (DIR/ca.pem), which Chromium does not know:
// ignoreHTTPSErrors lets the pages (and their WebSockets) reach it. Node's own calls below trust
// that CA properly instead (NODE_EXTRA_CA_CERTS=DIR/ca.pem, set by the caller).
export async function newPage(browser, viewport = { width: 1280, height: 800 }) {
  const context = await browser.newContext({ viewport, ignoreHTTPSErrors: true });
  const page = await context.newPage();
  page.__errors = [];
  page.on('pageerror', e => page.__errors.push(e.message));
  return page;
}

// The Oracle's API from Node: api(url, token, method, path, body) -> {status, json}
export async function api(url, token, method, path, body) {
  const headers = { Accept: 'application/json' };
  if (token) headers.Authorization = `Bearer ${token}`;
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  const res = await fetch(url + path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await res.text();
  let json = null;
  try { json = text ? JSON.parse(text) : null; } catch { json = null; }
  return { status: res.status, json };
}

export function readToken(file) { return readFileSync(file, 'utf8').split('\n')[0].trim(); }

// Log in through the login page: with a user and password, or {token} with the token form.
// Resolves once the app has left the login page.
export async function login(page, url, who) {
  await page.goto(`${url}/ui/#/login`);
  if (who.token) {
    await page.locator('[data-testid="login-token-form"]').locator('xpath=ancestor::details/summary').click();
    await page.getByTestId('login-token').fill(who.token);
    await page.getByTestId('login-token-submit').click();
  } else {
    await page.getByTestId('login-user').fill(who.user);
    await page.getByTestId('login-password').fill(who.password);
    await page.getByTestId('login-submit').click();
  }
  await page.waitForFunction(() => !location.hash.startsWith('#/login'), null, { timeout: 15000 });
}

// Go to a page of the app by its hash, without reloading, and wait until it has rendered: the
// main element holds something new, and not the router's "Loading…".
export async function go(page, hash, timeout = 15000) {
  const changed = await page.evaluate(h => {
    window.__vmxGoOld = document.getElementById('main').firstElementChild;
    if (location.hash === h) return false;
    location.hash = h;
    return true;
  }, hash);
  if (!changed) return;
  await page.waitForFunction(() => {
    const first = document.getElementById('main').firstElementChild;
    return first && first !== window.__vmxGoOld && !first.matches('p.loading');
  }, null, { timeout });
}

export const sleep = ms => new Promise(r => setTimeout(r, ms));

export function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  if (!s.length) return NaN;
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}
