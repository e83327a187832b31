// The web interface in a real browser (issue 13's tests): Debian's headless Chromium driven by
// playwright-core, against the real cluster that tests/system/test-ui-browser.sh starts (real
// QEMU guests). Usage:
//
//   NODE_EXTRA_CA_CERTS=DIR/ca.pem node tests/ui/browser.test.mjs CONFIG.json
//
// CONFIG: {url, admin_token, password, operator, provider, buyer, buyer2, offer_rm, artifacts}.
// Each check prints one line on stdout, "ok NAME" or "FAIL NAME: why" (the shell counts them);
// progress goes to stderr. Screenshots of every page at desktop and phone widths, and one of
// the page of each failed check, go to the artifacts directory.
import { readFileSync, mkdirSync } from 'node:fs';
import https from 'node:https';
import { launch, newPage, api, login, go, sleep } from './lib.mjs';

const cfg = JSON.parse(readFileSync(process.argv[2], 'utf8'));
const URL_ = cfg.url;
const ART = cfg.artifacts;
mkdirSync(ART, { recursive: true });
const T0 = Date.now();
const log = (...a) => process.stderr.write(`[browser ${((Date.now() - T0) / 1000).toFixed(1)}s] ${a.join(' ')}\n`);

let passed = 0, failed = 0;
// check(name, page, fn): fn's resolved value true (or undefined) passes, false or a throw fails;
// a failure leaves a screenshot of page as ART/fail-NAME.png.
async function check(name, page, fn) {
  const t = Date.now();
  try {
    const r = await fn();
    if (r === false) throw new Error('the condition is false');
    passed++;
    console.log(`ok ${name}`);
    log(`ok: ${name} (${Date.now() - t} ms)`);
    return true;
  } catch (e) {
    failed++;
    const why = String(e && e.message ? e.message : e).split('\n')[0];
    console.log(`FAIL ${name}: ${why}`);
    log(`FAIL: ${name}: ${e && e.stack ? e.stack : e}`);
    if (page) {
      try { await page.screenshot({ path: `${ART}/fail-${name.replace(/[^a-z0-9]+/gi, '_').slice(0, 60)}.png`, fullPage: true }); } catch { /* closed */ }
    }
    return false;
  }
}
// a step between checks whose failure a later check reports: logged, not fatal
async function quietly(fn) {
  try { await fn(); } catch (e) { log(`(a step failed: ${String(e.message).split('\n')[0]})`); }
}
const byId = id => `[data-testid="${id}"]`;
const visible = (page, id, timeout = 15000) => page.locator(byId(id)).first().waitFor({ state: 'visible', timeout });

const browser = await launch();
const pages = [];
// actions wait 10 s at most unless a check says longer: a broken page fails fast
const open = async () => { const p = await newPage(browser); p.setDefaultTimeout(10000); pages.push(p); return p; };
const admin = await open(), op = await open(), prov = await open(), b1 = await open(), b2 = await open();
const pw = cfg.password;

// ---- logins: the admin with an API token, the others with a user and a password
await check('admin logs in with the token form', admin, async () => {
  await login(admin, URL_, { token: cfg.admin_token });
  await admin.locator(byId('whoami')).filter({ hasText: 'admin (admin)' }).waitFor();
});
for (const [page, user, role] of [[op, cfg.operator, 'operator'], [prov, cfg.provider, 'provider'],
  [b1, cfg.buyer, 'buyer'], [b2, cfg.buyer2, 'buyer']]) {
  await check(`${user} logs in as ${role}`, page, async () => {
    await login(page, URL_, { user, password: pw });
    await page.locator(byId('whoami')).filter({ hasText: `${user} (${role})` }).waitFor();
  });
}
await check('a wrong password is refused on the page', null, async () => {
  const p = await open();
  await p.goto(`${URL_}/ui/#/login`);
  await p.getByTestId('login-user').fill(cfg.buyer2);
  await p.getByTestId('login-password').fill('not-the-password');
  await p.getByTestId('login-submit').click();
  await visible(p, 'login-error');
  await p.context().close();
});
const tokenOf = page => page.evaluate(() => sessionStorage.getItem('vmx.token'));
const tokB1 = await tokenOf(b1), tokB2 = await tokenOf(b2);

// ---- the operator creates web1 and activates it from the pages; its state changes live
const VM = 'web1';
await check('operator: create a VM from the VM list page', op, async () => {
  await go(op, '#/vms');
  await op.getByTestId('create-name').fill(VM);
  await op.getByTestId('create-image').selectOption('tiny-http');
  await op.getByTestId('create-memory').fill('128');
  await op.getByTestId('create-submit').click();
  await visible(op, 'create-done');
  // the list learns of it from the live stream, with no reload
  await op.locator(`${byId(`vm-state-${VM}`)}[data-state="stored"]`).waitFor({ timeout: 10000 });
});
let statesSeen = [];
await check('operator: activate it from its page; the state changes live (no reload)', op, async () => {
  await op.getByTestId(`vm-link-${VM}`).click();
  await visible(op, `vm-page-${VM}`);
  // a marker that a reload would lose, and every state the heading shows, as it shows it
  await op.evaluate(name => {
    window.__noReload = true;
    window.__states = [];
    const sel = `[data-testid="vm-state-${name}"]`;
    const note = () => { const el = document.querySelector(sel); const s = el && el.dataset.state; if (s && window.__states.at(-1) !== s) window.__states.push(s); };
    note();
    new MutationObserver(note).observe(document.getElementById('main'), { subtree: true, childList: true, attributes: true });
  }, VM);
  await op.getByTestId('action-activate').click();
  await visible(op, 'confirm-dialog');
  await op.getByTestId('action-rm').selectOption({ index: 0 }); // any: the Oracle chooses
  await op.getByTestId('confirm-ok').click();
  await op.locator(`${byId(`vm-state-${VM}`)}[data-state="active"]`).first().waitFor({ timeout: 45000 });
  statesSeen = await op.evaluate(() => window.__states);
  log(`states shown: ${statesSeen.join(' → ')}`);
  if (!(await op.evaluate(() => window.__noReload === true))) throw new Error('the page was reloaded');
  // stored, then (live, from the stream) activating and active; a transitional state shorter
  // than the stream's wake-up may be skipped, the first and last may not
  if (statesSeen[0] !== 'stored' || statesSeen.length < 2) throw new Error(`states shown: ${statesSeen.join(',')}`);
});
await check('operator: the VM page shows the RM and address, and the activate op done', op, async () => {
  await op.locator(byId('vm-rm')).filter({ hasText: /prod/ }).waitFor();
  await op.locator(byId('vm-address')).locator('code').waitFor();
  await op.locator(`${byId('vm-op')}[data-state="done"]`).waitFor({ timeout: 15000 });
});
// a ticket left unused until it has expired (checked at the end, 30 s on)
let early = null;
{
  const r = await api(URL_, await tokenOf(op), 'POST', `/v1/vms/${VM}/console-ticket`, { kind: 'serial' });
  early = { at: Date.now(), t: r.json, status: r.status };
}

// ---- the serial console: the guest's shell prompt in xterm's rows, a command echoed
const rowsText = page => page.evaluate(() => [...document.querySelectorAll('[data-testid="serial-console"] .xterm-rows > div')].map(d => d.textContent.replace(/\u00a0/g, ' ')));
await check('serial console: the guest\'s shell prompt in xterm', op, async () => {
  await op.getByTestId('open-serial').click();
  await op.locator(`${byId('serial-console-status')}[data-state="open"]`).waitFor({ timeout: 15000 });
  const deadline = Date.now() + 60000;
  for (;;) {
    const rows = await rowsText(op);
    if (rows.some(r => r.includes('tiny-http:/root#'))) return;
    if (Date.now() > deadline) throw new Error(`no prompt; rows: ${JSON.stringify(rows.filter(Boolean).slice(-5))}`);
    // the shell starts a second after boot and waits for a key
    await op.locator(`${byId('serial-console')} .xterm`).click();
    await op.keyboard.press('Enter');
    await sleep(1000);
  }
});
await check('serial console: a typed command is echoed', op, async () => {
  await op.keyboard.type('echo hi-from-browser\r');
  await op.waitForFunction(() => {
    const rows = [...document.querySelectorAll('[data-testid="serial-console"] .xterm-rows > div')].map(d => d.textContent.replace(/\u00a0/g, ' ').trim());
    return rows.some(r => r.endsWith('# echo hi-from-browser')) && rows.some(r => r === 'hi-from-browser');
  }, null, { timeout: 15000 });
});
await check('serial console: the terminal buffer holds the same text', op, async () => {
  const lines = await op.evaluate(() => { const b = window.__vmxTerm.buffer.active; const out = []; for (let i = 0; i < b.length; i++) out.push(b.getLine(i).translateToString(true)); return out; });
  return lines.includes('hi-from-browser');
});
await quietly(async () => {
  await op.screenshot({ path: `${ART}/vm-serial-console-desktop.png`, fullPage: true });
  await op.getByTestId('serial-console-close').click();
});

// ---- the graphical console: noVNC's canvas has pixels that are not all one colour
await check('graphical console: the noVNC canvas is not blank', op, async () => {
  await op.getByTestId('open-vnc').click();
  await op.locator(`${byId('vnc-console-status')}[data-state="open"]`).waitFor({ timeout: 15000 });
  const handle = await op.waitForFunction(() => {
    const c = document.querySelector('[data-testid="vnc-console"] canvas');
    if (!c || !c.width || !c.height) return null;
    const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
    let lit = 0;
    for (let i = 0; i < d.length; i += 4) if (d[i] > 32 || d[i + 1] > 32 || d[i + 2] > 32) lit++;
    return lit > 200 ? { w: c.width, h: c.height, lit } : null;
  }, null, { timeout: 20000, polling: 500 });
  log(`vnc canvas: ${JSON.stringify(await handle.jsonValue())}`);
});
await quietly(async () => {
  await op.screenshot({ path: `${ART}/vm-vnc-console-desktop.png`, fullPage: true });
  await op.getByTestId('vnc-console-close').click();
});

// ---- a buyer: register (a bid too low: no provider matches), raise the bid, store, start
const M = 'm1';
await check('buyer: register a machine from a suggested configuration', b1, async () => {
  await go(b1, '#/register');
  await b1.getByTestId('register-name').fill(M);
  await b1.getByTestId('config-small').check();
  await b1.getByTestId('bid-storage-price').fill('0.000001');
  await b1.getByTestId('bid-storage-period').fill('30d');
  await b1.getByTestId('bid-running-price').fill('0.000001');
  await b1.getByTestId('bid-running-period').fill('1h');
  await b1.getByTestId('register-submit').click();
  await b1.locator(byId('register-state')).filter({ hasText: 'registered' }).waitFor();
});
await check('buyer: a bid too low: "no provider matches"', b1, async () => {
  await b1.getByTestId('search-providers').click();
  await visible(b1, 'no-offers');
});
await check('buyer: raise the bid (edit while registered); the offer shows', b1, async () => {
  await b1.getByTestId('raise-bid').click();
  await visible(b1, 'register-form');
  await b1.getByTestId('bid-storage-price').fill('0.001');
  await b1.getByTestId('bid-storage-period').fill('2s');
  await b1.getByTestId('bid-running-price').fill('0.01');
  await b1.getByTestId('bid-running-period').fill('1s');
  await b1.getByTestId('register-submit').click();
  await visible(b1, 'register-done');
  await b1.getByTestId('search-providers').click();
  await visible(b1, `offer-row-${cfg.offer_rm}`);
});
await check('buyer: the offers come cheapest first', b1, async () => {
  const rows = await b1.locator('[data-testid^="offer-row-"]').evaluateAll(els => els.map(e => e.dataset.testid));
  const want = [`offer-row-${cfg.offer_rm}`, `offer-row-${cfg.dearer_rm}`];
  if (JSON.stringify(rows) !== JSON.stringify(want)) throw new Error(`rows ${rows.join(', ')}`);
});
await check('buyer: store it at the offer', b1, async () => {
  await b1.getByTestId(`offer-pick-${cfg.offer_rm}`).check();
  await b1.getByTestId('store-submit').click();
  await visible(b1, 'store-done');
});
let balanceAtStart = null;
await check('buyer: start it from its page; it runs', b1, async () => {
  await b1.getByTestId('stored-link').click();
  await b1.locator(`${byId(`vm-state-${M}`)}[data-state="stored"]`).first().waitFor();
  balanceAtStart = (await api(URL_, tokB1, 'GET', '/v1/account')).json.balance;
  await b1.getByTestId('action-boot').click();
  await b1.locator(`${byId(`vm-state-${M}`)}[data-state="loading"]`).first().waitFor({ timeout: 45000 });
});
await check('buyer: my computers lists it among the running', b1, async () => {
  await go(b1, '#/computers');
  await b1.locator(byId('group-running')).locator(byId(`vm-row-${M}`)).waitFor();
});
await check('buyer: charges appear on the account page; the balance goes down', b1, async () => {
  await go(b1, '#/account');
  const before = Number(await b1.locator(byId('balance')).getAttribute('data-micro'));
  // running is charged per second at this offer: the page updates itself on charge events
  await b1.waitForFunction(([b0, start]) => {
    const el = document.querySelector('[data-testid="balance"]');
    const rows = [...document.querySelectorAll('[data-testid="charge-row"]')].map(r => r.textContent);
    return el && Number(el.dataset.micro) < Math.min(b0, start) && rows.some(t => t.includes('running'));
  }, [before, balanceAtStart], { timeout: 20000 });
  log(`balance: ${balanceAtStart} at the start, ${before} on opening, now ${await b1.locator(byId('balance')).getAttribute('data-micro')}`);
});

// ---- the provider sees the buyer's machine, with no action and no console button
await check('provider: the buyer\'s machine on the provider page, no action buttons', prov, async () => {
  await go(prov, '#/provider');
  const row = prov.locator(byId(`offer-machine-${M}`));
  await row.waitFor();
  const buttons = await row.locator('button, a.button, [data-testid^="action-"]').count();
  if (buttons) throw new Error(`${buttons} buttons in the machine's row`);
});
await check('provider: the machine\'s page is read-only, with no console', prov, async () => {
  await go(prov, `#/vm/${M}`);
  await visible(prov, 'read-only');
  const n = await prov.locator(`${byId('open-serial')}, ${byId('open-vnc')}, [data-testid^="action-"]`).count();
  if (n) throw new Error(`${n} action or console buttons`);
});
await check('provider: a console ticket for the buyer\'s machine is refused (403)', null, async () => {
  const r = await api(URL_, await tokenOf(prov), 'POST', `/v1/vms/${M}/console-ticket`, { kind: 'serial' });
  if (r.status !== 403) throw new Error(`HTTP ${r.status}`);
});

// ---- another buyer: neither the page nor the console of b1's machine
await check('buyer 2: the other buyer\'s VM page says not found', b2, async () => {
  await go(b2, `#/vm/${M}`);
  await visible(b2, 'vm-not-found');
  return (await b2.locator(`${byId('open-serial')}, [data-testid^="action-"]`).count()) === 0;
});
await check('buyer 2: a console ticket for it is 404', null, async () => {
  for (const kind of ['serial', 'vnc']) {
    const r = await api(URL_, tokB2, 'POST', `/v1/vms/${M}/console-ticket`, { kind });
    if (r.status !== 404) throw new Error(`${kind}: HTTP ${r.status}`);
  }
});
// a WebSocket from b2's page: resolves 'open' or how it failed (a refused handshake: no open)
const wsTry = (page, path) => page.evaluate(p => new Promise(resolve => {
  const ws = new WebSocket(`wss://${location.host}${p}`);
  ws.binaryType = 'arraybuffer';
  const t = setTimeout(() => { resolve('timeout'); ws.close(); }, 8000);
  ws.onopen = () => { clearTimeout(t); resolve('open'); ws.close(1000); };
  ws.onclose = e => { clearTimeout(t); resolve(`closed ${e.code}`); };
}), path);
// a WebSocket handshake from Node: the HTTP status the Oracle answers (101 when it upgrades)
const handshake = path => new Promise((resolve, reject) => {
  const req = https.request(URL_ + path, { headers: { Connection: 'Upgrade', Upgrade: 'websocket', 'Sec-WebSocket-Version': '13', 'Sec-WebSocket-Key': 'dGhlIHNhbXBsZSBub25jZQ==' } });
  req.on('upgrade', (res, sock) => { sock.destroy(); resolve(101); });
  req.on('response', res => { res.resume(); resolve(res.statusCode); });
  req.on('error', reject);
  req.end();
});
await check('a WebSocket to a used ticket is refused', b2, async () => {
  const t = (await api(URL_, tokB1, 'POST', `/v1/vms/${M}/console-ticket`, { kind: 'serial' })).json;
  const first = await wsTry(b1, t.url);
  if (first !== 'open') throw new Error(`the owner's first use: ${first}`);
  const again = await wsTry(b2, t.url);
  if (again === 'open') throw new Error('a used ticket opened a console');
  // a handshake that reaches the Oracle with it answers 401
  const r = { status: await handshake(t.url) };
  if (r.status !== 401) throw new Error(`a used ticket: HTTP ${r.status}`);
});
await check('a WebSocket to a garbage ticket is refused', b2, async () => {
  for (const p of ['/v1/console/garbage', `/v1/console/${'A'.repeat(43)}`, '/v1/console/']) {
    const r = await wsTry(b2, p);
    if (r === 'open') throw new Error(`${p} opened`);
  }
  for (const p of ['/v1/console/garbage', `/v1/console/${'A'.repeat(43)}`]) {
    const st = await handshake(p);
    if (st !== 401) throw new Error(`${p}: HTTP ${st}`);
  }
});

// ---- a console open while its VM stops: the page says so and offers to reconnect
await check('buyer: the serial console of a machine that stops says so and offers to reconnect', b1, async () => {
  await go(b1, `#/vm/${M}`);
  await b1.getByTestId('open-serial').click();
  await b1.locator(`${byId('serial-console-status')}[data-state="open"]`).waitFor({ timeout: 15000 });
  await b1.getByTestId('action-stop').click();
  await b1.getByTestId('confirm-ok').click();
  await b1.locator(`${byId('serial-console-status')}[data-state="closed"]`).waitFor({ timeout: 30000 });
  await visible(b1, 'serial-console-reconnect');
  await b1.locator(`${byId(`vm-state-${M}`)}[data-state="stored"]`).first().waitFor({ timeout: 30000 });
  log(`console status: ${await b1.getByTestId('serial-console-status').textContent()}`);
});

// ---- a session that ends while a page is open: back to login, and back with nothing lost
await check('an expired session goes to login and returns with the form as it was', b1, async () => {
  await go(b1, '#/register');
  await b1.getByTestId('register-name').fill('draft-kept');
  await b1.getByTestId('bid-running-price').fill('0.123');
  const tok = await tokenOf(b1);
  const id = tok.split('_')[1];
  const r = await api(URL_, tok, 'DELETE', `/v1/tokens/${id}`);
  if (r.status !== 200) throw new Error(`revoking the session: HTTP ${r.status}`);
  await b1.getByTestId('register-submit').click(); // the next call meets the 401
  await visible(b1, 'login-expired');
  await b1.getByTestId('login-user').fill(cfg.buyer);
  await b1.getByTestId('login-password').fill(pw);
  await b1.getByTestId('login-submit').click();
  await b1.waitForFunction(() => location.hash === '#/register', null, { timeout: 10000 });
  await visible(b1, 'register-form');
  const name = await b1.getByTestId('register-name').inputValue();
  const price = await b1.getByTestId('bid-running-price').inputValue();
  if (name !== 'draft-kept' || price !== '0.123') throw new Error(`the form holds ${name}, ${price}`);
});

// ---- screenshots of every page at desktop and phone widths
const SIZES = { desktop: { width: 1280, height: 800 }, phone: { width: 390, height: 844 } };
const SHOTS = [
  [op, ['#/matrix', '#/vms', `#/vm/${VM}`, '#/services', '#/events', '#/ops', '#/activations', '#/provider', '#/market', '#/account']],
  [b1, ['#/computers', '#/register', `#/vm/${M}`, `#/vm/${M}/offers`, '#/ops', '#/market', '#/account']],
  [prov, ['#/provider', '#/market', `#/vm/${M}`, '#/account']],
  [admin, ['#/account']],
];
let shotProblems = null;
await check('screenshots of every page at desktop and phone widths, with no script error', null, async () => {
  let n = 0;
  const problems = [];
  for (const [label, viewport] of Object.entries(SIZES)) {
    for (const [page, hashes] of SHOTS) {
      await page.setViewportSize(viewport);
      const who = (await page.evaluate(() => JSON.parse(sessionStorage.getItem('vmx.who')))).role;
      for (const hash of hashes) {
        await go(page, hash);
        await sleep(250);
        // readable on a phone: nothing wider than the screen but what scrolls inside its own box;
        // a state is never told by colour alone: every data-state element has a text
        const bad = await page.evaluate(() => {
          const out = [];
          if (document.documentElement.scrollWidth > window.innerWidth + 1) out.push(`the page is ${document.documentElement.scrollWidth} px wide`);
          for (const el of document.querySelectorAll('#main [data-state]')) if (!el.textContent.trim()) out.push(`${el.dataset.testid || el.tagName} has no text`);
          return out;
        });
        if (bad.length) problems.push(`${hash} (${label}): ${bad.join('; ')}`);
        const name = `${who}-${hash.replace(/^#\//, '').replace(/[^a-z0-9-]+/gi, '_')}-${label}.png`;
        await page.screenshot({ path: `${ART}/${name}`, fullPage: true });
        n++;
      }
    }
    // the public pages, signed out
    const anon = await newPage(browser, viewport);
    for (const hash of ['#/login', '#/signup']) {
      await anon.goto(`${URL_}/ui/${hash}`);
      await anon.locator('form').first().waitFor();
      await anon.screenshot({ path: `${ART}/public-${hash.slice(2)}-${label}.png`, fullPage: true });
      n++;
    }
    await anon.context().close();
  }
  log(`${n} screenshots in ${ART}`);
  const errors = pages.flatMap(p => p.__errors);
  if (errors.length) throw new Error(`script errors: ${errors.slice(0, 3).join(' | ')}`);
  shotProblems = problems;
});
await check('every page fits a phone\'s width and tells states by text', null, async () => {
  if (shotProblems === null) throw new Error('no screenshots were taken');
  if (shotProblems.length) throw new Error(shotProblems.slice(0, 4).join(' | '));
});

// ---- last: the early ticket, unused, has expired after 30 s
await check('a WebSocket to an expired ticket is refused', b2, async () => {
  if (!early || early.status !== 201) throw new Error(`no ticket was made: HTTP ${early && early.status}`);
  const wait = early.at + 31000 - Date.now();
  if (wait > 0) { log(`waiting ${wait} ms for the ticket to expire`); await sleep(wait); }
  const r = await wsTry(op, early.t.url);
  if (r === 'open') throw new Error('an expired ticket opened a console');
  const st = await handshake(early.t.url);
  if (st !== 401) throw new Error(`an expired ticket: HTTP ${st}`);
});

await browser.close();
log(`${passed} passed, ${failed} failed in ${((Date.now() - T0) / 1000).toFixed(1)} s`);
process.exit(0);
