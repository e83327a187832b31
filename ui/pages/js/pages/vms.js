// #/vms: every VM (GET /v1/vms), live; and the create form (POST /v1/vms, images from
// GET /v1/images) for operators and admins.
import { h, table, tableRow, field, busy, notice, coalesce } from '../dom.js';
import { get, post, enc } from '../api.js';
import { stateBadge, mib } from '../format.js';
import { bindDraft, can } from '../session.js';
import { toast } from '../dialog.js';

export const vmColumns = [
  { label: 'Name', cell: v => h('a', { href: `#/vm/${enc(v.name)}`, testid: `vm-link-${v.name}` }, v.name) },
  { label: 'State', cell: v => stateBadge(v.state, `vm-state-${v.name}`) },
  { label: 'Version', class: 'num', cell: v => String(v.version) },
  { label: 'RM', cell: v => v.rm || '—' },
  { label: 'Address', cell: v => v.address ? h('code', v.address) : '—' },
  { label: 'Image', cell: v => v.image },
  { label: 'Size', cell: v => `${v.vcpus} vCPU · ${mib(v.memory_mib)}` },
  { label: 'Service / owner', cell: v => [v.service || '', v.owner ? ` ${v.owner}` : ''].join('').trim() || '—' },
];

export async function render(ctx) {
  const vms = await get('/v1/vms');
  const byName = new Map(vms.map(v => [v.name, v]));
  const filter = h('input', { type: 'search', id: 'vm-filter', placeholder: 'name, state, RM…', testid: 'vm-filter' });
  const listWrap = h('div');
  const create = can(ctx.role, 'create-vm') ? await createForm() : null;
  ctx.main.replaceChildren(h('section',
    h('div.pagehead', h('h1', 'Virtual machines'), h('span.muted', { testid: 'vm-count' })),
    h('div.toolbar', h('div.field', h('label', { for: 'vm-filter' }, 'Filter'), filter)),
    listWrap, create));

  const rowAttrs = v => ({ testid: `vm-row-${v.name}`, 'data-vm': v.name });
  const shown = () => {
    const q = filter.value.trim().toLowerCase();
    return [...byName.values()].filter(v => !q || [v.name, v.state, v.rm, v.image, v.service, v.owner].some(x => x && x.toLowerCase().includes(q)))
      .sort((a, b) => a.name.localeCompare(b.name));
  };
  const draw = () => {
    listWrap.replaceChildren(table(vmColumns, shown(), { testid: 'vm-list', rowAttrs, empty: 'No VMs.' }));
    ctx.main.querySelector('[data-testid="vm-count"]').textContent = `${byName.size} VMs`;
  };
  filter.addEventListener('input', draw);
  draw();
  const redraw = coalesce(draw);

  ctx.live(async m => {
    if (m.type === 'vm') {
      const v = m.data;
      const row = listWrap.querySelector(`tr[data-vm="${CSS.escape(v.name)}"]`);
      if (v.deleted || v.state === 'deleted') {
        byName.delete(v.name);
        if (row) row.remove();
        return;
      }
      const isNew = !byName.has(v.name);
      byName.set(v.name, v);
      if (row && !isNew) {
        const fresh = tableRow(vmColumns, v, rowAttrs);
        fresh.classList.add('flash');
        row.replaceWith(fresh); // in place: no reload, the rest of the table untouched
      } else {
        redraw();
      }
    } else if (m.type === 'resync') {
      const all = await get('/v1/vms');
      byName.clear();
      for (const v of all) byName.set(v.name, v);
      draw();
    }
  });
}

async function createForm() {
  let images = [];
  try { images = await get('/v1/images'); } catch { /* an empty list says so below */ }
  const msg = h('div', { 'aria-live': 'polite' });
  const submit = h('button.primary', { type: 'submit', testid: 'create-submit' }, 'Create VM');
  const form = h('form', { testid: 'create-vm-form' },
    h('div.row-fields',
      field('Name', 'name', { required: true, pattern: '[a-z0-9\\-]{1,63}', testid: 'create-name', help: 'a-z, 0-9 and -' }),
      field('Image', 'image', { options: images.map(i => i.name), required: true, testid: 'create-image' })),
    h('div.row-fields',
      field('Memory (MiB)', 'memory_mib', { type: 'number', min: 16, value: 256, testid: 'create-memory' }),
      field('vCPUs', 'vcpus', { type: 'number', min: 1, value: 1, testid: 'create-vcpus' }),
      field('CPU limit (% of one CPU)', 'cpu_limit', { type: 'number', min: 1, placeholder: '100 per vCPU', testid: 'create-cpu-limit' })),
    h('div.buttons', submit), msg);
  const draft = bindDraft(form, 'create-vm');
  form.addEventListener('submit', async e => {
    e.preventDefault();
    const f = form.elements;
    const body = { name: f.name.value.trim(), image: f.image.value };
    if (f.memory_mib.value) body.memory_mib = Number(f.memory_mib.value);
    if (f.vcpus.value) body.vcpus = Number(f.vcpus.value);
    if (f.cpu_limit.value) body.cpu_limit = Number(f.cpu_limit.value);
    busy(submit, true);
    msg.replaceChildren();
    try {
      const v = await post('/v1/vms', body);
      draft.clear();
      toast(`${v.name} created (${v.state})`);
      msg.appendChild(notice('ok', [`Created `, h('a', { href: `#/vm/${enc(v.name)}` }, v.name), ` (${v.state}).`], 'create-done'));
      f.name.value = '';
    } catch (err) {
      msg.appendChild(notice('error', err.message, 'create-error'));
    }
    busy(submit, false);
  });
  return h('div.card', h('h2', 'Create a VM'), images.length ? null : notice('warn', 'No image yet: build one first (vmatrix image build tiny-http).'), form);
}
