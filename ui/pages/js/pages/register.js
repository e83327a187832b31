// #/register: a buyer registers a machine (the Virtuoso report's §5.1.2): a suggested
// configuration (GET /v1/market/configs, with the market's estimated prices) or a custom one,
// and a bid for storage and for running, each a price per period → POST /v1/machines; the
// registration fee from GET /v1/market/settings. #/register?edit=NAME edits a registered machine
// (PATCH /v1/vms/NAME), only while it is registered.
import { h, table, field, busy, notice } from '../dom.js';
import { get, post, patch, enc } from '../api.js';
import { money, parseMoney, duration, parseDuration, rate, mib } from '../format.js';
import { bindDraft } from '../session.js';

export async function render(ctx) {
  const editing = ctx.query.edit || null;
  const [configs, settings, vm] = await Promise.all([
    get('/v1/market/configs'),
    get('/v1/market/settings').catch(() => null),
    editing ? get(`/v1/vms/${enc(editing)}`) : Promise.resolve(null),
  ]);
  if (vm && vm.state !== 'registered') {
    ctx.main.replaceChildren(h('section', h('h1', `Edit ${vm.name}`),
      notice('warn', `${vm.name} is ${vm.state}: only a registered machine can be edited. Its size and prices are fixed once it is stored (it changes price by migrating).`, 'edit-refused'),
      h('p', h('a', { href: `#/vm/${enc(vm.name)}` }, `Back to ${vm.name}`))));
    return;
  }
  const images = [...new Set(configs.map(c => c.image).concat(vm ? [vm.image] : []))];
  const msg = h('div', { 'aria-live': 'polite' });
  const result = h('div');
  const submit = h('button.primary', { type: 'submit', testid: 'register-submit' },
    vm ? 'Update machine' : `Register machine${settings && settings.registration_fee ? ` (${money(settings.registration_fee)})` : ''}`);

  const cfgRadio = c => h('input', { type: 'radio', name: 'choice', value: c ? c.name : 'custom', id: `cfg-${c ? c.name : 'custom'}`, testid: `config-${c ? c.name : 'custom'}`, checked: !c && (vm || !configs.length) });
  const cfgTable = vm ? null : h('fieldset', h('legend', 'Suggested configurations (prices: market averages)'),
    table([
      { label: 'Choose', cell: c => cfgRadio(c) },
      { label: 'Name', cell: c => h('label', { for: `cfg-${c.name}` }, c.name) },
      { label: 'Image', cell: c => c.image },
      { label: 'Memory', cell: c => mib(c.memory_mib) },
      { label: 'vCPUs', class: 'num', cell: c => String(c.vcpus) },
      { label: 'Disk', cell: c => `${c.disk_gib} GiB` },
      { label: 'Storage / 30 days', class: 'num', cell: c => (c.storage_price_30d === null ? 'no offer yet' : money(c.storage_price_30d)) },
      { label: 'Running / hour', class: 'num', cell: c => (c.running_price_1h === null ? 'no offer yet' : money(c.running_price_1h)) },
    ], configs, { testid: 'configs', rowAttrs: c => ({ testid: `config-row-${c.name}` }), empty: 'No suggested configuration: configure one below.' }),
    h('label.choice', cfgRadio(null), 'Configure the machine myself'));

  const b = vm ? vm.market.bid : null;
  const custom = h('fieldset', { testid: 'custom-fields' }, h('legend', 'Configuration'),
    h('div.row-fields',
      field('Image', 'image', { options: images.length ? images : ['tiny-http'], value: vm ? vm.image : images[0], testid: 'register-image' }),
      field('Memory (MiB)', 'memory_mib', { type: 'number', min: 16, value: vm ? vm.memory_mib : 256, testid: 'register-memory' }),
      field('vCPUs', 'vcpus', { type: 'number', min: 1, value: vm ? vm.vcpus : 1, testid: 'register-vcpus' }),
      field('Disk (GiB)', 'disk_gib', { type: 'number', min: 1, value: vm ? vm.market.disk_gib : 1, testid: 'register-disk' })));
  const money6 = { inputmode: 'decimal', pattern: '\\d+(\\.\\d{0,6})?', required: true };
  const per = { required: true, pattern: '\\d+[smhdSMHD]?' };
  const bid = h('fieldset', h('legend', 'My bid (the most I pay)'),
    h('div.row-fields',
      field('Storage price', 'storage_price', { ...money6, value: b ? money(b.storage_price) : '', placeholder: '3.000000', testid: 'bid-storage-price' }),
      field('per', 'storage_period', { ...per, value: b ? duration(b.storage_period_s) : '30d', testid: 'bid-storage-period', help: 'e.g. 30d' })),
    h('div.row-fields',
      field('Running price', 'running_price', { ...money6, value: b ? money(b.running_price) : '', placeholder: '0.050000', testid: 'bid-running-price' }),
      field('per', 'running_period', { ...per, value: b ? duration(b.running_period_s) : '1h', testid: 'bid-running-period', help: 'e.g. 1h' })),
    h('small.help', 'Storage is paid in every state once the machine is stored; running only while it runs. Money in units with six decimals at most.'));

  const form = h('form', { testid: 'register-form' },
    vm ? null : field('Machine name', 'name', { required: true, pattern: '[a-z0-9\\-]{1,63}', testid: 'register-name', help: 'a-z, 0-9 and -' }),
    cfgTable, custom, bid, h('div.buttons', submit), msg);
  const draft = bindDraft(form, vm ? `edit-${vm.name}` : 'register');

  const choice = () => (vm ? 'custom' : (form.querySelector('input[name="choice"]:checked') || {}).value || 'custom');
  const sync = e => {
    const c = configs.find(x => x.name === choice());
    custom.disabled = !!c;
    custom.hidden = !!c;
    // a chosen configuration suggests its market prices as the bid, unless the user typed one
    if (c && e && e.target && e.target.name === 'choice') {
      const f = form.elements;
      if (c.storage_price_30d !== null) { f.storage_price.value = money(c.storage_price_30d); f.storage_period.value = '30d'; }
      if (c.running_price_1h !== null) { f.running_price.value = money(c.running_price_1h); f.running_period.value = '1h'; }
      draft.save();
    }
  };
  form.addEventListener('change', sync);
  if (!vm && configs.length && !form.querySelector('input[name="choice"]:checked')) {
    form.querySelector('input[name="choice"]').checked = true;
    sync({ target: { name: 'choice' } });
  } else sync();

  form.addEventListener('submit', async e => {
    e.preventDefault();
    msg.replaceChildren();
    const f = form.elements;
    const bidv = {
      storage_price: parseMoney(f.storage_price.value), storage_period_s: parseDuration(f.storage_period.value),
      running_price: parseMoney(f.running_price.value), running_period_s: parseDuration(f.running_period.value),
    };
    const bad = Object.entries(bidv).filter(([, v]) => v === null).map(([k]) => k);
    if (bad.length) {
      msg.appendChild(notice('error', `Check the bid (${bad.join(', ')}): money as 3 or 0.05 (six decimals at most), periods as 30d, 1h, 90m or seconds.`, 'register-error'));
      return;
    }
    const body = { bid: bidv };
    const c = configs.find(x => x.name === choice());
    if (c) body.config = c.name;
    else Object.assign(body, { image: f.image.value, memory_mib: Number(f.memory_mib.value), vcpus: Number(f.vcpus.value), disk_gib: Number(f.disk_gib.value) });
    busy(submit, true);
    try {
      const m = vm ? await patch(`/v1/vms/${enc(vm.name)}`, body) : await post('/v1/machines', { name: f.name.value.trim(), ...body });
      draft.clear();
      form.hidden = true;
      result.replaceChildren(confirmation(m, !!vm));
      result.querySelector('a').focus();
    } catch (err) {
      msg.appendChild(notice('error', err.status === 402 ? `Your balance does not cover the registration fee: ${err.message}` : err.message, 'register-error'));
    }
    busy(submit, false);
  });
  ctx.main.replaceChildren(h('section', h('h1', vm ? `Edit ${vm.name}` : 'Register a machine'),
    vm ? null : h('p.muted', 'Registering makes a placeholder with your bid; the machine exists on no provider until you store it.'),
    form, result));
}

function confirmation(m, edited) {
  const bd = m.market.bid;
  return h('div.card', { testid: 'register-done' },
    h('h2', edited ? 'Machine updated' : 'Machine registered'),
    h('dl.facts',
      h('dt', 'Name'), h('dd', m.name),
      h('dt', 'Image'), h('dd', m.image),
      h('dt', 'Size'), h('dd', `${m.vcpus} vCPU · ${mib(m.memory_mib)} · ${m.market.disk_gib} GiB disk`),
      h('dt', 'Asked storage price'), h('dd', rate(bd.storage_price, bd.storage_period_s)),
      h('dt', 'Asked running price'), h('dd', rate(bd.running_price, bd.running_period_s)),
      h('dt', 'Charged now'), h('dd', 'nothing: it is stored nowhere yet'),
      h('dt', 'State'), h('dd', { testid: 'register-state' }, m.state)),
    h('div.buttons',
      h('a.button.primary', { href: `#/vm/${enc(m.name)}/offers`, testid: 'search-providers' }, 'Search providers'),
      h('a.button', { href: `#/register?edit=${enc(m.name)}` }, 'Edit it again'),
      h('a.button', { href: '#/computers' }, 'My computers')));
}
