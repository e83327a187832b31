// #/login: a user and password (POST /v1/login), or an API token pasted (checked with
// GET /v1/whoami). Afterwards back to where the user was before the session ended.
import { h, field, busy, notice } from '../dom.js';
import { api } from '../api.js';
import * as session from '../session.js';

export async function signupOpen() {
  // an Oracle without --open-signup answers 403 before it reads the body; with it, {} is a 400
  try {
    await api('POST', '/v1/signup', {}, { auth: false });
    return true;
  } catch (e) {
    return e.status !== 403 && e.status !== 404 && e.status !== 0;
  }
}

function finish(tok, who) {
  session.signIn(tok, who);
  const back = session.takeReturn();
  location.hash = back || session.homeOf(who.role);
}

export async function render(ctx) {
  const msg = h('div', { 'aria-live': 'polite' });
  if (ctx.query.expired) msg.appendChild(notice('warn', 'Your session has ended. Log in again to go back to where you were; nothing you typed is lost.', 'login-expired'));

  const user = field('User', 'user', { required: true, autocomplete: 'username', testid: 'login-user' });
  const pass = field('Password', 'password', { type: 'password', required: true, autocomplete: 'current-password', testid: 'login-password' });
  const submit = h('button.primary', { type: 'submit', testid: 'login-submit' }, 'Log in');
  const form = h('form.stack', { testid: 'login-form', 'aria-labelledby': 'login-h' }, user, pass, h('div.buttons', submit));
  form.addEventListener('submit', async e => {
    e.preventDefault();
    busy(submit, true);
    msg.replaceChildren();
    try {
      const r = await api('POST', '/v1/login', { user: form.elements.user.value, password: form.elements.password.value }, { auth: false });
      finish(r.token, { user: r.user, role: r.role, expires_ms: r.expires_ms });
    } catch (err) {
      msg.appendChild(notice('error', err.message, 'login-error'));
      busy(submit, false);
    }
  });

  const tokField = field('API token', 'token', { type: 'password', required: true, autocomplete: 'off', testid: 'login-token', help: 'vmx_… as `vmatrix token create` printed it.' });
  const tokSubmit = h('button', { type: 'submit', testid: 'login-token-submit' }, 'Use token');
  const tokForm = h('form.stack', { testid: 'login-token-form' }, tokField, h('div.buttons', tokSubmit));
  tokForm.addEventListener('submit', async e => {
    e.preventDefault();
    busy(tokSubmit, true);
    msg.replaceChildren();
    const tok = tokForm.elements.token.value.trim();
    try {
      const res = await fetch('/v1/whoami', { headers: { Authorization: `Bearer ${tok}` }, cache: 'no-store' });
      const j = await res.json().catch(() => ({}));
      if (!res.ok) throw new Error(j.error ? j.error.message : `HTTP ${res.status}`);
      finish(tok, { user: j.user, role: j.role, expires_ms: j.token ? j.token.expires_ms : null });
    } catch (err) {
      msg.appendChild(notice('error', `That token was refused: ${err.message}`, 'login-error'));
      busy(tokSubmit, false);
    }
  });

  const signup = h('p', { hidden: true, testid: 'signup-link' }, 'No account yet? ', h('a', { href: '#/signup' }, 'Sign up as a provider or a buyer'), '.');
  ctx.main.replaceChildren(h('section.login',
    h('h1', { id: 'login-h' }, 'Log in to vMatrix'),
    msg,
    h('div.card', form),
    h('details.card', h('summary', 'Log in with an API token'), tokForm),
    signup));
  form.elements.user.focus();
  if (await signupOpen()) signup.hidden = false;
}
