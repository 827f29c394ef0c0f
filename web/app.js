/* Portcullis web console (issue 6): a hash-routed single page over the parent's REST API
 * (/api/v1). Plain JavaScript, no framework, no build step; chart.js (web/vendor, served by
 * the parent) draws the dashboard's charts. Content-Security-Policy forbids inline scripts and
 * eval, so every element is built with the DOM API and text is always set as text, never as
 * HTML. The API enforces roles; the console only hides or disables what a role cannot do.
 * This file: helpers, the API client, roles, tables, log-in and the router. The pages register
 * themselves in PAGES from dashboard.js, config.js, mail.js and access.js (loaded after it). */
'use strict';

const API = '/api/v1';
const ROLES = { viewer: 1, operator: 2, admin: 3 };
const LIST_LIMIT = 50;                /* rows per page of searches */

const state = { me: null, timers: [], charts: [], page: null };

/* ---- small DOM helpers ------------------------------------------------------------------ */
function el(tag, attrs, ...kids) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'class') e.className = v;
    else if (k === 'text') e.textContent = v;
    else if (k === 'testid') e.dataset.testid = v;
    else if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
    else if (k === 'dataset') Object.assign(e.dataset, v);
    else if (v === true) e.setAttribute(k, '');
    else e.setAttribute(k, String(v));
  }
  for (const k of kids.flat()) {
    if (k === null || k === undefined || k === false) continue;
    e.append(k instanceof Node ? k : document.createTextNode(String(k)));
  }
  return e;
}
const $ = (sel, root) => (root || document).querySelector(sel);
function clear(node) { while (node.firstChild) node.removeChild(node.firstChild); return node; }
function slug(s) { return String(s).replace(/[^A-Za-z0-9_.-]+/g, '_'); }

function fmtBytes(n) {
  if (n === null || n === undefined || isNaN(n)) return '—';
  const u = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0, v = Number(n);
  while (v >= 1024 && i < u.length - 1) { v /= 1024; i++; }
  return (i === 0 ? v.toFixed(0) : v.toFixed(1)) + ' ' + u[i];
}
function fmtNum(n) { return n === null || n === undefined ? '—' : Number(n).toLocaleString('en'); }
function fmtTime(t) {
  if (!t) return '—';
  const d = new Date(t);
  return isNaN(d) ? String(t) : d.toISOString().replace('T', ' ').replace(/\.\d+Z$|Z$/, 'Z');
}
function fmtAge(s) {
  if (s === null || s === undefined) return '—';
  s = Number(s);
  if (s < 90) return s.toFixed(0) + ' s ago';
  if (s < 5400) return (s / 60).toFixed(0) + ' min ago';
  return (s / 3600).toFixed(1) + ' h ago';
}
function fmtDuration(s) {
  if (s === null || s === undefined || s === '') return '—';
  s = Number(s);
  if (s % 86400 === 0 && s >= 86400) return (s / 86400) + ' d';
  if (s % 3600 === 0 && s >= 3600) return (s / 3600) + ' h';
  if (s % 60 === 0 && s >= 60) return (s / 60) + ' min';
  return s + ' s';
}
function fmtValue(v) {
  if (v === null || v === undefined) return '—';
  if (Array.isArray(v)) return v.map(fmtValue).join(', ');
  if (typeof v === 'object') return JSON.stringify(v);
  return String(v);
}

/* state words → badge colours */
const GOOD = ['enabled', 'up', 'ok', 'running', 'enrolled', 'stored', 'delivered', 'current', 'smart', 'sent', 'clean', 'true'];
const WARN = ['pending', 'starting', 'failing', 'tempfailed', 'quarantined', 'queued', 'degraded', 'warning', 'retrying'];
const BAD = ['bounced', 'down', 'stopped', 'unreachable', 'error', 'failed', 'rejected', 'virus', 'deleted', 'refused', 'critical', 'false'];
const IDLE = ['off', 'none', 'removed', 'released', 'disabled', ''];
function badge(word, testid) {
  const w = word === null || word === undefined ? '' : String(word);
  const l = w.toLowerCase();
  let cls = 'info';
  if (GOOD.includes(l)) cls = 'ok';
  else if (WARN.includes(l)) cls = 'warn';
  else if (BAD.includes(l)) cls = 'bad';
  else if (IDLE.includes(l)) cls = 'idle';
  else if (l.length > 16) cls = 'bad';   /* a sentence is an error message (mta_state, update_state) */
  return el('span', { class: 'badge ' + cls, testid, title: w }, w === '' ? '—' : (w.length > 40 ? w.slice(0, 40) + '…' : w));
}

function toast(msg, bad) {
  const t = $('#toast');
  t.textContent = msg;
  t.className = bad ? 'bad' : '';
  t.hidden = false;
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => { t.hidden = true; }, bad ? 8000 : 4000);
}

/* ---- the API ------------------------------------------------------------------------------ */
class ApiError extends Error {
  constructor(status, message) { super(message); this.status = status; }
}

async function api(method, path, body) {
  const headers = { Accept: 'application/json' };
  const opt = { method, headers, credentials: 'same-origin', cache: 'no-store' };
  if (method !== 'GET') headers['X-Requested-With'] = 'portcullis';   /* CSRF guard */
  if (body !== undefined) {
    headers['Content-Type'] = 'application/json';
    opt.body = JSON.stringify(body);
  }
  let res;
  try {
    res = await fetch(API + path, opt);
  } catch (e) {
    throw new ApiError(0, 'the parent did not answer (' + e.message + ')');
  }
  let data = null;
  const text = await res.text();
  if (text) {
    try { data = JSON.parse(text); } catch (e) { data = { error: text.slice(0, 300) }; }
  }
  if (!res.ok) {
    const msg = (data && data.error) || (res.status + ' ' + res.statusText);
    if (res.status === 401 && path !== '/login' && path !== '/me') {
      state.me = null;
      showLogin('Your session has ended: log in again.');
    }
    throw new ApiError(res.status, msg);
  }
  return data || {};
}

function qs(params) {
  const p = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null && v !== '') p.set(k, v);
  const s = p.toString();
  return s ? '?' + s : '';
}
const enc = encodeURIComponent;

/* The first array in a reply: list replies are objects ({"children": [...]}) */
function listOf(data, ...keys) {
  for (const k of keys) if (data && Array.isArray(data[k])) return data[k];
  if (Array.isArray(data)) return data;
  for (const v of Object.values(data || {})) if (Array.isArray(v)) return v;
  return [];
}

/* ---- roles ------------------------------------------------------------------------------- */
function can(role) { return !!state.me && (ROLES[state.me.role] || 0) >= ROLES[role]; }
/* A button needing role: disabled with a reason when the user lacks it. */
function actBtn(role, label, attrs, handler) {
  const ok = can(role);
  const b = el('button', Object.assign({ type: 'button' }, attrs || {}, { disabled: !ok || !!(attrs && attrs.disabled),
    title: ok ? (attrs && attrs.title) : 'needs the ' + role + ' role' }), label);
  if (ok && handler) {
    b.addEventListener('click', async () => {
      b.disabled = true;
      try { await handler(b); } catch (e) { toast(e.message, true); } finally { if (b.isConnected) b.disabled = false; }
    });
  }
  return b;
}
/* A destructive action asks for a second click on the same button, no modal dialog. */
function confirmBtn(role, label, attrs, handler) {
  let armed = false, timer = null;
  return actBtn(role, label, Object.assign({ class: 'danger' }, attrs), async (b) => {
    if (!armed) {
      armed = true;
      b.dataset.armed = '1';   /* a refreshing page leaves the table alone meanwhile */
      b.textContent = 'Confirm ' + label.toLowerCase() + '?';
      timer = setTimeout(() => { armed = false; delete b.dataset.armed; b.textContent = label; }, 5000);
      return;
    }
    clearTimeout(timer);
    armed = false;
    delete b.dataset.armed;
    b.textContent = label;
    await handler(b);
  });
}

/* ---- generic tables ------------------------------------------------------------------------ */
/* cols: [{key, label, num, fmt(row) → node|string, cls}]; rowId(row) → data-testid */
function table(cols, rows, opts) {
  opts = opts || {};
  const thead = el('thead', {}, el('tr', {}, cols.map(c => el('th', { class: c.num ? 'num' : null }, c.label))));
  const tbody = el('tbody', { testid: opts.testid ? opts.testid + '-body' : null });
  if (!rows.length) {
    tbody.append(el('tr', {}, el('td', { colspan: cols.length, class: 'muted', testid: opts.testid ? opts.testid + '-empty' : null }, opts.empty || 'Nothing to show.')));
  }
  for (const r of rows) {
    const tr = el('tr', { testid: opts.rowId ? opts.rowId(r) : null });
    if (opts.rowData) Object.assign(tr.dataset, opts.rowData(r));
    for (const c of cols) {
      const v = c.fmt ? c.fmt(r) : fmtValue(r[c.key]);
      tr.append(el('td', { class: (c.num ? 'num ' : '') + (c.cls || ''), testid: c.tid ? c.tid(r) : null }, v));
    }
    tbody.append(tr);
  }
  return el('div', { class: 'wrap' }, el('table', { testid: opts.testid }, thead, tbody));
}
/* Any reply as a table when its shape is not known in advance. */
function autoTable(rows, testid) {
  const keys = [];
  for (const r of rows) for (const k of Object.keys(r || {})) if (!keys.includes(k)) keys.push(k);
  return table(keys.map(k => ({ key: k, label: k.replace(/_/g, ' ') })), rows, { testid });
}
function kvTable(obj, testid) {
  return table([{ key: 'k', label: 'Field' }, { key: 'v', label: 'Value', cls: 'mono' }],
    Object.entries(obj || {}).map(([k, v]) => ({ k, v: fmtValue(v) })), { testid });
}

function pageHead(title, note) {
  return el('div', { class: 'pagehead' }, el('h1', {}, title), note ? el('span', { class: 'muted' }, note) : null);
}
function errorBox(e) { return el('p', { class: 'error', role: 'alert', testid: 'page-error' }, e.message || String(e)); }

/* ---- timers and charts belong to the page showing them ----------------------------------- */
function every(ms, fn) {
  let stopped = false, t = null;
  const run = async () => {
    if (stopped) return;
    try { await fn(); } catch (e) { /* shown by fn where it matters; keep polling */ }
    if (!stopped) t = setTimeout(run, ms);
  };
  const h = { stop() { stopped = true; clearTimeout(t); } };
  state.timers.push(h);
  run();
  return h;
}
function leavePage() {
  for (const t of state.timers) t.stop();
  state.timers = [];
  for (const c of state.charts) c.destroy();
  state.charts = [];
}

/* ---- log-in -------------------------------------------------------------------------------- */
function showLogin(msg) {
  leavePage();
  $('#topbar').hidden = true;
  $('#view').hidden = true;
  $('#login-view').hidden = false;
  $('#login-error').textContent = msg || '';
  $('#login-user').focus();
}

async function onLogin(ev) {
  ev.preventDefault();
  const btn = $('#login-submit');
  btn.disabled = true;
  $('#login-error').textContent = '';
  try {
    const me = await api('POST', '/login', { user: $('#login-user').value, password: $('#login-password').value });
    $('#login-password').value = '';
    state.me = me;
    enterApp();
  } catch (e) {
    $('#login-error').textContent = e.status === 401 ? 'Wrong user name or password.' : e.message;
  } finally {
    btn.disabled = false;
  }
}

async function onLogout() {
  try { await api('POST', '/logout'); } catch (e) { /* gone already */ }
  state.me = null;
  showLogin('Logged out.');
}

function enterApp() {
  $('#login-view').hidden = true;
  $('#topbar').hidden = false;
  $('#view').hidden = false;
  $('#who').textContent = state.me.user + ' (' + state.me.role + ')';
  $('#who').dataset.role = state.me.role;
  if (!location.hash || location.hash === '#/' || location.hash === '#') location.hash = '#/dashboard';
  else route();
}

/* ---- router -------------------------------------------------------------------------------- */
const PAGES = {};
async function route() {
  if (!state.me) return;
  const [page, ...rest] = location.hash.replace(/^#\/?/, '').split('/');
  const fn = PAGES[page] || PAGES.dashboard;
  leavePage();
  state.page = page;
  for (const a of document.querySelectorAll('#nav a')) a.classList.toggle('active', a.dataset.page === page);
  const view = clear($('#view'));
  view.dataset.page = page || 'dashboard';
  try {
    await fn(view, rest.map(decodeURIComponent));
  } catch (e) {
    if (e.status !== 401) view.append(errorBox(e));
  }
}

/* ---- start ----------------------------------------------------------------------------------- */
async function start() {
  $('#login-form').addEventListener('submit', onLogin);
  $('#logout').addEventListener('click', onLogout);
  window.addEventListener('hashchange', route);
  try {
    state.me = await api('GET', '/me');
    enterApp();
  } catch (e) {
    showLogin(e.status === 401 || e.status === 0 ? '' : e.message);
  }
}
document.addEventListener('DOMContentLoaded', start);
