/* Portcullis console: the mail pages — quarantine and archive search with show, download,
 * release and delete (R5.4), and the log searches: tracking, system events, audit,
 * notifications (R7.3). Needs app.js. */
'use strict';

/* ================================ quarantine / archive search (R5.4) ====================== */
function verdictsText(v) {
  if (!v) return '—';
  if (Array.isArray(v)) return v.map(x => typeof x === 'object' ? (x.engine ? x.engine + ':' : '') + (x.result || '') + (x.detail || x.name ? ' (' + (x.detail || x.name) + ')' : '') : String(x)).join(', ');
  return fmtValue(v);
}

function storedPage(kind) {
  return async (view) => {
    const title = kind === 'quarantine' ? 'Quarantine' : 'Archive';
    view.append(pageHead(title, 'search the stored messages of every child'));
    const fields = [
      ['sender', 'Sender', 22], ['recipient', 'Recipient', 22], ['subject', 'Subject contains', 20], ['child', 'Child', 8],
      ['area', 'Area', 14], ['rule', 'Rule', 12], ['verdict', 'Verdict (av:virus)', 12], ['since', 'Since (ISO time)', 16], ['until', 'Until', 16],
    ];
    const inputs = {};
    const form = el('form', { class: 'inline', testid: kind + '-search-form' });
    for (const [k, label, size] of fields) {
      inputs[k] = el('input', { name: k, size, testid: kind + '-filter-' + k });
      form.append(el('label', {}, label, inputs[k]));
    }
    inputs.state = el('select', { name: 'state', testid: kind + '-filter-state' },
      ['', 'stored', 'removed'].map(s => el('option', { value: s }, s || 'stored (current)')));
    form.append(el('label', {}, 'State', inputs.state),
      el('button', { type: 'submit', class: 'primary', testid: kind + '-search' }, 'Search'));
    const results = el('div', { testid: kind + '-results' });
    const more = el('button', { type: 'button', hidden: true, testid: kind + '-more' }, 'More');
    const detail = el('div', { testid: kind + '-detail' });
    const count = el('span', { class: 'muted', testid: kind + '-count' });
    view.append(el('div', { class: 'panel' }, form), el('div', { class: 'panel' }, count, results, more), detail);

    let rows = [], next = null;
    const base = ref => '/stored/' + kind + '/' + enc(ref);
    const render = () => {
      count.textContent = rows.length + ' message' + (rows.length === 1 ? '' : 's') + (next ? ' (more available)' : '');
      clear(results).append(table([
        { label: 'Received', cls: 'nowrap', fmt: m => fmtTime(m.received_at) },
        { label: 'Child', key: 'child' },
        { label: 'Sender', key: 'sender', cls: 'mono' },
        { label: 'Recipients', fmt: m => fmtValue(m.recipients), cls: 'mono' },
        { label: 'Subject', tid: m => kind + '-subject-' + m.id, fmt: m => m.subject || '' },
        { label: 'Verdicts', fmt: m => verdictsText(m.verdicts) },
        { label: 'Rule', key: 'rule' },
        { label: 'Area', key: 'area' },
        { label: 'Size', num: true, cls: 'nowrap', fmt: m => fmtBytes(m.size) },
        { label: 'State', fmt: m => badge(m.state, kind + '-state-' + m.id) },
        { label: '', fmt: m => rowActions(m) },
      ], rows, { testid: kind + '-table', empty: 'No messages match.', rowId: m => kind + '-row-' + m.id,
        rowData: m => ({ fileId: m.file_id || '', subject: m.subject || '', id: String(m.id) }) }));
      more.hidden = !next;
    };
    const rowActions = m => {
      const ref = String(m.id);
      const live = m.state === 'stored' || m.state === undefined;
      return el('div', { class: 'actions' },
        actBtn('operator', 'Show', { testid: kind + '-show-' + m.id }, async () => {
          const r = await api('GET', base(ref));
          clear(detail).append(el('div', { class: 'panel', testid: kind + '-shown' }, el('h2', {}, 'Message ' + ref + ' — ' + (r.subject || '')),
            kvTable(Object.fromEntries(Object.entries(r).filter(([k]) => k !== 'headers'))),
            el('h3', {}, 'Headers (from the child)'), el('pre', { class: 'headers' }, r.headers || '(not available)')));
          detail.scrollIntoView({ block: 'nearest' });
        }),
        /* a plain link: the browser downloads with the session cookie (GET needs no header) */
        can('operator') ? el('a', { href: API + base(ref) + '/raw', download: (m.file_id || ref) + '.eml', testid: kind + '-download-' + m.id,
          class: 'btn' }, 'Download') : actBtn('operator', 'Download'),
        kind === 'quarantine' && live ? actBtn('operator', 'Release', { class: 'primary', testid: 'quarantine-release-' + m.id }, async () => {
          const r = await api('POST', base(ref) + '/release');
          m.state = 'released';
          toast('released: ' + (r.message || r.result || 'delivered to the original recipients'));
          render();
        }) : null,
        live ? confirmBtn('operator', 'Delete', { testid: kind + '-delete-' + m.id }, async () => {
          const r = await api('DELETE', base(ref));
          m.state = 'deleted';
          toast('deleted: ' + (r.message || r.result || 'removed from the child'));
          render();
        }) : null);
    };
    const query = (after) => {
      const q = { limit: LIST_LIMIT, after };
      for (const [k] of fields) q[k] = inputs[k].value.trim();
      q.state = inputs.state.value;
      return '/stored/' + kind + qs(q);
    };
    let seq = 0;
    const search = async () => {
      const q = query(), mine = ++seq;
      try {
        const r = await api('GET', q);
        if (mine !== seq) return;    /* a newer search was started: its answer wins */
        rows = listOf(r, 'messages'); next = r.next || null;
        render();
        results.dataset.query = q;   /* which search the rows answer (tests wait on it) */
      } catch (e) { clear(results).append(errorBox(e)); rows = []; next = null; more.hidden = true; }
    };
    form.addEventListener('submit', ev => { ev.preventDefault(); search(); });
    more.addEventListener('click', async () => {
      try { const r = await api('GET', query(next)); rows = rows.concat(listOf(r, 'messages')); next = r.next || null; render(); }
      catch (e) { toast(e.message, true); }
    });
    await search();
  };
}
PAGES.quarantine = storedPage('quarantine');
PAGES.archive = storedPage('archive');

/* ================================ logs (R7.3, R1.6, audit) ================================ */
const LOG_TABS = {
  tracking: { label: 'Message tracking', path: '/logs/tracking', key: 'records',
    filters: [['sender', 'Sender', 20], ['recipient', 'Recipient', 20], ['child', 'Child', 8], ['verdict', 'Verdict', 10], ['action', 'Action', 10], ['since', 'Since', 16], ['until', 'Until', 16]],
    cols: [{ label: 'Received', cls: 'nowrap', fmt: r => fmtTime(r.received_at) }, { label: 'Child', key: 'child' }, { label: 'Sender', key: 'sender', cls: 'mono' },
      { label: 'Recipients', fmt: r => fmtValue(r.recipients), cls: 'mono' }, { label: 'Subject', key: 'subject' },
      { label: 'Verdicts', fmt: r => verdictsText(r.verdicts) }, { label: 'Rule', key: 'rule' }, { label: 'Action', fmt: r => badge(r.action) },
      { label: 'Size', num: true, cls: 'nowrap', fmt: r => fmtBytes(r.size) }, { label: 'Scan ms', num: true, key: 'ms_scan' }, { label: 'Reply', key: 'reply', cls: 'mono' }] },
  events: { label: 'System events', path: '/logs/events', key: 'events',
    filters: [['category', 'Category', 10, 'all'], ['child', 'Child', 8], ['since', 'Since', 16], ['until', 'Until', 16]],
    cols: [{ label: 'At', cls: 'nowrap', fmt: r => fmtTime(r.at) }, { label: 'Child', fmt: r => r.child || 'parent' }, { label: 'Category', key: 'category' },
      { label: 'Severity', fmt: r => badge(r.severity) }, { label: 'Message', key: 'message' }] },
  audit: { label: 'Audit', path: '/logs/audit', key: 'entries',
    filters: [['actor', 'Actor', 10], ['action', 'Action', 14], ['since', 'Since', 16], ['until', 'Until', 16]],
    cols: [{ label: 'At', cls: 'nowrap', fmt: r => fmtTime(r.at) }, { label: 'Actor', key: 'actor' },
      { label: 'Action', key: 'action' }, { label: 'Target', key: 'target', cls: 'mono' }, { label: 'Result', fmt: r => badge(r.result) },
      { label: 'Detail', key: 'detail' }] },
  notifications: { label: 'Notifications', path: '/notifications', key: 'notifications', filters: [], cols: null },
};

PAGES.logs = async (view, args) => {
  const which = LOG_TABS[args[0]] ? args[0] : 'tracking';
  view.append(pageHead('Logs'));
  view.append(el('div', { class: 'tabs' }, Object.entries(LOG_TABS).map(([k, t]) =>
    el('button', { type: 'button', class: k === which ? 'active' : '', testid: 'logs-tab-' + k, onclick: () => { location.hash = '#/logs/' + k; } }, t.label))));
  const t = LOG_TABS[which];
  const inputs = {};
  const form = el('form', { class: 'inline', testid: 'logs-form' });
  for (const [k, label, size, def] of t.filters) {
    inputs[k] = el('input', { name: k, size, value: def || '', testid: 'logs-filter-' + k });
    form.append(el('label', {}, label, inputs[k]));
  }
  form.append(el('button', { type: 'submit', class: 'primary', testid: 'logs-search' }, 'Search'));
  const results = el('div', { testid: 'logs-results' });
  const more = el('button', { type: 'button', hidden: true, testid: 'logs-more' }, 'More');
  view.append(el('div', { class: 'panel' }, form), el('div', { class: 'panel' }, results, more));
  let rows = [], next = null;
  const query = after => {
    const q = { limit: t.filters.length ? LIST_LIMIT : undefined, after };
    for (const k of Object.keys(inputs)) q[k] = inputs[k].value.trim();
    return t.path + qs(q);
  };
  const render = () => {
    clear(results).append(t.cols ? table(t.cols, rows, { testid: 'logs-table', empty: 'Nothing matches.' }) : autoTable(rows, 'logs-table'));
    more.hidden = !next;
  };
  let seq = 0;
  const search = async (after) => {
    const mine = ++seq;
    try {
      const r = await api('GET', query(after));
      if (mine !== seq) return;    /* a newer search was started */
      const got = listOf(r, t.key, 'records', 'events', 'entries', 'notifications');
      rows = after ? rows.concat(got) : got; next = r.next || null;
      render();
    } catch (e) { clear(results).append(errorBox(e)); }
  };
  form.addEventListener('submit', ev => { ev.preventDefault(); search(); });
  more.addEventListener('click', () => search(next));
  await search();
};
