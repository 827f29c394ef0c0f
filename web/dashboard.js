/* Portcullis console: the fleet dashboard (R5.12, R6, R7.5) — every child's state, versions,
 * rates, counters, store usage against quota and reputation states, cluster totals, and the
 * throughput / verdict charts (chart.js). Needs app.js. */
'use strict';

const DASHBOARD_REFRESH_MS = 3000;   /* fleet status */
const CHART_REFRESH_MS = 10000;      /* the per-minute series change slowly */
const FLEET_PAGE = 100;              /* children per page of the table (the API pages them) */
const CHART_CHILD_LINES_MAX = 12;    /* more children: the throughput chart shows the fleet only */

/* ================================ dashboard (R5.12, R6, R7.5) ============================= */
const VERDICT_LABEL = { messages_relayed: 'relayed', messages_quarantined: 'quarantined', messages_deleted: 'deleted',
  messages_rejected: 'rejected', messages_tempfailed: 'tempfailed', viruses_found: 'viruses', scan_exceptions: 'scan exceptions' };

function quotaBar(st, testid) {
  if (!st) return el('span', { class: 'muted' }, '—');
  const used = Number(st.bytes || 0), quota = Number(st.quota_bytes || 0);
  const pct = quota > 0 ? Math.min(100, used * 100 / quota) : 0;
  const bar = el('div', { class: 'bar' + (pct >= 90 ? ' bad' : pct >= 75 ? ' warn' : ''), testid,
    title: fmtBytes(used) + ' of ' + (quota ? fmtBytes(quota) : 'no quota') + ', ' + fmtNum(st.files) + ' files',
    dataset: { used: String(used), quota: String(quota), pct: pct.toFixed(1) } },
  el('span', { style: 'width:' + pct.toFixed(1) + '%' }),
  el('em', {}, fmtBytes(used) + ' / ' + (quota ? fmtBytes(quota) : '∞') + (quota ? ' (' + pct.toFixed(0) + '%)' : '')));
  return bar;
}
function storeOf(h, kind) { return ((h && h.stores) || []).find(s => s.kind === kind); }

function patternsText(h) {
  const p = (h && h.patterns) || {};
  const list = Array.isArray(p) ? p.map(x => [x.component, x.version]) : Object.entries(p);
  // the engine's loaded signatures (ScanStats) beside the installed component versions
  const sigs = h && h.stats && h.stats.signature_version;
  if (sigs) list.unshift(['engine', sigs]);
  if (!list.length) return el('span', { class: 'muted' }, '—');
  return el('div', { class: 'mono' }, list.map(([c, v]) => el('div', {}, c + ' ' + v)));
}

function verdictCells(stats) {
  const s = stats || {};
  const short = { messages_relayed: 'rel', messages_quarantined: 'quar', messages_deleted: 'del', messages_rejected: 'rej', messages_tempfailed: 'tmp' };
  return el('div', { class: 'verdicts' },
    Object.keys(short).map(k => el('span', { title: VERDICT_LABEL[k], class: 'vc' }, el('span', { class: 'muted' }, short[k] + ' '), fmtNum(s[k] || 0))),
    el('div', { class: 'muted' }, 'viruses ' + fmtNum(s.viruses_found || 0) + ', exceptions ' + fmtNum(s.scan_exceptions || 0)));
}

PAGES.dashboard = async (view) => {
  view.append(pageHead('Fleet', 'refreshes every ' + (DASHBOARD_REFRESH_MS / 1000) + ' s'));
  const cards = el('div', { class: 'cards', testid: 'cluster-totals' });
  const stamp = el('span', { class: 'muted', testid: 'dashboard-updated' });
  const fleet = el('div', { testid: 'fleet' });
  const err = el('p', { class: 'error', testid: 'dashboard-error' });
  const tpCanvas = el('canvas', { id: 'chart-throughput', testid: 'chart-throughput' });
  const vdCanvas = el('canvas', { id: 'chart-verdicts', testid: 'chart-verdicts' });
  const acCanvas = el('canvas', { id: 'chart-actions', testid: 'chart-actions' });
  view.append(cards, err,
    el('div', { class: 'panel' }, el('h2', {}, 'Children ', stamp), fleet),
    el('div', { class: 'row' },
      el('div', { class: 'panel' }, el('h2', {}, 'Throughput: messages per minute, last hour (UTC)'), el('div', { class: 'chart-box' }, tpCanvas)),
      el('div', { class: 'panel' }, el('h2', {}, 'Verdicts per minute'), el('div', { class: 'chart-box' }, vdCanvas)),
      el('div', { class: 'panel' }, el('h2', {}, 'Outcomes per minute'), el('div', { class: 'chart-box' }, acCanvas))));

  /* the children table pages and filters on the parent (GET /status?state&name&lagging&limit&after):
   * thousands of children never travel to the browser at once */
  const filter = { name: '', state: '', lagging: false };
  let cursors = [null];   /* the `after` of each page shown so far; the last is the current */
  let lastSt = null;
  const nameIn = el('input', { type: 'search', placeholder: 'name contains', maxlength: '64', testid: 'fleet-filter-name' });
  const stateIn = el('select', { testid: 'fleet-filter-state' },
    ['', 'up', 'down', 'pending'].map(v => el('option', { value: v }, v || 'any state')));
  const lagIn = el('input', { type: 'checkbox', testid: 'fleet-filter-lagging' });
  const prev = el('button', { type: 'button', testid: 'fleet-prev' }, '← Previous');
  const next = el('button', { type: 'button', testid: 'fleet-next' }, 'Next →');
  const range = el('span', { class: 'muted', testid: 'fleet-range' });
  const pager = el('div', { class: 'inline', testid: 'fleet-pager' }, nameIn, stateIn, el('label', {}, lagIn, ' lagging only'), prev, next, range);
  const query = () => {
    const q = new URLSearchParams({ limit: String(FLEET_PAGE) });
    if (filter.name) q.set('name', filter.name);
    if (filter.state) q.set('state', filter.state);
    if (filter.lagging) q.set('lagging', 'true');
    const after = cursors[cursors.length - 1];
    if (after) q.set('after', after);
    return '/status?' + q.toString();
  };
  const refresh = async () => {
    try {
      const st = await api('GET', query());
      lastSt = st;
      err.textContent = '';
      renderTotals(cards, st);
      renderFleet(fleet, st);
      const first = (cursors.length - 1) * FLEET_PAGE;
      const shown = (st.children || []).length;
      range.textContent = shown ? (first + 1) + '–' + (first + shown) + ' of ' + fmtNum(st.matched) : 'none of ' + fmtNum(st.matched);
      prev.disabled = cursors.length <= 1;
      next.disabled = !st.next;
      stamp.textContent = 'updated ' + new Date().toLocaleTimeString('en-GB');
    } catch (e) {
      err.textContent = 'Fleet status: ' + e.message;
    }
  };
  const refilter = () => { cursors = [null]; refresh(); };
  const byName = () => { if (filter.name !== nameIn.value.trim()) { filter.name = nameIn.value.trim(); refilter(); } };
  nameIn.addEventListener('change', byName);
  nameIn.addEventListener('keydown', e => { if (e.key === 'Enter') byName(); });
  stateIn.addEventListener('change', () => { filter.state = stateIn.value; refilter(); });
  lagIn.addEventListener('change', () => { filter.lagging = lagIn.checked; refilter(); });
  next.addEventListener('click', () => { if (lastSt && lastSt.next) { cursors.push(lastSt.next); refresh(); } });
  prev.addEventListener('click', () => { if (cursors.length > 1) { cursors.pop(); refresh(); } });
  fleet.before(pager);

  const charts = makeCharts(tpCanvas, vdCanvas, acCanvas);
  let lastChart = 0;
  every(DASHBOARD_REFRESH_MS, async () => {
    await refresh();
    if (charts && Date.now() - lastChart >= CHART_REFRESH_MS) {
      lastChart = Date.now();
      try { updateCharts(charts, await api('GET', '/stats/timeseries?minutes=60')); } catch (e) {
        err.textContent = 'Charts: ' + e.message;
      }
    }
  });
};

function renderTotals(cards, st) {
  const tot = st.totals || {};   /* the parent's sums over the whole fleet, whatever the page */
  const card = (k, v, testid) => el('div', { class: 'card', testid }, el('div', { class: 'k' }, k), el('div', { class: 'v' }, v));
  clear(cards).append(
    card('Children up', fmtNum(tot.children_up) + ' / ' + fmtNum(tot.children), 'total-up'),
    card('Config version', fmtValue(st.config_version), 'cluster-config-version'),
    card('Messages / min', fmtNum(tot.messages_per_minute), 'total-mpm'),
    card('Relayed', fmtNum(tot.messages_relayed), 'total-relayed'),
    card('Quarantined', fmtNum(tot.messages_quarantined), 'total-quarantined'),
    card('Deleted', fmtNum(tot.messages_deleted), 'total-deleted'),
    card('Rejected', fmtNum(tot.messages_rejected), 'total-rejected'),
    card('Viruses', fmtNum(tot.viruses_found), 'total-viruses'));
  const stores = st.store_totals || {};
  for (const kind of ['quarantine', 'archive']) {
    if (stores[kind]) cards.append(el('div', { class: 'card', testid: 'total-' + kind },
      el('div', { class: 'k' }, kind + ' (all children)'), quotaBar(stores[kind], 'total-' + kind + '-bar')));
  }
}

function renderFleet(box, st) {
  const children = st.children || [];
  const cols = [
    { label: 'Child', fmt: c => el('div', {}, el('strong', {}, c.name), el('div', { class: 'muted mono' }, c.address || '')) },
    { label: 'State', tid: c => 'child-state-' + slug(c.name), fmt: c => el('div', {}, badge(c.state),
      el('div', { class: 'muted' }, fmtAge(c.last_heartbeat_age_s))) },
    { label: 'Scan', fmt: c => { const h = c.health || {};
      return el('div', {}, badge(h.scan_method || 'none', 'child-method-' + slug(c.name)), ' ', badge(h.scan_service || '')); } },
    { label: 'Config', tid: c => 'child-config-' + slug(c.name), fmt: c => el('span', {
      dataset: { version: c.config_version === null || c.config_version === undefined ? '' : String(c.config_version) },
      class: c.config_current ? '' : 'error', title: c.config_error || (c.config_current ? 'current' : 'behind the cluster version') },
      fmtValue(c.config_version), c.config_current ? '' : ' (behind)', c.config_error ? el('div', { class: 'error' }, c.config_error) : null) },
    { label: 'Patterns', fmt: c => patternsText(c.health) },
    { label: 'Msg/min', num: true, tid: c => 'child-mpm-' + slug(c.name), fmt: c => fmtNum(c.health ? c.health.messages_per_minute : null) },
    { label: 'Verdict counts', fmt: c => verdictCells(c.health && c.health.stats) },
    { label: 'Quarantine', fmt: c => quotaBar(storeOf(c.health, 'quarantine'), 'child-quarantine-bar-' + slug(c.name)) },
    { label: 'Archive', fmt: c => quotaBar(storeOf(c.health, 'archive'), 'child-archive-bar-' + slug(c.name)) },
    { label: 'Reputation (smart / ERS)', fmt: c => { const h = c.health || {};
      return el('div', {}, badge(h.smart_scan_state || 'off', 'child-smart-' + slug(c.name)), ' ', badge(h.ers_state || 'off', 'child-ers-' + slug(c.name))); } },
    { label: 'MTA / update', fmt: c => { const h = c.health || {};
      return el('div', {}, badge(h.mta_state || ''), ' ', badge(h.update_state || '')); } },
  ];
  clear(box).append(table(cols, children, { testid: 'fleet-table', empty: 'No children enrolled yet.',
    rowId: c => 'child-row-' + slug(c.name), rowData: c => ({ name: c.name, state: c.state || '' }) }));
}

/* ---- charts ------------------------------------------------------------------------------- */
const CHART_COLORS = { delivered: '#1b7f3b', clean: '#1b7f3b', quarantined: '#d08a00', deleted: '#b3261e',
  rejected: '#7a1f8f', tempfailed: '#9ca3af', virus: '#b3261e', spam: '#c2410c', exception: '#7a1f8f', none: '#9ca3af' };
const PALETTE = ['#1f5fa8', '#1b7f3b', '#b26a00', '#b3261e', '#7a1f8f', '#0e7490', '#6b7280', '#c2410c'];

function makeCharts(tpCanvas, vdCanvas, acCanvas) {
  if (typeof Chart === 'undefined') {   /* vendor/chart.umd.js missing: deploy/build-web.sh */
    tpCanvas.replaceWith(el('p', { class: 'error' }, 'Charts unavailable: web/vendor/chart.umd.js is missing (run deploy/build-web.sh).'));
    vdCanvas.replaceWith(el('p', { class: 'error' }, ''));
    acCanvas.replaceWith(el('p', { class: 'error' }, ''));
    return null;
  }
  /* a fresh options object per chart: chart.js keeps (and proxies) the one it is given */
  const options = stackedBars => ({ responsive: true, maintainAspectRatio: false, animation: false,
    interaction: { mode: 'index', intersect: false },
    scales: { x: { stacked: stackedBars, ticks: { maxTicksLimit: 12 } }, y: { stacked: stackedBars, beginAtZero: true, ticks: { precision: 0 } } },
    plugins: { legend: { position: 'bottom', labels: { boxWidth: 12 } } } });
  const tp = new Chart(tpCanvas, { type: 'line', data: { labels: [], datasets: [] }, options: options(false) });
  const vd = new Chart(vdCanvas, { type: 'bar', data: { labels: [], datasets: [] }, options: options(true) });
  const ac = new Chart(acCanvas, { type: 'bar', data: { labels: [], datasets: [] }, options: options(true) });
  state.charts.push(tp, vd, ac);
  return { tp, vd, ac };
}

/* GET /stats/timeseries (api_fleet.c): {step_s, children, actions, verdicts,
 * points: [{t (epoch s, bucket start), total, by_action: {…}, by_verdict: {…}, by_child: {…}}]} */
function seriesPoints(ts) {
  return listOf(ts, 'points').map(p => {
    const t = p.t !== undefined ? p.t : (p.minute || p.at || p.time);
    const d = new Date(typeof t === 'number' ? t * 1000 : t);
    return { label: isNaN(d) ? String(t) : d.toISOString().slice(11, 16), total: Number(p.total || 0),
      verdicts: p.by_verdict || {}, actions: p.by_action || {}, perChild: p.by_child || {} };
  });
}

function stacked(chart, labels, pts, field, order) {
  const kinds = (order || []).slice();
  for (const p of pts) for (const k of Object.keys(p[field])) if (!kinds.includes(k)) kinds.push(k);
  chart.data.labels = labels;
  chart.data.datasets = kinds.map((k, i) => ({ label: k, data: pts.map(p => Number(p[field][k] || 0)),
    backgroundColor: CHART_COLORS[k] || PALETTE[i % PALETTE.length], stack: 's' }));
  chart.update('none');
}

function updateCharts(ch, ts) {
  const pts = seriesPoints(ts);
  const labels = pts.map(p => p.label);
  /* throughput: the cluster total and one line per child */
  const tpSets = [{ label: 'cluster', data: pts.map(p => p.total), borderColor: '#1f5fa8', backgroundColor: 'rgba(31,95,168,.12)', fill: true, pointRadius: 0, tension: .2 }];
  let names = (ts.children || []).slice();
  for (const p of pts) for (const k of Object.keys(p.perChild)) if (!names.includes(k)) names.push(k);
  if (names.length > CHART_CHILD_LINES_MAX) names = [];  /* a line per child only for a small fleet */
  names.forEach((n, i) => tpSets.push({ label: n, data: pts.map(p => Number(p.perChild[n] || 0)),
    borderColor: PALETTE[(i + 1) % PALETTE.length], backgroundColor: 'transparent', pointRadius: 0, tension: .2 }));
  ch.tp.data.labels = labels;
  ch.tp.data.datasets = tpSets;
  ch.tp.update('none');
  stacked(ch.vd, labels, pts, 'verdicts', ts.verdicts);
  if (ch.ac) stacked(ch.ac, labels, pts, 'actions', ts.actions);
  ch.tp.canvas.dataset.points = String(pts.length);
  ch.tp.canvas.dataset.total = String(pts.reduce((a, p) => a + p.total, 0));
}
