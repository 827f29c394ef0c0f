#!/usr/bin/env node
/* Browser tests of the web console (issue 6 point 4): playwright-core drives Debian's chromium
 * headless against a running parent. Run by tests/integration/test_console.py, which starts the
 * cluster, makes the users and checks the effects outside the browser; this script only does
 * what an operator does in the browser and asserts what the page shows.
 *
 *   node console.js SCENARIO...      scenarios: dashboard fleetpages setting refusal quarantine pages viewer children
 *
 * Environment: PORTCULLIS_URL (https://127.0.0.1:PORT/), PORTCULLIS_USER, PORTCULLIS_PASSWORD,
 * PORTCULLIS_SCREENSHOTS (directory for the PNGs), PORTCULLIS_CHROMIUM (default
 * /usr/bin/chromium), PORTCULLIS_WAIT_MS (longest wait for one page condition, default 30000),
 * and per scenario: CHILDREN (comma list), SETTING_KEY, SETTING_VALUE, BAD_VALUE,
 * EXPECT_ERROR (a regular expression), EXPECT_MESSAGES (the least the throughput chart must count),
 * EXPECT_QUARANTINED (the least the cluster totals must count as quarantined), DELETE_SUBJECT (a
 * second quarantined message to delete), APPROVE and ENROL (child names), SUBJECT (a token in the quarantined message's subject).
 * Every wait is on a DOM condition, never a fixed sleep. Exit 0 when every scenario passed,
 * 1 with "FAIL scenario: why" on stderr (and a failure-SCENARIO.png) otherwise; each passed
 * scenario prints one line "RESULT scenario {json}" for the caller. */
'use strict';

const fs = require('fs');
const path = require('path');
const { chromium } = require('playwright-core');

const WAIT_MS = Number(process.env.PORTCULLIS_WAIT_MS || 30000);

class Failure extends Error {}
function need(name) {
  const v = process.env[name];
  if (v === undefined || v === '') throw new Failure(`environment variable ${name} is not set`);
  return v;
}
function check(cond, msg) { if (!cond) throw new Failure(msg); }
const tid = id => `[data-testid="${id}"]`;
const shots = () => process.env.PORTCULLIS_SCREENSHOTS || '';

async function screenshot(page, name) {
  if (!shots()) return null;
  fs.mkdirSync(shots(), { recursive: true });
  const file = path.join(shots(), name);
  await page.screenshot({ path: file, fullPage: true });
  return file;
}

/* Waits for fn(arg) to be truthy in the page; the failure names what was awaited and what the
 * page showed instead (describe(arg) run in the page). */
async function waitFor(page, what, fn, arg, describe) {
  try {
    return await (await page.waitForFunction(fn, arg, { timeout: WAIT_MS, polling: 200 })).jsonValue();
  } catch (e) {
    let seen = '';
    if (describe) { try { seen = await page.evaluate(describe, arg); } catch (e2) { seen = '?'; } }
    throw new Failure(`timed out after ${WAIT_MS} ms waiting for ${what}` + (seen ? `; the page shows: ${seen}` : ''));
  }
}

async function login(page, user, password) {
  await page.goto(need('PORTCULLIS_URL'), { waitUntil: 'domcontentloaded' });
  await page.locator(tid('login-form')).waitFor({ state: 'visible', timeout: WAIT_MS });
  await page.fill(tid('login-user'), user);
  await page.fill(tid('login-password'), password);
  await page.click(tid('login-submit'));
  await waitFor(page, `being logged in as ${user}`,
    u => !document.querySelector('#topbar').hidden && document.querySelector('#who').textContent.startsWith(u + ' '),
    user, () => document.querySelector('#login-error').textContent || '(no error shown)');
  return page.evaluate(() => document.querySelector('#who').dataset.role);
}

async function go(page, hash, ready) {
  await page.evaluate(h => { location.hash = h; }, hash);
  await page.locator(tid(ready)).first().waitFor({ state: 'attached', timeout: WAIT_MS });
}

const fleetText = () => Array.from(document.querySelectorAll('[data-testid^="child-row-"]'))
  .map(r => `${r.dataset.name}=${r.dataset.state}`).join(', ') || (document.querySelector('[data-testid="dashboard-error"]') || {}).textContent
  || (document.querySelector('[data-testid="page-error"]') || {}).textContent || 'no children';

/* ---- scenarios -------------------------------------------------------------------------------- */
const SCENARIOS = {
  /* A fleet larger than a page (EXPECT_FLEET children): the table shows one page of 100, Next
   * and Previous walk the parent's pages, the name filter narrows them (issue 12 point 3). */
  async fleetpages(page) {
    const total = Number(need('EXPECT_FLEET'));
    const rows = () => document.querySelectorAll('[data-testid^="child-row-"]').length;
    const range = () => (document.querySelector('[data-testid="fleet-range"]') || {}).textContent || '';
    await go(page, '#/dashboard', 'fleet');
    await waitFor(page, `the first page of ${total} children`,
      n => document.querySelector('[data-testid="fleet-range"]').textContent === `1–100 of ${n}` &&
        document.querySelectorAll('[data-testid^="child-row-"]').length === 100, total, range);
    const first = await page.evaluate(rows);
    await page.click(tid('fleet-next'));
    await waitFor(page, 'the second page', n => document.querySelector('[data-testid="fleet-range"]').textContent ===
      `101–${n} of ${n}` && document.querySelectorAll('[data-testid^="child-row-"]').length === n - 100, total, range);
    const second = await page.evaluate(rows);
    const nextOff = await page.evaluate(() => document.querySelector('[data-testid="fleet-next"]').disabled);
    await page.click(tid('fleet-prev'));
    await waitFor(page, 'the first page again', () => document.querySelector('[data-testid="fleet-range"]').textContent.startsWith('1–100 '),
      null, range);
    await page.fill(tid('fleet-filter-name'), 'child1');
    await page.press(tid('fleet-filter-name'), 'Enter');
    await waitFor(page, 'the name filter', () => document.querySelector('[data-testid="fleet-range"]').textContent === '1–1 of 1',
      null, range);
    const filtered = await page.evaluate(() => Array.from(document.querySelectorAll('[data-testid^="child-row-"]')).map(r => r.dataset.name));
    const up = await page.textContent(tid('total-up'));
    await screenshot(page, 'dashboard-pages.png');
    await page.fill(tid('fleet-filter-name'), '');
    await page.press(tid('fleet-filter-name'), 'Enter');
    return { first, second, next_disabled_on_last: nextOff, filtered, totals_up: up };
  },
  /* Log in and see every child "up" on the fleet dashboard with its details; the charts drew. */
  async dashboard(page) {
    const children = need('CHILDREN').split(',');
    await go(page, '#/dashboard', 'fleet');
    await waitFor(page, `children ${children.join(', ')} to be up on the dashboard`,
      names => names.every(n => { const r = document.querySelector(`[data-testid="child-row-${n}"]`); return r && r.dataset.state === 'up'; }),
      children, fleetText);
    const details = await page.evaluate(names => names.map(n => ({
      name: n,
      state: document.querySelector(`[data-testid="child-state-${n}"] .badge`).textContent,
      method: document.querySelector(`[data-testid="child-method-${n}"]`).textContent,
      config: document.querySelector(`[data-testid="child-config-${n}"] [data-version]`).dataset.version,
      quarantine_bar: !!document.querySelector(`[data-testid="child-quarantine-bar-${n}"]`),
      archive_bar: !!document.querySelector(`[data-testid="child-archive-bar-${n}"]`),
    })), children);
    for (const d of details) {
      check(d.state === 'up', `${d.name}: state badge says ${d.state}`);
      check(d.config !== '', `${d.name}: no configuration version shown`);
      check(d.quarantine_bar && d.archive_bar, `${d.name}: quarantine/archive usage bars missing (R5.12)`);
    }
    const up = await page.textContent(tid('total-up'));
    check(up.includes(`${children.length} / ${children.length}`), `cluster totals say "${up}"`);
    /* the charts are drawn from /stats/timeseries and count the messages sent (EXPECT_MESSAGES) */
    const want = Number(process.env.EXPECT_MESSAGES || 0);
    const total = await waitFor(page, `the throughput chart to count at least ${want} messages`,
      n => { const c = document.querySelector('[data-testid="chart-throughput"]');
        return c && c.dataset.total !== undefined && Number(c.dataset.total) >= n ? Number(c.dataset.total) : false; },
      want, () => { const c = document.querySelector('[data-testid="chart-throughput"]');
        return (document.querySelector('[data-testid="dashboard-error"]').textContent || '') + (c ? ` chart total ${c.dataset.total}` : ' no chart'); });
    /* the children's counters (their health reports) count the quarantined ones (EXPECT_QUARANTINED) */
    const wantQ = Number(process.env.EXPECT_QUARANTINED || 0);
    const quarantined = await waitFor(page, `the cluster totals to count at least ${wantQ} quarantined messages`,
      n => { const v = Number(document.querySelector('[data-testid="total-quarantined"] .v').textContent.replace(/,/g, ''));
        return v >= n ? v : false; },
      wantQ, () => document.querySelector('[data-testid="cluster-totals"]').textContent);
    const file = await screenshot(page, 'dashboard.png');
    return { children: details, chart_total: total, quarantined, screenshot: file };
  },

  /* Change a setting on the settings page; the page says which configuration version it made,
   * and the dashboard shows every child applying it. */
  async setting(page) {
    const key = need('SETTING_KEY'), value = need('SETTING_VALUE');
    const children = need('CHILDREN').split(',');
    await go(page, '#/settings', `setting-input-${key}`);
    const range = await page.textContent(tid(`setting-range-${key}`));
    await page.fill(tid(`setting-input-${key}`), value);
    await page.click(tid(`setting-save-${key}`));
    const said = await waitFor(page, `the settings page to confirm ${key}=${value}`,
      k => { const m = document.querySelector(`[data-testid="setting-ok-${k}"]`); return m && m.textContent ? m.textContent : false; },
      key, k => (document.querySelector(`[data-testid="setting-error-${k}"]`) || {}).textContent || 'nothing');
    const m = /configuration version (\d+)/.exec(said);
    check(m, `the confirmation does not name the new configuration version: "${said}"`);
    const version = Number(m[1]);
    await go(page, '#/dashboard', 'fleet');
    await waitFor(page, `every child to apply configuration version ${version} on the dashboard`,
      ([names, v]) => names.every(n => { const e = document.querySelector(`[data-testid="child-config-${n}"] [data-version]`);
        return e && Number(e.dataset.version) >= v; }),
      [children, version],
      ([names]) => names.map(n => { const e = document.querySelector(`[data-testid="child-config-${n}"] [data-version]`);
        return `${n}: ${e ? e.dataset.version : 'none'}`; }).join(', '));
    const cluster = await page.textContent(tid('cluster-config-version'));
    check(cluster.includes(String(version)), `cluster config version card says "${cluster}", expected ${version}`);
    return { key, value, range, config_version: version };
  },

  /* An out-of-range value: the parent's refusal appears next to the field. */
  async refusal(page) {
    const key = need('SETTING_KEY'), bad = need('BAD_VALUE');
    const expect = new RegExp(process.env.EXPECT_ERROR || '.', 'i');
    await go(page, '#/settings', `setting-input-${key}`);
    await page.fill(tid(`setting-input-${key}`), bad);
    await page.click(tid(`setting-save-${key}`));
    const msg = await waitFor(page, `the inline refusal of ${key}=${bad}`,
      k => { const m = document.querySelector(`[data-testid="setting-error-${k}"]`); return m && m.textContent ? m.textContent : false; },
      key, k => (document.querySelector(`[data-testid="setting-ok-${k}"]`) || {}).textContent || 'no message');
    check(expect.test(msg), `the refusal "${msg}" does not match /${expect.source}/`);
    const invalid = await page.evaluate(k => document.querySelector(`[data-testid="setting-input-${k}"]`).classList.contains('invalid'), key);
    check(invalid, 'the refused field is not marked invalid');
    /* the message sits in the same row as the field */
    const sameRow = await page.evaluate(k => {
      const row = document.querySelector(`[data-testid="setting-row-${k}"]`);
      return !!row && row.contains(document.querySelector(`[data-testid="setting-error-${k}"]`));
    }, key);
    check(sameRow, 'the refusal is not shown beside the field');
    await screenshot(page, 'settings-refusal.png');
    return { key, value: bad, error: msg };
  },

  /* Find the quarantined message by its subject token and release it from the page. */
  async quarantine(page) {
    const subject = need('SUBJECT');
    await go(page, '#/quarantine', 'quarantine-search-form');
    await page.fill(tid('quarantine-filter-subject'), subject);
    await page.click(tid('quarantine-search'));
    const found = await waitFor(page, `a quarantined message with "${subject}" in its subject`,
      s => { const res = document.querySelector('[data-testid="quarantine-results"]');
        if (!(res.dataset.query || '').includes('subject=' + encodeURIComponent(s))) return false;   /* the filtered search's answer */
        const r = Array.from(document.querySelectorAll('[data-testid^="quarantine-row-"]')).find(x => x.dataset.subject.includes(s));
        return r ? { id: r.dataset.id, file_id: r.dataset.fileId, rows: document.querySelectorAll('[data-testid^="quarantine-row-"]').length } : false; },
      subject, () => document.querySelector('[data-testid="quarantine-results"]').textContent.slice(0, 300));
    check(found.rows === 1, `the subject filter left ${found.rows} rows, expected 1`);
    const state = await page.textContent(tid(`quarantine-state-${found.id}`));
    check(state === 'stored', `message ${found.id} is "${state}" before release`);
    /* a search over everything for the screenshot: the page as an operator sees it */
    await page.fill(tid('quarantine-filter-subject'), '');
    await page.click(tid('quarantine-search'));
    await waitFor(page, 'the unfiltered quarantine search', () => {
      const q = document.querySelector('[data-testid="quarantine-results"]').dataset.query || '';
      return !q.includes('subject='); }, null);
    await page.locator(tid(`quarantine-release-${found.id}`)).waitFor({ state: 'visible', timeout: WAIT_MS });
    const file = await screenshot(page, 'quarantine.png');
    /* Show: the index row and the headers the child read from the stored file */
    await page.click(tid(`quarantine-show-${found.id}`));
    const headers = await waitFor(page, `the headers of message ${found.id}`,
      () => { const p = document.querySelector('[data-testid="quarantine-shown"] pre.headers'); return p ? p.textContent : false; },
      null, () => document.querySelector('#toast').textContent);
    check(headers.includes(subject), `the shown headers do not carry "${subject}"`);
    /* Download: the stored file as the browser saves it */
    const [download] = await Promise.all([
      page.waitForEvent('download', { timeout: WAIT_MS }),
      page.click(tid(`quarantine-download-${found.id}`)),
    ]);
    const saved = fs.readFileSync(await download.path()).toString('latin1');   /* bytes as they are */
    check(saved.includes(subject), `the downloaded file (${saved.length} bytes) is not the message`);
    const dlName = download.suggestedFilename();
    /* Delete (optional): a second message, two clicks (the button asks to confirm) */
    let deleted = null;
    if (process.env.DELETE_SUBJECT) {
      const ds = process.env.DELETE_SUBJECT;
      const del = await page.evaluate(s => { const r = Array.from(document.querySelectorAll('[data-testid^="quarantine-row-"]')).find(x => x.dataset.subject.includes(s));
        return r ? r.dataset.id : null; }, ds);
      check(del, `no quarantined message with "${ds}" in the unfiltered search`);
      await page.click(tid(`quarantine-delete-${del}`));
      await waitFor(page, 'the delete button to ask for confirmation',
        id => /confirm/i.test(document.querySelector(`[data-testid="quarantine-delete-${id}"]`).textContent), del);
      await page.click(tid(`quarantine-delete-${del}`));
      await waitFor(page, `message ${del} to show as deleted`,
        id => (document.querySelector(`[data-testid="quarantine-state-${id}"]`) || {}).textContent === 'deleted',
        del, () => document.querySelector('#toast').textContent);
      deleted = del;
    }
    await page.click(tid(`quarantine-release-${found.id}`));
    await waitFor(page, `message ${found.id} to show as released`,
      id => (document.querySelector(`[data-testid="quarantine-state-${id}"]`) || {}).textContent === 'released',
      found.id, () => document.querySelector('#toast').textContent);
    const toastText = await page.textContent('#toast');
    // toast(msg, bad) marks a failure with class "bad"; the release's answer must not be one
    const toastBad = await page.evaluate(() => document.querySelector('#toast').classList.contains('bad'));
    check(!toastBad && toastText.startsWith('released'), `release said: ${toastText}`);
    return { id: found.id, file_id: found.file_id, screenshot: file, said: toastText, downloaded: saved.length,
      download_name: dlName, deleted };
  },

  /* Children page: approve a pending child (APPROVE) and see it come up (the page refreshes),
   * make an enrolment token for a new one (ENROL: the child.conf lines are shown), then remove
   * the approved child again (two clicks). */
  async children(page) {
    const approve = need('APPROVE'), fp = need('APPROVE_FP'), enrol = need('ENROL');
    const row = n => `[data-testid="children-row-${n}"]`;
    await go(page, '#/children', `approve-${approve}`);
    const shown = await page.textContent(row(approve));
    check(shown.includes(fp), `the children page does not show ${approve}'s key fingerprint ${fp}:\n${shown}`);
    await page.fill(tid(`approve-fp-${approve}`), fp);
    await page.click(tid(`approve-${approve}`));
    await waitFor(page, `${approve} to be enrolled and up on the children page`,
      sel => { const r = document.querySelector(sel); return !!r && r.dataset.enrolment === 'enrolled' && r.dataset.state === 'up'; },
      row(approve), sel => { const r = document.querySelector(sel); return r ? `${r.dataset.enrolment}/${r.dataset.state}` : document.querySelector('#toast').textContent; });
    await page.fill(tid('enrol-name'), enrol);
    await page.click(tid('enrol-submit'));
    const conf = await waitFor(page, `the enrolment token for ${enrol}`,
      () => { const t = document.querySelector('[data-testid="enrol-token"]'); return t ? t.textContent : false; },
      null, () => document.querySelector('[data-testid="enrol-result"]').textContent || 'nothing');
    check(/enroll_token\s*=\s*[0-9a-f]{48}/.test(conf), `the child.conf lines shown carry no token:\n${conf}`);
    check(conf.includes(`name = ${enrol}`), `the child.conf lines do not name ${enrol}:\n${conf}`);
    await page.click(tid(`remove-${approve}`));
    await waitFor(page, 'the remove button to ask for confirmation',
      n => /confirm/i.test(document.querySelector(`[data-testid="remove-${n}"]`).textContent), approve);
    await page.click(tid(`remove-${approve}`));
    await waitFor(page, `${approve} to leave the list`, sel => !document.querySelector(sel), row(approve));
    return { approved: approve, removed: approve, enrolled: enrol, conf_lines: conf.trim().split('\n').length };
  },

  /* Every page loads its data and shows it as a table, with no error on the page. */
  async pages(page) {
    const seen = {};
    for (const p of ['children', 'policy', 'settings', 'areas', 'quarantine', 'archive', 'logs/tracking', 'logs/events',
      'logs/audit', 'logs/notifications', 'updates', 'mta', 'users', 'dashboard']) {
      await page.evaluate(h => { location.hash = h; }, '#/' + p);
      const rows = await waitFor(page, `the ${p} page to show its table`, want => {
        const v = document.querySelector('#view');
        if (v.dataset.page !== want.split('/')[0]) return false;
        const err = v.querySelector('[data-testid="page-error"]');
        if (err) return { error: err.textContent };
        const tables = v.querySelectorAll('table');
        return tables.length ? { rows: Array.from(tables).reduce((a, t) => a + t.tBodies[0].rows.length, 0) } : false;
      }, p, () => document.querySelector('#view').textContent.slice(0, 300));
      check(!rows.error, `the ${p} page shows an error: ${rows.error}`);
      seen[p] = rows.rows;
      if (process.env.PAGE_SHOTS === '1') await screenshot(page, `page-${p.replace('/', '-')}.png`);
    }
    check(seen.mta > 0, 'the MTA retry timetable is empty');
    check(seen.policy > 0, 'no policy rules listed');
    check(seen.settings > 10, 'the settings page lists almost nothing');
    return { rows: seen };
  },

  /* A viewer sees the pages but every change button is disabled; the API refuses it anyway. */
  async viewer(page) {
    const key = need('SETTING_KEY');
    await go(page, '#/settings', `setting-save-${key}`);
    check(await page.isDisabled(tid(`setting-save-${key}`)), 'a viewer can press Save on a setting');
    check(await page.isDisabled(tid(`setting-input-${key}`)), 'a viewer can edit a setting');
    await go(page, '#/children', 'children-table');
    check(await page.isDisabled(tid('enrol-submit')), 'a viewer can make an enrolment token');
    for (const n of need('CHILDREN').split(',')) {
      check(await page.isDisabled(tid(`cmd-flush-${n}`)), `a viewer can send flush to ${n}`);
      check(await page.isDisabled(tid(`remove-${n}`)), `a viewer can remove ${n}`);
    }
    /* what the API answers a viewer's change, as the console would send it */
    const status = await page.evaluate(async k => (await fetch(`/api/v1/settings/${encodeURIComponent(k)}`, {
      method: 'PUT', credentials: 'same-origin', headers: { 'Content-Type': 'application/json', 'X-Requested-With': 'portcullis' },
      body: JSON.stringify({ value: '1' }) })).status, key);
    check(status === 403, `the API answered a viewer's settings change with ${status}, expected 403`);
    return { forbidden: status };
  },
};

async function main() {
  const names = process.argv.slice(2);
  if (!names.length || names.some(n => !SCENARIOS[n])) {
    process.stderr.write(`usage: node console.js SCENARIO... (${Object.keys(SCENARIOS).join(' ')})\n`);
    return 2;
  }
  const browser = await chromium.launch({
    executablePath: process.env.PORTCULLIS_CHROMIUM || '/usr/bin/chromium',
    headless: true,
    /* root in a container has no user namespaces for chromium's sandbox */
    args: ['--no-sandbox', '--disable-dev-shm-usage', '--disable-gpu'],
  });
  let failed = 0;
  try {
    /* the parent's certificate is self-signed (made at its first start) */
    const context = await browser.newContext({ ignoreHTTPSErrors: true, viewport: { width: 1600, height: 1000 } });
    const page = await context.newPage();
    const problems = [];
    page.on('pageerror', e => problems.push(`script error: ${e.message}`));
    page.on('console', m => {
      /* 4xx answers the page handles (the refusal) also log "Failed to load resource" */
      if (m.type() === 'error' && !/Failed to load resource/.test(m.text())) problems.push(`console: ${m.text()}`);
    });
    const role = await login(page, need('PORTCULLIS_USER'), need('PORTCULLIS_PASSWORD'));
    for (const n of names) {
      try {
        const r = await SCENARIOS[n](page);
        check(!problems.length, `the page reported errors: ${problems.join(' | ')}`);
        process.stdout.write(`RESULT ${n} ${JSON.stringify(Object.assign({ role }, r))}\n`);
      } catch (e) {
        failed++;
        process.stderr.write(`FAIL ${n}: ${e instanceof Failure ? e.message : e.stack}\n`);
        if (problems.length) process.stderr.write(`  the page also reported: ${problems.join(' | ')}\n`);
        try { await screenshot(page, `failure-${n}.png`); } catch (e2) { /* the failure is reported already */ }
      }
    }
  } finally {
    await browser.close();
  }
  return failed ? 1 : 0;
}

main().then(code => process.exit(code), e => {
  process.stderr.write(`FAIL: ${e instanceof Failure ? e.message : e.stack}\n`);
  process.exit(1);
});
