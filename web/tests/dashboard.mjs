// Browser test of the dashboard, run by a Rust integration test as `node web/tests/dashboard.mjs`.
//
// Environment:
//   NOL_WEB_URL        the server, e.g. https://127.0.0.1:40123
//   NOL_WEB_SPKI       base64 SHA-256 of the dashboard certificate's public key (pinned)
//   NOL_CITY_TOKEN     a city supervisor's token
//   NOL_COUNTY_TOKEN   a county case worker's token
//   NOL_EXPECT         {"city":{"region","headline":{…}},"county":{"region","headline":{…}},"period"}
//   NOL_SCREENSHOTS    directory for PNGs (default: a temporary directory)
//   NOL_CHROMIUM       browser path (default /usr/bin/chromium; never a downloaded browser)
//
// Protocol with the Rust side: after the county overview is shown this prints `LIVE_READY` and
// reads one line `OPENED <n>` from stdin (n = the county's new dropouts_new), then prints
// `LIVE_OK <ms>`. Before the report workflow it prints `REPORT_READY` and waits (at most 15 s) for
// `CLOCK_MOVED` (the Rust side moves the rule clock past the period's end so the report may be
// drafted); with no answer it goes on. Prints one line per step; exits 0 on success, else prints
// `FAIL: <reason>`, saves failure.png and exits 1.

import { chromium } from 'playwright-core';
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';

const OVERALL_MS = 90_000;
const STEP_MS = 15_000;

const baseUrl = (process.env.NOL_WEB_URL || '').replace(/\/+$/, '');
const cityToken = process.env.NOL_CITY_TOKEN || '';
const countyToken = process.env.NOL_COUNTY_TOKEN || '';
const shotDir = process.env.NOL_SCREENSHOTS || mkdtempSync(join(tmpdir(), 'nol-shots-'));
mkdirSync(shotDir, { recursive: true });

let browser = null;
let page = null;
let finished = false;
const pageErrors = [];   // console errors and uncaught exceptions in the page

const log = (line) => process.stdout.write(`${line}\n`);

class Failure extends Error {}
function check(cond, reason) {
  if (!cond) throw new Failure(reason);
}

// Lines from stdin, read on demand.
const stdinLines = [];
const stdinWaiters = [];
let stdinClosed = false;
const rl = createInterface({ input: process.stdin, terminal: false });
rl.on('line', (line) => {
  const waiter = stdinWaiters.shift();
  if (waiter) waiter.resolve(line);
  else stdinLines.push(line);
});
rl.on('close', () => {
  stdinClosed = true;
  for (const w of stdinWaiters.splice(0)) w.reject(new Failure('stdin closed before a line came'));
});
function nextLine() {
  if (stdinLines.length) return Promise.resolve(stdinLines.shift());
  if (stdinClosed) return Promise.reject(new Failure('stdin closed before a line came'));
  return new Promise((resolve, reject) => stdinWaiters.push({ resolve, reject }));
}

// The next line, or null after `ms` (the waiter is withdrawn, so a later line is not lost).
function nextLineWithin(ms) {
  if (stdinLines.length) return Promise.resolve(stdinLines.shift());
  if (stdinClosed) return Promise.resolve(null);
  return new Promise((resolve) => {
    const waiter = {
      resolve: (line) => { clearTimeout(timer); resolve(line); },
      reject: () => { clearTimeout(timer); resolve(null); },
    };
    const timer = setTimeout(() => {
      stdinWaiters.splice(stdinWaiters.indexOf(waiter), 1);
      resolve(null);
    }, ms);
    stdinWaiters.push(waiter);
  });
}

async function screenshot(name) {
  const path = join(shotDir, name);
  await page.screenshot({ path, fullPage: true });
  log(`SCREENSHOT ${path}`);
  return path;
}

async function fail(reason) {
  if (finished) return;
  finished = true;
  log(`FAIL: ${reason}`);
  for (const e of pageErrors) log(`  page error: ${e}`);
  try {
    if (page) await screenshot('failure.png');
  } catch (err) {
    log(`(no failure screenshot: ${err.message.split('\n')[0]})`);
  }
  try { await browser?.close(); } catch { /* ignore */ }
  process.exit(1);
}

const overall = setTimeout(() => { fail(`overall timeout of ${OVERALL_MS / 1000} s`); }, OVERALL_MS);

// Waits for a view to be rendered for a region (the app marks #view when its answer is shown).
async function waitForView(view, region) {
  const sel = region
    ? `#view[data-view="${view}"][data-view-region="${region}"][aria-busy="false"]`
    : `#view[data-view="${view}"][aria-busy="false"]`;
  await page.waitForSelector(sel, { timeout: STEP_MS });
}

// Compares headline cards with the expected figures; waits up to 5 s for them to agree.
async function checkHeadline(expected, who) {
  const ok = await page.waitForFunction((exp) => {
    for (const [key, want] of Object.entries(exp)) {
      const el = document.querySelector(`[data-figure="${key}"]`);
      if (!el) return false;
      const text = el.textContent.trim();
      if (want === null) { if (text !== '暂无数据') return false; continue; }
      if (text.endsWith('%')) {
        if (Math.abs(Number(text.slice(0, -1).replace(/,/g, '')) / 100 - want) > 0.0006) return false;
      } else if (Number(text.replace(/,/g, '')) !== want) return false;
    }
    return true;
  }, expected, { timeout: 5000 }).then(() => true, () => false);
  if (ok) return;
  const shown = await page.evaluate((keys) => Object.fromEntries(keys.map((k) => [k,
    document.querySelector(`[data-figure="${k}"]`)?.textContent.trim() ?? '(no card)'])), Object.keys(expected));
  const diffs = Object.entries(expected)
    .filter(([k, want]) => {
      const t = shown[k];
      if (want === null) return t !== '暂无数据';
      if (t.endsWith('%')) return Math.abs(Number(t.slice(0, -1).replace(/,/g, '')) / 100 - want) > 0.0006;
      return Number(t.replace(/,/g, '')) !== want;
    })
    .map(([k, want]) => `${k}: shown ${JSON.stringify(shown[k])}, expected ${JSON.stringify(want)}`);
  throw new Failure(`${who} headline differs: ${diffs.join('; ')}`);
}

async function signInWith(token, region) {
  await page.goto(`${baseUrl}/#signin=${encodeURIComponent(token)}`);
  await waitForView('overview', region);
  const hash = await page.evaluate(() => location.hash);
  check(!hash.includes('signin='), `the token stayed in the address bar: ${hash}`);
}

async function signOut() {
  await page.getByRole('button', { name: '退出' }).click();
  await page.waitForSelector('#signin-form', { timeout: STEP_MS });
}

async function openReport(region, period) {
  await page.goto(`${baseUrl}/#/report?region=${region}&period=${period}`);
  await waitForView('report', region);
}

async function clickAction(action, expectState) {
  await page.click(`[data-action="${action}"]`);
  await page.waitForSelector(`[data-report-state="${expectState}"]`, { timeout: STEP_MS }).catch(async () => {
    const alert = await page.locator('#alert').textContent().catch(() => '');
    throw new Failure(`after ${action} the report is not ${expectState}${alert ? ` (alert: ${alert.trim()})` : ''}`);
  });
}

async function main() {
  check(baseUrl, 'NOL_WEB_URL is not set');
  check(cityToken && countyToken, 'NOL_CITY_TOKEN and NOL_COUNTY_TOKEN must be set');
  let expect;
  try {
    expect = JSON.parse(process.env.NOL_EXPECT || '');
  } catch {
    throw new Failure('NOL_EXPECT is not JSON');
  }
  const period = expect.period;
  const city = expect.city;
  const county = expect.county;
  check(city?.region && county?.region && period, 'NOL_EXPECT lacks city.region, county.region or period');
  const allowedHosts = new Set(['127.0.0.1', new URL(baseUrl).hostname]);

  // 1. Browser, context, guards.
  browser = await chromium.launch({
    executablePath: process.env.NOL_CHROMIUM || '/usr/bin/chromium',
    headless: true,
    // The dashboard is HTTPS only, its certificate from the deployment's CA: chromium trusts
    // exactly that key (NOL_WEB_SPKI), not any certificate.
    args: ['--no-sandbox', `--ignore-certificate-errors-spki-list=${process.env.NOL_WEB_SPKI || ''}`],
  });
  const context = await browser.newContext({
    timezoneId: 'Asia/Shanghai', locale: 'zh-CN', acceptDownloads: true, viewport: { width: 1366, height: 900 },
  });
  const offsite = [];
  await context.route('**/*', (route) => {
    const url = route.request().url();
    let host = '';
    try { host = new URL(url).hostname; } catch { /* not a URL */ }
    if (!allowedHosts.has(host)) {
      offsite.push(url);
      return route.abort();
    }
    return route.continue();
  });
  page = await context.newPage();
  page.setDefaultTimeout(STEP_MS);
  // URLs this script probes on purpose for a 401/403: Chromium logs those as console errors.
  const probed = new Set();
  page.on('console', (msg) => {
    if (msg.type() !== 'error') return;
    const at = msg.location()?.url || '';
    if (msg.text().startsWith('Failed to load resource') && probed.has(at)) return;
    pageErrors.push(`console: ${msg.text()}${at ? ` (${at})` : ''}`);
  });
  page.on('pageerror', (err) => pageErrors.push(`pageerror: ${err.message}`));
  log(`STEP 1 browser ${browser.version()} started`);

  // 2. City overview.
  await signInWith(cityToken, city.region);
  await checkHeadline(city.headline, 'city');
  await screenshot('overview-city.png');
  log(`STEP 2 city overview ${city.region} matches (${Object.keys(city.headline).length} figures)`);

  // 3. Drill down to the county.
  await page.click(`tr[data-region="${county.region}"] a`);
  await page.waitForFunction((code) => new URLSearchParams(location.hash.split('?')[1] || '').get('region') === code,
    county.region);
  await waitForView('overview', county.region);
  await checkHeadline(county.headline, 'county');
  await screenshot('overview-county.png');
  log(`STEP 3 drilled down to ${county.region}, figures match`);

  // 4. Live update.
  await page.waitForSelector('#live[data-live="open"]', { timeout: STEP_MS }).catch(() => {
    throw new Failure('the live event stream did not connect');
  });
  log('LIVE_READY');
  const line = (await nextLine()).trim();
  const started = Date.now();
  const m = /^OPENED\s+(-?\d+)$/.exec(line);
  check(m, `expected "OPENED <n>" on stdin, got ${JSON.stringify(line)}`);
  const want = Number(m[1]);
  await page.waitForFunction((n) => {
    const t = document.querySelector('[data-figure="dropouts_new"]')?.textContent ?? '';
    return Number(t.replace(/,/g, '')) === n;
  }, want, { timeout: 10_000 }).catch(async () => {
    const shown = await page.locator('[data-figure="dropouts_new"]').textContent().catch(() => '?');
    throw new Failure(`live update: dropouts_new still shows ${shown}, expected ${want} after 10 s`);
  });
  log(`LIVE_OK ${Date.now() - started}`);

  // 5. Download the spreadsheet.
  const [download] = await Promise.all([
    page.waitForEvent('download', { timeout: STEP_MS }),
    page.click('a[data-export="figures"]'),
  ]);
  const filename = download.suggestedFilename();
  check(filename.toLowerCase().endsWith('.xlsx'), `download is named ${JSON.stringify(filename)}, not *.xlsx`);
  const failure = await download.failure();
  check(!failure, `download failed: ${failure}`);
  const bytes = readFileSync(await download.path());
  check(bytes.length > 2 && bytes[0] === 0x50 && bytes[1] === 0x4b, `${filename} does not start with PK`);
  log(`STEP 5 downloaded ${filename} (${bytes.length} bytes)`);

  // 5b. The semester-start check's progress by school, from the case service.
  await page.goto(`${baseUrl}/#/lists/semester_check?region=${county.region}`);
  await page.waitForSelector('#list-table tbody tr td', { timeout: STEP_MS });
  const progress = await page.$$eval('#list-table tbody tr', (rows) => rows.map((r) => [...r.cells].map((c) => c.textContent)));
  const school = progress.find((cells) => cells[0] === '南京市玄武区示范小学');
  check(school && school[2] === '1', `the check's school row: ${JSON.stringify(progress)}`);
  check(progress.some((cells) => cells[0] === '合计'), `no total row: ${JSON.stringify(progress)}`);
  await screenshot('semester-check.png');
  log('STEP 5b the semester-start check lists the monitored child at the school');

  // 5c. Requests for help between counties (协查), from the transfer service.
  await page.goto(`${baseUrl}/#/lists/assistance_out?region=${city.region}`);
  await page.waitForSelector('#list-table tbody tr td', { timeout: STEP_MS });
  const asked = await page.$$eval('#list-table tbody tr', (rows) => rows.map((r) => [...r.cells].map((c) => c.textContent)));
  check(
    asked.length === 1 && asked[0].includes('江苏省南京市秦淮区') && asked[0].includes('查找学生、入户走访'),
    `the request for help: ${JSON.stringify(asked)}`,
  );
  await screenshot('assistance.png');
  log('STEP 5c the city sees the request for help from 玄武区 to 秦淮区');

  // 6. Report workflow: the county drafts and submits, the city approves. A report is drafted once
  // its period is over: the Rust side may move the rule clock first.
  log('REPORT_READY');
  const moved = await nextLineWithin(15_000);
  check(moved === null || moved.trim() === 'CLOCK_MOVED', `expected "CLOCK_MOVED" on stdin, got ${JSON.stringify(moved)}`);
  log(moved === null ? 'STEP 6 no CLOCK_MOVED within 15 s; going on' : 'STEP 6 clock moved past the period');
  await signOut();
  await signInWith(countyToken, county.region);
  await openReport(county.region, period);
  await page.fill('textarea[name="work_done"]', '本期开展入户劝返与开学核查，逐一落实辍学学生复学。');
  await clickAction('draft', 'draft');
  await clickAction('submit', 'submitted');
  log('STEP 6a county drafted and submitted the report');

  // 7a. A write without the CSRF header is refused.
  const submitUrl = `${baseUrl}/api/report/submit`;
  probed.add(submitUrl);
  const csrfStatus = await page.evaluate(async ([region, p]) => {
    const res = await fetch('/api/report/submit', {
      method: 'POST', credentials: 'same-origin', headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ region, period: p, comment: '', notes: null }),
    });
    return res.status;
  }, [county.region, period]);
  check(csrfStatus === 403, `POST /api/report/submit without X-CSRF-Token answered ${csrfStatus}, not 403`);
  log('STEP 7a write without X-CSRF-Token refused with 403');

  await signOut();
  await signInWith(cityToken, city.region);
  await openReport(county.region, period);
  await clickAction('approve', 'approved');
  const entries = await page.locator('[data-history-entry]').count();
  check(entries === 3, `the history shows ${entries} entries, not 3`);
  await screenshot('report.png');
  log('STEP 6b city approved the report; history has 3 entries');

  // 6c. The approved report is filed as a PDF.
  const [pdf] = await Promise.all([
    page.waitForEvent('download', { timeout: STEP_MS }),
    page.click('[data-download="report-pdf"]'),
  ]);
  check(pdf.suggestedFilename().toLowerCase().endsWith('.pdf'), `the report downloads as ${pdf.suggestedFilename()}`);
  const pdfBytes = readFileSync(await pdf.path());
  // Kept beside the screenshots, to be looked at as a bureau files it.
  writeFileSync(join(shotDir, 'report.pdf'), pdfBytes);
  check(pdfBytes.subarray(0, 4).toString('latin1') === '%PDF', 'the report download is not a PDF');
  log(`STEP 6c downloaded ${pdf.suggestedFilename()} (${pdfBytes.length} bytes)`);

  // 6d. The city's own report is the sum of its approved counties, naming each county's state.
  await openReport(city.region, period);
  const approvedRow = page.locator(`#county-table tr[data-region="${county.region}"]`);
  check((await approvedRow.textContent() ?? '').includes('已审核'), 'the city report does not show the county as approved');
  await screenshot('report-city.png');
  log('STEP 6d the city report lists its counties with the approved one');

  // 7b. Signed out, the session is gone.
  await signOut();
  const sessionUrl = `${baseUrl}/api/session`;
  probed.add(sessionUrl);
  const sessionStatus = await page.evaluate(async () => (await fetch('/api/session', { credentials: 'same-origin' })).status);
  check(sessionStatus === 401, `GET /api/session after signing out answered ${sessionStatus}, not 401`);
  log('STEP 7b signed out: /api/session answers 401');

  // 8. Nothing left the machine, nothing went wrong in the page.
  check(offsite.length === 0, `requests to other hosts: ${offsite.join(', ')}`);
  check(pageErrors.length === 0, `${pageErrors.length} error(s) in the page`);
  await browser.close();
  finished = true;
  clearTimeout(overall);
  log('PASS dashboard');
  process.exit(0);
}

main().catch((err) => fail(err instanceof Failure ? err.message : (err?.stack || String(err))));
