// vMatrix's web interface: one page, a hash router (#/login, #/vms, #/vm/NAME, ...), one module
// per page under js/pages/. Every page is built from the Oracle's documented JSON API on this
// origin with the session's token (js/api.js); live updates come from one shared stream
// (js/live.js). A page module exports render(ctx) and may register cleanups with ctx.onLeave.
import { h, replace } from './js/dom.js';
import * as session from './js/session.js';
import * as live from './js/live.js';
import { post } from './js/api.js';
import * as ops from './js/ops.js';

// pattern, module, who may open it (null: anyone signed in; 'public': no login needed)
const ROUTES = [
  ['/login', 'login', 'public'],
  ['/signup', 'signup', 'public'],
  ['/account', 'account', null],
  ['/matrix', 'matrix', ['admin', 'operator']],
  ['/vms', 'vms', ['admin', 'operator']],
  ['/vm/:name/offers', 'vm-offers', ['admin', 'operator', 'buyer']],
  ['/vm/:name', 'vm', null],
  ['/services', 'services', ['admin', 'operator']],
  ['/service/:name', 'service', ['admin', 'operator']],
  ['/events', 'events', ['admin', 'operator']],
  ['/ops', 'ops', ['admin', 'operator', 'buyer']],
  ['/activations', 'activations', ['admin', 'operator']],
  ['/provider', 'provider', ['admin', 'operator', 'provider']],
  ['/market', 'market', null],
  ['/computers', 'computers', ['admin', 'operator', 'buyer']],
  ['/register', 'register', ['admin', 'operator', 'buyer']],
];

const NAV = {
  admin: [['#/matrix', 'Matrix'], ['#/vms', 'VMs'], ['#/services', 'Services'], ['#/events', 'Events'],
    ['#/ops', 'Operations'], ['#/activations', 'Activations'], ['#/provider', 'Offers'], ['#/market', 'Market'],
    ['#/account', 'Account']],
  operator: [['#/matrix', 'Matrix'], ['#/vms', 'VMs'], ['#/services', 'Services'], ['#/events', 'Events'],
    ['#/ops', 'Operations'], ['#/activations', 'Activations'], ['#/provider', 'Offers'], ['#/market', 'Market'],
    ['#/account', 'Account']],
  provider: [['#/provider', 'My machines'], ['#/market', 'Marketplace'], ['#/account', 'Account']],
  buyer: [['#/computers', 'My computers'], ['#/register', 'Register a machine'], ['#/ops', 'Operations'],
    ['#/market', 'Prices'], ['#/account', 'Account']],
};

const LIVE_TEXT = {
  off: 'Live: off', connecting: 'Live: connecting…', live: 'Live', reconnecting: 'Live: reconnecting…',
  polling: 'Live: every 5 s (no stream)', forbidden: 'Live: not for this role',
};

function parseHash() {
  const raw = location.hash.replace(/^#/, '') || '/';
  const [path, qs] = raw.split('?');
  const query = Object.fromEntries(new URLSearchParams(qs || ''));
  for (const [pattern, mod, roles] of ROUTES) {
    const names = [];
    const re = new RegExp('^' + pattern.replace(/:(\w+)/g, (_, n) => { names.push(n); return '([^/]+)'; }) + '/?$');
    const m = re.exec(path);
    if (m) {
      const params = {};
      names.forEach((n, i) => { params[n] = decodeURIComponent(m[i + 1]); });
      return { path, mod, roles, params, query };
    }
  }
  return { path, mod: null, query, params: {} };
}

let leave = [];
let seq = 0;

function header(w) {
  const nav = w ? NAV[w.role] || [] : [];
  const here = '#' + (location.hash.replace(/^#/, '').split('?')[0] || '/');
  const liveEl = h('span.live', { testid: 'live-status', 'aria-live': 'polite', 'data-state': live.currentStatus() }, LIVE_TEXT[live.currentStatus()]);
  const top = h('div.topbar',
    h('a.brand', { href: w ? session.homeOf(w.role) : '#/login' }, h('span.brand-mark', { 'aria-hidden': 'true' }, '▦'), 'vMatrix'),
    w ? h('nav', { 'aria-label': 'Main' },
      h('ul', nav.map(([href, label]) => h('li', h('a', {
        href, 'aria-current': here.startsWith(href) ? 'page' : null, testid: `nav-${href.slice(2)}`,
      }, label))))) : null,
    w ? h('div.who',
      liveEl,
      h('span.user', { testid: 'whoami' }, `${w.user} (${w.role})`),
      h('button.link', { type: 'button', testid: 'logout', on: { click: logout } }, 'Log out')) : null);
  return { top, liveEl };
}

async function logout() {
  try { await post('/v1/logout', {}, { quiet401: true }); } catch { /* an API token: nothing to revoke */ }
  session.signOut();
  location.hash = '#/login';
}

let liveEl = null;
let liveUnsub = null;

async function route() {
  const my = ++seq;
  for (const fn of leave) { try { fn(); } catch (e) { console.error(e); } }
  leave = [];
  const r = parseHash();
  const w = session.who();
  const main = document.getElementById('main');
  if (!r.mod) {
    location.replace(w ? session.homeOf(w.role) : '#/login');
    return;
  }
  if (r.roles !== 'public' && !w) {
    session.setReturn(location.hash);
    location.replace('#/login');
    return;
  }
  const hdr = header(r.roles === 'public' ? null : w);
  replace(document.getElementById('top'), hdr.top);
  liveEl = hdr.liveEl;
  if (w && r.roles !== 'public' && !liveUnsub) {
    liveUnsub = live.subscribe(m => {
      // every operation seen anywhere is followed to its end (progress, durations)
      if (m.type === 'vm' && m.data.op_id) ops.follow(m.data.op_id);
      if (m.type === 'status' && liveEl) {
        liveEl.textContent = LIVE_TEXT[m.data] || m.data;
        liveEl.dataset.state = m.data;
      }
    });
  }
  if (Array.isArray(r.roles) && !r.roles.includes(w.role)) {
    replace(main, h('section', h('h1', 'Not for your role'),
      h('p', `This page is not available to the ${w.role} role. `, h('a', { href: session.homeOf(w.role) }, 'Go to your home page.'))));
    return;
  }
  replace(main, h('p.loading', { 'aria-busy': 'true' }, 'Loading…'));
  let mod;
  try {
    mod = await import(`./js/pages/${r.mod}.js`);
  } catch (e) {
    replace(main, h('p.notice.notice-error', `This page could not be loaded: ${e.message}`));
    return;
  }
  if (my !== seq) return;
  const ctx = {
    main, params: r.params, query: r.query, who: w, role: w?.role,
    onLeave: fn => leave.push(fn),
    live: fn => leave.push(live.subscribe(fn)),
    current: () => my === seq,
  };
  try {
    await mod.render(ctx);
  } catch (e) {
    if (my !== seq) return;
    if (e.status === 401) return; // on its way to the login page
    console.error(e);
    replace(main, h('section', h('h1', 'Something went wrong'),
      h('p.notice.notice-error', { role: 'alert', testid: 'page-error' }, e.message)));
  }
  if (my === seq) {
    const h1 = main.querySelector('h1');
    document.title = h1 ? `${h1.textContent} · vMatrix` : 'vMatrix';
  }
}

session.onChange(w => { if (!w) { ops.stopAll(); if (liveUnsub) { liveUnsub(); liveUnsub = null; } } });
document.addEventListener('click', e => {
  const skip = e.target.closest('[data-skip]');
  if (skip) { e.preventDefault(); document.getElementById('main').focus(); }
});
window.addEventListener('hashchange', route);
route();
