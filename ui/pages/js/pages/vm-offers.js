// #/vm/NAME/offers: providers for a machine (GET /v1/vms/NAME/offers, cheapest first, each with
// its prices over its own periods and the estimate for 30 days). For a registered machine:
// choose one and store it there (POST /v1/vms/NAME/store {rm}). For a stored or suspended one:
// where it could migrate, with the methods each destination speaks (POST /v1/vms/NAME/migrate
// {rm, method}, or {rm, live: true} with ?live=1). No offer fits: say so, and suggest raising the
// bid (the report's Figure 14).
import { h, table, busy, notice } from '../dom.js';
import { get, post, enc } from '../api.js';
import { money, rate, mib, stateBadge } from '../format.js';
import * as ops from '../ops.js';
import { toast } from '../dialog.js';

export async function render(ctx) {
  const name = ctx.params.name;
  const vm = await get(`/v1/vms/${enc(name)}`);
  const live = ctx.query.live === '1';
  const registered = vm.state === 'registered';
  const canMigrate = (vm.actions || []).includes(live ? 'migrate-live' : 'migrate');
  const canStore = (vm.actions || []).includes('store');
  const offers = await get(`/v1/vms/${enc(name)}/offers`);
  const bd = vm.market ? vm.market.bid : null;
  const msg = h('div', { 'aria-live': 'polite' });
  const summary = h('div.card', h('h2', 'The machine'), h('dl.facts',
    h('dt', 'Name'), h('dd', h('a', { href: `#/vm/${enc(name)}` }, name)),
    h('dt', 'State'), h('dd', stateBadge(vm.state, `vm-state-${name}`)),
    h('dt', 'Size'), h('dd', `${vm.vcpus} vCPU · ${mib(vm.memory_mib)}${vm.market ? ` · ${vm.market.disk_gib} GiB disk` : ''}`),
    bd ? [h('dt', 'Asked storage price'), h('dd', rate(bd.storage_price, bd.storage_period_s)),
      h('dt', 'Asked running price'), h('dd', rate(bd.running_price, bd.running_period_s))] : null,
    vm.market && vm.market.offer ? [h('dt', 'Stored at'), h('dd', `${vm.market.offer} (${vm.market.provider})`)] : null));

  const title = registered ? `Providers for ${name}` : `Migrate ${name}${live ? ' live' : ''}`;
  let list;
  if (!offers.length) {
    list = h('div', notice('warn', [registered
      ? 'No provider matches this machine: no offer with room has prices within your bid. '
      : 'No other offer with room has prices within this machine\'s bid. ',
    'Raise your bid (or ask for less), then search again.'], 'no-offers'),
    registered && (vm.actions || []).includes('edit') ? h('p', h('a.button.primary', { href: `#/register?edit=${enc(name)}`, testid: 'raise-bid' }, 'Raise the bid')) : null);
  } else {
    const radios = [];
    const radio = o => { const r = h('input', { type: 'radio', name: 'rm', value: o.rm, id: `offer-${o.rm}`, testid: `offer-pick-${o.rm}`, checked: !radios.length }); radios.push(r); return r; };
    const methodSel = o => (live || registered ? null : h('select', { name: `method-${o.rm}`, 'aria-label': `method to ${o.rm}`, testid: `offer-method-${o.rm}` },
      (o.methods && o.methods.length ? o.methods : ['chunks', 'full']).map(m => h('option', { value: m }, m))));
    const btn = h('button.primary', { type: 'submit', testid: registered ? 'store-submit' : 'migrate-submit', disabled: registered ? !canStore : !canMigrate },
      registered ? 'Store the machine there' : `Migrate${live ? ' live' : ''} there`);
    const form = h('form', { testid: 'offers-form' },
      table([
        { label: 'Choose', cell: o => radio(o) },
        { label: 'Offer (RM)', cell: o => h('label', { for: `offer-${o.rm}` }, h('strong', o.rm)) },
        { label: 'Provider', cell: o => o.provider },
        { label: 'Storage', cell: o => rate(o.storage_price, o.storage_period_s) },
        { label: 'Running', cell: o => rate(o.running_price, o.running_period_s) },
        { label: '30 days stored + running', class: 'num', cell: o => `${money(o.estimate_30d.storage)} + ${money(o.estimate_30d.running)} = ${money(o.total_30d)}` },
        { label: 'Free', cell: o => `${o.free.vcpus} vCPU · ${mib(o.free.memory_mib)} · ${o.free.disk_gib} GiB` },
        registered || live ? null : { label: 'Method', cell: o => methodSel(o) },
      ].filter(Boolean), offers, { testid: 'offers-list', rowAttrs: o => ({ testid: `offer-row-${o.rm}` }) }),
      h('div.buttons', btn),
      !registered && !canMigrate ? h('p.muted', `A ${vm.state} machine cannot migrate${live ? ' live' : ''} now.`) : null);
    form.addEventListener('submit', async e => {
      e.preventDefault();
      msg.replaceChildren();
      const rm = (form.querySelector('input[name="rm"]:checked') || {}).value;
      if (!rm) return;
      busy(btn, true);
      try {
        if (registered) {
          const m = await post(`/v1/vms/${enc(name)}/store`, { rm });
          const t = m.market.terms;
          msg.appendChild(notice('ok', [`${name} is ${m.state} at ${rm}: ${rate(t.storage_price, t.storage_period_s)} stored, ${rate(t.running_price, t.running_period_s)} running. `,
            h('a', { href: `#/vm/${enc(name)}`, testid: 'stored-link' }, 'Start it from its page'), ' or ', h('a', { href: '#/computers' }, 'My computers'), '.'], 'store-done'));
          form.hidden = true;
        } else {
          const body = live ? { rm, live: true } : { rm, method: form.elements[`method-${rm}`]?.value || 'chunks' };
          const r = await post(`/v1/vms/${enc(name)}/migrate`, body);
          if (r && r.op) ops.note(r.op);
          msg.appendChild(notice('ok', [`Migrating ${name} to ${rm} (${r.op ? r.op.id : ''}). `, h('a', { href: `#/vm/${enc(name)}` }, 'Follow it on its page'), '.'], 'migrate-started'));
          form.hidden = true;
        }
        toast(`${name}: ${registered ? 'stored' : 'migration started'}`);
      } catch (err) {
        msg.appendChild(notice('error', err.message, 'offers-error'));
      }
      busy(btn, false);
    });
    list = form;
  }
  ctx.main.replaceChildren(h('section', h('h1', title), summary,
    h('h2', registered ? 'Offers that can store and run it (cheapest first)' : 'Where it can go (cheapest first)'), list, msg));
}
