// #/vm/NAME: a VM's state, version, RM, address and the rest of GET /v1/vms/NAME; one button per
// name in its `actions`; its operation's progress (GET /v1/ops/:id); plots of vm:NAME:* from
// GET /v1/metrics (roles that read metrics); a buyer's machine's bid, terms and history
// (GET /v1/vms/NAME/history); the serial and graphical consoles. Updates in place from `vm`
// messages; a provider sees the buyer's machine as read-only metadata (no actions, no console).
import { h, field, table } from '../dom.js';
import { get, enc } from '../api.js';
import { stateBadge, mib, rate, time, bytes } from '../format.js';
import { actionButtons } from '../actions.js';
import * as ops from '../ops.js';
import { can } from '../session.js';
import { plot, RANGES } from '../plots.js';
import { openConsole } from '../console.js';

const RUNNING = new Set(['loading', 'active']);

export async function render(ctx) {
  const name = ctx.params.name;
  let vm;
  try {
    vm = await get(`/v1/vms/${enc(name)}`);
  } catch (e) {
    if (e.status === 404) {
      ctx.main.replaceChildren(h('section', h('h1', name),
        h('p.notice.notice-warn', { testid: 'vm-not-found' }, `There is no VM named “${name}” that you can see.`)));
      return;
    }
    throw e;
  }
  const readOnly = !can(ctx.role, 'act') || (ctx.role === 'buyer' && vm.owner && vm.owner !== ctx.who.user);
  const head = h('div.pagehead');
  const facts = h('div.card');
  const actions = h('div');
  const opBox = h('div', { 'aria-live': 'polite' });
  const market = h('div');
  const consoleBox = h('div', { testid: 'console-area' });
  const consoleButtons = h('div');
  const plotsBox = h('div');
  ctx.main.replaceChildren(h('section', { testid: `vm-page-${name}` }, head,
    h('div.split', h('div', facts, market), h('div', h('div.card', h('h2', 'Actions'), actions, opBox), consoleButtons)),
    consoleBox, plotsBox));

  let consoleSession = null;
  const drawConsoleButtons = () => {
    if (readOnly || !can(ctx.role, 'console')) { consoleButtons.replaceChildren(); return; }
    const running = !!vm.rm && RUNNING.has(vm.state);
    const open = kind => { if (consoleSession) consoleSession.close(); consoleSession = openConsole(consoleBox, vm.name, kind); };
    consoleButtons.replaceChildren(h('div.card', h('h2', 'Consoles'),
      running ? null : h('p.muted', 'A console opens while the VM runs (loading or active).'),
      h('div.buttons',
        h('button', { type: 'button', testid: 'open-serial', disabled: !running, on: { click: () => open('serial') } }, 'Serial console'),
        h('button', { type: 'button', testid: 'open-vnc', disabled: !running, on: { click: () => open('vnc') } }, 'Graphical console'))));
  };

  const draw = () => {
    head.replaceChildren(h('h1', vm.name), stateBadge(vm.state, `vm-state-${vm.name}`));
    facts.replaceChildren(h('h2', 'Details'), h('dl.facts', { testid: 'vm-facts' },
      fact('State', stateBadge(vm.state), 'vm-state'),
      fact('Version', String(vm.version), 'vm-version'),
      fact('RM', vm.rm || '— (in the Nest)', 'vm-rm'),
      fact('Address', vm.address ? h('code', vm.address) : '—', 'vm-address'),
      fact('Pre-booted', vm.prebooted ? 'yes' : 'no', 'vm-prebooted'),
      fact('Image', vm.image, 'vm-image'),
      fact('Size', `${vm.vcpus} vCPU · ${mib(vm.memory_mib)}${vm.market ? ` · ${vm.market.disk_gib} GiB disk` : ''}`, 'vm-size'),
      fact('CPU limit', vm.cpu_limit ? `${vm.cpu_limit}% of a CPU` : `${100 * vm.vcpus}% (100 per vCPU)`),
      fact('QEMU pid', vm.pid ? String(vm.pid) : '—', 'vm-pid'),
      fact('MAC', vm.mac || '—'),
      fact('Service', vm.service || '—'),
      fact('Owner', vm.owner || '—', 'vm-owner'),
      fact('Nest version', String(vm.nest_version ?? '—')),
      fact('Created', time(vm.created_ms, true))));
    if (readOnly) {
      actions.replaceChildren(h('p.muted', { testid: 'read-only' }, ctx.role === 'provider'
        ? 'A buyer\'s machine stored at your offer: you see it, its owner acts on it.'
        : 'Your role may not act on this VM.'));
    } else {
      actions.replaceChildren(actionButtons(vm, { role: ctx.role, onDone: op => op && showOp(op) }));
    }
    market.replaceChildren(...(vm.market ? marketCard(vm) : []));
    drawConsoleButtons();
  };

  const showOp = op => {
    if (!op) { opBox.replaceChildren(); return; }
    const p = op.progress || {};
    opBox.replaceChildren(h('div.notice', { testid: 'vm-op', 'data-op': op.id, 'data-state': op.state },
      h('strong', `${op.kind} `), stateBadge(op.state), ` ${op.id}: ${ops.progressText(op)}`,
      p.total ? h('div.meter', h('progress', { max: p.total, value: p.done || 0, 'aria-label': `${op.kind} progress` })) : null,
      op.error ? h('p.notice.notice-error', typeof op.error === 'string' ? op.error : op.error.message || JSON.stringify(op.error)) : null,
      op.state === 'done' && op.kind === 'activate' ? h('p.muted', `took ${ops.durationMs(op)} ms`) : null));
  };

  draw();
  if (vm.op_id) { ops.follow(vm.op_id); const k = ops.known(vm.op_id); if (k) showOp(k); }
  ctx.onLeave(ops.subscribe(async op => {
    if (op.vm !== vm.name) return;
    showOp(op);
    // without an event stream (a buyer's role), the op's progress says when the VM changed
    try { vm = await get(`/v1/vms/${enc(name)}`); draw(); } catch (e) { if (e.status === 404) actions.replaceChildren(h('p', { testid: 'vm-deleted' }, 'This VM was deleted.')); }
  }));
  ctx.onLeave(() => { if (consoleSession) consoleSession.close(); });

  // plots: the VM's figures, for the roles that read metrics
  let plots = [];
  if (can(ctx.role, 'metrics')) {
    const range = field('Period', 'range', { options: RANGES, testid: 'plot-range' });
    const grid = h('div.plots');
    plotsBox.replaceChildren(h('div.pagehead', h('h2', 'Figures'), range), grid);
    const pct = v => (v === null || v === undefined ? '—' : `${Math.round(v * 1000) / 10}%`);
    const bps = v => (v === null || v === undefined ? '—' : `${bytes(v)}/s`);
    plots = [
      plot(grid, { title: 'CPU', testid: 'plot-cpu', series: [{ key: `vm:${name}:cpu`, label: 'CPU' }], fmt: pct }),
      plot(grid, { title: 'Memory (RSS)', testid: 'plot-rss', series: [{ key: `vm:${name}:rss_bytes`, label: 'RSS' }], fmt: v => (v === null || v === undefined ? '—' : bytes(v)) }),
      plot(grid, { title: 'Network', testid: 'plot-net', series: [{ key: `vm:${name}:net_rx_bps`, label: 'received' }, { key: `vm:${name}:net_tx_bps`, label: 'sent' }], fmt: bps }),
      plot(grid, { title: 'Disk', testid: 'plot-disk', series: [{ key: `vm:${name}:disk_read_bps`, label: 'read' }, { key: `vm:${name}:disk_write_bps`, label: 'written' }], fmt: bps }),
    ];
    const sel = range.querySelector('select');
    const refresh = () => Promise.all(plots.map(p => p.refresh(sel.value))).catch(() => {});
    sel.addEventListener('change', refresh);
    await refresh();
    // figures arrive with every heartbeat; a plot is refetched every 10 s while the VM runs
    const t = setInterval(() => { if (RUNNING.has(vm.state) && !document.hidden) refresh(); }, 10000);
    ctx.onLeave(() => { clearInterval(t); plots.forEach(p => p.destroy()); });
  }

  ctx.live(async m => {
    if (m.type === 'vm' && m.data.name === name) {
      if (m.data.deleted || m.data.state === 'deleted') {
        head.replaceChildren(h('h1', name), h('span', { testid: `vm-state-${name}` }, 'deleted'));
        actions.replaceChildren(h('p', { testid: 'vm-deleted' }, 'This VM was deleted.'));
        return;
      }
      vm = m.data;
      draw();
      if (vm.op_id) ops.follow(vm.op_id);
    } else if (m.type === 'resync') {
      try { vm = await get(`/v1/vms/${enc(name)}`); draw(); } catch { /* gone */ }
    }
  });
}

function fact(label, value, testid) {
  return [h('dt', label), h('dd', { testid }, value)];
}

function marketCard(vm) {
  const m = vm.market;
  const b = m.bid || {};
  const t = m.terms || {};
  const stored = !!m.offer;
  return [h('div.card', { testid: 'vm-market' }, h('h2', 'Marketplace'), h('dl.facts',
    fact('Bid: storage', rate(b.storage_price, b.storage_period_s), 'bid-storage'),
    fact('Bid: running', rate(b.running_price, b.running_period_s), 'bid-running'),
    fact('Offer', stored ? `${m.offer} (${m.provider})` : 'none yet: search providers', 'vm-offer'),
    stored ? fact('Storage price', rate(t.storage_price, t.storage_period_s), 'terms-storage') : null,
    stored ? fact('Running price', rate(t.running_price, t.running_period_s), 'terms-running') : null,
    m.offer_next ? fact('Migrating to', m.offer_next) : null,
    fact('Registered', time(m.registered_ms, true))),
  historyBox(vm.name))];
}

// The recorded state intervals the charges are computed from (GET /v1/vms/NAME/history).
function historyBox(name) {
  const body = h('div', h('p.muted', 'Loading…'));
  const d = h('details', { testid: 'vm-history' }, h('summary', 'State history (what the charges are computed from)'), body);
  let loaded = false;
  d.addEventListener('toggle', async () => {
    if (!d.open || loaded) return;
    loaded = true;
    try {
      const hist = await get(`/v1/vms/${enc(name)}/history`);
      body.replaceChildren(table([
        { label: 'From', cell: s => time(s.at_ms, true) },
        { label: 'State', cell: s => stateBadge(s.state) },
        { label: 'Offer', cell: s => s.offer || '—' },
        { label: 'Provider', cell: s => s.provider || '—' },
        { label: 'Terms', cell: s => s.terms && s.terms.running_period_s ? `${rate(s.terms.storage_price, s.terms.storage_period_s)} stored, ${rate(s.terms.running_price, s.terms.running_period_s)} running` : '—' },
      ], hist.spans || [], { empty: 'No history yet.' }), h('p', h('a', { href: '#/account' }, 'Charges in the account')));
    } catch (e) { body.replaceChildren(h('p.notice.notice-error', e.message)); }
  });
  return d;
}
