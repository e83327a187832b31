// Building the pages' DOM without innerHTML: every text the API returns goes in as a text node, so
// a VM, event reason or user name can never become markup.

// h('tag.class#id', {attrs, on: {event: fn}}, ...children). Children: nodes, strings, numbers,
// arrays of them; null, undefined and false are skipped. Attribute `testid` sets data-testid;
// a boolean true sets an empty attribute, false/null leaves it out.
export function h(spec, attrs, ...children) {
  if (attrs === null || typeof attrs !== 'object' || attrs instanceof Node || Array.isArray(attrs)) {
    children.unshift(attrs);
    attrs = {};
  }
  const m = /^([a-z0-9-]+)?((?:[.#][\w-]+)*)$/i.exec(spec);
  const el = document.createElement((m && m[1]) || 'div');
  if (m && m[2]) {
    for (const part of m[2].match(/[.#][\w-]+/g)) {
      if (part[0] === '.') el.classList.add(part.slice(1));
      else el.id = part.slice(1);
    }
  }
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'on') {
      for (const [ev, fn] of Object.entries(v)) el.addEventListener(ev, fn);
    } else if (k === 'testid') {
      el.dataset.testid = v;
    } else if (k === 'class') {
      for (const c of String(v).split(/\s+/)) if (c) el.classList.add(c);
    } else if (k === 'value' && 'value' in el) {
      el.value = v;
    } else if (k === 'checked' || k === 'selected' || k === 'disabled') {
      el[k] = !!v;
    } else if (k === 'dataset') {
      Object.assign(el.dataset, v);
    } else {
      el.setAttribute(k, v === true ? '' : String(v));
    }
  }
  append(el, children);
  return el;
}

export function append(el, children) {
  for (const c of children.flat(Infinity)) {
    if (c === null || c === undefined || c === false) continue;
    el.appendChild(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

export function replace(el, ...children) {
  el.replaceChildren();
  return append(el, children);
}

// A table that scrolls sideways on a phone, or collapses to labelled cards (class "cards").
// columns: [{label, cell: row => node|string, class?}]; rowAttrs: row => attrs of its <tr>.
export function table(columns, rows, { rowAttrs, testid, cards = true, empty = 'Nothing here.' } = {}) {
  const thead = h('thead', h('tr', columns.map(c => h('th', { scope: 'col', class: c.class }, c.label))));
  const tbody = h('tbody');
  for (const r of rows) tbody.appendChild(tableRow(columns, r, rowAttrs));
  if (!rows.length) tbody.appendChild(h('tr.empty', h('td', { colspan: columns.length }, empty)));
  return h('div.table-wrap', h('table', { class: cards ? 'cards' : null, testid }, thead, tbody));
}

export function tableRow(columns, r, rowAttrs) {
  return h('tr', rowAttrs ? rowAttrs(r) : {},
    columns.map(c => h('td', { 'data-label': c.label, class: c.class }, h('div.cell', c.cell(r)))));
}

// A labelled form field. opts: {type, value, required, min, max, step, placeholder, help, options}
export function field(label, name, opts = {}) {
  const id = opts.id || `f-${name}-${Math.random().toString(36).slice(2, 7)}`;
  let input;
  if (opts.options) {
    input = h('select', { id, name, required: opts.required, testid: opts.testid },
      opts.options.map(o => (typeof o === 'string' ? { value: o, label: o } : o))
        .map(o => h('option', { value: o.value, selected: String(o.value) === String(opts.value ?? '') }, o.label)));
  } else {
    input = h('input', {
      id, name, type: opts.type || 'text', value: opts.value ?? '', required: opts.required,
      min: opts.min, max: opts.max, step: opts.step, placeholder: opts.placeholder, pattern: opts.pattern,
      autocomplete: opts.autocomplete || 'off', inputmode: opts.inputmode, testid: opts.testid,
      'aria-describedby': opts.help ? `${id}-help` : null,
    });
  }
  return h('div.field', h('label', { for: id }, label), input,
    opts.help ? h('small.help', { id: `${id}-help` }, opts.help) : null);
}

export function formValues(form) {
  const out = {};
  for (const el of form.elements) {
    if (!el.name || el.disabled) continue;
    if ((el.type === 'radio' || el.type === 'checkbox') && !el.checked) continue;
    out[el.name] = el.value;
  }
  return out;
}

export function busy(button, on) {
  button.disabled = on;
  button.setAttribute('aria-busy', on ? 'true' : 'false');
}

// A message area that announces itself to screen readers.
export function notice(kind, text, testid) {
  return h(`p.notice.notice-${kind}`, { role: kind === 'error' ? 'alert' : 'status', testid }, text);
}

export function loadCss(href) {
  if (document.querySelector(`link[href="${href}"]`)) return;
  document.head.appendChild(h('link', { rel: 'stylesheet', href }));
}

// fn, called at most once per animation frame however often it is asked (a stream's burst of
// `vm` messages at connection redraws a page once).
export function coalesce(fn) {
  let queued = false;
  return () => {
    if (queued) return;
    queued = true;
    requestAnimationFrame(() => { queued = false; fn(); });
  };
}
