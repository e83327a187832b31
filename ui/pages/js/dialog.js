// Modal dialogs (<dialog>) for confirmations and small forms, and toasts for results.
import { h, field } from './dom.js';

// confirm({title, text, ok, danger, typeName}) -> Promise<boolean>. typeName: the user must type
// this exact text (a VM's name before delete) before OK is enabled.
export function confirmDialog({ title, text, ok = 'OK', danger = false, typeName = null }) {
  return formDialog({
    title, text, ok, danger,
    fields: typeName ? [field(`Type “${typeName}” to confirm`, 'confirm', { testid: 'confirm-input', autocomplete: 'off' })] : [],
    valid: typeName ? v => v.confirm === typeName : null,
  }).then(v => v !== null);
}

// formDialog({title, text, fields: [field nodes], ok, valid(values) -> bool}) -> values | null
export function formDialog({ title, text, fields = [], ok = 'OK', danger = false, valid = null }) {
  return new Promise(resolve => {
    const okBtn = h(`button.${danger ? 'danger' : 'primary'}`, { type: 'submit', testid: 'confirm-ok' }, ok);
    const cancel = h('button', { type: 'button', testid: 'confirm-cancel' }, 'Cancel');
    const form = h('form', { method: 'dialog' },
      h('h2', { id: 'dlg-title' }, title),
      text ? h('p', text) : null,
      fields,
      h('div.buttons', okBtn, cancel));
    const dlg = h('dialog', { 'aria-labelledby': 'dlg-title', testid: 'confirm-dialog' }, form);
    const values = () => {
      const v = {};
      for (const el of form.elements) {
        if (!el.name) continue;
        if ((el.type === 'radio' || el.type === 'checkbox') && !el.checked) continue;
        v[el.name] = el.value;
      }
      return v;
    };
    const check = () => { okBtn.disabled = valid ? !valid(values()) : false; };
    form.addEventListener('input', check);
    form.addEventListener('change', check);
    check();
    let result = null;
    form.addEventListener('submit', e => {
      e.preventDefault();
      if (valid && !valid(values())) return;
      result = values();
      dlg.close();
    });
    cancel.addEventListener('click', () => dlg.close());
    dlg.addEventListener('close', () => { dlg.remove(); resolve(result); });
    document.body.appendChild(dlg);
    dlg.showModal();
    const first = form.querySelector('input, select');
    (first || okBtn).focus();
  });
}

export function toast(text, kind = 'info') {
  const box = document.getElementById('toasts');
  if (!box) return;
  const t = h(`div.toast.toast-${kind}`, { role: kind === 'error' ? 'alert' : 'status' },
    h('span', text), h('button.link', { type: 'button', 'aria-label': 'Dismiss', on: { click: () => t.remove() } }, '✕'));
  box.appendChild(t);
  setTimeout(() => t.remove(), kind === 'error' ? 12000 : 5000);
}
