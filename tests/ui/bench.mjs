// bench/ui's browser half (issue 13's figures), against the real cluster bench/ui starts, in
// Debian's headless Chromium through playwright-core. Prints medians; never passes or fails on
// time.
//
//   NODE_EXTRA_CA_CERTS=DIR/ca.pem node tests/ui/bench.mjs CONFIG.json
//
// CONFIG: {url, admin_token, buyer_token, provider_token, console_vm, machine, service, runs}.
//   1. live update: an API call that changes a VM, stamped in Node when it starts and when it
//      returns, against the DOM mutation that shows it in an open page (a MutationObserver in
//      the page), on one clock (the page's clock is measured against Node's, around each
//      sample): creating VMs seen in the operator's VM list, editing a registered machine seen
//      on its buyer's page. The stream can show a change before its caller has the answer;
//   2. the bytes each page of the router loads: a first load in a fresh browser context, then
//      the same page loaded again (what the cache spares);
//   3. console keystroke echo: a key pressed in the serial console (the page's keydown) until
//      xterm shows the guest's echo of it (the DOM row), through the Oracle's relay.
import { readFileSync } from 'node:fs';
import { launch, api, sleep, median } from './lib.mjs';

const cfg = JSON.parse(readFileSync(process.argv[2], 'utf8'));
const URL_ = cfg.url;
const RUNS = cfg.runs || 20;
const browser = await launch();
const fmt = x => (Number.isFinite(x) ? x.toFixed(1) : '—');
const kib = b => (b / 1024).toFixed(1);

// A context whose tab is signed in already (the session storage the login page would fill).
async function signedIn(token, who, viewport = { width: 1280, height: 800 }) {
  const context = await browser.newContext({ viewport, ignoreHTTPSErrors: true }); // the cluster's own CA
  if (token) {
    await context.addInitScript(([t, w]) => {
      if (!sessionStorage.getItem('vmx.token')) { sessionStorage.setItem('vmx.token', t); sessionStorage.setItem('vmx.who', JSON.stringify(w)); }
    }, [token, who]);
  }
  return context;
}
const whoOf = async token => (await api(URL_, token, 'GET', '/v1/whoami')).json;
const rendered = page => page.waitForFunction(() => {
  const m = document.getElementById('main');
  // the router has replaced the <noscript> of index.html, and its "Loading…"
  return m && m.firstElementChild && !m.firstElementChild.matches('p.loading, noscript');
}, null, { timeout: 20000 });

// The page's clock (performance.timeOrigin + now) minus Node's, from the middle of a round trip.
async function clockOffset(page) {
  let best = null;
  for (let i = 0; i < 5; i++) {
    const a = performance.timeOrigin + performance.now();
    const p = await page.evaluate(() => performance.timeOrigin + performance.now());
    const b = performance.timeOrigin + performance.now();
    if (!best || b - a < best.rtt) best = { rtt: b - a, off: p - (a + b) / 2 };
  }
  return best;
}
const nodeNow = () => performance.timeOrigin + performance.now();

// ---- 1. live updates
async function liveUpdates() {
  const adminWho = await whoOf(cfg.admin_token);
  const ctx = await signedIn(cfg.admin_token, adminWho);
  const page = await ctx.newPage();
  await page.goto(`${URL_}/ui/#/vms`);
  await rendered(page);
  await page.locator('[data-testid="live-status"][data-state="live"]').waitFor({ timeout: 20000 });
  // the time each selector first matched, on the page's clock
  await page.evaluate(() => {
    window.__seen = {};
    window.__watch = sel => { window.__seen[sel] = null; };
    new MutationObserver(() => {
      const t = performance.timeOrigin + performance.now();
      for (const sel of Object.keys(window.__seen)) if (window.__seen[sel] === null && document.querySelector(sel)) window.__seen[sel] = t;
    }).observe(document.getElementById('main'), { subtree: true, childList: true, attributes: true, characterData: true });
  });
  const sample = async (sel, call, pg = page) => {
    await pg.evaluate(s => window.__watch(s), sel);
    const off = await clockOffset(pg);
    const t0 = nodeNow();
    const r = await call();
    const t1 = nodeNow();
    if (r.status >= 300) throw new Error(`HTTP ${r.status}: ${JSON.stringify(r.json)}`);
    await pg.waitForFunction(s => window.__seen[s] !== null, sel, { timeout: 10000 });
    const seen = (await pg.evaluate(s => window.__seen[s], sel)) - off.off;
    return { fromDone: seen - t1, fromStart: seen - t0, call: t1 - t0 };
  };
  const creates = [];
  const stamp = Date.now().toString(36);
  for (let i = 0; i < RUNS; i++) {
    const name = `lu-${stamp}-${i}`;
    creates.push(await sample(`[data-testid="vm-state-${name}"]`,
      () => api(URL_, cfg.admin_token, 'POST', '/v1/vms', { name, image: 'tiny-http', memory_mib: 64 })));
  }
  await ctx.close();
  for (let i = 0; i < RUNS; i++) await api(URL_, cfg.admin_token, 'DELETE', `/v1/vms/lu-${stamp}-${i}`);

  // a buyer's registered machine edited (PATCH): its page shows the new bid
  const buyerWho = await whoOf(cfg.buyer_token);
  const bctx = await signedIn(cfg.buyer_token, buyerWho);
  const bpage = await bctx.newPage();
  await bpage.goto(`${URL_}/ui/#/vm/${cfg.machine}`);
  await rendered(bpage);
  await bpage.locator('[data-testid="live-status"][data-state="live"]').waitFor({ timeout: 20000 });
  await bpage.evaluate(() => {
    window.__seen = {};
    window.__watch = sel => { window.__seen[sel] = null; };
    window.__text = {};
    new MutationObserver(() => {
      const t = performance.timeOrigin + performance.now();
      for (const sel of Object.keys(window.__seen)) {
        const [css, text] = sel.split('|');
        const el = window.__seen[sel] === null && document.querySelector(css);
        if (el && el.textContent.includes(text)) window.__seen[sel] = t;
      }
    }).observe(document.getElementById('main'), { subtree: true, childList: true, attributes: true, characterData: true });
  });
  const edits = [];
  for (let i = 0; i < RUNS; i++) {
    const price = 10000 + i + 1; // 0.0100NN per hour
    const text = `0.${String(price).padStart(6, '0')}`;
    edits.push(await sample(`[data-testid="bid-running"]|${text}`, () => api(URL_, cfg.buyer_token, 'PATCH', `/v1/vms/${cfg.machine}`,
      { bid: { storage_price: 1000000, storage_period_s: 2592000, running_price: price, running_period_s: 3600 } }), bpage));
  }
  await bctx.close();
  return { creates, edits };
}

// ---- 2. bytes per page
const ROUTES = cfg.routes;
async function pageBytes() {
  const out = [];
  const tokens = { admin: cfg.admin_token, buyer: cfg.buyer_token, provider: cfg.provider_token, none: null };
  const whos = {};
  for (const [k, t] of Object.entries(tokens)) whos[k] = t ? await whoOf(t) : null;
  for (const [hash, as] of ROUTES) {
    const ctx = await signedIn(tokens[as], whos[as]);
    const page = await ctx.newPage();
    const cdp = await ctx.newCDPSession(page);
    await cdp.send('Network.enable');
    let reqs = new Map();
    cdp.on('Network.responseReceived', e => {
      const r = reqs.get(e.requestId) || {};
      Object.assign(r, { url: e.response.url, cached: !!(r.cached || e.response.fromDiskCache || e.response.fromMemoryCache || e.response.fromPrefetchCache), status: e.response.status });
      reqs.set(e.requestId, r);
    });
    cdp.on('Network.requestServedFromCache', e => { const r = reqs.get(e.requestId) || {}; r.cached = true; reqs.set(e.requestId, r); });
    cdp.on('Network.dataReceived', e => { const r = reqs.get(e.requestId) || {}; r.body = (r.body || 0) + e.dataLength; reqs.set(e.requestId, r); });
    cdp.on('Network.loadingFinished', e => { const r = reqs.get(e.requestId) || {}; r.wire = e.encodedDataLength; reqs.set(e.requestId, r); });
    const measure = async load => {
      reqs = new Map();
      await load();
      await rendered(page);
      await sleep(1500); // what a page fetches after its first render (plots, lazy modules)
      const list = [...reqs.values()].filter(r => r.url && !r.url.includes('/v1/events/stream'));
      const net = list.filter(r => !r.cached);
      const sum = (xs, k) => xs.reduce((a, r) => a + (r[k] || 0), 0);
      return {
        requests: list.length, network: net.length, fromCache: list.length - net.length,
        body: sum(list, 'body'), wire: sum(net, 'wire'),
        api: sum(list.filter(r => r.url.includes('/v1/')), 'body'),
      };
    };
    const first = await measure(() => page.goto(`${URL_}/ui/${hash}`));
    const again = await measure(() => page.reload());
    out.push({ hash, as, first, again });
    await ctx.close();
  }
  return out;
}

// ---- 3. console keystroke echo
async function consoleEcho() {
  const adminWho = await whoOf(cfg.admin_token);
  const ctx = await signedIn(cfg.admin_token, adminWho);
  const page = await ctx.newPage();
  await page.goto(`${URL_}/ui/#/vm/${cfg.console_vm}`);
  await rendered(page);
  await page.getByTestId('open-serial').click();
  await page.locator('[data-testid="serial-console-status"][data-state="open"]').waitFor({ timeout: 20000 });
  const rows = () => page.evaluate(() => [...document.querySelectorAll('[data-testid="serial-console"] .xterm-rows > div')].map(d => d.textContent.replace(/\u00a0/g, ' ')));
  const deadline = Date.now() + 90000;
  await page.locator('[data-testid="serial-console"] .xterm').click();
  while (!(await rows()).some(r => r.includes('tiny-http:/root#'))) {
    if (Date.now() > deadline) throw new Error('no shell prompt in the serial console');
    await page.keyboard.press('Enter');
    await sleep(1000);
  }
  await page.keyboard.type('echo ');
  await sleep(500);
  // keydown (capture, on the page's clock) -> the echoed text in xterm's DOM rows, and in its
  // buffer (onWriteParsed: the bytes arrived and were parsed, before the next frame draws them)
  await page.evaluate(() => {
    window.__typed = '';
    window.__keyAt = null;
    window.__dom = null;
    window.__buf = null;
    const has = text => [...document.querySelectorAll('[data-testid="serial-console"] .xterm-rows > div')]
      .some(d => d.textContent.replace(/\u00a0/g, ' ').trimEnd().endsWith(`# echo ${text}`));
    document.addEventListener('keydown', () => { window.__keyAt = performance.now(); }, true);
    new MutationObserver(() => { if (window.__dom === null && window.__keyAt !== null && has(window.__typed)) window.__dom = performance.now(); })
      .observe(document.querySelector('[data-testid="serial-console"] .xterm-rows'), { subtree: true, childList: true, characterData: true });
    window.__vmxTerm.onWriteParsed(() => {
      if (window.__buf !== null || window.__keyAt === null) return;
      const b = window.__vmxTerm.buffer.active;
      const line = b.getLine(b.baseY + b.cursorY);
      if (line && line.translateToString(true).endsWith(`# echo ${window.__typed}`)) window.__buf = performance.now();
    });
  });
  const dom = [], buf = [];
  const chars = 'abcdefghijklmnopqrstuvwxyz0123456789';
  for (let i = 0; i < RUNS; i++) {
    const ch = chars[i % chars.length];
    await page.evaluate(c => { window.__typed += c; window.__keyAt = null; window.__dom = null; window.__buf = null; }, ch);
    await page.keyboard.press(ch);
    await page.waitForFunction(() => window.__dom !== null, null, { timeout: 10000 });
    const r = await page.evaluate(() => ({ dom: window.__dom - window.__keyAt, buf: window.__buf === null ? NaN : window.__buf - window.__keyAt }));
    dom.push(r.dom);
    buf.push(r.buf);
    await sleep(100);
  }
  await page.keyboard.press('Enter');
  await ctx.close();
  return { dom, buf };
}

const t0 = Date.now();
const live = await liveUpdates();
console.log(`live updates (${RUNS} each): the API call's start -> the open page's DOM shows the change (medians, ms;`);
console.log('  "after return": from the moment the caller has its answer, negative when the page shows it first)');
for (const [label, xs] of [['VM created -> row in the operator\'s VM list', live.creates], ['machine edited -> bid on the buyer\'s VM page', live.edits]]) {
  console.log(`  ${label.padEnd(48)} ${fmt(median(xs.map(x => x.fromStart))).padStart(6)} ms  (the call ${fmt(median(xs.map(x => x.call)))} ms; after return ${fmt(median(xs.map(x => x.fromDone)))} ms)`);
}
console.log('');
const bytes = await pageBytes();
console.log('bytes per page (KiB; the event stream left out): first load in a fresh browser, then loaded again');
console.log(`  ${'page'.padEnd(18)} ${'as'.padEnd(8)} ${'reqs'.padStart(5)} ${'body'.padStart(8)} ${'of API'.padStart(7)} ${'wire'.padStart(8)} | ${'reqs'.padStart(5)} ${'cached'.padStart(6)} ${'wire'.padStart(8)}`);
for (const b of bytes) {
  console.log(`  ${b.hash.padEnd(18)} ${b.as.padEnd(8)} ${String(b.first.requests).padStart(5)} ${kib(b.first.body).padStart(8)} ${kib(b.first.api).padStart(7)} ${kib(b.first.wire).padStart(8)} | ${String(b.again.requests).padStart(5)} ${String(b.again.fromCache).padStart(6)} ${kib(b.again.wire).padStart(8)}`);
}
console.log(`  median first load ${kib(median(bytes.map(b => b.first.wire)))} KiB over the wire, again ${kib(median(bytes.map(b => b.again.wire)))} KiB`);
console.log('');
const echo = await consoleEcho();
console.log(`serial console keystroke echo (${RUNS} keys, through the Oracle's relay and the node's): keydown ->`);
console.log(`  xterm's DOM shows it   median ${fmt(median(echo.dom))} ms (min ${fmt(Math.min(...echo.dom))}, max ${fmt(Math.max(...echo.dom))})`);
console.log(`  xterm has parsed it    median ${fmt(median(echo.buf.filter(Number.isFinite)))} ms`);
console.log(`(${((Date.now() - t0) / 1000).toFixed(0)} s)`);
await browser.close();
