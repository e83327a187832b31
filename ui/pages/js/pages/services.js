// #/services: every service (GET /v1/services) with its state, active VMs and the depth of its
// pre-booted pool; refetched on service events (at most every 5 s).
import { h, table } from '../dom.js';
import { get, enc } from '../api.js';
import { stateBadge } from '../format.js';

export async function render(ctx) {
  const wrap = h('div');
  ctx.main.replaceChildren(h('section', h('h1', 'Services'), wrap,
    h('p.muted', 'Create services with ', h('code', 'vmatrix service create'), '.')));
  const draw = list => wrap.replaceChildren(table([
    { label: 'Service', cell: s => h('a', { href: `#/service/${enc(s.name)}`, testid: `service-link-${s.name}` }, s.name) },
    { label: 'State', cell: s => stateBadge(s.state, `service-state-${s.name}`) },
    { label: 'Endpoint', cell: s => s.endpoint ? h('code', s.endpoint) : '—' },
    { label: 'Active', class: 'num', cell: s => `${s.active} (min ${s.min}, max ${s.max})` },
    { label: 'Pre-booted pool', cell: s => poolMeter(s) },
    { label: 'Image', cell: s => s.image },
    { label: 'Error', cell: s => s.error || '—' },
  ], list, { testid: 'service-list', rowAttrs: s => ({ testid: `service-row-${s.name}` }), empty: 'No services.' }));
  draw(await get('/v1/services'));
  let timer = null, last = 0;
  ctx.live(m => {
    if ((m.type === 'event' && m.data.service) || m.type === 'resync' || (m.type === 'vm' && m.data.service)) {
      if (timer) return;
      timer = setTimeout(async () => {
        timer = null;
        last = Date.now();
        try { draw(await get('/v1/services')); } catch { /* next */ }
      }, Math.max(0, 5000 - (Date.now() - last)));
    }
  });
  ctx.onLeave(() => clearTimeout(timer));
}

// The pre-booted pool's depth: the VMs ready to activate (stored in the Nest, pre-booted) of the
// pool's size; how many of the pool are pre-booted at all is said beside.
export function poolMeter(s) {
  const size = s.pool_size ?? s.pool;
  const ready = Array.isArray(s.vms) ? s.vms.filter(v => v.state === 'stored' && v.prebooted).length : null;
  const depth = ready ?? (s.prebooted || 0);
  return h('span.meter', { testid: `pool-depth-${s.name}`, 'data-depth': depth },
    h('progress', { max: size || 1, value: depth, 'aria-label': `pre-booted pool of ${s.name}` }),
    ready === null ? `${s.prebooted ?? 0} of ${size} pre-booted` : `${ready} ready in the Nest of ${size} (${s.prebooted ?? 0} pre-booted, ${s.active} active)`);
}
