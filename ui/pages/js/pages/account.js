// #/account[?user=NAME]: who I am (GET /v1/whoami) and my account (GET /v1/account): balance,
// what is available, the rate now, when the money runs out, charges per machine and the latest
// charges; a provider's revenue. An admin may look at anyone's (GET /v1/accounts/NAME) and
// deposit (POST /v1/accounts/NAME/deposit). Updates in place on charge and deposit events.
import { h, table, field, busy, notice } from '../dom.js';
import { get, post, enc } from '../api.js';
import { money, parseMoney, longDuration, time, duration } from '../format.js';
import { can } from '../session.js';
import { toast } from '../dialog.js';

export async function render(ctx) {
  const me = await get('/v1/whoami');
  const user = ctx.query.user && can(ctx.role, 'deposit') ? ctx.query.user : null;
  const body = h('div');
  const section = h('section', h('h1', user ? `Account of ${user}` : 'My account'), whoCard(me), body);
  ctx.main.replaceChildren(section);

  let timer = null;
  const load = async () => {
    const acc = await get(user ? `/v1/accounts/${enc(user)}?limit=100` : '/v1/account?limit=100');
    body.replaceChildren(...accountView(acc, ctx));
  };
  await load();
  if (can(ctx.role, 'deposit')) section.appendChild(adminTools(ctx, user, load));
  ctx.live(m => {
    if (m.type === 'event' && ['charge', 'deposit', 'unpaid-suspend', 'unpaid-resume', 'store', 'registered'].includes(m.data.kind)) {
      clearTimeout(timer);
      timer = setTimeout(load, 1000);
    } else if (m.type === 'resync') load();
  });
  ctx.onLeave(() => clearTimeout(timer));
}

function whoCard(me) {
  const exp = me.token && me.token.expires_ms ? time(me.token.expires_ms, true) : 'never';
  return h('div.card', h('dl.facts',
    h('dt', 'User'), h('dd', { testid: 'account-user' }, me.user),
    h('dt', 'Role'), h('dd', { testid: 'account-role' }, me.role),
    h('dt', 'Token'), h('dd', me.token ? `${me.token.name} (${me.token.id}), expires ${exp}` : '—')));
}

export function accountView(acc, ctx) {
  const out = [];
  const runsOut = acc.runs_out_s === null || acc.runs_out_s === undefined ? 'not at the present rate' : `in ${longDuration(acc.runs_out_s)}`;
  out.push(h('div.grid',
    h('div.card', h('h2', 'Balance'),
      h('p', h('strong', { testid: 'balance', 'data-micro': acc.balance }, money(acc.balance))),
      h('dl.facts',
        h('dt', 'Available'), h('dd', { testid: 'available' }, money(acc.available)),
        h('dt', 'Spending now'), h('dd', { testid: 'rate-per-hour' }, `${money(acc.rate_per_hour)} per hour`),
        h('dt', 'Money runs out'), h('dd', { testid: 'runs-out' }, runsOut))),
    acc.revenue ? h('div.card', h('h2', 'Revenue'),
      h('p', h('strong', { testid: 'revenue-total' }, money(Object.values(acc.revenue).reduce((a, b) => a + b, 0)))),
      Object.keys(acc.revenue).length ? h('dl.facts', Object.entries(acc.revenue).map(([rm, v]) => [h('dt', rm), h('dd', { testid: `revenue-${rm}` }, money(v))]))
        : h('p.muted', 'No revenue yet.')) : null));
  if (acc.unpaid_suspended && acc.unpaid_suspended.length) {
    out.push(notice('warn', `Suspended for want of money: ${acc.unpaid_suspended.join(', ')}. A deposit resumes them.`, 'unpaid'));
  }
  const per = Object.entries(acc.per_vm || {});
  out.push(h('h2', 'Charges per machine'), table([
    { label: 'Machine', cell: ([vm]) => ctx.role === 'provider' ? vm : h('a', { href: `#/vm/${enc(vm)}` }, vm) },
    { label: 'Charged', class: 'num', cell: ([, v]) => money(v) },
  ], per, { testid: 'per-vm', rowAttrs: ([vm]) => ({ testid: `per-vm-${vm}` }), empty: 'No charges yet.' }));
  out.push(h('h2', 'Latest charges'), table([
    { label: 'Posted', cell: c => time(c.posted_ms, true) },
    { label: 'Machine', cell: c => c.vm },
    { label: 'Kind', cell: c => c.kind },
    { label: 'Period', cell: c => `${time(c.period_start, true)} → ${time(c.period_end, true)} (${duration(Math.round((c.period_end - c.period_start) / 1000))})` },
    { label: ctx.role === 'provider' ? 'Buyer' : 'Provider', cell: c => (ctx.role === 'provider' ? c.buyer : c.provider) || '—' },
    { label: 'Offer', cell: c => c.offer || '—' },
    { label: 'Amount', class: 'num', cell: c => money(c.amount) },
  ], acc.charges || [], { testid: 'charges', rowAttrs: c => ({ testid: 'charge-row' }), empty: 'No charges yet.' }));
  return out;
}

function adminTools(ctx, user, reload) {
  const look = h('form.toolbar', { testid: 'account-lookup' },
    field('Look at the account of', 'user', { value: user || '', required: true, pattern: '[a-z0-9\\-]{1,63}' }),
    h('button', { type: 'submit' }, 'Show'));
  look.addEventListener('submit', e => { e.preventDefault(); location.hash = `#/account?user=${enc(look.elements.user.value)}`; });
  const who = user || ctx.who.user;
  const btn = h('button.primary', { type: 'submit', testid: 'deposit-submit' }, 'Deposit');
  const dep = h('form.toolbar', { testid: 'deposit-form' },
    field(`Deposit into ${who}'s account`, 'amount', { required: true, placeholder: '10.000000', inputmode: 'decimal', testid: 'deposit-amount', help: 'Units, up to six decimals.' }),
    btn);
  dep.addEventListener('submit', async e => {
    e.preventDefault();
    const amount = parseMoney(dep.elements.amount.value);
    if (amount === null || amount <= 0) { toast('An amount like 10 or 0.5 (six decimals at most).', 'error'); return; }
    busy(btn, true);
    try {
      const r = await post(`/v1/accounts/${enc(who)}/deposit`, { amount });
      toast(`${who}: balance ${money(r.balance)}`);
      dep.reset();
      await reload();
    } catch (err) { toast(err.message, 'error'); }
    busy(btn, false);
  });
  return h('div.card', h('h2', 'Administration'), look, dep);
}
