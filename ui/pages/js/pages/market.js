// #/market: the marketplace view (the Virtuoso report's §5.2.5) from GET /v1/market/prices: the
// average offered unit prices (a vCPU and a GiB of RAM per hour and per 30 days, a GiB of disk),
// the suggested configurations' average prices and how many offers can host each; for a
// provider (and operators) each of its offers' prices beside the average (GET /v1/offers,
// `market`). An admin also manages the configurations (POST/DELETE /v1/market/configs) and the
// registration fee (GET/PUT /v1/market/settings).
import { h, table, field, busy } from '../dom.js';
import { get, post, put, del, enc } from '../api.js';
import { money, parseMoney, rate, mib } from '../format.js';
import { can } from '../session.js';
import { confirmDialog, toast } from '../dialog.js';

export async function render(ctx) {
  const body = h('div');
  ctx.main.replaceChildren(h('section', h('h1', 'Marketplace'), body));
  const load = async () => {
    const [prices, offers, settings] = await Promise.all([
      get('/v1/market/prices'),
      can(ctx.role, 'offers') ? get('/v1/offers').catch(() => []) : Promise.resolve(null),
      get('/v1/market/settings').catch(() => null),
    ]);
    const avg = (x, k) => (x ? money(x[k]) : '—');
    const parts = [
      h('p.muted', { testid: 'market-offers-count' }, `${prices.offers} offers on the market.`),
      h('h2', 'Average unit prices'),
      table([
        { label: 'Unit', cell: r => r.label },
        { label: 'Per hour', class: 'num', cell: r => avg(r.v, 'per_hour') },
        { label: 'Per 30 days', class: 'num', cell: r => avg(r.v, 'per_30d') },
      ], [
        { label: 'a vCPU, running', v: prices.running_vcpu, id: 'vcpu' },
        { label: 'a GiB of RAM, running', v: prices.running_gib, id: 'ram' },
        { label: 'a GiB of disk, stored', v: prices.storage_gib, id: 'disk' },
      ], { testid: 'market-averages', rowAttrs: r => ({ testid: `avg-${r.id}` }) }),
      h('h2', 'Suggested configurations'),
      table([
        { label: 'Configuration', cell: c => h('strong', c.name) },
        { label: 'Storage / 30 days', class: 'num', cell: c => money(c.storage_price) },
        { label: 'Running / hour', class: 'num', cell: c => money(c.running_price) },
        { label: 'Offers that can host it', class: 'num', cell: c => String(c.hosts) },
      ], prices.configs || [], { testid: 'market-configs', rowAttrs: c => ({ testid: `market-config-${c.name}` }), empty: 'No suggested configuration yet.' }),
      settings ? h('p', { testid: 'registration-fee' }, `Registering a machine costs ${money(settings.registration_fee)}.`) : null,
    ];
    if (offers && offers.length) {
      const cmp = (price, avgv) => [rate(price.v, price.per), h('span.price-beside', avgv === null || avgv === undefined ? 'no average'
        : [`average ${money(avgv)} `, price.v > avgv ? h('span.up-arrow', 'above') : price.v < avgv ? h('span.down-arrow', 'below') : 'equal'])];
      parts.push(h('h2', ctx.role === 'provider' ? 'My prices beside the market' : 'Each offer beside the market'),
        table([
          { label: 'Offer', cell: o => h('strong', o.rm) },
          { label: 'Provider', cell: o => o.provider },
          { label: 'Size', cell: o => `${o.vcpus} vCPU · ${mib(o.memory_mib)} · ${o.disk_gib} GiB` },
          { label: 'vCPU', cell: o => cmp({ v: o.prices.vcpu_price, per: o.prices.running_period_s }, o.market?.vcpu_price) },
          { label: 'GiB of RAM', cell: o => cmp({ v: o.prices.memory_price, per: o.prices.running_period_s }, o.market?.memory_price) },
          { label: 'GiB of disk', cell: o => cmp({ v: o.prices.disk_price, per: o.prices.storage_period_s }, o.market?.disk_price) },
          { label: 'Free', cell: o => `${o.free.vcpus} vCPU · ${mib(o.free.memory_mib)} · ${o.free.disk_gib} GiB` },
        ], offers, { testid: 'market-offers', rowAttrs: o => ({ testid: `market-offer-${o.rm}` }) }));
    }
    if (can(ctx.role, 'market-admin')) parts.push(adminForms(prices, settings, load));
    body.replaceChildren(...parts);
  };
  await load();
  let timer = null;
  ctx.live(m => {
    if (m.type === 'event' && ['offer-set', 'offer-withdrawn', 'market-config', 'market-fee'].includes(m.data.kind) && !timer) {
      timer = setTimeout(async () => { timer = null; try { await load(); } catch { /* next */ } }, 5000);
    }
  });
  ctx.onLeave(() => clearTimeout(timer));
}

function adminForms(prices, settings, reload) {
  const add = h('form', { testid: 'config-add-form' },
    h('div.row-fields',
      field('Name', 'name', { required: true, pattern: '[a-z0-9\\-]{1,63}' }),
      field('Image', 'image', { required: true, value: 'tiny-http' })),
    h('div.row-fields',
      field('Memory (MiB)', 'memory_mib', { type: 'number', min: 16, required: true, value: 256 }),
      field('vCPUs', 'vcpus', { type: 'number', min: 1, required: true, value: 1 }),
      field('Disk (GiB)', 'disk_gib', { type: 'number', min: 0, required: true, value: 1 })),
    h('div.buttons', h('button.primary', { type: 'submit' }, 'Add configuration')));
  add.addEventListener('submit', async e => {
    e.preventDefault();
    const f = add.elements;
    try {
      await post('/v1/market/configs', { name: f.name.value, image: f.image.value, memory_mib: Number(f.memory_mib.value), vcpus: Number(f.vcpus.value), disk_gib: Number(f.disk_gib.value) });
      toast(`configuration ${f.name.value} added`);
      await reload();
    } catch (err) { toast(err.message, 'error'); }
  });
  const dels = (prices.configs || []).map(c => h('button.danger', { type: 'button', on: { click: async () => {
    if (!(await confirmDialog({ title: `Delete the configuration ${c.name}?`, ok: 'Delete', danger: true }))) return;
    try { await del(`/v1/market/configs/${enc(c.name)}`); await reload(); } catch (err) { toast(err.message, 'error'); }
  } } }, `Delete ${c.name}`));
  const feeBtn = h('button', { type: 'submit' }, 'Set fee');
  const fee = h('form.toolbar', field('Registration fee', 'fee', { value: settings ? money(settings.registration_fee) : '', inputmode: 'decimal', required: true }), feeBtn);
  fee.addEventListener('submit', async e => {
    e.preventDefault();
    const v = parseMoney(fee.elements.fee.value);
    if (v === null) { toast('A fee like 0.05 (six decimals at most).', 'error'); return; }
    busy(feeBtn, true);
    try { await put('/v1/market/settings', { registration_fee: v }); await reload(); } catch (err) { toast(err.message, 'error'); }
    busy(feeBtn, false);
  });
  return h('div.card', h('h2', 'Administration'), h('h3', 'Add a suggested configuration'), add,
    dels.length ? [h('h3', 'Delete a configuration'), h('div.buttons', dels)] : null, h('h3', 'Registration fee'), fee);
}
