// #/service/NAME: a service (GET /v1/services/NAME): state, endpoint, the depth of its
// pre-booted pool, its VMs; the live figures of GET /v1/services/NAME/top; plots of
// service:NAME:{load,request_rate,response_ms,active} with the switching decisions (scale-up,
// scale-down, reclaim, server-loss, recovered: the events of this service) drawn on them, and
// the decisions listed with their reasons. Plots are refetched every 10 s and on a decision,
// never faster than every 5 s.
import { h, table, field } from '../dom.js';
import { get, enc } from '../api.js';
import { stateBadge, clock, time } from '../format.js';
import { plot, MARKS, RANGES } from '../plots.js';
import { recentEvents } from '../live.js';
import { poolMeter } from './services.js';

const DECISIONS = new Set(Object.keys(MARKS));

export async function render(ctx) {
  const name = ctx.params.name;
  let svc = await get(`/v1/services/${enc(name)}`);
  const head = h('div.pagehead');
  const facts = h('div.card');
  const vmsBox = h('div');
  const topBox = h('div.card', { testid: 'service-top' });
  const range = field('Period', 'range', { options: RANGES, testid: 'plot-range' });
  const grid = h('div.plots');
  const legend = h('p.legend-markers', { testid: 'decision-legend' },
    Object.entries(MARKS).map(([k, m]) => h('span', `${m.glyph} ${m.label}`)));
  const decisionsBox = h('div');
  ctx.main.replaceChildren(h('section', { testid: `service-page-${name}` }, head,
    h('div.split', facts, topBox),
    h('div.pagehead', h('h2', 'Load and switching decisions'), range), legend, grid,
    h('h2', 'Switching decisions'), decisionsBox,
    h('h2', 'VMs of the pool'), vmsBox));

  let decisions = (await recentEvents(2000).catch(() => [])).filter(e => e.service === name && DECISIONS.has(e.kind));

  const draw = () => {
    head.replaceChildren(h('h1', `Service ${svc.name}`), stateBadge(svc.state, `service-state-${svc.name}`));
    facts.replaceChildren(h('h2', 'Details'), h('dl.facts',
      h('dt', 'Endpoint'), h('dd', svc.endpoint ? h('code', svc.endpoint) : '—'),
      h('dt', 'Active VMs'), h('dd', { testid: 'service-active' }, `${svc.active} (min ${svc.min}, max ${svc.max})`),
      h('dt', 'Pre-booted pool'), h('dd', poolMeter(svc)),
      h('dt', 'Image'), h('dd', svc.image),
      h('dt', 'Window, high'), h('dd', `${svc.window_s} s, ${svc.high}%`),
      h('dt', 'Priority'), h('dd', String(svc.priority)),
      h('dt', 'Health check'), h('dd', svc.health ? `${svc.health.kind}${svc.health.path ? ` ${svc.health.path}` : ''}` : '—'),
      svc.error ? [h('dt', 'Error'), h('dd', svc.error)] : null));
    vmsBox.replaceChildren(table([
      { label: 'VM', cell: v => h('a', { href: `#/vm/${enc(v.name)}` }, v.name) },
      { label: 'State', cell: v => stateBadge(v.state, `vm-state-${v.name}`) },
      { label: 'RM', cell: v => v.rm || '—' },
      { label: 'Address', cell: v => v.address ? h('code', v.address) : '—' },
      { label: 'Pre-booted', cell: v => (v.prebooted ? 'yes' : 'no') },
    ], svc.vms || [], { testid: 'service-vms', rowAttrs: v => ({ testid: `vm-row-${v.name}`, 'data-vm': v.name }) }));
    decisionsBox.replaceChildren(table([
      { label: 'Time', cell: e => time(e.time) },
      { label: 'Decision', cell: e => `${(MARKS[e.kind] || {}).glyph || ''} ${e.kind}` },
      { label: 'VM', cell: e => e.vm || '—' },
      { label: 'Reason', cell: e => e.reason || '—' },
    ], decisions.slice(-50).reverse(), { testid: 'decisions', rowAttrs: e => ({ testid: `decision-${e.id}` }), empty: 'No switching decision yet.' }));
  };

  const drawTop = async () => {
    try {
      const t = await get(`/v1/services/${enc(name)}/top`);
      const s = t.service || {};
      const f = v => (v === null || v === undefined ? '—' : String(Math.round(v * 100) / 100));
      topBox.replaceChildren(h('h2', 'Now'), h('dl.facts',
        h('dt', 'Load'), h('dd', { testid: 'top-load' }, f(s.load)),
        h('dt', 'Requests/s'), h('dd', f(s.request_rate)),
        h('dt', 'Response'), h('dd', `${f(s.response_ms)} ms`),
        h('dt', 'Queue'), h('dd', `${f(s.queue)} (${f(s.queue_ms)} ms)`),
        h('dt', 'Sessions'), h('dd', f(s.sessions)),
        h('dt', 'Requests, errors'), h('dd', `${f(s.requests)}, ${f(s.errors)}`)));
    } catch (e) {
      topBox.replaceChildren(h('h2', 'Now'), h('p.muted', e.message));
    }
  };

  draw();
  const marks = () => decisions.map(e => ({ t: e.time, kind: e.kind }));
  const plots = [
    plot(grid, { title: 'Load (in VMs of full capacity)', testid: 'plot-load', series: [{ key: `service:${name}:load`, label: 'load' }], marks }),
    plot(grid, { title: 'Request rate (per s)', testid: 'plot-request-rate', series: [{ key: `service:${name}:request_rate`, label: 'requests/s' }], marks }),
    plot(grid, { title: 'Latency (ms)', testid: 'plot-latency', series: [{ key: `service:${name}:response_ms`, label: 'response ms' }], marks }),
    plot(grid, { title: 'Active VMs', testid: 'plot-active', series: [{ key: `service:${name}:active`, label: 'active' }], marks }),
  ];
  const sel = range.querySelector('select');
  let last = 0, pending = null;
  const refresh = () => {
    // never faster than every 5 s, whatever asks
    if (pending) return;
    pending = setTimeout(async () => {
      pending = null;
      last = Date.now();
      await Promise.all([...plots.map(p => p.refresh(sel.value)), drawTop()]).catch(() => {});
    }, Math.max(0, 5000 - (Date.now() - last)));
  };
  sel.addEventListener('change', () => { last = 0; refresh(); });
  last = Date.now();
  await Promise.all([...plots.map(p => p.refresh(sel.value)), drawTop()]);
  const timer = setInterval(() => { if (!document.hidden) refresh(); }, 10000);
  ctx.onLeave(() => { clearInterval(timer); clearTimeout(pending); plots.forEach(p => p.destroy()); });

  let svcTimer = null;
  ctx.live(m => {
    if (m.type === 'event' && m.data.service === name) {
      if (DECISIONS.has(m.data.kind)) {
        decisions.push(m.data);
        draw();
        plots.forEach(p => p.redraw());
        refresh();
      }
      clearTimeout(svcTimer);
      svcTimer = setTimeout(async () => { try { svc = await get(`/v1/services/${enc(name)}`); draw(); } catch { /* deleted */ } }, 1000);
    } else if (m.type === 'vm' && m.data.service === name) {
      const i = (svc.vms || []).findIndex(v => v.name === m.data.name);
      const v = { name: m.data.name, state: m.data.state, rm: m.data.rm, address: m.data.address, prebooted: m.data.prebooted };
      if (i >= 0) svc.vms[i] = v; else (svc.vms = svc.vms || []).push(v);
      draw();
    }
  });
  ctx.onLeave(() => clearTimeout(svcTimer));
  void clock;
}
