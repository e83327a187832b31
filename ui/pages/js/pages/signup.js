// #/signup: a provider or buyer account (POST /v1/signup {name, role, password}), on an Oracle
// run with --open-signup; then logged in (POST /v1/login).
import { h, field, busy, notice } from '../dom.js';
import { api } from '../api.js';
import * as session from '../session.js';
import { signupOpen } from './login.js';

export async function render(ctx) {
  if (!(await signupOpen())) {
    ctx.main.replaceChildren(h('section.login', h('h1', 'Sign up'),
      notice('warn', 'This Oracle does not take sign-ups. Ask an administrator for an account.', 'signup-closed'),
      h('p', h('a', { href: '#/login' }, 'Back to the login page'))));
    return;
  }
  const msg = h('div', { 'aria-live': 'polite' });
  const submit = h('button.primary', { type: 'submit', testid: 'signup-submit' }, 'Create account');
  const form = h('form.stack', { testid: 'signup-form' },
    field('User name', 'name', { required: true, pattern: '[a-z0-9\\-]{1,63}', autocomplete: 'username', testid: 'signup-name', help: 'a-z, 0-9 and -, at most 63.' }),
    h('fieldset', h('legend', 'Account type'),
      h('label.choice', h('input', { type: 'radio', name: 'role', value: 'buyer', checked: true, testid: 'signup-role-buyer' }), 'Buyer: runs machines on providers\' RMs'),
      h('label.choice', h('input', { type: 'radio', name: 'role', value: 'provider', testid: 'signup-role-provider' }), 'Provider: sells the capacity of RMs')),
    field('Password', 'password', { type: 'password', required: true, autocomplete: 'new-password', testid: 'signup-password', help: '8 characters or more.' }),
    field('Password again', 'password2', { type: 'password', required: true, autocomplete: 'new-password', testid: 'signup-password2' }),
    h('div.buttons', submit));
  form.addEventListener('submit', async e => {
    e.preventDefault();
    msg.replaceChildren();
    const v = { name: form.elements.name.value.trim(), role: form.elements.role.value, password: form.elements.password.value };
    if (v.password !== form.elements.password2.value) {
      msg.appendChild(notice('error', 'The two passwords differ.', 'signup-error'));
      return;
    }
    busy(submit, true);
    try {
      await api('POST', '/v1/signup', v, { auth: false });
      const r = await api('POST', '/v1/login', { user: v.name, password: v.password }, { auth: false });
      session.signIn(r.token, { user: r.user, role: r.role, expires_ms: r.expires_ms });
      location.hash = session.homeOf(r.role);
    } catch (err) {
      msg.appendChild(notice('error', err.message, 'signup-error'));
      busy(submit, false);
    }
  });
  ctx.main.replaceChildren(h('section.login', h('h1', 'Sign up'), msg, h('div.card', form),
    h('p', 'Already have an account? ', h('a', { href: '#/login' }, 'Log in'), '.')));
}
