// #/matrix: the RM × VM matrix (GET /v1/rms, GET /v1/vms): one row per RM (role, state, size,
// liveness) with the VMs on it, and a row for the Nest (VMs on no RM). Live: a VM's chip moves
// and changes in place on each `vm` message; RM events refetch the RMs (at most every 5 s).
import { h, table, coalesce } from '../dom.js';
import { get, enc } from '../api.js';
import { stateBadge, mib } from '../format.js';

const RM_EVENTS = new Set(['rm-up', 'rm-down', 'rm-subscribed', 'rm-enrolled', 'rm-assigned', 'isolation', 'isolation-ended']);

export async function render(ctx) {
  let [rms, vms] = await Promise.all([get('/v1/rms'), get('/v1/vms')]);
  const byName = new Map(vms.map(v => [v.name, v]));
  const wrap = h('div');
  const summary = h('p.muted', { testid: 'matrix-summary', 'aria-live': 'polite' });
  ctx.main.replaceChildren(h('section', h('div.pagehead', h('h1', 'RM × VM matrix'), summary), wrap));

  const chip = v => h('a.chip', { href: `#/vm/${enc(v.name)}`, testid: `matrix-vm-${v.name}`, 'data-rm': v.rm || '' },
    h('span', v.name), stateBadge(v.state));

  const draw = () => {
    const rows = [...rms.map(r => ({ rm: r })), { rm: null }];
    const on = rm => [...byName.values()].filter(v => (v.rm || null) === rm).sort((a, b) => a.name.localeCompare(b.name));
    wrap.replaceChildren(table([
      { label: 'RM', cell: r => r.rm ? h('strong', r.rm.name) : h('strong', 'Nest') },
      { label: 'Role', cell: r => r.rm ? r.rm.role + (r.rm.provider ? ` · ${r.rm.provider}` : '') : 'storage' },
      { label: 'State', cell: r => r.rm ? stateBadge(r.rm.state, `rm-state-${r.rm.name}`) : '—' },
      { label: 'Size', cell: r => r.rm && r.rm.capacity ? `${r.rm.capacity.vcpus} vCPU · ${mib(r.rm.capacity.memory_mib)} · ${r.rm.capacity.disk_gib} GiB` : '—' },
      { label: 'VMs', class: 'vms', cell: r => { const l = on(r.rm ? r.rm.name : null); return l.length ? h('div.chips', l.map(chip)) : h('span.muted', 'none'); } },
    ], rows, { testid: 'matrix', rowAttrs: r => ({ testid: `matrix-rm-${r.rm ? r.rm.name : 'nest'}` }) }));
    wrap.querySelector('table').classList.add('matrix');
    const up = rms.filter(r => r.state === 'up').length;
    summary.textContent = `${rms.length} RMs (${up} up), ${byName.size} VMs, ${[...byName.values()].filter(v => v.state === 'active').length} active`;
  };
  draw();
  const redraw = coalesce(draw);

  let rmTimer = null, lastRms = Date.now();
  const refetchRms = () => {
    if (rmTimer) return;
    const wait = Math.max(0, 5000 - (Date.now() - lastRms));
    rmTimer = setTimeout(async () => {
      rmTimer = null;
      lastRms = Date.now();
      try { rms = await get('/v1/rms'); draw(); } catch { /* next event */ }
    }, wait);
  };
  ctx.live(async m => {
    if (m.type === 'vm') {
      const v = m.data;
      if (v.deleted || v.state === 'deleted') byName.delete(v.name); else byName.set(v.name, v);
      redraw();
    } else if (m.type === 'event' && (RM_EVENTS.has(m.data.kind) || (m.data.rm && !m.data.vm))) {
      refetchRms();
    } else if (m.type === 'resync') {
      [rms, vms] = await Promise.all([get('/v1/rms'), get('/v1/vms')]);
      byName.clear();
      for (const v of vms) byName.set(v.name, v);
      draw();
    }
  });
  ctx.onLeave(() => clearTimeout(rmTimer));
}
