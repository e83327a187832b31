// #/provider: a provider's machines (GET /v1/rms: its own RMs) and offers (GET /v1/offers):
// capacity, use, prices each beside the market's average, revenue, and the buyers' machines
// stored there (name, buyer, state, size, terms, charges) as read-only metadata: no action, no
// console. An offer is set or edited with a form (PUT /v1/offers/RM: money in six-decimal
// units, periods as 30d/1h/...) and withdrawn (DELETE /v1/offers/RM). An operator sees every
// offer read-only, an admin may edit them.
import { h, table, field, busy, notice } from '../dom.js';
import { get, put, del, enc } from '../api.js';
import { stateBadge, money, parseMoney, duration, parseDuration, rate, mib } from '../format.js';
import { bindDraft, can } from '../session.js';
import { confirmDialog, toast } from '../dialog.js';

const MARKET_EVENTS = new Set(['store', 'charge', 'offer-set', 'offer-withdrawn', 'rm-assigned', 'provider-migration', 'offer-migration', 'registered']);

export async function render(ctx) {
  const edit = can(ctx.role, 'edit-offers');
  const body = h('div');
  const revenue = h('p', { testid: 'provider-revenue' });
  ctx.main.replaceChildren(h('section',
    h('div.pagehead', h('h1', ctx.role === 'provider' ? 'My machines and offers' : 'Offers'), revenue), body));

  const load = async () => {
    const [rms, offers] = await Promise.all([get('/v1/rms'), get('/v1/offers')]);
    const total = offers.reduce((a, o) => a + (o.revenue || 0), 0);
    revenue.replaceChildren('Revenue: ', h('strong', { testid: 'revenue' }, money(total)));
    const mine = ctx.role === 'provider' ? rms : rms.filter(r => r.provider);
    const withOffer = new Set(offers.map(o => o.rm));
    const parts = [
      h('h2', 'Machines'),
      table([
        { label: 'RM', cell: r => h('strong', r.name) },
        { label: 'Role', cell: r => r.role },
        { label: 'State', cell: r => stateBadge(r.state, `rm-state-${r.name}`) },
        { label: 'Provider', cell: r => r.provider || '—' },
        { label: 'Size', cell: r => r.capacity ? `${r.capacity.vcpus} vCPU · ${mib(r.capacity.memory_mib)} · ${r.capacity.disk_gib} GiB` : 'not reported yet' },
        { label: 'Offer', cell: r => withOffer.has(r.name) ? h('button.link', { type: 'button', on: { click: () => { const el = document.getElementById(`offer-${r.name}`); el.scrollIntoView(); el.querySelector('button, h3').focus?.(); } } }, 'on sale') : (edit && r.provider ? h('button', { type: 'button', testid: `offer-new-${r.name}`, on: { click: () => showForm(r, null) } }, 'Put on sale') : 'none') },
      ], mine, { testid: 'provider-rms', rowAttrs: r => ({ testid: `rm-row-${r.name}` }), empty: ctx.role === 'provider' ? 'No machine is yours yet: an operator assigns RMs (vmatrix rm assign RM --provider YOU), or enrol one with a join token made with --provider.' : 'No RM is assigned to a provider.' }),
      h('div', { id: 'offer-form-slot' }),
      h('h2', 'Offers'),
      offers.length ? h('div', { testid: 'offers-list' }, offers.map(o => offerCard(o, rms.find(r => r.name === o.rm)))) : h('p.muted', { testid: 'offers-list' }, 'No offer yet.'),
    ];
    body.replaceChildren(...parts);
  };

  const showForm = (rm, offer) => {
    const slot = body.querySelector('#offer-form-slot');
    slot.replaceChildren(offerForm(rm, offer, async () => { slot.replaceChildren(); await load(); }, () => slot.replaceChildren()));
    slot.scrollIntoView({ block: 'nearest' });
    slot.querySelector('input').focus();
  };

  const offerCard = (o, rm) => {
    const p = o.prices, mk = o.market || {};
    const beside = (price, avg) => h('span.price-beside', avg === null || avg === undefined ? 'no market average yet'
      : [`market average ${money(avg)} `, price > avg ? h('span.up-arrow', 'above') : price < avg ? h('span.down-arrow', 'below') : 'equal']);
    return h('article.card', { id: `offer-${o.rm}`, testid: `offer-${o.rm}` },
      h('div.pagehead', h('h3', `Offer on ${o.rm}`), h('span', `provider ${o.provider}`)),
      h('div.grid',
        h('dl.facts',
          h('dt', 'vCPUs'), h('dd', `${o.used.vcpus} of ${o.vcpus} used, ${o.free.vcpus} free`),
          h('dt', 'RAM'), h('dd', `${mib(o.used.memory_mib)} of ${mib(o.memory_mib)} used, ${mib(o.free.memory_mib)} free`),
          h('dt', 'Disk'), h('dd', `${o.used.disk_gib} of ${o.disk_gib} GiB used, ${o.free.disk_gib} free`),
          h('dt', 'Revenue'), h('dd', { testid: `offer-revenue-${o.rm}` }, money(o.revenue))),
        h('dl.facts', { testid: `offer-prices-${o.rm}` },
          h('dt', 'vCPU'), h('dd', rate(p.vcpu_price, p.running_period_s), beside(p.vcpu_price, mk.vcpu_price)),
          h('dt', 'GiB of RAM'), h('dd', rate(p.memory_price, p.running_period_s), beside(p.memory_price, mk.memory_price)),
          h('dt', 'GiB of disk'), h('dd', rate(p.disk_price, p.storage_period_s), beside(p.disk_price, mk.disk_price)))),
      edit ? h('div.buttons',
        h('button', { type: 'button', testid: `offer-edit-${o.rm}`, on: { click: () => showForm(rm || { name: o.rm, capacity: null }, o) } }, 'Edit prices and capacity'),
        h('button.danger', { type: 'button', testid: `offer-withdraw-${o.rm}`, disabled: o.machines.length > 0, title: o.machines.length ? 'machines are stored there' : null,
          on: { click: async () => {
            if (!(await confirmDialog({ title: `Withdraw the offer on ${o.rm}?`, text: 'New machines can no longer be stored there.', ok: 'Withdraw', danger: true }))) return;
            try { await del(`/v1/offers/${enc(o.rm)}`); toast(`offer on ${o.rm} withdrawn`); await load(); } catch (e) { toast(e.message, 'error'); }
          } } }, 'Withdraw')) : null,
      h('h4', `Buyers' machines stored here (${o.machines.length})`),
      table([
        { label: 'Machine', cell: m => h('span', { testid: `offer-machine-name-${m.name}` }, m.name) },
        { label: 'Buyer', cell: m => m.buyer },
        { label: 'State', cell: m => [stateBadge(m.state, `vm-state-${m.name}`), m.arriving ? ' (arriving)' : ''] },
        { label: 'Size', cell: m => `${m.vcpus} vCPU · ${mib(m.memory_mib)} · ${m.disk_gib} GiB` },
        { label: 'Terms', cell: m => m.terms ? `${rate(m.terms.storage_price, m.terms.storage_period_s)} stored, ${rate(m.terms.running_price, m.terms.running_period_s)} running` : '—' },
        { label: 'Charged', class: 'num', cell: m => money(m.charges) },
      ], o.machines, { testid: `offer-machines-${o.rm}`, rowAttrs: m => ({ testid: `offer-machine-${m.name}` }), empty: 'No machine is stored here yet.' }));
  };

  await load();
  let timer = null, last = 0;
  ctx.live(m => {
    const relevant = (m.type === 'event' && MARKET_EVENTS.has(m.data.kind)) || m.type === 'resync' ||
      (m.type === 'vm' && m.data.market) || (m.type === 'event' && m.data.rm && /^rm-/.test(m.data.kind));
    if (!relevant || timer) return;
    timer = setTimeout(async () => { timer = null; last = Date.now(); try { await load(); } catch { /* next */ } }, Math.max(1000, 5000 - (Date.now() - last)));
  });
  ctx.onLeave(() => clearTimeout(timer));
}

// The form of PUT /v1/offers/RM: every field required; prices in units with six decimals.
function offerForm(rm, offer, done, cancel) {
  const p = offer ? offer.prices : null;
  const cap = rm.capacity || {};
  const msg = h('div', { 'aria-live': 'polite' });
  const submit = h('button.primary', { type: 'submit', testid: 'offer-submit' }, offer ? 'Save offer' : 'Put on sale');
  const money6 = { inputmode: 'decimal', pattern: '\\d+(\\.\\d{0,6})?', required: true, placeholder: '0.010000' };
  const per = { required: true, pattern: '\\d+[smhdSMHD]?', placeholder: '1h' };
  const form = h('form', { testid: 'offer-form' },
    h('h3', `${offer ? 'Edit the offer' : 'Put on sale'}: ${rm.name}`),
    h('p.muted', `The RM reports ${cap.vcpus ?? '?'} vCPUs, ${cap.memory_mib ? mib(cap.memory_mib) : '?'} of RAM and ${cap.disk_gib ?? '?'} GiB of disk. New stores pay the new prices; machines stored already keep theirs.`),
    h('fieldset', h('legend', 'Running (paid while a machine runs)'),
      h('div.row-fields',
        field('vCPUs for sale', 'vcpus', { type: 'number', min: 1, max: cap.vcpus, required: true, value: offer ? offer.vcpus : cap.vcpus, testid: 'offer-vcpus' }),
        field('Price of a vCPU', 'vcpu_price', { ...money6, value: p ? money(p.vcpu_price) : '', testid: 'offer-vcpu-price' })),
      h('div.row-fields',
        field('RAM for sale (MiB)', 'memory_mib', { type: 'number', min: 1, max: cap.memory_mib, required: true, value: offer ? offer.memory_mib : cap.memory_mib, testid: 'offer-memory' }),
        field('Price of a GiB of RAM', 'memory_price', { ...money6, value: p ? money(p.memory_price) : '', testid: 'offer-memory-price' })),
      field('Per running period', 'running_period', { ...per, value: p ? duration(p.running_period_s) : '1h', testid: 'offer-running-period', help: 'e.g. 1h, 30m, 3600 (seconds)' })),
    h('fieldset', h('legend', 'Storage (paid while a machine is stored or runs)'),
      h('div.row-fields',
        field('Disk for sale (GiB)', 'disk_gib', { type: 'number', min: 0, max: cap.disk_gib, required: true, value: offer ? offer.disk_gib : cap.disk_gib, testid: 'offer-disk' }),
        field('Price of a GiB of disk', 'disk_price', { ...money6, value: p ? money(p.disk_price) : '', testid: 'offer-disk-price' })),
      field('Per storage period', 'storage_period', { ...per, value: p ? duration(p.storage_period_s) : '30d', placeholder: '30d', testid: 'offer-storage-period', help: 'e.g. 30d, 1d, 12h' })),
    h('div.buttons', submit, h('button', { type: 'button', on: { click: cancel } }, 'Cancel')), msg);
  const draft = bindDraft(form, `offer-${rm.name}`);
  form.addEventListener('submit', async e => {
    e.preventDefault();
    msg.replaceChildren();
    const f = form.elements;
    const b = {
      vcpus: Number(f.vcpus.value), vcpu_price: parseMoney(f.vcpu_price.value),
      memory_mib: Number(f.memory_mib.value), memory_price: parseMoney(f.memory_price.value),
      running_period_s: parseDuration(f.running_period.value),
      disk_gib: Number(f.disk_gib.value), disk_price: parseMoney(f.disk_price.value),
      storage_period_s: parseDuration(f.storage_period.value),
    };
    const bad = Object.entries(b).filter(([, v]) => v === null || Number.isNaN(v)).map(([k]) => k);
    if (bad.length) {
      msg.appendChild(notice('error', `Check ${bad.join(', ')}: money as 0.5 or 1.000001 (six decimals at most), periods as 30d, 1h, 90m or seconds.`, 'offer-error'));
      return;
    }
    busy(submit, true);
    try {
      await put(`/v1/offers/${enc(rm.name)}`, b);
      draft.clear();
      toast(`offer on ${rm.name} saved`);
      await done();
    } catch (err) {
      msg.appendChild(notice('error', err.message, 'offer-error'));
      busy(submit, false);
    }
  });
  return h('div.card', form);
}
