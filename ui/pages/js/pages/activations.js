// #/activations: a histogram of activation times. No route gives activation durations, so two
// sources are combined, each sample saying where it came from:
//  - events: a `scale-up` decision for a VM, then that VM's `activate` event ("activate done"):
//    the time from the switching loop's decision to the VM serving (GET /v1/events);
//  - operations: an `activate` op this tab started or saw (GET /v1/ops/:id), from created_ms to
//    updated_ms at its end, with its result's fetch_ms and start_ms.
// Updated live as activations end.
import { h, table } from '../dom.js';
import { enc } from '../api.js';
import { time } from '../format.js';
import { recentEvents } from '../live.js';
import * as ops from '../ops.js';

export async function render(ctx) {
  const events = await recentEvents(5000).catch(() => []);
  const chart = h('div', { testid: 'activation-histogram' });
  const stats = h('p', { testid: 'activation-stats', 'aria-live': 'polite' });
  const list = h('div');
  ctx.main.replaceChildren(h('section', h('h1', 'Activation times'),
    h('p.muted', 'From a scale-up decision to the VM serving (events), and activate operations from start to end (operations seen by this tab).'),
    stats, h('div.card', chart), h('h2', 'Samples'), list));

  const pending = new Map(); // vm -> scale-up event
  const fromEvents = [];
  const take = e => {
    if (e.kind === 'scale-up' && e.vm) pending.set(e.vm, e);
    else if (e.kind === 'activate' && e.vm && pending.has(e.vm)) {
      const s = pending.get(e.vm);
      pending.delete(e.vm);
      fromEvents.push({ vm: e.vm, ms: Math.round((e.time - s.time) * 1000), at: e.time, source: 'scale-up → activate events', id: `ev-${e.id}` });
    } else if (e.kind === 'op-failed' && e.vm) pending.delete(e.vm);
  };
  events.forEach(take);

  const samples = () => {
    const fromOps = ops.all().filter(o => o.kind === 'activate' && o.state === 'done').map(o => ({
      vm: o.vm, ms: ops.durationMs(o), at: o.updated_ms / 1000, id: o.id,
      source: `operation ${o.id}${o.result && o.result.fetch_ms !== undefined ? ` (fetch ${o.result.fetch_ms} ms, start ${o.result.start_ms} ms)` : ''}`,
    }));
    return [...fromEvents, ...fromOps].sort((a, b) => a.at - b.at);
  };

  const draw = () => {
    const s = samples();
    const ms = s.map(x => x.ms).sort((a, b) => a - b);
    if (!ms.length) {
      stats.textContent = 'No activation seen yet.';
      chart.replaceChildren(h('p.muted', { testid: 'no-activations' }, 'Activate a VM, or let a service scale up, and its time shows here.'));
      list.replaceChildren();
      return;
    }
    const q = p => ms[Math.min(ms.length - 1, Math.floor(p * ms.length))];
    stats.textContent = `${ms.length} activations: median ${q(0.5)} ms, 90th percentile ${q(0.9)} ms, fastest ${ms[0]} ms, slowest ${ms[ms.length - 1]} ms.`;
    chart.replaceChildren(...histogram(ms));
    list.replaceChildren(table([
      { label: 'Ended', cell: x => time(x.at) },
      { label: 'VM', cell: x => h('a', { href: `#/vm/${enc(x.vm)}` }, x.vm) },
      { label: 'Time', class: 'num', cell: x => `${x.ms} ms` },
      { label: 'From', cell: x => x.source },
    ], s.slice().reverse().slice(0, 200), { testid: 'activation-samples' }));
  };
  draw();
  ctx.live(m => { if (m.type === 'event') { take(m.data); if (m.data.kind === 'activate') draw(); } });
  ctx.onLeave(ops.subscribe(op => { if (op.kind === 'activate' && op.state !== 'running') draw(); }));
}

// Bars of equal width in ms over [0, slowest], at most 12; each bar says its count in text.
function histogram(ms) {
  const max = ms[ms.length - 1];
  const nice = [1, 2, 5, 10, 20, 25, 50, 100, 200, 250, 500, 1000, 2000, 5000, 10000, 20000, 50000, 100000];
  const width = nice.find(w => max / w < 12) || Math.ceil(max / 12);
  const n = Math.floor(max / width) + 1;
  const counts = new Array(n).fill(0);
  for (const v of ms) counts[Math.min(n - 1, Math.floor(v / width))]++;
  const top = Math.max(...counts);
  const bars = h('div.histogram', { role: 'img', 'aria-label': `histogram of ${ms.length} activation times in bins of ${width} ms` },
    counts.map((c, i) => h('div.bar', {
      style: `height:${(100 * c) / top}%`, title: `${i * width}–${(i + 1) * width} ms: ${c}`, testid: `hist-bin-${i}`,
    }, h('span', c ? String(c) : ''))));
  const axis = h('div.histogram-axis', { 'aria-hidden': 'true' }, counts.map((_, i) => h('span', `${i * width}`)));
  return [bars, axis, h('p.muted', `Bins of ${width} ms; each label is the bin's start.`)];
}
