// 一个都不能少 · 控辍保学监测 — the bureau dashboard in the browser.
// Plain ES module, no build step, no framework. Everything a user reads is Chinese; code and
// comments are English. Routing is by location hash:
//   #/overview?region=&period=   #/lists/<name>?region=&…   #/report?region=&period=   #/ops
// plus the one-click sign-in link #signin=<token>.

const NO_DATA = '暂无数据';

// ---------------------------------------------------------------------------------------------
// Formatting (Chinese conventions; times in China Standard Time)

const numberFormat = new Intl.NumberFormat('zh-CN');
const percentFormat = new Intl.NumberFormat('zh-CN', {
  style: 'percent', minimumFractionDigits: 1, maximumFractionDigits: 1,
});
const timeFormat = new Intl.DateTimeFormat('zh-CN', {
  timeZone: 'Asia/Shanghai', year: 'numeric', month: '2-digit', day: '2-digit',
  hour: '2-digit', minute: '2-digit', hourCycle: 'h23',
});
const dateFormat = new Intl.DateTimeFormat('zh-CN', {
  timeZone: 'Asia/Shanghai', year: 'numeric', month: 'long', day: 'numeric',
});

const isNum = (v) => typeof v === 'number' && Number.isFinite(v);
const fmtNum = (v) => (isNum(v) ? numberFormat.format(v) : NO_DATA);
const fmtPct = (v) => (isNum(v) ? percentFormat.format(v) : NO_DATA);

function fmtTime(iso) {
  if (!iso) return NO_DATA;
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? String(iso) : timeFormat.format(d);
}

function fmtDate(day) {
  if (!day) return NO_DATA;
  // A bare date is a day in China Standard Time.
  const d = new Date(/^\d{4}-\d{2}-\d{2}$/.test(day) ? `${day}T00:00:00+08:00` : day);
  return Number.isNaN(d.getTime()) ? String(day) : dateFormat.format(d);
}

// ---------------------------------------------------------------------------------------------
// Labels

const HEADLINE = [
  { key: 'consolidation_rate', label: '巩固率', pct: true, foot: '义务教育巩固率' },
  { key: 'dropout_balance', label: '辍学存量', foot: '期末仍在劝返、监测中的辍学学生' },
  { key: 'dropouts_new', label: '本期新增辍学' },
  { key: 'returned', label: '本期劝返复学' },
  { key: 'relapsed', label: '本期反弹', foot: '复学后再次辍学' },
  { key: 'overdue_work', label: '逾期工作', alert: true, list: 'overdue' },
  { key: 'handoffs_pending', label: '待接收移交', alert: true, list: 'handoffs_in' },
  { key: 'suspects_pending', label: '待核实疑似辍学', alert: true, list: 'suspects' },
];

// FIGURES fields, grouped as the bureaus' spreadsheet orders them.
const FIGURE_GROUPS = [
  ['学生', [
    ['pupils_enrolled', '在读学生'], ['pupils_registered', '新增学籍'],
    ['pupils_left_enrolled', '离开在读状态学生'], ['pupils_enrolled_migrant', '其中随迁子女（期末）'],
    ['pupils_enrolled_registered_poor', '其中建档立卡（期末）'], ['pupils_enrolled_disability', '其中残疾学生（期末）'],
  ]],
  ['疑似辍学', [
    ['suspects_new', '新增疑似辍学'], ['suspects_confirmed', '疑似确认辍学'],
    ['suspects_closed', '疑似销号'], ['suspects_pending', '疑似待核实'],
  ]],
  ['辍学案件', [
    ['dropouts_new', '新增辍学'], ['cases_taken_in', '接收移交'], ['cases_handed_out', '移出'],
    ['returned', '劝返复学'], ['relapsed', '复学后再次辍学（反弹）'], ['deferred', '缓学'],
    ['suspended', '休学'], ['home_teaching', '送教上门'], ['exempt', '免学'], ['closed', '结案'],
    ['dropout_balance', '期末辍学存量'],
  ]],
  ['劝返与督办', [
    ['persuasion_attempts', '劝返次数'], ['joint_persuasion_attempts', '其中联合劝返'],
    ['supervision_raised', '督办新增'], ['supervision_closed', '督办办结'], ['supervision_open', '督办未结'],
  ]],
  ['跨区移交', [['handoffs_out', '移交转出'], ['handoffs_in', '移交转入']]],
  ['开学核查', [
    ['check_listed', '列入核查'], ['check_present', '确认到校'], ['check_absent', '标记缺勤'],
    ['check_relapsed', '确认反弹'], ['check_pending', '未标记（期末）'], ['check_absent_open', '缺勤待跟进（期末）'],
  ]],
];

const LISTS = [
  ['overdue', '逾期工作'], ['supervision', '督办事项'], ['handoffs_out', '移出案件'],
  ['handoffs_in', '移入案件'], ['assistance_out', '发出协查'], ['assistance_in', '收到协查'],
  ['hukou_notices_out', '户籍地通知（发出）'], ['hukou_notices_in', '户籍地通知（收到）'],
  ['suspects', '疑似辍学'], ['semester_check', '开学核查进度'],
];

const ACTIONS = {
  draft: { label: '保存草稿', done: '草稿已保存。', cls: 'btn-secondary' },
  submit: { label: '上报', done: '双月报已上报。', cls: '' },
  approve: { label: '审核通过', done: '已审核通过。', cls: '' },
  return: { label: '退回', done: '已退回。', cls: 'btn-danger', needs: '请填写退回意见。' },
  accept: { label: '接收', done: '已接收。', cls: '' },
  reopen: { label: '重新打开', done: '已重新打开。', cls: 'btn-danger', needs: '请填写重新打开的原因。' },
};
const ACTION_ORDER = ['draft', 'submit', 'approve', 'accept', 'return', 'reopen'];

const NOTES = [['work_done', '主要工作'], ['problems', '存在问题'], ['next_steps', '下一步打算']];

// Used only when the session answer carries no Chinese role name.
const ROLE_ZH = {
  caseworker: '经办人员', school: '学校用户', supervisor: '审核人员',
  approver: '审批人员', operator: '运维人员', system: '系统',
};

const LEVEL_PREFIX = { province: 2, city: 4, county: 6 };

// Chart colours: calm blues and greens, one warm tone for relapses.
const PALETTE = ['#1a4a8a', '#2e8b57', '#d9822b', '#5b7fb5', '#8e5ea2', '#3a9fbf', '#b0413e', '#7a8ca3'];
const CHART_FONT = '"Noto Sans SC", sans-serif';

// ---------------------------------------------------------------------------------------------
// State

const state = {
  session: null,        // GET /api/session answer
  periods: [],          // [{code, name}]
  currentPeriod: null,  // the server's current period code
  period: null,         // the period being looked at
  region: null,         // the region being looked at
  route: null,          // {view, name, q}
  seq: 0,               // render generation: stale answers are dropped
  charts: [],           // live ECharts instances in the view
  events: null,         // EventSource
  eventsRetry: 0,
  overview: null,       // last overview answer
  returnTo: null,       // view to show after signing in again
  pendingFocus: null,   // data-focus key to restore after a re-render
  live: { timer: 0, busy: false, again: false },
};

const $ = (sel, root = document) => root.querySelector(sel);

// ---------------------------------------------------------------------------------------------
// DOM helper: h('a', {href, class, dataset, onclick}, ...children). Never uses innerHTML.

function h(tag, attrs, ...kids) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v == null || v === false) continue;
    if (k === 'class') el.className = v;
    else if (k === 'dataset') Object.assign(el.dataset, v);
    else if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  for (const kid of kids.flat(Infinity)) {
    if (kid == null || kid === false) continue;
    el.append(kid instanceof Node ? kid : String(kid));
  }
  return el;
}

function hashFor(path, params = {}) {
  const qs = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v != null && v !== '') qs.set(k, v);
  const s = qs.toString();
  return `#/${path}${s ? `?${s}` : ''}`;
}

// ---------------------------------------------------------------------------------------------
// API

class ApiError extends Error {
  constructor(status, message, field) {
    super(message);
    this.status = status;
    this.field = field || null;
  }
}

// Calls the JSON API. Writes carry the session's CSRF token. A 401 (except on sign-in) returns
// the user to the sign-in view.
async function api(path, { method = 'GET', body, signin = false } = {}) {
  const headers = { Accept: 'application/json' };
  if (method !== 'GET') {
    headers['Content-Type'] = 'application/json';
    const csrf = state.session?.csrf ?? state.session?.csrf_token;
    if (csrf) headers['X-CSRF-Token'] = csrf;
  }
  let res;
  try {
    res = await fetch(path, {
      method, headers, credentials: 'same-origin',
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch {
    throw new ApiError(0, '无法连接服务器，请检查网络后重试。');
  }
  const text = await res.text();
  let data = null;
  if (text) {
    try { data = JSON.parse(text); } catch { data = null; }
  }
  if (!res.ok) {
    const message = (data && typeof data.error === 'string' && data.error) || `请求失败（HTTP ${res.status}）。`;
    const err = new ApiError(res.status, message, data?.field);
    if (res.status === 401 && !signin) signedOut('登录已失效，请重新登录。');
    throw err;
  }
  return data;
}

// ---------------------------------------------------------------------------------------------
// Messages

function showError(message, field) {
  const box = $('#alert');
  box.replaceChildren(h('span', { class: 'alert-text' }, message),
    h('button', { type: 'button', class: 'alert-close', 'aria-label': '关闭提示', onclick: clearError }, '×'));
  box.hidden = false;
  if (field) {
    const input = document.querySelector(`#view [name="${CSS.escape(field)}"]`);
    if (input) {
      input.setAttribute('aria-invalid', 'true');
      input.focus();
    }
  }
}

function clearError() {
  const box = $('#alert');
  box.hidden = true;
  box.replaceChildren();
  for (const el of document.querySelectorAll('#view [aria-invalid="true"]')) el.removeAttribute('aria-invalid');
}

function announce(text) {
  const s = $('#status');
  s.textContent = '';
  // A fresh text node so screen readers announce repeats too.
  setTimeout(() => { s.textContent = text; }, 30);
}

// Shows an API error; a 401 has already sent the user to sign in.
function handleError(err) {
  if (err instanceof ApiError && err.status === 401) return;
  if (err instanceof ApiError) showError(err.message, err.field);
  else {
    console.warn(err);
    showError('页面出现异常，请刷新后重试。');
  }
}

// ---------------------------------------------------------------------------------------------
// Session: sign-in, sign-out, live events

async function loadSession() {
  try {
    state.session = await api('/api/session', { signin: true });
    return true;
  } catch (err) {
    if (err instanceof ApiError && err.status === 401) return false;
    throw err;
  }
}

async function signIn(token) {
  clearError();
  try {
    const answer = await api('/api/session', { method: 'POST', body: { token }, signin: true });
    // Use the answer when it is the session itself; else ask for it.
    if (answer && (answer.csrf || answer.csrf_token)) state.session = answer;
    else if (!(await loadSession())) throw new ApiError(401, '登录未成功，请检查令牌。');
  } catch (err) {
    state.session = null;
    showSignin(err instanceof ApiError ? err.message : '登录未成功，请稍后重试。');
    return false;
  }
  await afterSignIn();
  return true;
}

async function afterSignIn() {
  document.body.classList.remove('signed-out');
  renderWho();
  await loadPeriods();
  openEvents();
}

async function loadPeriods() {
  try {
    const data = await api('/api/periods');
    const list = Array.isArray(data) ? data : (data?.periods ?? []);
    state.periods = list.map((p) => (typeof p === 'string'
      ? { code: p, name: p }
      : { code: p.code ?? p.period, name: p.name ?? p.period_name ?? p.code ?? p.period, current: p.current }));
    const cur = data?.current ?? data?.current_period;
    state.currentPeriod = (typeof cur === 'object' && cur ? cur.code : cur)
      ?? state.periods.find((p) => p.current)?.code
      ?? state.periods.at(-1)?.code ?? null;
  } catch (err) {
    if (err instanceof ApiError && err.status === 401) throw err;
    state.periods = [];
  }
  renderPeriodSelect();
}

function signedOut(message) {
  // Come back to the same view after signing in again (never to a sign-in link).
  if (message && /^#\/(overview|lists|report|ops)/.test(location.hash)) state.returnTo = location.hash;
  state.session = null;
  state.overview = null;
  closeEvents();
  showSignin(message);
}

async function logout() {
  try {
    await api('/api/session', { method: 'DELETE' });
  } catch (err) {
    if (!(err instanceof ApiError && err.status === 401)) {
      handleError(err);
      return;
    }
  }
  signedOut();
  announce('已退出登录。');
}

function renderWho() {
  const s = state.session || {};
  const role = s.role_zh ?? s.role_name ?? ROLE_ZH[s.role] ?? s.role ?? '';
  $('#who').replaceChildren(h('strong', null, s.region_name ?? s.region_code ?? ''), role ? ` · ${role}` : '');
}

function renderPeriodSelect() {
  const sel = $('#period');
  const list = [...state.periods];
  const want = state.period ?? state.currentPeriod;
  if (want && !list.some((p) => p.code === want)) {
    list.push({ code: want, name: state.overview?.period?.code === want ? state.overview.period.name : want });
  }
  sel.replaceChildren(...list.map((p) => h('option', { value: p.code },
    p.code === state.currentPeriod ? `${p.name}（本期）` : p.name)));
  if (want) sel.value = want;
  sel.disabled = list.length === 0;
}

function setLive(mode) {
  const el = $('#live');
  el.dataset.live = mode;
  if (mode === 'open') el.replaceChildren('实时更新', h('span', { class: 'dot', 'aria-hidden': 'true' }, '●'));
  else if (mode === 'error') el.replaceChildren('连接中断');
  else if (mode === 'connecting') el.replaceChildren('连接中…', h('span', { class: 'dot', 'aria-hidden': 'true' }, '●'));
  else el.replaceChildren();
}

function openEvents() {
  closeEvents();
  if (typeof EventSource === 'undefined') return;
  const es = new EventSource('/api/events');
  state.events = es;
  setLive('connecting');
  es.onopen = () => setLive('open');
  es.onerror = () => {
    if (state.events !== es) return;
    setLive('error');
    // The browser retries by itself unless the server refused the stream; then retry later.
    if (es.readyState === EventSource.CLOSED) {
      state.eventsRetry = setTimeout(() => { if (state.session && state.events === es) openEvents(); }, 5000);
    }
  };
  es.onmessage = onLiveEvent;
}

function closeEvents() {
  clearTimeout(state.eventsRetry);
  clearTimeout(state.live.timer);
  if (state.events) state.events.close();
  state.events = null;
  setLive('off');
}

// A change somewhere: refresh the overview if it may show it (debounced, one fetch at a time).
function onLiveEvent(ev) {
  let msg = {};
  try { msg = JSON.parse(ev.data); } catch { /* not JSON: treat as relevant */ }
  if (state.route?.view !== 'overview' || !state.overview) return;
  const here = state.overview.region_code;
  const len = LEVEL_PREFIX[state.overview.level] ?? 0;
  const code = typeof msg.region_code === 'string' ? msg.region_code : '';
  const relevant = !code || code.startsWith(here.slice(0, len)) || /handoff|transfer/.test(msg.kind ?? '');
  if (!relevant) return;
  clearTimeout(state.live.timer);
  state.live.timer = setTimeout(refreshOverview, 200);
}

async function refreshOverview() {
  if (state.live.busy) { state.live.again = true; return; }
  if (state.route?.view !== 'overview') return;
  state.live.busy = true;
  try {
    await showOverview(state.route.q, { refresh: true });
  } finally {
    state.live.busy = false;
    if (state.live.again) {
      state.live.again = false;
      refreshOverview();
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Sign-in view

function showSignin(message) {
  document.body.classList.add('signed-out');
  state.seq += 1; // drop answers still on their way
  disposeCharts();
  state.route = null;
  const view = $('#view');
  view.dataset.view = 'signin';
  delete view.dataset.viewRegion;
  view.setAttribute('aria-busy', 'false');
  if (!location.hash.startsWith('#/signin')) history.replaceState(null, '', '#/signin');
  clearError();
  const token = h('textarea', {
    id: 'token', name: 'token', required: true, autocomplete: 'off', spellcheck: 'false',
    'aria-describedby': 'token-hint',
  });
  const form = h('form', { class: 'signin', id: 'signin-form', novalidate: true },
    h('h1', null, '登录'),
    h('p', null, '请输入上级部门或系统管理员发放的访问令牌。'),
    h('div', { class: 'field' },
      h('label', { for: 'token', class: 'note-title' }, '访问令牌（令牌）'),
      token,
      h('p', { class: 'hint', id: 'token-hint' }, '令牌只用于本次登录，请勿转发给他人。')),
    h('div', { class: 'action-bar' }, h('button', { type: 'submit', class: 'btn', id: 'signin-button' }, '登录')));
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    const value = token.value.trim();
    if (!value) {
      showError('请输入访问令牌。', 'token');
      return;
    }
    const button = $('#signin-button');
    button.disabled = true;
    const ok = await signIn(value);
    if (ok) {
      history.replaceState(null, '', state.returnTo || '#/overview');
      state.returnTo = null;
      await route();
    } else {
      const again = $('#signin-button');
      if (again) again.disabled = false;
    }
  });
  view.replaceChildren(form);
  if (message) showError(message);
  token.focus();
}

// ---------------------------------------------------------------------------------------------
// Router

function parseHash() {
  const raw = location.hash.replace(/^#/, '');
  const at = raw.indexOf('?');
  const path = at < 0 ? raw : raw.slice(0, at);
  const q = Object.fromEntries(new URLSearchParams(at < 0 ? '' : raw.slice(at + 1)));
  const parts = path.split('/').filter(Boolean);
  return { parts, q };
}

let queue = Promise.resolve();
// Hash changes are handled one at a time, in order.
function onHashChange() {
  queue = queue.then(handleHash, handleHash);
  return queue;
}

async function handleHash() {
  try {
    const hash = location.hash;
    if (hash.startsWith('#signin=')) {
      let token = hash.slice('#signin='.length);
      try { token = decodeURIComponent(token); } catch { /* use as is */ }
      // Take the token out of the address bar (and the history) at once.
      history.replaceState(null, '', `${location.pathname}${location.search}#/overview`);
      if (await signIn(token)) await route();
      return;
    }
    if (hash === '#main') return; // the skip link
    if (!state.session) {
      if (!(await loadSession())) {
        if (/^#\/(overview|lists|report|ops)/.test(hash)) state.returnTo = hash;
        showSignin();
        return;
      }
      await afterSignIn();
    }
    await route();
  } catch (err) {
    handleError(err);
  }
}

async function route() {
  const { parts, q } = parseHash();
  let view = parts[0] || 'overview';
  if (view === 'signin') {
    history.replaceState(null, '', '#/overview');
    view = 'overview';
  }
  const name = parts[1] || null;
  if (!['overview', 'lists', 'report', 'ops'].includes(view)) {
    history.replaceState(null, '', '#/overview');
    view = 'overview';
  }
  state.route = { view, name, q };
  if (q.region) state.region = q.region;
  if (q.period) state.period = q.period;
  clearError();
  updateNav();
  if (view === 'overview') await showOverview(q);
  else if (view === 'lists') await showList(name || 'overdue', q);
  else if (view === 'report') await showReport(q);
  else await showOps();
}

function updateNav() {
  const region = state.region ?? state.session?.region_code;
  const period = state.period;
  const links = {
    overview: hashFor('overview', { region, period }),
    lists: hashFor('lists/overdue', { region }),
    report: hashFor('report', { region, period }),
    ops: hashFor('ops'),
  };
  for (const a of document.querySelectorAll('#mainnav a[data-nav]')) {
    a.setAttribute('href', links[a.dataset.nav]);
    if (a.dataset.nav === state.route?.view) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
  renderPeriodSelect();
}

// Starts a view: drops old charts, marks the view busy. Returns the generation number.
function focusKeyNow() {
  return document.activeElement?.closest?.('#view [data-focus]')?.dataset.focus ?? null;
}

function beginView(name, { refresh = false } = {}) {
  const seq = ++state.seq;
  const view = $('#view');
  if (!refresh) {
    state.pendingFocus = focusKeyNow();
    disposeCharts();
    view.dataset.view = name;
    delete view.dataset.viewRegion;
    view.replaceChildren(h('p', { class: 'loading' }, '正在加载…'));
  }
  view.setAttribute('aria-busy', 'true');
  return seq;
}

// Puts a rendered view in place, keeping keyboard focus on the same control when re-rendering.
function commitView(name, content, { region } = {}) {
  const view = $('#view');
  const focusKey = state.pendingFocus ?? focusKeyNow();
  state.pendingFocus = null;
  disposeCharts();
  view.dataset.view = name;
  if (region) view.dataset.viewRegion = region;
  else delete view.dataset.viewRegion;
  view.replaceChildren(content);
  view.setAttribute('aria-busy', 'false');
  if (focusKey) view.querySelector(`[data-focus="${CSS.escape(focusKey)}"]`)?.focus();
}

// ---------------------------------------------------------------------------------------------
// Charts

function disposeCharts() {
  for (const c of state.charts) c.dispose();
  state.charts = [];
}

// Makes sure the CJK glyphs a chart draws are loaded before it paints on canvas.
async function fontsFor(text) {
  if (!document.fonts?.load) return;
  const wait = new Promise((resolve) => setTimeout(resolve, 1500));
  try {
    await Promise.race([
      Promise.all([document.fonts.load(`12px ${CHART_FONT}`, text), document.fonts.load(`bold 12px ${CHART_FONT}`, text)]),
      wait,
    ]);
  } catch { /* draw with the fallback font */ }
}

function makeChart(el, option) {
  if (!window.echarts) {
    el.replaceChildren(h('p', { class: 'chart-empty' }, '图表组件未能加载'));
    return;
  }
  const chart = window.echarts.init(el, null, { renderer: 'canvas', locale: 'ZH' });
  chart.setOption({
    color: PALETTE,
    aria: { enabled: true },
    textStyle: { fontFamily: CHART_FONT, color: '#1b2733' },
    tooltip: { textStyle: { fontFamily: CHART_FONT } },
    animation: false, // calm, and re-renders on live updates do not flicker
    ...option,
  });
  state.charts.push(chart);
}

function chartBox(id, label) {
  return h('div', { class: 'chart', id, role: 'img', 'aria-label': label });
}

let resizeTimer = 0;
window.addEventListener('resize', () => {
  clearTimeout(resizeTimer);
  resizeTimer = setTimeout(() => { for (const c of state.charts) c.resize(); }, 120);
});

const axisText = { color: '#4b5a6a', fontFamily: CHART_FONT };
const grid = { left: 48, right: 20, top: 40, bottom: 44, containLabel: true };

function trendOption(trend) {
  const names = trend.map((t) => String(t.name ?? t.period).replace('年', '年\n'));
  const series = [
    ['新增辍学', 'dropouts_new', 'bar'], ['劝返复学', 'returned', 'bar'],
    ['反弹', 'relapsed', 'bar'], ['辍学存量', 'dropout_balance', 'line'],
  ].map(([name, key, type], i) => ({
    name, type, data: trend.map((t) => (isNum(t[key]) ? t[key] : null)),
    itemStyle: { color: [PALETTE[0], PALETTE[1], PALETTE[2], PALETTE[6]][i] },
    ...(type === 'line' ? { smooth: false, symbolSize: 7, lineStyle: { width: 2.5 } } : { barMaxWidth: 18 }),
  }));
  return {
    legend: { top: 0, textStyle: axisText },
    grid,
    tooltip: { trigger: 'axis' },
    xAxis: { type: 'category', data: names, axisLabel: { ...axisText, interval: 0, lineHeight: 16 } },
    yAxis: { type: 'value', minInterval: 1, axisLabel: axisText, splitLine: { lineStyle: { color: '#e6ebf1' } } },
    series,
  };
}

function causeOption(causes) {
  return {
    tooltip: { trigger: 'item', formatter: (p) => `${p.name}：${fmtNum(p.value)}（${p.percent}%）` },
    legend: { type: 'scroll', orient: 'vertical', right: 4, top: 'middle', textStyle: axisText },
    series: [{
      name: '辍学原因', type: 'pie', radius: ['42%', '70%'], center: ['38%', '52%'],
      label: { formatter: '{b}\n{c}', color: '#1b2733', fontFamily: CHART_FONT },
      data: causes.map((c) => ({ name: c.name ?? c.cause, value: c.count })),
    }],
  };
}

function horizontalBar(items, seriesName, color) {
  return {
    grid: { left: 12, right: 36, top: 12, bottom: 12, containLabel: true },
    tooltip: { trigger: 'axis', axisPointer: { type: 'shadow' } },
    xAxis: { type: 'value', minInterval: 1, axisLabel: axisText, splitLine: { lineStyle: { color: '#e6ebf1' } } },
    yAxis: { type: 'category', inverse: true, data: items.map((i) => i.name), axisLabel: axisText },
    series: [{
      name: seriesName, type: 'bar', barMaxWidth: 20, itemStyle: { color },
      label: { show: true, position: 'right', color: '#1b2733', formatter: (p) => fmtNum(p.value) },
      data: items.map((i) => (isNum(i.value) ? i.value : null)),
    }],
  };
}

// ---------------------------------------------------------------------------------------------
// Overview view

function shortName(name, parentName) {
  if (name && parentName && name.startsWith(parentName) && name.length > parentName.length) {
    return name.slice(parentName.length);
  }
  return name ?? '';
}

function stateBadge(stateCode, stateZh, extra = {}) {
  return h('span', { class: 'badge', dataset: { state: stateCode || 'none' }, ...extra }, stateZh || '未起草');
}

function warningBox(warnings) {
  if (!Array.isArray(warnings) || warnings.length === 0) return null;
  return h('div', { class: 'alert alert-warn', role: 'note', 'aria-label': '数据提示' },
    h('div', { class: 'alert-title' }, '数据提示'),
    h('ul', null, warnings.map((w) => h('li', null, w))));
}

async function showOverview(q, { refresh = false } = {}) {
  const seq = beginView('overview', { refresh });
  const qs = new URLSearchParams();
  if (q.region) qs.set('region', q.region);
  if (q.period) qs.set('period', q.period);
  let data;
  try {
    data = await api(`/api/overview${qs.toString() ? `?${qs}` : ''}`);
  } catch (err) {
    if (seq !== state.seq || err.status === 401) return;
    $('#view').setAttribute('aria-busy', 'false');
    if (!refresh) $('#view').replaceChildren(h('p', { class: 'loading' }, '未能加载概览。'));
    handleError(err);
    return;
  }
  if (seq !== state.seq) return;

  state.overview = data;
  state.region = data.region_code;
  state.period = data.period?.code ?? state.period;
  updateNav();

  const period = state.period;
  const children = Array.isArray(data.children) ? data.children : [];
  const figures = data.figures || null;
  const headline = data.headline || {};

  // Head: crumbs, title, export.
  const head = h('div', { class: 'page-head' },
    h('div', null,
      data.parent ? h('div', { class: 'crumbs' },
        h('a', { href: hashFor('overview', { region: data.parent.region_code, period }), dataset: { focus: 'parent' } },
          `← 返回上级（${data.parent.region_name}）`)) : null,
      h('h1', null, `${data.region_name} · 控辍保学概览`),
      h('div', { class: 'meta' },
        `统计期：${data.period?.name ?? period ?? NO_DATA}`,
        data.period?.start ? `（${fmtDate(data.period.start)}至${fmtDate(data.period.end)}）` : '',
        ` · 数据更新于 ${fmtTime(data.updated_at)}`)),
    h('div', { class: 'actions' },
      h('a', {
        class: 'btn btn-secondary', href: `/api/export/figures.xlsx?${new URLSearchParams({ region: data.region_code, period })}`,
        download: '', 'data-export': 'figures', dataset: { focus: 'export' },
      }, '导出 Excel')));

  // Headline cards.
  const cards = h('section', { class: 'cards', 'aria-label': '主要指标' },
    HEADLINE.map((c) => {
      const v = headline[c.key];
      const text = c.pct ? fmtPct(v) : fmtNum(v);
      const flagged = c.alert && isNum(v) && v > 0;
      return h('div', { class: `card${flagged ? ' card-alert' : ''}${isNum(v) ? '' : ' card-muted'}` },
        h('div', { class: 'card-label', id: `card-${c.key}` }, c.label),
        h('div', { class: `card-value${isNum(v) ? '' : ' no-data'}`, 'data-figure': c.key, 'aria-labelledby': `card-${c.key}` }, text),
        c.list
          ? h('div', { class: 'card-foot' },
            h('a', { href: hashFor(`lists/${c.list}`, { region: data.region_code }), dataset: { focus: `card-${c.key}` } }, '查看清单 →'))
          : (c.foot ? h('div', { class: 'card-foot' }, c.foot) : null));
    }));

  // Charts.
  const trend = Array.isArray(data.trend) ? data.trend : [];
  const causes = (figures?.balance_by_cause ?? []).filter((c) => isNum(c.count) && c.count > 0);
  const statuses = (figures?.balance_by_status ?? []).filter((s) => isNum(s.count));
  const causeTotal = causes.reduce((a, c) => a + c.count, 0);
  const chartPlan = [];
  const panel = (title, sub, id, label, option, empty, wide = false) => {
    const body = empty ? h('div', { class: 'chart-empty' }, empty) : chartBox(id, label);
    if (!empty) chartPlan.push([id, option]);
    return h('section', { class: `panel${wide ? ' wide' : ''}`, 'aria-labelledby': `${id}-title` },
      h('h2', { id: `${id}-title` }, title, sub ? h('span', { class: 'sub' }, sub) : null), body);
  };
  const panels = h('div', { class: 'panels' },
    panel('近六期变化', '新增辍学、劝返复学、反弹与辍学存量', 'chart-trend', '近六期新增辍学、劝返复学、反弹与辍学存量趋势图',
      trendOption(trend), trend.length ? null : NO_DATA),
    panel('辍学原因', '期末存量，一人多因分别计数', 'chart-cause', '辍学存量按原因分布图',
      causeOption(causes), !figures ? NO_DATA : (causeTotal === 0 ? '本期末无辍学存量' : null)),
    panel('案件状态', '期末辍学存量按状态', 'chart-status', '辍学存量按案件状态分布图',
      horizontalBar(statuses.map((s) => ({ name: s.name ?? s.status, value: s.count })), '辍学存量', PALETTE[0]),
      !figures || statuses.length === 0 ? NO_DATA : null, children.length === 0),
    children.length
      ? panel('下级地区辍学存量', null, 'chart-children', '各下级地区辍学存量对比图',
        horizontalBar(children.map((c) => ({ name: shortName(c.region_name, data.region_name), value: c.figures?.dropout_balance })), '辍学存量', PALETTE[3]),
        null)
      : null);

  // Children table (or, for a county, the full figures).
  const childTable = children.length ? childrenTable(data, children, period) : null;
  const details = h('section', { class: 'panel wide', 'aria-labelledby': 'figs-title' },
    h('h2', { id: 'figs-title' }, `${data.region_name}本期指标明细`),
    figuresTable(figures));

  const content = h('div', null,
    head,
    warningBox(data.warnings),
    cards,
    panels,
    childTable ? h('section', { class: 'panel wide spaced' }, childTable) : null,
    details);
  commitView('overview', content, { region: data.region_code });

  await fontsFor([
    ...chartPlan.length ? ['新增辍学劝返复学反弹辍学存量年月—0123456789'] : [],
    ...causes.map((c) => c.name ?? ''), ...statuses.map((s) => s.name ?? ''),
    ...children.map((c) => c.region_name ?? ''),
  ].join(''));
  if (seq !== state.seq) return;
  for (const [id, option] of chartPlan) {
    const el = document.getElementById(id);
    if (el) makeChart(el, option);
  }
}

function childrenTable(data, children, period) {
  const num = (v) => h('td', { class: 'num' }, fmtNum(v));
  const f = data.figures || {};
  return h('div', { class: 'table-wrap' },
    h('table', { class: 'data', id: 'children-table' },
      h('caption', null, '下级地区情况'),
      h('thead', null, h('tr', null,
        h('th', { scope: 'col' }, '地区'), h('th', { scope: 'col', class: 'num' }, '在读学生'),
        h('th', { scope: 'col', class: 'num' }, '本期新增辍学'), h('th', { scope: 'col', class: 'num' }, '劝返复学'),
        h('th', { scope: 'col', class: 'num' }, '反弹'), h('th', { scope: 'col', class: 'num' }, '辍学存量'),
        h('th', { scope: 'col' }, '双月报状态'))),
      h('tbody', null, children.map((c) => {
        const cf = c.figures || {};
        return h('tr', { 'data-region': c.region_code },
          h('th', { scope: 'row' },
            h('a', { href: hashFor('overview', { region: c.region_code, period }), dataset: { focus: `child-${c.region_code}` } },
              shortName(c.region_name, data.region_name))),
          num(cf.pupils_enrolled), num(cf.dropouts_new), num(cf.returned), num(cf.relapsed), num(cf.dropout_balance),
          // Only counties report; a city under the province shows no state of its own.
          h('td', null, c.report_state == null && c.report_state_zh == null
            ? h('span', { 'aria-label': '不适用' }, '—')
            : stateBadge(c.report_state, c.report_state_zh)));
      })),
      h('tfoot', null, h('tr', null,
        h('th', { scope: 'row' }, '合计'), num(f.pupils_enrolled), num(f.dropouts_new), num(f.returned),
        num(f.relapsed), num(f.dropout_balance), h('td', null)))));
}

// All FIGURES in grouped two-column tables, plus the balance breakdowns.
function figuresTable(figures) {
  if (!figures) return h('p', { class: 'hint' }, NO_DATA);
  const groups = FIGURE_GROUPS.map(([title, rows]) => h('table', { class: 'data kv' },
    h('caption', null, title),
    h('tbody', null, rows.map(([key, label]) => h('tr', null,
      h('th', { scope: 'row' }, label), h('td', { class: 'num' }, fmtNum(figures[key])))))));
  const breakdown = (title, items, keyName) => h('table', { class: 'data kv' },
    h('caption', null, title),
    h('tbody', null, (items ?? []).length
      ? items.map((i) => h('tr', null, h('th', { scope: 'row' }, i.name ?? i[keyName]), h('td', { class: 'num' }, fmtNum(i.count))))
      : h('tr', null, h('td', { class: 'empty', colspan: 2 }, NO_DATA))));
  return h('div', { class: 'kv-grid' },
    ...groups,
    breakdown('辍学存量按状态', figures.balance_by_status, 'status'),
    breakdown('辍学存量按原因', figures.balance_by_cause, 'cause'),
    breakdown('在读学生按年级（期末）', figures.pupils_enrolled_by_grade, 'grade'));
}

// ---------------------------------------------------------------------------------------------
// Lists view

async function showList(name, q) {
  const seq = beginView('lists');
  const region = q.region || state.region || state.session?.region_code;
  const params = new URLSearchParams();
  for (const [k, v] of Object.entries(q)) if (v !== '' && k !== 'region') params.set(k, v);
  if (region) params.set('region', region);
  let data;
  try {
    data = await api(`/api/lists/${encodeURIComponent(name)}?${params}`);
  } catch (err) {
    if (seq !== state.seq || err.status === 401) return;
    commitView('lists', h('div', null, listTabs(name, region), h('p', { class: 'loading' }, '未能加载清单。')));
    handleError(err);
    return;
  }
  if (seq !== state.seq) return;

  const columns = Array.isArray(data.columns) ? data.columns : [];
  const rows = Array.isArray(data.rows) ? data.rows : [];
  const filters = Array.isArray(data.filters) ? data.filters : [];
  const exportParams = new URLSearchParams(params);
  exportParams.delete('page_token');
  const title = data.title || LISTS.find(([n]) => n === name)?.[1] || '工作清单';

  const filterBar = filters.length ? h('div', { class: 'filters', role: 'group', 'aria-label': '筛选' },
    filters.map((f) => {
      const id = `filter-${f.key}`;
      const select = h('select', { id, name: f.key, dataset: { focus: id } },
        (f.options ?? []).map((o) => h('option', { value: o.value ?? '' }, o.label ?? o.value ?? '')));
      select.value = q[f.key] ?? f.selected ?? '';
      select.addEventListener('change', () => {
        const next = { ...q, region, [f.key]: select.value };
        delete next.page_token;
        location.hash = hashFor(`lists/${name}`, next);
      });
      return h('label', { class: 'field', for: id }, h('span', null, f.title ?? f.key), select);
    })) : null;

  const table = h('div', { class: 'table-wrap' }, h('table', { class: 'data', id: 'list-table' },
    h('caption', null, `${title}（本页 ${fmtNum(rows.length)} 条）`),
    h('thead', null, h('tr', null, columns.map((c) => h('th', { scope: 'col' }, c.title ?? c.key)))),
    h('tbody', null, rows.length
      ? rows.map((r) => h('tr', null, columns.map((c) => h('td', null, String(r[c.key] ?? '')))))
      : h('tr', null, h('td', { class: 'empty', colspan: Math.max(columns.length, 1) }, '暂无记录')))));

  const pager = h('div', { class: 'pager' },
    q.page_token ? h('a', { class: 'btn btn-secondary', href: hashFor(`lists/${name}`, { ...q, region, page_token: '' }) }, '回到第一页') : null,
    data.next_page_token ? h('button', {
      type: 'button', class: 'btn', id: 'next-page', dataset: { focus: 'next-page' },
      onclick: () => { location.hash = hashFor(`lists/${name}`, { ...q, region, page_token: data.next_page_token }); },
    }, '下一页') : null);

  commitView('lists', h('div', null,
    h('div', { class: 'page-head' },
      h('div', null, h('h1', null, '工作清单'), h('div', { class: 'meta' }, title)),
      h('div', { class: 'actions' },
        h('a', {
          class: 'btn btn-secondary', href: `/api/lists/${encodeURIComponent(name)}.xlsx?${exportParams}`,
          download: '', 'data-export': 'list',
        }, '导出 Excel'))),
    listTabs(name, region),
    filterBar,
    table,
    pager), { region });
}

function listTabs(active, region) {
  return h('nav', { class: 'tabs', 'aria-label': '清单类别' },
    LISTS.map(([n, label]) => h('a', {
      href: hashFor(`lists/${n}`, { region }), 'aria-current': n === active ? 'page' : null, dataset: { focus: `tab-${n}` },
    }, label)));
}

// ---------------------------------------------------------------------------------------------
// Report view

async function showReport(q) {
  const seq = beginView('report');
  const params = new URLSearchParams();
  const region = q.region || state.region || state.session?.region_code;
  const period = q.period || state.period || state.currentPeriod;
  if (region) params.set('region', region);
  if (period) params.set('period', period);
  let data;
  try {
    data = await api(`/api/report?${params}`);
  } catch (err) {
    if (seq !== state.seq || err.status === 401) return;
    commitView('report', h('p', { class: 'loading' }, '未能加载双月报。'));
    handleError(err);
    return;
  }
  if (seq !== state.seq) return;
  renderReport(data);
}

function renderReport(data) {
  state.region = data.region_code;
  state.period = data.period ?? state.period;
  updateNav();
  const actions = (Array.isArray(data.actions) ? data.actions : []).filter((a) => ACTIONS[a]);
  const editable = actions.includes('draft');
  const isCounty = data.level === 'county';
  const notes = data.notes || {};
  const period = data.period;

  const head = h('div', { class: 'page-head' },
    h('div', null,
      h('h1', null, `${data.region_name} · ${data.period_name ?? period} 双月报`),
      h('div', { class: 'facts' },
        isCounty
          ? h('span', null, '状态：', stateBadge(data.state, data.state_zh, { class: 'badge badge-lg', 'data-report-state': data.state || 'none' }))
          : h('span', null, '汇总：已审核、已接收县级单位之和'),
        h('span', null, '报送截止：', h('strong', null, fmtDate(data.due_on))),
        data.late ? h('span', { class: 'badge badge-late' }, '逾期未报') : null,
        isNum(data.counties_total) && data.level !== 'county'
          ? h('span', null, '已汇总县级单位：', h('strong', null, `${fmtNum(data.counties_counted)} / ${fmtNum(data.counties_total)}`))
          : null)),
    h('div', { class: 'actions' },
      // An approved or accepted county report is filed as a PDF (a plain download link).
      data.level === 'county' && (data.state === 'approved' || data.state === 'accepted')
        ? h('a', {
          class: 'btn btn-secondary',
          'data-download': 'report-pdf',
          href: `/api/report.pdf?region=${encodeURIComponent(data.region_code)}&period=${encodeURIComponent(period)}`,
        }, '下载 PDF')
        : null,
      h('a', { class: 'btn btn-secondary', href: hashFor('overview', { region: data.region_code, period }) }, '查看概览')));

  // Notes: textareas when this caller may draft, text otherwise.
  const notesPanel = h('section', { class: 'panel', 'aria-labelledby': 'notes-title' },
    h('h2', { id: 'notes-title' }, '工作情况说明'),
    NOTES.map(([key, label]) => h('div', { class: 'note-block' },
      editable
        ? [h('label', { class: 'note-title', for: `note-${key}` }, label),
          h('textarea', { id: `note-${key}`, name: key, rows: 4, dataset: { focus: `note-${key}` } }, notes[key] ?? '')]
        : [h('h3', null, label),
          notes[key] ? h('p', null, notes[key]) : h('p', { class: 'empty' }, '（未填写）')])));

  // Actions this caller may take now.
  const needsComment = actions.some((a) => a !== 'draft');
  const mustComment = actions.filter((a) => ACTIONS[a].needs).map((a) => ACTIONS[a].label);
  const actionPanel = actions.length ? h('section', { class: 'panel', 'aria-labelledby': 'act-title' },
    h('h2', { id: 'act-title' }, '办理'),
    needsComment ? h('div', { class: 'field' },
      h('label', { for: 'report-comment', class: 'note-title' }, '意见'),
      h('textarea', { id: 'report-comment', name: 'comment', rows: 3, 'aria-describedby': 'comment-hint', dataset: { focus: 'comment' } }),
      h('p', { class: 'hint', id: 'comment-hint' }, mustComment.length
        ? `${mustComment.join('、')}时必须填写意见，其他操作可选填。`
        : '可选填。')) : null,
    h('div', { class: 'action-bar' }, ACTION_ORDER.filter((a) => actions.includes(a)).map((a) => h('button', {
      type: 'button', class: `btn ${ACTIONS[a].cls}`, 'data-action': a, dataset: { focus: `action-${a}` },
      onclick: () => reportAction(a, data),
    }, ACTIONS[a].label)))) : null;

  const figuresPanel = h('section', { class: 'panel', 'aria-labelledby': 'rf-title' },
    h('h2', { id: 'rf-title' }, '主要指标', !isCounty ? h('span', { class: 'sub' }, '已审核县级单位冻结数据之和')
      : data.figures ? null : h('span', { class: 'sub' }, '起草后冻结本期数据')),
    figuresTable(data.figures));

  const history = Array.isArray(data.history) ? data.history : [];
  const historyPanel = h('section', { class: 'panel', 'aria-labelledby': 'hist-title' },
    h('h2', { id: 'hist-title' }, '办理记录'),
    history.length ? h('ol', { class: 'timeline', id: 'report-history' }, history.map((e) => h('li', { 'data-history-entry': e.action ?? '' },
      h('div', { class: 't-head' },
        h('span', { class: 't-action' }, e.action_zh ?? e.action ?? ''),
        e.state_zh ? stateBadge(null, e.state_zh) : null,
        h('time', { class: 't-time', datetime: e.time ?? '' }, fmtTime(e.time))),
      h('dl', null,
        h('dt', null, '时间'), h('dd', null, `${fmtTime(e.time)}（北京时间）`),
        h('dt', null, '操作'), h('dd', null, e.action_zh ?? e.action ?? ''),
        h('dt', null, '操作人'), h('dd', null, [e.actor, e.actor_role_zh].filter(Boolean).join('，') || NO_DATA),
        h('dt', null, '单位'), h('dd', null, e.actor_region_name ?? NO_DATA),
        h('dt', null, '意见'), h('dd', null, e.comment || '无')))))
      : h('p', { class: 'hint' }, '暂无办理记录。'));

  const counties = Array.isArray(data.counties) ? data.counties : [];
  const countyPanel = counties.length ? h('section', { class: 'panel', 'aria-labelledby': 'county-title' },
    h('h2', { id: 'county-title' }, '县级单位报送情况'),
    h('div', { class: 'table-wrap' }, h('table', { class: 'data', id: 'county-table' },
      h('thead', null, h('tr', null, h('th', { scope: 'col' }, '地区'), h('th', { scope: 'col' }, '状态'), h('th', { scope: 'col' }, '是否逾期'))),
      h('tbody', null, counties.map((c) => h('tr', { 'data-region': c.region_code },
        h('th', { scope: 'row' }, h('a', { href: hashFor('report', { region: c.region_code, period }), dataset: { focus: `county-${c.region_code}` } },
          shortName(c.region_name, data.region_name))),
        h('td', null, stateBadge(c.state, c.state_zh)),
        h('td', null, c.late ? h('span', { class: 'badge badge-late' }, '逾期未报') : '否'))))))) : null;

  commitView('report', h('div', null,
    head,
    warningBox(data.warnings),
    h('div', { class: 'report-grid' },
      // A city's or the province's report is the sum of its approved counties: no notes or history
      // of its own.
      isCounty ? h('div', { class: 'col' }, notesPanel, actionPanel, countyPanel) : h('div', { class: 'col' }, countyPanel),
      isCounty ? h('div', { class: 'col' }, historyPanel, figuresPanel) : h('div', { class: 'col' }, figuresPanel))),
  { region: data.region_code });
}

async function reportAction(action, data) {
  clearError();
  const view = $('#view');
  const comment = view.querySelector('textarea[name=comment]')?.value.trim() ?? '';
  if (ACTIONS[action].needs && !comment) {
    showError(ACTIONS[action].needs, 'comment');
    return;
  }
  // Notes as edited (when editable), else as they stand.
  const notes = {};
  for (const [key] of NOTES) {
    const input = view.querySelector(`textarea[name="${key}"]`);
    notes[key] = input ? input.value : (data.notes?.[key] ?? '');
  }
  const body = action === 'draft'
    ? { region: data.region_code, period: data.period, notes }
    : { region: data.region_code, period: data.period, comment, notes };
  const buttons = [...view.querySelectorAll('button[data-action]')];
  state.pendingFocus = `action-${action}`;
  for (const b of buttons) b.disabled = true;
  const seq = ++state.seq;
  try {
    const answer = await api(`/api/report/${action}`, { method: 'POST', body });
    if (seq !== state.seq) return;
    renderReport(answer);
    announce(ACTIONS[action].done);
  } catch (err) {
    for (const b of buttons) b.disabled = false;
    state.pendingFocus = null;
    if (seq === state.seq) view.querySelector(`button[data-action="${action}"]`)?.focus();
    handleError(err);
  }
}

// ---------------------------------------------------------------------------------------------
// Ops view

async function showOps() {
  const seq = beginView('ops');
  let data;
  try {
    data = await api('/api/ops');
  } catch (err) {
    if (seq !== state.seq || err.status === 401) return;
    commitView('ops', h('div', null, h('div', { class: 'page-head' }, h('h1', null, '运维状态'))));
    handleError(err);
    return;
  }
  if (seq !== state.seq) return;
  const services = Array.isArray(data.services) ? data.services : [];
  const num = (v, bad = false) => h('td', { class: `num${bad ? ' danger' : ''}` }, fmtNum(v));
  commitView('ops', h('div', null,
    h('div', { class: 'page-head' },
      h('div', null, h('h1', null, '运维状态'), h('div', { class: 'meta' }, '各服务事件发送与消费积压情况'))),
    h('section', { class: 'panel wide' }, h('div', { class: 'table-wrap' }, h('table', { class: 'data', id: 'ops-table' },
      h('caption', null, '服务积压'),
      h('thead', null, h('tr', null,
        h('th', { scope: 'col' }, '服务'), h('th', { scope: 'col', class: 'num' }, '待发送事件'),
        h('th', { scope: 'col', class: 'num' }, '最早未发送(秒)'), h('th', { scope: 'col', class: 'num' }, '待处理消息'),
        h('th', { scope: 'col', class: 'num' }, '死信'))),
      h('tbody', null, services.length ? services.map((s) => h('tr', { 'data-service': s.service },
        h('th', { scope: 'row' }, s.service),
        num(s.outbox_backlog), num(s.oldest_unsent_seconds), num(s.consumer_pending),
        isNum(s.dead_letters) && s.dead_letters > 0
          ? h('td', { class: 'num danger', title: '有死信，需处理' }, `${fmtNum(s.dead_letters)}（需处理）`)
          : num(s.dead_letters)))
        : h('tr', null, h('td', { class: 'empty', colspan: 5 }, NO_DATA))))))));
}

// ---------------------------------------------------------------------------------------------
// Start

function start() {
  $('#logout').addEventListener('click', logout);
  $('#period').addEventListener('change', (e) => {
    const period = e.target.value;
    state.period = period;
    const r = state.route;
    if (r?.view === 'overview' || r?.view === 'report') {
      location.hash = hashFor(r.view, { ...r.q, region: state.region ?? r.q.region, period });
    } else {
      updateNav();
    }
  });
  $('#skip-link').addEventListener('click', (e) => {
    e.preventDefault();
    $('#main').focus();
  });
  window.addEventListener('hashchange', onHashChange);
  onHashChange();
}

start();
