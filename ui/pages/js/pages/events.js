// #/events: the latest events (GET /v1/events, the last 300), newest first, then live from the
// stream: each new event is added at the top in place. A filter narrows by kind, VM, service,
// RM or reason.
import { h, table, tableRow } from '../dom.js';
import { enc } from '../api.js';
import { time } from '../format.js';
import { recentEvents } from '../live.js';

const columns = [
  { label: 'Id', class: 'num', cell: e => String(e.id) },
  { label: 'Time', cell: e => time(e.time) },
  { label: 'Kind', cell: e => h('span', { testid: 'event-kind' }, e.kind) },
  { label: 'VM', cell: e => e.vm ? h('a', { href: `#/vm/${enc(e.vm)}` }, e.vm) : '—' },
  { label: 'Service', cell: e => e.service ? h('a', { href: `#/service/${enc(e.service)}` }, e.service) : '—' },
  { label: 'RM', cell: e => e.rm || '—' },
  { label: 'Reason', cell: e => e.reason || '—' },
];

export async function render(ctx) {
  const events = await recentEvents(300);
  const filter = h('input', { type: 'search', id: 'ev-filter', placeholder: 'kind, VM, reason…', testid: 'event-filter' });
  const wrap = h('div');
  const count = h('span.muted', { 'aria-live': 'polite' });
  ctx.main.replaceChildren(h('section', h('div.pagehead', h('h1', 'Events'), count),
    h('div.toolbar', h('div.field', h('label', { for: 'ev-filter' }, 'Filter'), filter)), wrap));
  const match = e => {
    const q = filter.value.trim().toLowerCase();
    return !q || [e.kind, e.vm, e.service, e.rm, e.reason].some(x => x && String(x).toLowerCase().includes(q));
  };
  const rowAttrs = e => ({ testid: `event-row-${e.id}`, 'data-kind': e.kind });
  const draw = () => {
    wrap.replaceChildren(table(columns, events.filter(match).slice().reverse(), { testid: 'events-list', rowAttrs, empty: 'No events.' }));
    count.textContent = `${events.length} latest`;
  };
  filter.addEventListener('input', draw);
  draw();
  const seen = new Set(events.map(e => e.id));
  ctx.live(m => {
    if (m.type !== 'event' || seen.has(m.data.id)) return;
    seen.add(m.data.id);
    events.push(m.data);
    if (events.length > 1000) events.shift();
    if (!match(m.data)) return;
    const tbody = wrap.querySelector('tbody');
    const empty = tbody.querySelector('tr.empty');
    if (empty) empty.remove();
    const row = tableRow(columns, m.data, rowAttrs);
    row.classList.add('flash');
    tbody.prepend(row);
    count.textContent = `${events.length} latest`;
  });
}
