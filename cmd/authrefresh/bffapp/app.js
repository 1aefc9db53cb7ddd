// The articles' product app, done the backend-for-frontend way: no token,
// no interceptor, no storage code. The BFF on this origin keeps the tokens;
// the app sends the X-CSRF header and shows a login link when a call says
// 401.
const headers = { 'X-CSRF': '1', 'Content-Type': 'application/json' };

async function call(path, init = {}) {
  const res = await fetch(path, { ...init, headers });
  const body = await res.json().catch(() => ({}));
  return { status: res.status, body };
}

const main = document.getElementById('main');
const who = document.getElementById('who');
const text = (tag, value, cls) => Object.assign(document.createElement(tag), { textContent: value, className: cls || '' });

function showLogin() {
  main.replaceChildren();
  who.replaceChildren();
  const a = text('a', 'Log in', 'login');
  a.id = 'login';
  a.href = `/bff/login?returnUrl=${encodeURIComponent(location.pathname)}`;
  main.append(a);
}

async function showProducts(logoutURL) {
  const { status, body } = await call('/api/data');
  if (status === 401) return showLogin();
  const list = document.createElement('ul');
  list.id = 'products';
  for (const p of body.items || []) list.append(text('li', `${p.name} — ${p.price}`));
  const form = document.createElement('form');
  form.id = 'create';
  form.innerHTML = '<input name="name" placeholder="name"> <input name="price" placeholder="price"> <button>Create</button>';
  const errors = text('div', '', 'error');
  errors.id = 'errors';
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    const data = new FormData(form);
    const price = Number(data.get('price'));
    const res = await call('/api/data', { method: 'POST', body: JSON.stringify({ name: data.get('name'), price: Number.isNaN(price) ? data.get('price') : price }) });
    if (res.status === 401) return showLogin();
    if (res.status === 400) {
      // The API's validation details, as the articles show them.
      errors.replaceChildren(...Object.entries(res.body.details || { error: res.body.error }).map(([k, v]) => text('div', `${k} ${v}`)));
      return;
    }
    errors.replaceChildren();
    form.reset();
    await showProducts(logoutURL);
  });
  const logout = text('button', 'Log out');
  logout.id = 'logout';
  // A navigation: the BFF ends the session and sends the browser on to
  // the provider's logout.
  logout.addEventListener('click', () => { location.href = logoutURL; });
  main.replaceChildren(list, form, errors, logout);
}

async function start() {
  const { status, body } = await call('/bff/user');
  if (status !== 200) return showLogin();
  who.textContent = `signed in as ${body.claims.name || body.claims.email || body.claims.sub}`;
  await showProducts(body.logout_url);
}

start();
