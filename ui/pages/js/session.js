// The signed-in user, kept in sessionStorage (per tab, gone when the tab closes): the token, who
// it is and the role. Also where to return after a login, and the unsent input of forms
// (drafts), so that a session that expires mid-form loses nothing.
const K = { token: 'vmx.token', who: 'vmx.who', back: 'vmx.return', draft: 'vmx.draft.' };
const listeners = new Set();

export function token() { return sessionStorage.getItem(K.token); }

export function who() {
  try { return JSON.parse(sessionStorage.getItem(K.who)) || null; } catch { return null; }
}

// who: {user, role, expires_ms}
export function signIn(tok, w) {
  sessionStorage.setItem(K.token, tok);
  sessionStorage.setItem(K.who, JSON.stringify(w));
  for (const fn of listeners) fn(w);
}

export function signOut() {
  sessionStorage.removeItem(K.token);
  sessionStorage.removeItem(K.who);
  for (const fn of listeners) fn(null);
}

export function onChange(fn) { listeners.add(fn); return () => listeners.delete(fn); }

export function setReturn(hash) {
  if (hash && !hash.startsWith('#/login') && !hash.startsWith('#/signup')) sessionStorage.setItem(K.back, hash);
}

export function takeReturn() {
  const r = sessionStorage.getItem(K.back);
  sessionStorage.removeItem(K.back);
  return r;
}

// What a role may do, as src/auth/roles.c grants it (for what the pages offer; the API decides).
export function can(role, what) {
  const all = role === 'admin' || role === 'operator';
  switch (what) {
    case 'events': case 'metrics': case 'services': case 'images': case 'create-vm': return all;
    case 'rms': return all || role === 'provider';
    case 'offers': return all || role === 'provider';
    case 'edit-offers': return role === 'admin' || role === 'provider';
    case 'console': return all || role === 'buyer';
    case 'act': return all || role === 'buyer';
    case 'machines': return role === 'buyer' || role === 'admin' || role === 'operator';
    case 'deposit': case 'market-admin': return role === 'admin';
    default: return false;
  }
}

export function homeOf(role) {
  if (role === 'provider') return '#/provider';
  if (role === 'buyer') return '#/computers';
  return '#/matrix';
}

// Drafts: a form's values on every input, restored when it is built again; passwords never.
export function bindDraft(form, key) {
  const k = K.draft + key;
  try {
    const saved = JSON.parse(sessionStorage.getItem(k) || 'null');
    if (saved) {
      for (const el of form.elements) {
        if (!el.name || el.type === 'password' || !(el.name in saved)) continue;
        if (el.type === 'radio' || el.type === 'checkbox') el.checked = saved[el.name] === el.value;
        else el.value = saved[el.name];
      }
    }
  } catch { /* a bad draft is dropped */ }
  const save = () => {
    const v = {};
    for (const el of form.elements) {
      if (!el.name || el.type === 'password') continue;
      if ((el.type === 'radio' || el.type === 'checkbox') && !el.checked) continue;
      v[el.name] = el.value;
    }
    sessionStorage.setItem(k, JSON.stringify(v));
  };
  form.addEventListener('input', save);
  form.addEventListener('change', save);
  return { clear: () => sessionStorage.removeItem(k), save };
}

export function hasDraft(key) { return sessionStorage.getItem(K.draft + key) !== null; }
