// #/ops: operations with their progress. The Oracle has no route that lists operations, so the
// page shows the ops of the VMs that run one now (GET /v1/vms: op_id, then GET /v1/ops/:id) and
// those this tab started or saw, each followed to its end with GET /v1/ops/:id?wait_ms=10000.
// `vm` messages bring the new ones.
import { h, table, tableRow } from '../dom.js';
import { get, enc } from '../api.js';
import { stateBadge, time } from '../format.js';
import * as ops from '../ops.js';

const columns = [
  { label: 'Op', cell: o => h('code', o.id) },
  { label: 'Kind', cell: o => o.kind },
  { label: 'VM', cell: o => o.vm ? h('a', { href: `#/vm/${enc(o.vm)}` }, o.vm) : '—' },
  { label: 'State', cell: o => stateBadge(o.state, `op-state-${o.id}`) },
  { label: 'Progress', cell: o => progress(o) },
  { label: 'Started', cell: o => time(o.created_ms, true) },
  { label: 'Took', class: 'num', cell: o => (o.state === 'running' ? '…' : `${ops.durationMs(o)} ms`) },
  { label: 'Error', cell: o => (o.error ? (typeof o.error === 'string' ? o.error : o.error.message || JSON.stringify(o.error)) : '—') },
];

function progress(o) {
  const p = o.progress || {};
  return h('span.meter', p.total ? h('progress', { max: p.total, value: p.done || 0, 'aria-label': `progress of ${o.id}` }) : null,
    ops.progressText(o));
}

export async function render(ctx) {
  const wrap = h('div');
  ctx.main.replaceChildren(h('section', h('h1', 'Operations'),
    h('p.muted', 'The operations running now, and those this browser tab started or watched.'), wrap));
  try {
    for (const v of await get('/v1/vms')) {
      if (v.op_id && !ops.known(v.op_id)) {
        try { ops.note(await get(`/v1/ops/${enc(v.op_id)}`)); } catch { /* ended meanwhile */ }
      } else if (v.op_id) ops.follow(v.op_id);
    }
  } catch { /* the list below still shows what is known */ }
  const rowAttrs = o => ({ testid: `op-row-${o.id}`, 'data-op': o.id });
  const draw = () => wrap.replaceChildren(table(columns, ops.all(), { testid: 'ops-list', rowAttrs, empty: 'No operation seen yet.' }));
  draw();
  ctx.onLeave(ops.subscribe(op => {
    const row = wrap.querySelector(`tr[data-op="${CSS.escape(op.id)}"]`);
    if (row) row.replaceWith(tableRow(columns, op, rowAttrs)); else draw();
  }));
  ctx.live(async m => {
    if (m.type === 'vm' && m.data.op_id && !ops.known(m.data.op_id)) {
      try { ops.note(await get(`/v1/ops/${enc(m.data.op_id)}`)); } catch { /* gone */ }
    }
  });
}
