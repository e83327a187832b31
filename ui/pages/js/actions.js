// A VM's action buttons: one per name in its `actions` (the lifecycle table decides, the page
// only shows), each asking what it needs: a confirmation for destructive ones, the VM's name
// typed for delete, an RM and method for migrate, an optional RM for boot/activate. `edit` and
// `store` lead to the buyer's pages (PATCH /v1/vms/NAME, GET /v1/vms/NAME/offers).
import { h, field } from './dom.js';
import { post, get, enc } from './api.js';
import { confirmDialog, formDialog, toast } from './dialog.js';
import * as ops from './ops.js';
import { can } from './session.js';

const DESTRUCTIVE = {
  stop: 'Power it off now. A running guest loses what is not on its disk.',
  delete: 'Delete it and its bundle for good.',
  deactivate: 'Drain it, save it and send it back to the Nest.',
  hibernate: 'Save it into the Nest; it stops running.',
  suspend: 'Pause it and save its state on its RM.',
};

const LABELS = {
  boot: 'Boot', activate: 'Activate', suspend: 'Suspend', resume: 'Resume', hibernate: 'Hibernate',
  deactivate: 'Deactivate', stop: 'Stop', delete: 'Delete', migrate: 'Migrate', 'migrate-live': 'Migrate live',
  edit: 'Edit', store: 'Search providers & store',
};

export function actionLabel(a) { return LABELS[a] || a; }

// Buttons for vm.actions. opts.role: the user's role; opts.onDone(op): after a 202.
export function actionButtons(vm, opts = {}) {
  const list = vm.actions || [];
  if (!list.length) return h('p.muted', { testid: 'no-actions' }, vm.op_id ? 'An operation is running: no action now.' : 'No action is possible in this state.');
  return h('div.actions', { role: 'group', 'aria-label': `Actions on ${vm.name}` },
    list.map(a => {
      if (a === 'edit') return h('a.button', { href: `#/register?edit=${enc(vm.name)}`, testid: 'action-edit' }, LABELS.edit);
      if (a === 'store') return h('a.button.primary', { href: `#/vm/${enc(vm.name)}/offers`, testid: 'action-store' }, LABELS.store);
      const btn = h(`button${DESTRUCTIVE[a] ? '.danger' : ''}`, {
        type: 'button', testid: `action-${a}`, 'data-vm': vm.name,
        on: { click: () => run(vm, a, btn, opts) },
      }, actionLabel(a));
      return btn;
    }));
}

async function rmChoices(role, wanted) {
  if (!can(role, 'rms')) return [];
  try {
    const rms = await get('/v1/rms');
    return rms.filter(r => r.state === 'up' && (!wanted || r.role === wanted)).map(r => r.name);
  } catch { return []; }
}

async function run(vm, action, btn, opts) {
  let body = {};
  const market = !!vm.market;
  if (action === 'migrate' || action === 'migrate-live') {
    if (market) {
      // a buyer's machine migrates to another offer: the offers page lists them with methods
      location.hash = `#/vm/${enc(vm.name)}/offers${action === 'migrate-live' ? '?live=1' : ''}`;
      return;
    }
    const rms = (await rmChoices(opts.role)).filter(n => n !== vm.rm);
    const fields = [
      rms.length ? field('To RM', 'rm', { options: rms, required: true, testid: 'migrate-to' })
        : field('To RM', 'rm', { required: true, testid: 'migrate-to', pattern: '[a-z0-9\\-]{1,63}' }),
    ];
    if (action === 'migrate') {
      fields.push(field('Method', 'method', { options: [{ value: 'chunks', label: 'chunks (only what the RM lacks)' }, { value: 'full', label: 'full (whole files)' }], testid: 'migrate-method' }));
    }
    const v = await formDialog({ title: `${actionLabel(action)} ${vm.name}`, fields, ok: actionLabel(action), valid: x => !!x.rm });
    if (!v) return;
    body = action === 'migrate' ? { rm: v.rm, method: v.method } : { rm: v.rm, live: true };
  } else if ((action === 'boot' || action === 'activate') && !market && can(opts.role, 'rms')) {
    const rms = await rmChoices(opts.role, action === 'boot' ? 'chamber' : 'production');
    const v = await formDialog({
      title: `${actionLabel(action)} ${vm.name}`,
      text: action === 'boot' ? 'Boot it on a Loading Chamber RM.' : 'Run it on an idle production RM.',
      fields: [field('RM', 'rm', { options: [{ value: '', label: 'any (the Oracle chooses)' }, ...rms], testid: 'action-rm' })],
      ok: actionLabel(action),
    });
    if (!v) return;
    if (v.rm) body.rm = v.rm;
  } else if (DESTRUCTIVE[action]) {
    const ok = await confirmDialog({
      title: `${actionLabel(action)} ${vm.name}?`, text: DESTRUCTIVE[action], ok: actionLabel(action), danger: true,
      typeName: action === 'delete' ? vm.name : null,
    });
    if (!ok) return;
    if (action === 'delete' && vm.op_id) body.force = true;
  }
  const path = action === 'migrate-live' ? `/v1/vms/${enc(vm.name)}/migrate` : `/v1/vms/${enc(vm.name)}/${action}`;
  if (btn) btn.disabled = true;
  try {
    const res = await post(path, body);
    const op = res && res.op;
    if (op) {
      ops.note(op);
      toast(`${actionLabel(action)} ${vm.name}: started (${op.id})`);
    } else {
      toast(`${actionLabel(action)} ${vm.name}: done`);
    }
    opts.onDone && opts.onDone(op);
  } catch (e) {
    if (e.status !== 401) toast(`${actionLabel(action)} ${vm.name}: ${e.message}`, 'error');
  } finally {
    if (btn) btn.disabled = false;
  }
}
