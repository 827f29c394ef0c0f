/* Portcullis console: users (admins) and each user's own API tokens and sessions. Needs app.js. */
'use strict';

/* ================================ users and API tokens ==================================== */
PAGES.users = async (view) => {
  view.append(pageHead('Users and API tokens', 'roles: viewer (read), operator (+ act on mail and children), admin (+ configuration, enrolment, users)'));
  const users = el('div', { testid: 'users-list' });
  const tokens = el('div', { testid: 'tokens-list' });
  if (can('admin')) {
    const un = el('input', { testid: 'user-name', size: 14, autocomplete: 'off' });
    const ur = el('select', { testid: 'user-role' }, Object.keys(ROLES).map(r => el('option', { value: r }, r)));
    const up = el('input', { testid: 'user-password', type: 'password', size: 16, autocomplete: 'new-password' });
    const um = el('span', { class: 'field-error', role: 'alert', testid: 'user-error' });
    const uf = el('form', { class: 'inline', testid: 'user-form' }, el('label', {}, 'User', un), el('label', {}, 'Role', ur),
      el('label', {}, 'Password', up), actBtn('admin', 'Add user', { type: 'submit', class: 'primary', testid: 'user-add' }), um);
    uf.addEventListener('submit', async ev => {
      ev.preventDefault(); um.textContent = '';
      try { await api('POST', '/users', { name: un.value.trim(), role: ur.value, password: up.value }); un.value = ''; up.value = ''; await loadUsers(); }
      catch (e) { um.textContent = e.message; }
    });
    view.append(el('div', { class: 'panel' }, el('h2', {}, 'Users'), users, uf));
  }
  const tl = el('input', { testid: 'token-label', size: 18, placeholder: 'what it is for' });
  const th = el('input', { testid: 'token-ttl', size: 5, placeholder: 'default' });
  const tm = el('div', { testid: 'token-result' });
  const tf = el('form', { class: 'inline', testid: 'token-form' }, el('label', {}, 'Label', tl), el('label', {}, 'Valid for (hours)', th),
    el('button', { type: 'submit', testid: 'token-add' }, 'Make token'), tm);
  tf.addEventListener('submit', async ev => {
    ev.preventDefault(); clear(tm);
    const body = { label: tl.value.trim() };
    if (th.value.trim()) body.ttl_hours = Number(th.value);
    try {
      const r = await api('POST', '/tokens', body);
      tm.append(el('div', { class: 'token', testid: 'token-secret' }, 'Bearer token, shown only now (expires ' + fmtTime(r.expires_at) + '): ' + r.token));
      tl.value = '';
      await loadTokens();
    } catch (e) { tm.append(el('span', { class: 'field-error' }, e.message)); }
  });
  view.append(el('div', { class: 'panel' }, el('h2', {}, 'Your API tokens and sessions (scripts: Authorization: Bearer TOKEN)'), tokens, tf));

  async function loadUsers() {
    const u = await api('GET', '/users');
    clear(users).append(table([
      { label: 'User', fmt: x => el('strong', {}, x.name) },
      { label: 'Role', fmt: x => {
        const sel = el('select', { disabled: x.name === state.me.user, testid: 'user-role-' + slug(x.name) }, Object.keys(ROLES).map(r => el('option', { value: r }, r)));
        sel.value = x.role;
        sel.addEventListener('change', async () => {
          try { await api('PUT', '/users/' + enc(x.name), { role: sel.value }); toast(x.name + ' is now ' + sel.value); }
          catch (e) { toast(e.message, true); sel.value = x.role; } });
        return sel; } },
      { label: 'State', fmt: x => badge(x.disabled ? 'disabled' : 'enabled') },
      { label: 'Created', fmt: x => fmtTime(x.created_at) },
      { label: 'Last log-in', fmt: x => fmtTime(x.last_login) },
      { label: '', fmt: x => x.name === state.me.user ? el('span', { class: 'muted' }, 'you') : el('div', { class: 'actions' },
        actBtn('admin', x.disabled ? 'Enable' : 'Disable', { testid: 'user-toggle-' + slug(x.name) }, async () => {
          await api('PUT', '/users/' + enc(x.name), { disabled: !x.disabled }); await loadUsers(); }),
        confirmBtn('admin', 'Delete', { testid: 'user-delete-' + slug(x.name) }, async () => { await api('DELETE', '/users/' + enc(x.name)); await loadUsers(); })) },
    ], listOf(u, 'users'), { testid: 'users-table', rowId: x => 'user-row-' + slug(x.name) }));
  }
  async function loadTokens() {
    const t = await api('GET', '/tokens');
    clear(tokens).append(table([
      { label: 'Id', num: true, key: 'id' }, { label: 'Kind', fmt: x => badge(x.kind) }, { label: 'Label', key: 'label' },
      { label: 'Created', fmt: x => fmtTime(x.created_at) }, { label: 'Expires', fmt: x => fmtTime(x.expires_at) },
      { label: 'Last used', fmt: x => fmtTime(x.last_used) },
      { label: '', fmt: x => confirmBtn('viewer', 'Revoke', { testid: 'token-revoke-' + x.id }, async () => {
        await api('DELETE', '/tokens/' + enc(x.id)); await loadTokens(); }) },
    ], listOf(t, 'tokens'), { testid: 'tokens-table', empty: 'No live tokens.' }));
  }
  if (can('admin')) await loadUsers();
  await loadTokens();
};
