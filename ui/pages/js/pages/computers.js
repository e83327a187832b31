// #/computers: a buyer's "my computers" (the Virtuoso report's Figures 9, 12, 17, 19, 21): the
// machines of GET /v1/vms grouped by state, each with the actions its `actions` lists in that
// state (edit and store for a registered one, boot/activate/migrate/delete for a stored one, ...).
// Live: a machine moves between the groups in place.
import { h, table, coalesce } from '../dom.js';
import { get, enc } from '../api.js';
import { stateBadge, rate, mib } from '../format.js';
import { actionButtons } from '../actions.js';

const GROUPS = [
  ['registered', 'Registered (on no provider yet)', s => s === 'registered'],
  ['running', 'Running', s => s === 'loading' || s === 'active'],
  ['suspended', 'Suspended', s => s === 'suspended'],
  ['stored', 'Stored', s => s === 'stored'],
  ['failed', 'Failed', s => s === 'failed'],
  ['busy', 'Changing state (no action until it ends)', () => true],
];

export async function render(ctx) {
  const byName = new Map((await get('/v1/vms')).map(v => [v.name, v]));
  const body = h('div');
  ctx.main.replaceChildren(h('section', h('div.pagehead', h('h1', 'My computers'), h('a.button.primary', { href: '#/register' }, 'Register a machine')), body));

  const prices = v => {
    if (!v.market) return '—';
    if (v.market.offer) {
      const t = v.market.terms;
      return [rate(t.storage_price, t.storage_period_s), ' stored · ', rate(t.running_price, t.running_period_s), ' running', h('br'), h('small.muted', `at ${v.market.offer} (${v.market.provider})`)];
    }
    const b = v.market.bid;
    return [h('small.muted', 'asked: '), rate(b.storage_price, b.storage_period_s), ' stored · ', rate(b.running_price, b.running_period_s), ' running'];
  };
  const draw = () => {
    const all = [...byName.values()].sort((a, b) => a.name.localeCompare(b.name));
    const parts = [];
    const placed = new Set();
    for (const [id, label, test] of GROUPS) {
      const list = all.filter(v => !placed.has(v.name) && test(v.state));
      list.forEach(v => placed.add(v.name));
      if (!list.length) continue;
      parts.push(h('section', { testid: `group-${id}` }, h('h2.group-head', label, h('span.muted', `(${list.length})`)),
        table([
          { label: 'Name', cell: v => h('a', { href: `#/vm/${enc(v.name)}` }, v.name) },
          { label: 'State', cell: v => stateBadge(v.state, `vm-state-${v.name}`) },
          { label: 'Image', cell: v => v.image },
          { label: 'Size', cell: v => `${v.vcpus} vCPU · ${mib(v.memory_mib)}${v.market ? ` · ${v.market.disk_gib} GiB` : ''}` },
          { label: 'Prices', cell: prices },
          { label: 'Address', cell: v => v.address ? h('code', v.address) : '—' },
          { label: 'Actions', cell: v => actionButtons(v, { role: ctx.role }) },
        ], list, { rowAttrs: v => ({ testid: `vm-row-${v.name}`, 'data-vm': v.name }) })));
    }
    if (!parts.length) parts.push(h('p', { testid: 'no-computers' }, 'You have no machine yet. ', h('a', { href: '#/register' }, 'Register one'), '.'));
    body.replaceChildren(...parts);
  };
  draw();
  const redraw = coalesce(draw);
  ctx.live(async m => {
    if (m.type === 'vm') {
      if (m.data.deleted || m.data.state === 'deleted') byName.delete(m.data.name);
      else if (ctx.role !== 'buyer' || m.data.owner === ctx.who.user || byName.has(m.data.name)) byName.set(m.data.name, m.data);
      redraw();
    } else if (m.type === 'resync') {
      byName.clear();
      for (const v of await get('/v1/vms')) byName.set(v.name, v);
      draw();
    }
  });
  // a buyer has no event stream (no events permission): its own actions' operations say when to look again
  const { subscribe } = await import('../ops.js');
  ctx.onLeave(subscribe(async op => {
    if (!op.vm) return;
    try { byName.set(op.vm, await get(`/v1/vms/${enc(op.vm)}`)); } catch (e) { if (e.status === 404) byName.delete(op.vm); }
    draw();
  }));
}
