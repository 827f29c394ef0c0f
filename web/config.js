/* Portcullis console: the configuration pages — children (enrolment, approval, removal,
 * commands), settings (ranges, inline refusals), policy and anti-spam rules, areas, component
 * updates and the MTA retry timetable. Needs app.js. */
'use strict';

/* ================================ children (R7.1, R7.4) =================================== */
const CHILDREN_REFRESH_MS = 5000;
PAGES.children = async (view) => {
  view.append(pageHead('Children', 'enrolment, approval, removal and commands'));
  const out = el('div', { testid: 'enrol-result' });
  const nameIn = el('input', { name: 'name', placeholder: 'child name', required: true, testid: 'enrol-name', pattern: '[A-Za-z0-9._\\-]+' });
  const form = el('form', { class: 'inline', testid: 'enrol-form' },
    el('label', {}, 'New child', nameIn),
    actBtn('admin', 'Make enrolment token', { type: 'submit', class: 'primary', testid: 'enrol-submit' }));
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    if (!can('admin')) return;
    try {
      const r = await api('POST', '/children', { name: nameIn.value.trim() });
      clear(out).append(el('div', { class: 'panel' }, el('h3', {}, 'Put these lines in ' + nameIn.value.trim() + "'s child.conf (the token works once, within 24 h):"),
        el('pre', { class: 'token', testid: 'enrol-token' }, r.child_conf || Object.entries(r).filter(([, v]) => typeof v !== 'object')
          .map(([k, v]) => k + ' = ' + v).join('\n'))));
      nameIn.value = '';
      await load();
    } catch (e) { clear(out).append(errorBox(e)); }
  });
  const list = el('div', { testid: 'children-list' });
  view.append(el('div', { class: 'panel' }, form, out), el('div', { class: 'panel' }, list));

  async function cmd(name, c) {
    const r = await api('POST', '/children/' + enc(name) + '/commands/' + c);
    const d = r.detail;
    toast(name + ': ' + c + ' — ' + (r.ok === false ? 'failed' : 'done') + (d ? ': ' + (typeof d === 'object' ? JSON.stringify(d) : d) : ''));
  }
  /* the fingerprint being typed for a pending child survives the page's refresh */
  const typedFp = {};
  function approveFp(c) {
    const i = el('input', { class: 'mono', placeholder: 'key fingerprint from the child\'s log', size: 42,
      testid: 'approve-fp-' + slug(c.name), disabled: !can('admin') });
    i.value = typedFp[c.name] || '';
    i.addEventListener('input', () => { typedFp[c.name] = i.value; });
    return i;
  }
  async function load() {
    let data;
    try { data = await api('GET', '/children'); } catch (e) { clear(list).append(errorBox(e)); return; }
    if (list.querySelector('[data-armed="1"]')) return;   /* a removal waits for its second click */
    const rows = listOf(data, 'children');
    clear(list).append(table([
      { label: 'Name', fmt: c => el('strong', {}, c.name) },
      { label: 'Enrolment', fmt: c => badge(c.enrolment || c.status) },
      { label: 'State', fmt: c => badge(c.state) },
      { label: 'Address', key: 'address', cls: 'mono' },
      { label: 'Key', fmt: c => el('span', { class: 'mono' }, c.key_fingerprint || c.public_key_fingerprint || '—') },
      { label: 'Software', key: 'software_version' },
      { label: 'Config', fmt: c => fmtValue(c.config_version !== undefined ? c.config_version : c.applied_config_version) },
      { label: 'Last seen', fmt: c => fmtTime(c.last_heartbeat || c.last_seen) },
      { label: 'Actions', fmt: c => el('div', { class: 'actions' },
        /* R8.3: the administrator types the fingerprint the child logged; the parent compares */
        (c.enrolment || c.status) === 'pending' ? approveFp(c) : null,
        (c.enrolment || c.status) === 'pending' ? actBtn('admin', 'Approve', { class: 'primary', testid: 'approve-' + slug(c.name) }, async () => {
          const fp = document.querySelector('[data-testid="approve-fp-' + slug(c.name) + '"]').value.trim();
          await api('POST', '/children/' + enc(c.name) + '/approve', { fingerprint: fp }); toast(c.name + ' approved'); await load(); }) : null,
        (c.enrolment || c.status) === 'pending' ? null : ['flush', 'reload', 'purge', 'apply-mta'].map(k => actBtn('operator', k, { testid: 'cmd-' + k + '-' + slug(c.name) }, () => cmd(c.name, k))),
        confirmBtn('admin', 'Remove', { testid: 'remove-' + slug(c.name) }, async () => {
          await api('DELETE', '/children/' + enc(c.name)); toast(c.name + ' removed'); await load(); })) },
    ], rows, { testid: 'children-table', rowId: c => 'children-row-' + slug(c.name), empty: 'No children.',
      rowData: c => ({ state: c.state || '', enrolment: c.enrolment || '' }) }));
  }
  /* refreshed, so an approved child is seen coming up */
  every(CHILDREN_REFRESH_MS, load);
};

/* ================================ settings (R6) =========================================== */
PAGES.settings = async (view) => {
  view.append(pageHead('Settings', 'every change makes a new configuration version that the children apply'));
  const filter = el('input', { placeholder: 'filter (key or text)', testid: 'settings-filter' });
  const ver = el('span', { class: 'muted', testid: 'settings-version' });
  const box = el('div', { testid: 'settings-list' });
  view.append(el('div', { class: 'panel' }, el('div', { class: 'inline' }, filter, ' ', ver), box));
  const data = await api('GET', '/settings');
  const rows = listOf(data, 'settings');
  ver.textContent = 'configuration version ' + fmtValue(data.config_version);

  const range = s => s.type === 'integer' || s.type === 'int' ? fmtNum(s.min) + ' … ' + fmtNum(s.max) + (s.unit ? ' ' + s.unit : '')
    : s.type === 'boolean' || s.type === 'bool' ? 'true / false' : (s.unit || 'text');
  const editor = s => {
    const id = slug(s.key);
    let input;
    if (s.type === 'boolean' || s.type === 'bool') {
      input = el('select', { testid: 'setting-input-' + id, name: s.key }, el('option', { value: 'true' }, 'true'), el('option', { value: 'false' }, 'false'));
      input.value = String(s.value);
    } else {
      input = el('input', { testid: 'setting-input-' + id, name: s.key, value: fmtValue(s.value), size: s.type === 'integer' ? 12 : 40,
        inputmode: s.type === 'integer' ? 'numeric' : null });
    }
    input.disabled = !can('admin');
    const msg = el('span', { class: 'field-error', role: 'alert', testid: 'setting-error-' + id });
    const save = actBtn('admin', 'Save', { testid: 'setting-save-' + id }, async () => {
      msg.textContent = ''; msg.className = 'field-error'; input.classList.remove('invalid');
      try {
        const r = await api('PUT', '/settings/' + enc(s.key), { value: input.value });
        s.value = input.value;
        msg.className = 'field-ok';
        msg.dataset.testid = 'setting-ok-' + id;
        msg.textContent = 'saved' + (r.config_version !== undefined ? ': configuration version ' + r.config_version : '');
        if (r.config_version !== undefined) ver.textContent = 'configuration version ' + r.config_version;
      } catch (e) {
        input.classList.add('invalid');
        msg.dataset.testid = 'setting-error-' + id;
        msg.textContent = e.message;           /* the parent's refusal, inline beside the field */
      }
    });
    input.addEventListener('keydown', ev => { if (ev.key === 'Enter') { ev.preventDefault(); save.click(); } });
    return el('div', {}, el('div', { class: 'actions' }, input, save), msg);
  };
  const render = () => {
    const f = filter.value.trim().toLowerCase();
    const shown = rows.filter(s => !f || s.key.toLowerCase().includes(f) || String(s.description || '').toLowerCase().includes(f));
    clear(box).append(table([
      { label: 'Key', fmt: s => String(s.value) === String(s.default) ? el('span', { class: 'mono' }, s.key)
        : el('span', { class: 'mono changed', title: 'differs from the default' }, s.key, ' ●') },
      { label: 'Value', fmt: editor },
      { label: 'Default', fmt: s => el('span', { class: 'mono' }, fmtValue(s.default)) },
      { label: 'Range', tid: s => 'setting-range-' + slug(s.key), fmt: range },
      { label: 'Description', key: 'description' },
    ], shown, { testid: 'settings-table', rowId: s => 'setting-row-' + slug(s.key) }));
  };
  filter.addEventListener('input', render);
  render();
};

/* ================================ policy and spam rules (R5.1) ============================ */
function condText(c) { return (c.negate ? 'not ' : '') + c.kind + (c.value ? ' ' + c.value : ''); }
function actText(a) { return a.kind + (a.arg ? ' ' + a.arg : ''); }
/* "kind value" per line → [{kind, value, negate}] / [{kind, arg}] */
function parseLines(text, argKey) {
  return text.split('\n').map(l => l.trim()).filter(Boolean).map(l => {
    let negate = false;
    if (argKey === 'value' && /^not\s+/i.test(l)) { negate = true; l = l.replace(/^not\s+/i, ''); }
    const sp = l.search(/\s/);
    const o = { kind: sp < 0 ? l : l.slice(0, sp) };
    o[argKey] = sp < 0 ? '' : l.slice(sp + 1).trim();
    if (argKey === 'value') o.negate = negate;
    return o;
  });
}

PAGES.policy = async (view) => {
  view.append(pageHead('Policy rules', 'evaluated top to bottom; the first matching rule decides'));
  const ver = el('span', { class: 'muted', testid: 'policy-version' });
  const list = el('div', { testid: 'policy-list' });
  const formMsg = el('span', { class: 'field-error', role: 'alert', testid: 'policy-error' });
  const f = {
    name: el('input', { testid: 'policy-name', required: true, size: 18 }),
    position: el('input', { testid: 'policy-position', size: 4, placeholder: 'last' }),
    scope: el('select', { testid: 'policy-scope' }, ['any', 'inbound', 'outbound'].map(s => el('option', { value: s }, s))),
    match: el('select', { testid: 'policy-match' }, ['all', 'any'].map(s => el('option', { value: s }, s))),
    domains: el('input', { testid: 'policy-domains', size: 18, placeholder: 'a.example, b.example' }),
    conditions: el('textarea', { testid: 'policy-conditions', rows: 3, cols: 34, placeholder: 'virus_found\nnot spam_score 5' }),
    actions: el('textarea', { testid: 'policy-actions', rows: 3, cols: 28, placeholder: 'quarantine Default quarantine' }),
  };
  const form = el('form', { class: 'inline', testid: 'policy-form' },
    el('label', {}, 'Name', f.name), el('label', {}, 'Position', f.position), el('label', {}, 'Scope', f.scope),
    el('label', {}, 'Match', f.match), el('label', {}, 'Domains', f.domains),
    el('label', {}, 'Conditions (kind value, one a line)', f.conditions), el('label', {}, 'Actions (kind arg, one a line)', f.actions),
    actBtn('admin', 'Add rule', { type: 'submit', class: 'primary', testid: 'policy-add' }), formMsg);
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    formMsg.textContent = '';
    const body = { name: f.name.value.trim(), scope: f.scope.value, match: f.match.value,
      domains: f.domains.value.split(',').map(s => s.trim()).filter(Boolean),
      conditions: parseLines(f.conditions.value, 'value'), actions: parseLines(f.actions.value, 'arg') };
    if (f.position.value.trim()) body.position = Number(f.position.value);
    try {
      const r = await api('POST', '/policy/rules', body);
      toast('rule added' + (r.config_version ? ': configuration version ' + r.config_version : ''));
      f.name.value = ''; f.conditions.value = ''; f.actions.value = '';
      await load();
    } catch (e) { formMsg.textContent = e.message; }
  });
  const spam = el('div', { testid: 'spam-list' });
  view.append(el('div', { class: 'panel' }, ver, list), el('div', { class: 'panel' }, el('h2', {}, 'Add a rule'), form),
    el('div', { class: 'panel' }, el('h2', {}, 'Anti-spam rules (weighted)'), spam));

  /* R8.9: viruses and scan exceptions are delivered only by a rule naming them with deliver */
  function deliversVerdicts(r) {
    if (!(r.actions || []).some(a => a.kind === 'deliver')) return '';
    const named = (r.conditions || []).filter(c => !c.negate).map(c => c.kind);
    return [named.includes('virus_found') ? 'viruses' : '', named.includes('scan_exception') ? 'scan exceptions' : '']
      .filter(Boolean).join(' and ');
  }
  async function put(name, body) {
    const r = await api('PUT', '/policy/rules/' + enc(name), body);
    toast(name + ' changed' + (r.config_version ? ': configuration version ' + r.config_version : ''));
    await load();
  }
  async function load() {
    const data = await api('GET', '/policy/rules');
    const rules = listOf(data, 'rules');
    ver.textContent = 'configuration version ' + fmtValue(data.config_version);
    clear(list).append(table([
      { label: '#', num: true, key: 'position' },
      { label: 'Name', fmt: r => el('div', {}, el('strong', {}, r.name), deliversVerdicts(r)
        ? el('div', { class: 'badge bad', testid: 'policy-floor-' + slug(r.name), title: 'R8.9: only a rule like this one lets such mail through' },
          'delivers ' + deliversVerdicts(r)) : null) },
      { label: 'Enabled', fmt: r => badge(r.enabled ? 'enabled' : 'disabled') },
      { label: 'Scope', fmt: r => r.scope + ((r.domains || []).length ? ': ' + r.domains.join(', ') : '') },
      { label: 'Match', key: 'match' },
      { label: 'Conditions', fmt: r => el('div', { class: 'mono' }, (r.conditions || []).map(c => el('div', {}, condText(c)))) },
      { label: 'Actions', fmt: r => el('div', { class: 'mono' }, (r.actions || []).map(a => el('div', {}, actText(a)))) },
      { label: '', fmt: r => el('div', { class: 'actions' },
        actBtn('admin', '↑', { title: 'move up', testid: 'policy-up-' + slug(r.name), disabled: r.position <= 1 }, () => put(r.name, { position: r.position - 1 })),
        actBtn('admin', '↓', { title: 'move down', testid: 'policy-down-' + slug(r.name), disabled: r.position >= rules.length }, () => put(r.name, { position: r.position + 1 })),
        actBtn('admin', r.enabled ? 'Disable' : 'Enable', { testid: 'policy-toggle-' + slug(r.name) }, () => put(r.name, { enabled: !r.enabled })),
        confirmBtn('admin', 'Delete', { testid: 'policy-delete-' + slug(r.name) }, async () => {
          await api('DELETE', '/policy/rules/' + enc(r.name)); toast(r.name + ' deleted'); await load(); })) },
    ], rules, { testid: 'policy-table', rowId: r => 'policy-row-' + slug(r.name) }));
  }
  async function loadSpam() {
    let data;
    try { data = await api('GET', '/spam/rules'); } catch (e) { clear(spam).append(errorBox(e)); return; }
    const sn = el('input', { size: 14, testid: 'spam-name' }), sk = el('select', { testid: 'spam-kind' },
      ['header_regex', 'header_missing', 'body_regex', 'ers_listed', 'web_reputation'].map(k => el('option', { value: k }, k)));
    const sv = el('input', { size: 24, testid: 'spam-value' }), ss = el('input', { size: 5, testid: 'spam-score', value: '1' });
    const smsg = el('span', { class: 'field-error', testid: 'spam-error' });
    const sf = el('form', { class: 'inline' }, el('label', {}, 'Name', sn), el('label', {}, 'Kind', sk), el('label', {}, 'Value', sv),
      el('label', {}, 'Score', ss), actBtn('admin', 'Add', { type: 'submit', testid: 'spam-add' }), smsg);
    sf.addEventListener('submit', async (ev) => {
      ev.preventDefault(); smsg.textContent = '';
      try { await api('POST', '/spam/rules', { name: sn.value.trim(), kind: sk.value, value: sv.value, score: Number(ss.value) }); await loadSpam(); }
      catch (e) { smsg.textContent = e.message; }
    });
    clear(spam).append(table([
      { label: '#', num: true, key: 'position' }, { label: 'Name', key: 'name' }, { label: 'Kind', key: 'kind' },
      { label: 'Value', key: 'value', cls: 'mono' }, { label: 'Score', num: true, key: 'score' },
      { label: 'Enabled', fmt: r => badge(r.enabled ? 'enabled' : 'disabled') },
      { label: '', fmt: r => el('div', { class: 'actions' },
        actBtn('admin', r.enabled ? 'Disable' : 'Enable', {}, async () => { await api('PUT', '/spam/rules/' + enc(r.name), { enabled: !r.enabled }); await loadSpam(); }),
        confirmBtn('admin', 'Delete', {}, async () => { await api('DELETE', '/spam/rules/' + enc(r.name)); await loadSpam(); })) },
    ], listOf(data, 'rules'), { testid: 'spam-table' }), sf);
  }
  await load();
  await loadSpam();
};

/* ================================ areas (R5.2) ============================================ */
PAGES.areas = async (view) => {
  view.append(pageHead('Quarantine and archive areas', 'retention 1 … 60 days'));
  const list = el('div', { testid: 'areas-list' });
  const name = el('input', { testid: 'area-name', required: true, size: 20 });
  const kind = el('select', { testid: 'area-kind' }, el('option', { value: 'quarantine' }, 'quarantine'), el('option', { value: 'archive' }, 'archive'));
  const days = el('input', { testid: 'area-retention', size: 4, value: '15' });
  const msg = el('span', { class: 'field-error', role: 'alert', testid: 'area-error' });
  const form = el('form', { class: 'inline', testid: 'area-form' }, el('label', {}, 'Name', name), el('label', {}, 'Kind', kind),
    el('label', {}, 'Retention (days)', days), actBtn('admin', 'Add area', { type: 'submit', class: 'primary', testid: 'area-add' }), msg);
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault(); msg.textContent = '';
    try {
      await api('POST', '/areas', { name: name.value.trim(), kind: kind.value, retention_days: Number(days.value) });
      name.value = ''; await load();
    } catch (e) { msg.textContent = e.message; }
  });
  view.append(el('div', { class: 'panel' }, list), el('div', { class: 'panel' }, el('h2', {}, 'Add an area'), form));
  async function load() {
    const data = await api('GET', '/areas');
    clear(list).append(table([
      { label: 'Name', fmt: a => el('strong', {}, a.name) },
      { label: 'Kind', fmt: a => badge(a.kind) },
      { label: 'Retention', fmt: a => {
        const inp = el('input', { size: 4, value: String(a.retention_days), disabled: !can('admin'), testid: 'area-days-' + slug(a.name) });
        const m = el('span', { class: 'field-error', testid: 'area-days-error-' + slug(a.name) });
        return el('div', {}, el('div', { class: 'actions' }, inp, ' days ',
          actBtn('admin', 'Save', { testid: 'area-save-' + slug(a.name) }, async () => {
            m.textContent = '';
            try { await api('PUT', '/areas/' + enc(a.name), { retention_days: Number(inp.value) }); toast(a.name + ': retention ' + inp.value + ' days'); }
            catch (e) { m.textContent = e.message; }
          })), m); } },
      { label: 'Used by rules', fmt: a => (a.used_by || []).join(', ') || el('span', { class: 'muted' }, 'none') },
      { label: '', fmt: a => { const m = el('span', { class: 'field-error' });
        return el('div', {}, confirmBtn('admin', 'Delete', { testid: 'area-delete-' + slug(a.name) }, async () => {
          try { await api('DELETE', '/areas/' + enc(a.name)); await load(); } catch (e) { m.textContent = e.message; } }), m); } },
    ], listOf(data, 'areas'), { testid: 'areas-table', rowId: a => 'area-row-' + slug(a.name) }));
  }
  await load();
};

/* ================================ updates (R3.7) ========================================== */
PAGES.updates = async (view) => {
  view.append(pageHead('Component updates', 'imported packages; "Use" makes one current and the children install it'));
  const list = el('div', { testid: 'updates-list' });
  view.append(el('div', { class: 'panel' }, list));
  async function load() {
    const data = await api('GET', '/updates');
    clear(list).append(table([
      { label: 'Component', key: 'component' }, { label: 'Version', key: 'version', cls: 'mono' },
      { label: 'Current', fmt: u => u.current ? badge('current') : '' },
      { label: 'Size', num: true, fmt: u => fmtBytes(u.size) }, { label: 'Files', num: true, key: 'files' },
      { label: 'SHA-256', fmt: u => el('span', { class: 'mono', title: u.sha256 }, String(u.sha256 || '').slice(0, 16) + '…') },
      { label: 'Imported', fmt: u => fmtTime(u.imported_at) },
      { label: '', fmt: u => u.current ? '' : actBtn('admin', 'Use', { testid: 'update-use-' + slug(u.component) + '-' + slug(u.version) }, async () => {
        const r = await api('POST', '/updates/' + enc(u.component) + '/' + enc(u.version) + '/use');
        toast(u.component + ' ' + u.version + ' is current' + (r.config_version ? ': configuration version ' + r.config_version : ''));
        await load(); }) },
    ], listOf(data, 'components', 'updates'), { testid: 'updates-table', empty: 'No component packages imported (portcullis update import).' }));
  }
  await load();
};

/* ================================ MTA retry timetable (R4) ================================ */
PAGES.mta = async (view) => {
  view.append(pageHead('Upstream MTA retry timetable', 'when the upstream Postfix retries a message the children could not take (mta.* settings)'));
  const fa = el('input', { size: 6, value: '09:15', testid: 'mta-failure-at', placeholder: 'HH:MM' });
  const fr = el('input', { size: 6, value: '5m', testid: 'mta-first-run', placeholder: '5m' });
  const form = el('form', { class: 'inline', testid: 'mta-form' }, el('label', {}, 'First failure at (HH:MM)', fa),
    el('label', {}, 'First queue run after', fr), el('button', { type: 'submit', class: 'primary', testid: 'mta-show' }, 'Show'));
  const box = el('div', { testid: 'mta-timetable' });
  view.append(el('div', { class: 'panel' }, form, box));
  const clock = s => { const d = new Date(s * 1000); const days = Math.floor(s / 86400);
    return (days ? '+' + days + 'd ' : '') + d.toISOString().slice(11, 19); };
  async function load() {
    let data;
    try { data = await api('GET', '/mta' + qs({ failure_at: fa.value.trim(), first_run_after: fr.value.trim() })); }
    catch (e) { clear(box).append(errorBox(e)); return; }
    const start = Number(data.failure_at_s || 0);
    clear(box).append(
      el('h2', {}, 'Settings (configuration version ' + fmtValue(data.config_version) + ')'),
      table([{ label: 'Setting', fmt: r => el('span', { class: 'mono' }, 'mta.' + r.k) }, { label: 'Value', num: true, fmt: r => fmtDuration(r.v) }],
        Object.entries(data.settings || {}).map(([k, v]) => ({ k, v })), { testid: 'mta-settings' }),
      el('h2', {}, 'Delivery attempts after a failure at ' + clock(start)),
      table([
        { label: 'Retry', num: true, key: 'retry' },
        { label: 'Clock time', fmt: r => clock(start + Number(r.after_failure_s)) },
        { label: 'After the failure', num: true, fmt: r => fmtDuration(r.after_failure_s) },
        { label: 'Back-off then', num: true, fmt: r => fmtDuration(r.backoff_s) },
        { label: 'If this fails', fmt: r => r.bounce_if_failed ? badge('bounced') : 'retried' },
      ], listOf(data, 'retries'), { testid: 'mta-table', rowId: r => 'mta-retry-' + r.retry }));
  }
  form.addEventListener('submit', ev => { ev.preventDefault(); load(); });
  await load();
};
