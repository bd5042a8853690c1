// Tally admin console. Plain ES module, no framework, no build step. It calls only the public admin API
// with the bearer token the admin pasted (kept in sessionStorage for this tab only).

const TOKEN_KEY = 'tally.admin.token';
const POLL_MS = 500;

const main = document.getElementById('main');
const statusBox = document.getElementById('status');
const nav = document.getElementById('nav');
const signOutButton = document.getElementById('sign-out');
const dialog = document.getElementById('detail');

// ---------------------------------------------------------------------------------------------- formatting
const dateTime = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'medium' });
const shortDate = new Intl.DateTimeFormat(undefined, { dateStyle: 'short', timeStyle: 'short' });
const integer = new Intl.NumberFormat();
const signed = new Intl.NumberFormat(undefined, { signDisplay: 'exceptZero' });
const decimal = new Intl.NumberFormat(undefined, { maximumFractionDigits: 1 });

const fmtTime = (iso) => (iso ? dateTime.format(new Date(iso)) : '—');
const fmtNumber = (n) => (n === null || n === undefined ? '—' : integer.format(n));
function fmtDuration(seconds) {
  if (seconds === null || seconds === undefined) return '—';
  if (seconds < 1) return 'under a second';
  if (seconds < 60) return `${decimal.format(seconds)} s`;
  if (seconds < 3600) return `${decimal.format(seconds / 60)} min`;
  return `${decimal.format(seconds / 3600)} h`;
}

// ---------------------------------------------------------------------------------------------- DOM helper
/** h('tag', { attr, onclick }, ...children): builds elements; text is always text, never HTML. */
function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs ?? {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith('on')) el.addEventListener(key.slice(2), value);
    else if (key === 'class') el.className = value;
    else if (key === 'text') el.textContent = value;
    else if (key in el && key !== 'list' && key !== 'form' && typeof value !== 'string') el[key] = value;
    else el.setAttribute(key, value === true ? '' : String(value));
  }
  append(el, children);
  return el;
}
function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}
let fieldCounter = 0;
/** A form of the filters bar; `submit` runs instead of the browser's submission (which would reload the page). */
function filtersForm(attrs, submit, ...children) {
  return h('form', { class: 'filters', ...attrs, onsubmit: (event) => (event.preventDefault(), submit()) }, ...children);
}

/** A form's submit button, and a link that clears its filters where `clearHref` is given. */
function submitActions(label, clearHref) {
  return h('div', { class: 'actions' }, h('button', { type: 'submit' }, label), clearHref ? h('a', { href: clearHref }, 'Clear') : null);
}

/** A labelled input; every input of the console has a visible label. */
function field(label, input, hint) {
  const id = input.id || `f${++fieldCounter}`;
  input.id = id;
  const hintEl = hint ? h('span', { class: 'hint', id: `${id}-hint` }, hint) : null;
  if (hintEl) input.setAttribute('aria-describedby', hintEl.id);
  return h('div', { class: 'field' }, h('label', { for: id }, label), input, hintEl);
}
function table(caption, headers, rows, options = {}) {
  return h(
    'div',
    { class: 'table-wrap' },
    h(
      'table',
      { class: 'responsive' },
      h('caption', {}, caption),
      h('thead', {}, h('tr', {}, headers.map((x) => h('th', { scope: 'col', class: x.num ? 'num' : undefined }, x.label ?? x)))),
      h('tbody', options.tbodyAttrs ?? {}, rows),
    ),
  );
}
const cell = (label, content, cls) => h('td', { 'data-label': label, class: cls }, content);
function badge(outcome) {
  const good = ['credited', 'completed', 'running', 'active', 'approved', 'consistent', 'refund_applied', 'recorded', 'duplicate', 'scheduled'];
  const bad = ['failed', 'no_connection', 'revoked', 'needs_reconnect', 'token_undecryptable', 'suspended', 'inconsistent', 'cancelled'];
  const cls = good.includes(outcome) ? 'ok' : bad.includes(outcome) ? 'bad' : 'warn';
  return h('span', { class: `badge ${cls}` }, outcome ?? '—');
}

function say(message, kind = 'info') {
  statusBox.className = `status${kind === 'error' ? ' error' : ''}`;
  statusBox.textContent = message;
}
const clearStatus = () => say('');

// ---------------------------------------------------------------------------------------------- API client
class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}
const getToken = () => sessionStorage.getItem(TOKEN_KEY);

async function api(method, path, options = {}) {
  const headers = { accept: 'application/json', authorization: `Bearer ${getToken() ?? ''}`, ...(options.headers ?? {}) };
  if (options.body !== undefined) headers['content-type'] = 'application/json';
  const response = await fetch(path, { method, headers, body: options.body === undefined ? undefined : JSON.stringify(options.body) });
  const text = await response.text();
  let body;
  try {
    body = text ? JSON.parse(text) : undefined;
  } catch {
    body = undefined;
  }
  if (!response.ok) {
    const error = new ApiError(response.status, body?.error?.code ?? 'HTTP_ERROR', body?.error?.message ?? `${method} ${path} answered ${response.status}`);
    if (response.status === 401 || (response.status === 403 && !options.keepSession)) {
      signOut(`Signed out: ${error.message}`);
    }
    throw error;
  }
  return body;
}
const qs = (params) => {
  const search = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null && v !== '') search.set(k, v);
  const s = search.toString();
  return s ? `?${s}` : '';
};
/** Runs an action, showing an API error in the status area instead of throwing. */
async function guarded(action) {
  try {
    return await action();
  } catch (error) {
    if (error instanceof ApiError && (error.status === 401 || error.status === 403)) return undefined;
    say(error.message, 'error');
    return undefined;
  }
}

// ---------------------------------------------------------------------------------------------- sign-in
function signOut(message) {
  sessionStorage.removeItem(TOKEN_KEY);
  nav.hidden = true;
  signOutButton.hidden = true;
  renderSignIn(message);
}
signOutButton.addEventListener('click', () => signOut('Signed out.'));

function renderSignIn(message) {
  const input = h('textarea', { id: 'token', rows: 4, autocomplete: 'off', spellcheck: 'false', required: true, class: 'mono' });
  const form = h(
    'form',
    {
      class: 'stack',
      onsubmit: async (event) => {
        event.preventDefault();
        const token = input.value.trim().replace(/^Bearer\s+/i, '');
        if (!token) {
          say('Paste a bearer token to sign in.', 'error');
          input.focus();
          return;
        }
        await signIn(token);
      },
    },
    field('Bearer token', input, 'The same token you use with the API (e.g. from npm run token). It is kept for this tab only.'),
    submitActions('Sign in'),
  );
  show(h('section', {}, h('h1', {}, 'Sign in'), form), 'Sign in');
  if (message) say(message, 'error');
  input.focus();
}

async function signIn(token) {
  sessionStorage.setItem(TOKEN_KEY, token);
  try {
    const me = await api('GET', '/api/v1/me', { keepSession: true });
    if (me.role !== 'admin' || me.status !== 'approved') {
      sessionStorage.removeItem(TOKEN_KEY);
      say(`This token belongs to ${me.email ?? me.id}, who is not an approved administrator.`, 'error');
      return;
    }
    nav.hidden = false;
    signOutButton.hidden = false;
    if (!location.hash || location.hash === '#/' || location.hash === '#/signin') history.replaceState(null, '', `${location.pathname}#/audit`);
    route();
    say(`Signed in as ${me.email ?? me.id}.`);
  } catch (error) {
    sessionStorage.removeItem(TOKEN_KEY);
    if (error instanceof ApiError) renderSignIn(`Sign-in failed: ${error.message}`);
    else renderSignIn(`Sign-in failed: ${error.message}`);
  }
}

// ---------------------------------------------------------------------------------------------- routing
function parseHash() {
  const raw = location.hash.replace(/^#\/?/, '');
  const [path, search = ''] = raw.split('?');
  const parts = path.split('/').map(decodeURIComponent);
  return { section: parts[0] || 'audit', rest: parts.slice(1), params: Object.fromEntries(new URLSearchParams(search)) };
}
function show(content, title) {
  main.replaceChildren(content);
  document.title = `${title} · Tally admin`;
}
let routeToken = 0;
/** True while the view that started an async task is still the one on screen. */
const current = (token) => token === routeToken;

function route() {
  if (!getToken()) return renderSignIn();
  const { section, rest, params } = parseHash();
  routeToken++;
  liveConnection?.abort();
  for (const link of nav.querySelectorAll('a')) {
    if (link.getAttribute('href') === `#/${section}`) link.setAttribute('aria-current', 'page');
    else link.removeAttribute('aria-current');
  }
  const views = { audit: auditView, live: liveView, wallet: walletView, webhooks: webhooksView, projections: projectionsView, merchants: merchantsView, program: programView };
  (views[section] ?? auditView)(rest, params, routeToken);
  main.focus({ preventScroll: true });
}
window.addEventListener('hashchange', () => {
  clearStatus();
  route();
});
const go = (hash) => {
  location.hash = hash;
};

// ---------------------------------------------------------------------------------------------- audit trail
const AUDIT_FILTERS = [
  ['type', 'Event types', 'Comma-separated, e.g. PointsCredited,PointsAdjusted'],
  ['tenantId', 'Tenant id'],
  ['stream', 'Stream', 'e.g. wallet-<walletId>'],
  ['actor', 'Actor', 'e.g. admin:<userId>'],
  ['walletId', 'Wallet id'],
  ['paymentId', 'Payment id'],
];

function toLocalInput(iso) {
  if (!iso) return '';
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return '';
  const pad = (n) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}`;
}

function openJson(title, value) {
  document.getElementById('detail-title').textContent = title;
  document.getElementById('detail-body').textContent = JSON.stringify(value, null, 2);
  dialog.showModal();
  document.getElementById('detail-close').focus();
}
document.getElementById('detail-close').addEventListener('click', () => dialog.close());

/** The event table shared by the trail, a stream's history and a correlation. */
function eventRows(items) {
  return items.map((e) =>
    h(
      'tr',
      {},
      cell('Time', h('time', { datetime: e.recordedAt }, fmtTime(e.recordedAt)), 'time'),
      cell('Type', h('button', { type: 'button', class: 'link', onclick: () => openJson(`${e.type} · ${e.eventId}`, e), 'aria-label': `Show event ${e.type} ${e.eventId}` }, e.type)),
      cell('Stream', h('button', { type: 'button', class: 'link mono', onclick: () => go(`#/audit/stream/${encodeURIComponent(e.stream)}`), 'aria-label': `History of stream ${e.stream}` }, `${e.stream} @${e.revision}`)),
      cell('Actor', h('span', { class: 'mono' }, e.actor ?? '—')),
      cell('Tenant', h('span', { class: 'mono' }, e.tenantId ?? '—')),
      cell(
        'Correlation',
        e.correlationId
          ? h('button', { type: 'button', class: 'link mono', onclick: () => go(`#/audit/correlation/${encodeURIComponent(e.correlationId)}`), 'aria-label': `Events of correlation ${e.correlationId}` }, e.correlationId)
          : '—',
      ),
    ),
  );
}
const EVENT_HEADERS = ['Time', 'Type', 'Stream', 'Actor', 'Tenant', 'Correlation'];

/** A paged event list: first page, then "Load more" (and automatically when the button scrolls into view). */
function pagedEvents(caption, fetchPage, token) {
  const tbody = h('tbody');
  const wrap = h('div', { class: 'table-wrap' }, h('table', { class: 'responsive' }, h('caption', {}, caption), h('thead', {}, h('tr', {}, EVENT_HEADERS.map((x) => h('th', { scope: 'col' }, x)))), tbody));
  const count = h('p', { class: 'hint', 'aria-live': 'polite' });
  const more = h('button', { type: 'button', class: 'secondary', hidden: true }, 'Load more');
  let cursor;
  let total = 0;
  let loading = false;
  async function load() {
    if (loading) return;
    loading = true;
    more.disabled = true;
    const page = await guarded(() => fetchPage(cursor));
    loading = false;
    more.disabled = false;
    if (!page || !current(token)) return;
    tbody.append(...eventRows(page.items));
    total += page.items.length;
    cursor = page.nextCursor;
    more.hidden = !cursor;
    count.textContent = total === 0 ? 'No events match.' : `${fmtNumber(total)} event${total === 1 ? '' : 's'} shown${cursor ? '; more available' : ''}.`;
  }
  more.addEventListener('click', load);
  if ('IntersectionObserver' in window) {
    new IntersectionObserver((entries) => {
      if (entries.some((e) => e.isIntersecting) && !more.hidden) load();
    }).observe(more);
  }
  load();
  return h('div', {}, count, wrap, h('div', { class: 'actions' }, more));
}

function auditView(rest, params, token) {
  if ((rest[0] === 'stream' || rest[0] === 'correlation') && rest[1]) {
    const id = rest[1];
    const [title, intro, caption, path, pageTitle] =
      rest[0] === 'stream'
        ? ['Stream history', ['Stream ', h('code', {}, id), ', oldest first. '], `History of ${id}`, 'streams', 'Stream history']
        : ['Correlated events', ['Everything caused by correlation id ', h('code', {}, id), '. '], `Events of correlation ${id}`, 'correlations', 'Correlation'];
    const events = pagedEvents(caption, (cursor) => api('GET', `/api/v1/admin/audit/${path}/${encodeURIComponent(id)}${qs({ cursor, limit: 200 })}`), token);
    return show(h('section', {}, h('h1', {}, title), h('p', {}, ...intro, h('a', { href: '#/audit' }, 'Back to the audit trail')), events), pageTitle);
  }
  const inputs = {};
  for (const [name, , hint] of AUDIT_FILTERS) inputs[name] = h('input', { type: 'text', name, value: params[name] ?? '', autocomplete: 'off' });
  inputs.from = h('input', { type: 'datetime-local', name: 'from', value: toLocalInput(params.from) });
  inputs.to = h('input', { type: 'datetime-local', name: 'to', value: toLocalInput(params.to) });
  const form = filtersForm(
    { 'aria-label': 'Audit filters' },
    () => {
      const next = {};
      for (const [name] of AUDIT_FILTERS) next[name] = inputs[name].value.trim();
      // datetime-local is in the viewer's zone; the API takes an instant.
      for (const name of ['from', 'to']) if (inputs[name].value) next[name] = new Date(inputs[name].value).toISOString();
      go(`#/audit${qs(next)}`);
    },
    AUDIT_FILTERS.map(([name, label, hint]) => field(label, inputs[name], hint)),
    field('From (your time)', inputs.from),
    field('To (your time)', inputs.to),
    submitActions('Apply filters', '#/audit?'),
  );
  const active = Object.entries(params).filter(([, v]) => v);
  show(
    h(
      'section',
      {},
      h('h1', {}, 'Audit trail'),
      form,
      pagedEvents(active.length ? `Events, newest first, where ${active.map(([k, v]) => `${k} = ${v}`).join(', ')}` : 'Events, newest first', (cursor) => api('GET', `/api/v1/admin/audit${qs({ ...params, cursor, limit: 50 })}`), token),
    ),
    'Audit trail',
  );
}

// ---------------------------------------------------------------------------------------------- live events
const LIVE_FILTERS = [
  ['type', 'Event types', 'Comma-separated, e.g. PointsCredited,PointsReversed'],
  ['tenantId', 'Tenant id'],
  ['stream', 'Stream', 'e.g. wallet-<walletId>'],
];
const LIVE_ROWS = 200;
/** The open event stream of the live view; aborted whenever the view changes. */
let liveConnection;

/**
 * Events as they are appended (GET /api/v1/admin/events/stream). fetch, not EventSource: the API wants the bearer
 * token in a header. A dropped connection resumes after the last event shown (Last-Event-ID). Pause keeps
 * receiving but holds the rows back, so nothing is missed when it resumes.
 */
function liveView(_rest, params, token) {
  const inputs = {};
  for (const [name] of LIVE_FILTERS) inputs[name] = h('input', { type: 'text', name, value: params[name] ?? '', autocomplete: 'off' });
  const form = filtersForm(
    { 'aria-label': 'Live filters' },
    () => {
      const next = {};
      for (const [name] of LIVE_FILTERS) next[name] = inputs[name].value.trim();
      go(`#/live${qs(next)}`);
    },
    LIVE_FILTERS.map(([name, label, hint]) => field(label, inputs[name], hint)),
    submitActions('Apply filters', '#/live?'),
  );
  const tbody = h('tbody');
  const state = h('p', { class: 'hint', 'aria-live': 'polite' }, 'Connecting…');
  const pause = h('button', { type: 'button', class: 'secondary', 'aria-pressed': 'false' }, 'Pause');
  let paused = false;
  const held = [];
  const showRows = (events) => {
    tbody.prepend(...eventRows(events.reverse()));
    while (tbody.rows.length > LIVE_ROWS) tbody.lastElementChild.remove();
  };
  pause.addEventListener('click', () => {
    paused = !paused;
    pause.textContent = paused ? 'Resume' : 'Pause';
    pause.setAttribute('aria-pressed', String(paused));
    if (!paused) showRows(held.splice(0));
    state.textContent = paused ? 'Paused: new events are held back.' : 'Live.';
  });
  show(
    h(
      'section',
      {},
      h('h1', {}, 'Live events'),
      form,
      h('div', { class: 'actions' }, pause, state),
      h('div', { class: 'table-wrap' }, h('table', { class: 'responsive' }, h('caption', {}, `Events as they happen, newest first (the last ${LIVE_ROWS})`), h('thead', {}, h('tr', {}, EVENT_HEADERS.map((x) => h('th', { scope: 'col' }, x)))), tbody)),
    ),
    'Live events',
  );

  let lastEventId;
  const onEvent = (e) => {
    const row = { eventId: e.id, recordedAt: e.recordedAt, type: e.type, stream: e.stream, revision: e.revision, actor: e.metadata?.actor, tenantId: e.tenantId, correlationId: e.metadata?.correlationId, data: e.data, metadata: e.metadata, position: e.position };
    if (paused) {
      held.push(row);
      state.textContent = `Paused: ${fmtNumber(held.length)} new event${held.length === 1 ? '' : 's'} held back.`;
    } else showRows([row]);
  };
  const connect = async (attempt) => {
    if (!current(token)) return;
    const controller = new AbortController();
    liveConnection = controller;
    try {
      const headers = { accept: 'text/event-stream', authorization: `Bearer ${getToken() ?? ''}`, ...(lastEventId ? { 'last-event-id': lastEventId } : {}) };
      const response = await fetch(`/api/v1/admin/events/stream${qs(params)}`, { headers, signal: controller.signal });
      if (!response.ok) {
        const body = await response.json().catch(() => undefined);
        if (response.status === 401 || response.status === 403) signOut(`Signed out: ${body?.error?.message ?? response.status}`);
        else say(body?.error?.message ?? `The live stream answered ${response.status}`, 'error');
        state.textContent = 'Not connected.';
        return;
      }
      state.textContent = paused ? 'Paused.' : 'Live.';
      attempt = 0;
      const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
      let text = '';
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        text += value;
        let end;
        while ((end = text.indexOf('\n\n')) >= 0) {
          const block = text.slice(0, end);
          text = text.slice(end + 2);
          const id = /^id: (.*)$/m.exec(block)?.[1];
          const data = /^data: (.*)$/m.exec(block)?.[1];
          if (id && data) {
            lastEventId = id;
            onEvent(JSON.parse(data));
          }
        }
      }
    } catch (error) {
      if (controller.signal.aborted) return;
    }
    if (!current(token)) return;
    // The server closed the stream (a restart, or this tab fell behind): come back after the last event shown.
    state.textContent = 'Reconnecting…';
    setTimeout(() => connect(attempt + 1), Math.min(10_000, 500 * 2 ** attempt));
  };
  connect(0);
}

// ---------------------------------------------------------------------------------------------- wallet
/** `complete`: the whole ledger is loaded, so the balance started at 0. */
function balanceChart(ledgerNewestFirst, complete) {
  const points = ledgerNewestFirst
    .slice()
    .reverse()
    .map((l) => ({ t: new Date(l.createdAt).getTime(), v: l.balanceAfter }));
  if (points.length === 0) return h('p', { class: 'empty' }, 'No ledger lines yet, so no chart.');
  const first = ledgerNewestFirst[ledgerNewestFirst.length - 1];
  points.unshift({ t: points[0].t - 1, v: complete ? 0 : first.balanceAfter - first.points });
  const W = 600;
  const H = 200;
  const pad = { l: 56, r: 12, t: 12, b: 28 };
  const t0 = points[0].t;
  const t1 = Math.max(points[points.length - 1].t, t0 + 1);
  const vMax = Math.max(1, ...points.map((p) => p.v));
  const vMin = Math.min(0, ...points.map((p) => p.v));
  const x = (t) => pad.l + ((t - t0) / (t1 - t0)) * (W - pad.l - pad.r);
  const y = (v) => pad.t + (1 - (v - vMin) / (vMax - vMin || 1)) * (H - pad.t - pad.b);
  // A step line: the balance holds until the next ledger line.
  const coords = [];
  points.forEach((p, i) => {
    if (i > 0) coords.push(`${x(p.t).toFixed(1)},${y(points[i - 1].v).toFixed(1)}`);
    coords.push(`${x(p.t).toFixed(1)},${y(p.v).toFixed(1)}`);
  });
  const svg = (tag, attrs) => {
    const el = document.createElementNS('http://www.w3.org/2000/svg', tag);
    for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v));
    return el;
  };
  const last = points[points.length - 1];
  const root = svg('svg', { viewBox: `0 0 ${W} ${H}`, class: 'chart', role: 'img', 'aria-label': `Balance over time: ${fmtNumber(points[0].v)} to ${fmtNumber(last.v)} points, ${points.length - 1} ledger lines from ${fmtTime(new Date(points[1].t).toISOString())} to ${fmtTime(new Date(last.t).toISOString())}` });
  root.append(svg('line', { x1: pad.l, y1: y(vMin), x2: W - pad.r, y2: y(vMin), class: 'axis' }));
  root.append(svg('line', { x1: pad.l, y1: pad.t, x2: pad.l, y2: H - pad.b, class: 'axis' }));
  for (const v of [vMin, vMax]) {
    const label = svg('text', { x: pad.l - 6, y: y(v) + 4, 'text-anchor': 'end' });
    label.textContent = fmtNumber(v);
    root.append(label);
  }
  for (const [t, anchor] of [[t0, 'start'], [t1, 'end']]) {
    const label = svg('text', { x: x(t), y: H - 8, 'text-anchor': anchor });
    label.textContent = shortDate.format(new Date(t));
    root.append(label);
  }
  root.append(svg('polyline', { points: coords.join(' '), class: 'line' }));
  root.append(svg('circle', { cx: x(last.t), cy: y(last.v), r: 4, class: 'dot' }));
  return root;
}

function walletView(rest, params, token) {
  const walletId = rest[0];
  const idInput = h('input', { type: 'text', name: 'walletId', value: walletId ?? '', required: true, autocomplete: 'off', class: 'mono' });
  const tenantInput = h('input', { type: 'text', name: 'tenantId', value: params.tenantId ?? '', autocomplete: 'off', class: 'mono' });
  const open = filtersForm(
    { 'aria-label': 'Open a wallet' },
    () => {
      const id = idInput.value.trim();
      if (id) go(`#/wallet/${encodeURIComponent(id)}${qs({ tenantId: tenantInput.value.trim() })}`);
    },
    field('Wallet id', idInput),
    field('Tenant id', tenantInput, 'Optional: found from the audit trail when empty'),
    submitActions('Open wallet'),
  );
  const body = h('div', { 'aria-busy': walletId ? 'true' : 'false' });
  show(h('section', {}, h('h1', {}, walletId ? 'Wallet' : 'Open a wallet'), open, body), 'Wallet');
  if (walletId) loadWallet(walletId, params.tenantId, body, token);
}

async function loadWallet(walletId, tenantGiven, body, token, minPosition) {
  const id = encodeURIComponent(walletId);
  let tenantId = tenantGiven;
  if (!tenantId) {
    const trail = await guarded(() => api('GET', `/api/v1/admin/audit${qs({ walletId, limit: 1 })}`));
    tenantId = trail?.items?.[0]?.tenantId ?? undefined;
    if (!tenantId) {
      if (trail && current(token)) say('No event of this wallet names its tenant: enter the tenant id.', 'error');
      body.setAttribute('aria-busy', 'false');
      return;
    }
  }
  const headers = minPosition ? { 'x-min-position': minPosition } : {};
  const [wallet, ledger, report] = await Promise.all([
    guarded(() => api('GET', `/api/v1/client/wallets/${id}${qs({ tenantId })}`, { headers })),
    guarded(() => api('GET', `/api/v1/client/wallets/${id}/ledger${qs({ tenantId, limit: 100 })}`, { headers })),
    guarded(() => api('GET', `/api/v1/admin/wallets/${id}/reconcile`)),
  ]);
  if (!current(token)) return;
  body.setAttribute('aria-busy', 'false');
  if (!wallet || !ledger) return;

  const reconcile = !report
    ? h('p', { class: 'empty' }, 'Reconciliation unavailable.')
    : h(
        'div',
        {},
        h('p', {}, report.consistent ? badge('consistent') : badge('inconsistent'), ' ', `${fmtNumber(report.eventsReplayed)} events replayed in ${fmtNumber(report.durationMs)} ms.`),
        report.mismatches.length
          ? h('ul', {}, report.mismatches.map((m) => h('li', {}, `Read model: ${m.projected ? `${fmtNumber(m.projected.balance)} points, ${fmtNumber(m.projected.ledgerLines)} lines` : 'missing'}; replayed: ${m.replayed ? `${fmtNumber(m.replayed.balance)} points, ${fmtNumber(m.replayed.ledgerLines)} lines` : 'none'}${m.firstDifferingEvent ? `; first difference at ${m.firstDifferingEvent.type} #${m.firstDifferingEvent.revision}` : ''}.`)))
          : null,
      );

  body.replaceChildren();
  append(body, [
    h('p', { class: 'mono' }, `${walletId} · tenant ${tenantId} · consumer ${wallet.consumerId}`),
    h(
      'dl',
      { class: 'cards' },
      h('div', {}, h('dt', {}, 'Balance'), h('dd', { 'data-testid': 'balance' }, `${fmtNumber(wallet.balance)} pts`)),
      h('div', {}, h('dt', {}, 'Lifetime earned'), h('dd', {}, fmtNumber(wallet.lifetimeEarned))),
      h('div', {}, h('dt', {}, 'Lifetime redeemed'), h('dd', {}, fmtNumber(wallet.lifetimeRedeemed))),
      h('div', {}, h('dt', {}, 'Updated'), h('dd', { class: 'hint' }, fmtTime(wallet.updatedAt))),
    ),
    h(
      'div',
      { class: 'grid2' },
      h('div', {}, h('h2', {}, 'Balance over time'), balanceChart(ledger.items, !ledger.nextCursor)),
      h('div', {}, h('h2', {}, 'Adjust'), adjustForm(walletId, tenantId, body, token), h('h2', {}, 'Reconciliation by replay'), reconcile),
    ),
    h('h2', {}, 'Ledger'),
    ledger.items.length
      ? table(
          'Ledger, newest first',
          ['Time', 'Entry', { label: 'Points', num: true }, { label: 'Balance after', num: true }, 'Reason or reference', 'Payment'],
          ledger.items.map((l) =>
            h(
              'tr',
              {},
              cell('Time', h('time', { datetime: l.createdAt }, fmtTime(l.createdAt)), 'time'),
              cell('Entry', l.kind),
              cell('Points', signed.format(l.points), 'num'),
              cell('Balance after', fmtNumber(l.balanceAfter), 'num'),
              cell('Reason or reference', l.reason ?? l.reference ?? '—'),
              cell('Payment', h('span', { class: 'mono' }, l.paymentId ?? '—')),
            ),
          ),
        )
      : h('p', { class: 'empty' }, 'No ledger lines.'),
    ledger.nextCursor ? h('p', { class: 'hint' }, `Showing the newest ${ledger.items.length} lines.`) : null,
    h('p', {}, h('a', { href: `#/audit?${new URLSearchParams({ stream: `wallet-${walletId}` })}` }, 'Events of this wallet in the audit trail')),
  ]);
}

function adjustForm(walletId, tenantId, body, token) {
  const points = h('input', { type: 'number', name: 'points', step: 1, inputmode: 'numeric', autocomplete: 'off' });
  const reason = h('textarea', { name: 'reason', rows: 2, maxlength: 500 });
  const pointsError = h('p', { class: 'field-error', id: 'adjust-points-error', hidden: true });
  const reasonError = h('p', { class: 'field-error', id: 'adjust-reason-error', hidden: true });
  const submit = h('button', { type: 'submit' }, 'Adjust balance');
  const fail = (input, errorEl, message) => {
    errorEl.textContent = message;
    errorEl.hidden = false;
    input.setAttribute('aria-invalid', 'true');
    input.setAttribute('aria-errormessage', errorEl.id);
  };
  const ok = (input, errorEl) => {
    errorEl.hidden = true;
    input.removeAttribute('aria-invalid');
  };
  return h(
    'form',
    {
      class: 'stack',
      novalidate: true,
      'aria-label': 'Adjust balance',
      onsubmit: async (event) => {
        event.preventDefault();
        const n = Number(points.value);
        const why = reason.value.trim();
        let valid = true;
        if (!points.value || !Number.isInteger(n) || n === 0) {
          fail(points, pointsError, 'Enter a whole number of points, not 0: positive adds, negative removes.');
          valid = false;
        } else ok(points, pointsError);
        if (!why) {
          fail(reason, reasonError, 'A reason is required: it is kept in the audit trail.');
          valid = false;
        } else ok(reason, reasonError);
        if (!valid) {
          (points.getAttribute('aria-invalid') ? points : reason).focus();
          return;
        }
        submit.disabled = true;
        const result = await guarded(() => api('POST', `/api/v1/admin/wallets/${encodeURIComponent(walletId)}/adjust`, { body: { points: n, reason: why, idempotencyKey: crypto.randomUUID() } }));
        submit.disabled = false;
        if (!result || !current(token)) return;
        say(`Adjusted by ${signed.format(n)} points; the balance is now ${fmtNumber(result.balance)}.`);
        await loadWallet(walletId, tenantId, body, token, result.position);
      },
    },
    field('Points (±)', points, 'Positive adds points, negative removes them'),
    pointsError,
    field('Reason', reason, 'Required; recorded with your name in the event'),
    reasonError,
    h('div', { class: 'actions' }, submit),
  );
}

// ---------------------------------------------------------------------------------------------- webhooks
const OUTCOMES = ['pending', 'credited', 'credit_refused', 'stored_anonymous', 'no_rule_no_credit', 'zero_points', 'before_program', 'currency_mismatch', 'same_order', 'identity_attached', 'duplicate', 'recorded', 'stale', 'refund_applied', 'refund_held', 'refund_pending', 'ignored', 'no_connection', 'revoked', 'failed'];
const RETRYABLE = ['failed', 'no_connection'];

function webhooksView(_rest, params, token) {
  const outcome = h('select', { name: 'outcome' }, h('option', { value: '' }, 'Any outcome'), OUTCOMES.map((o) => h('option', { value: o, selected: params.outcome === o }, o)));
  const tenant = h('input', { type: 'text', name: 'tenantId', value: params.tenantId ?? '', autocomplete: 'off' });
  const type = h('input', { type: 'text', name: 'type', value: params.type ?? '', autocomplete: 'off' });
  const form = filtersForm(
    { 'aria-label': 'Webhook filters' },
    () => {
      go(`#/webhooks${qs({ outcome: outcome.value, tenantId: tenant.value.trim(), type: type.value.trim() })}`);
    },
    field('Outcome', outcome),
    field('Tenant id', tenant),
    field('Event type', type, 'e.g. payment.updated'),
    submitActions('Show webhooks'),
  );
  const tbody = h('tbody');
  const count = h('p', { class: 'hint' });
  const more = h('button', { type: 'button', class: 'secondary', hidden: true }, 'Load more');
  let cursor;
  let total = 0;
  async function load() {
    more.disabled = true;
    const page = await guarded(() => api('GET', `/api/v1/admin/webhooks${qs({ ...params, cursor, limit: 50 })}`));
    more.disabled = false;
    if (!page || !current(token)) return;
    tbody.append(...page.items.map((w) => webhookRow(w, token)));
    total += page.items.length;
    cursor = page.nextCursor;
    more.hidden = !cursor;
    count.textContent = total === 0 ? 'No webhooks match.' : `${fmtNumber(total)} webhook${total === 1 ? '' : 's'} shown.`;
  }
  more.addEventListener('click', load);
  show(
    h(
      'section',
      {},
      h('h1', {}, 'Webhooks'),
      form,
      count,
      h('div', { class: 'table-wrap' }, h('table', { class: 'responsive' }, h('caption', {}, 'Received webhooks, newest first'), h('thead', {}, h('tr', {}, ['Received', 'Event id', 'Type', 'Merchant', 'Tenant', 'Outcome', 'Attempts', 'Error', 'Action'].map((x) => h('th', { scope: 'col' }, x)))), tbody)),
      h('div', { class: 'actions' }, more),
    ),
    'Webhooks',
  );
  load();
}

function webhookRow(w, token) {
  const row = h('tr', { 'data-event-id': w.eventId });
  const fill = (item) => {
    const action = RETRYABLE.includes(item.outcome)
      ? h('button', { type: 'button', 'aria-label': `Retry webhook ${item.eventId}`, onclick: (event) => retry(item, event.currentTarget) }, 'Retry')
      : '—';
    row.replaceChildren(
      cell('Received', h('time', { datetime: item.receivedAt }, fmtTime(item.receivedAt)), 'time'),
      cell('Event id', h('button', { type: 'button', class: 'link mono', onclick: () => openJson(`Webhook ${item.eventId}`, item), 'aria-label': `Show webhook ${item.eventId}` }, item.eventId)),
      cell('Type', item.type),
      cell('Merchant', h('span', { class: 'mono' }, item.merchantId)),
      cell('Tenant', h('span', { class: 'mono' }, item.tenantId ?? '—')),
      cell('Outcome', badge(item.outcome)),
      cell('Attempts', fmtNumber(item.attempts), 'num'),
      cell('Error', item.error ? h('span', { class: 'mono' }, item.error) : '—'),
      cell('Action', action),
    );
  };
  async function retry(item, button) {
    button.disabled = true;
    const scheduled = await guarded(() => api('POST', `/api/v1/admin/webhooks/${encodeURIComponent(item.eventId)}/retry`));
    if (!scheduled) {
      button.disabled = false;
      return;
    }
    say(`Webhook ${item.eventId} scheduled for another attempt…`);
    const deadline = Date.now() + 60_000;
    while (Date.now() < deadline && current(token)) {
      await new Promise((resolve) => setTimeout(resolve, POLL_MS));
      const now = await guarded(() => api('GET', `/api/v1/admin/webhooks/${encodeURIComponent(item.eventId)}`));
      if (!now) return;
      if (now.processed || now.attempts > item.attempts) {
        fill(now);
        say(`Webhook ${item.eventId}: ${now.outcome}${now.error ? ` (${now.error})` : ''}.`, now.outcome === 'failed' ? 'error' : 'info');
        return;
      }
    }
  }
  fill(w);
  return row;
}

// ---------------------------------------------------------------------------------------------- projections
function projectionsView(_rest, _params, token) {
  const area = h('div', { 'aria-busy': 'true' });
  const jobs = h('div', { 'aria-live': 'polite' });
  const refresh = h('button', { type: 'button', class: 'secondary', onclick: () => load() }, 'Refresh');
  show(h('section', {}, h('h1', {}, 'Projections'), h('div', { class: 'actions' }, refresh), jobs, area), 'Projections');
  async function load() {
    const list = await guarded(() => api('GET', '/api/v1/admin/projections'));
    if (!list || !current(token)) return;
    area.setAttribute('aria-busy', 'false');
    area.replaceChildren(
      table(
        'Projections',
        ['Name', 'State', { label: 'Events behind', num: true }, { label: 'Lag', num: true }, 'Checkpoint', 'Last error', 'Action'],
        list.map((p) =>
          h(
            'tr',
            {},
            cell('Name', p.name),
            cell('State', badge(p.state)),
            cell('Events behind', `${fmtNumber(p.eventsBehind)}${p.eventsBehindCapped ? '+' : ''}`, 'num'),
            cell('Lag', fmtDuration(p.lagMs / 1000), 'num'),
            cell('Checkpoint', h('span', { class: 'mono' }, p.checkpoint ?? '—')),
            cell('Last error', p.lastError ?? '—'),
            cell('Action', p.rebuildable ? h('button', { type: 'button', 'aria-label': `Rebuild ${p.name}`, disabled: p.state === 'rebuilding', onclick: () => rebuild(p.name) }, 'Rebuild') : '—'),
          ),
        ),
      ),
    );
    for (const p of list) if (p.rebuild && !jobs.querySelector(`[data-job="${p.rebuild.jobId}"]`)) watch(p.rebuild);
  }
  async function rebuild(name) {
    const started = await guarded(() => api('POST', `/api/v1/admin/projections/${encodeURIComponent(name)}/rebuild`));
    if (!started || !current(token)) return;
    say(`Rebuild of ${name} started.`);
    watch(started);
    load();
  }
  function watch(job) {
    const label = h('label', { for: `job-${job.jobId}` }, `Rebuild of ${job.projection}`);
    const bar = h('progress', { id: `job-${job.jobId}`, max: 1 });
    const text = h('p', { class: 'hint' });
    const box = h('div', { class: 'job', 'data-job': job.jobId }, label, bar, text);
    jobs.prepend(box);
    const paint = (j) => {
      if (j.progress !== null && j.progress !== undefined) bar.value = j.progress;
      else bar.removeAttribute('value');
      const pct = j.progress !== null && j.progress !== undefined ? `${decimal.format(j.progress * 100)} %` : '';
      if (j.state === 'running') {
        text.textContent = `${pct} · ${fmtNumber(j.eventsApplied)} of ${fmtNumber(j.eventsTotal)} events · ${j.eventsPerSecond !== null ? `${fmtNumber(Math.round(j.eventsPerSecond))} events/s` : '— events/s'} · about ${fmtDuration(j.etaSeconds)} left`;
      } else {
        bar.value = j.state === 'completed' ? 1 : bar.value;
        text.textContent = `Rebuild ${j.state}: ${fmtNumber(j.eventsApplied)} events applied${j.finishedAt ? `, finished ${fmtTime(j.finishedAt)}` : ''}${j.error ? ` — ${j.error}` : ''}.`;
      }
    };
    paint(job);
    (async () => {
      let j = job;
      while (j.state === 'running' && current(token)) {
        await new Promise((resolve) => setTimeout(resolve, POLL_MS));
        const next = await guarded(() => api('GET', `/api/v1/admin/jobs/${encodeURIComponent(job.jobId)}`));
        if (!next) return;
        j = next;
        paint(j);
      }
      if (current(token)) {
        say(`Rebuild of ${j.projection} ${j.state}.`, j.state === 'completed' ? 'info' : 'error');
        load();
      }
    })();
  }
  load();
}

// ---------------------------------------------------------------------------------------------- merchants
function merchantsView(_rest, params, token) {
  const q = h('input', { type: 'search', name: 'q', value: params.q ?? '', autocomplete: 'off' });
  const form = filtersForm(
    { role: 'search', 'aria-label': 'User search' },
    () => {
      go(`#/merchants${qs({ q: q.value.trim() })}`);
    },
    field('Search users', q, 'Part of an email, id or business name'),
    submitActions('Search'),
  );
  const results = h('div');
  show(h('section', {}, h('h1', {}, 'Merchants and users'), form, results), 'Merchants');
  if (!params.q) {
    results.append(h('p', { class: 'empty' }, 'Search to list users; pending merchants can be approved here.'));
    return;
  }
  (async () => {
    const users = await guarded(() => api('GET', `/api/v1/admin/users/search${qs({ q: params.q })}`));
    if (!users || !current(token)) return;
    if (users.length === 0) return results.replaceChildren(h('p', { class: 'empty' }, 'No users match.'));
    results.replaceChildren(
      table(
        `Users matching “${params.q}”`,
        ['Email', 'Business', 'Role', 'Status', 'Tenant', 'Square connection', 'Registered', 'Action'],
        users.map((u) => userRow(u, token)),
      ),
    );
  })();
}

function userRow(user, token) {
  const row = h('tr');
  const connection = h('span', {}, '—');
  const fill = (u) => {
    row.replaceChildren(
      cell('Email', u.email ?? '(erased)'),
      cell('Business', u.businessName ?? '—'),
      cell('Role', u.role),
      cell('Status', badge(u.status)),
      cell('Tenant', h('span', { class: 'mono' }, u.tenantId ?? '—')),
      cell('Square connection', connection),
      cell('Registered', h('time', { datetime: u.registeredAt }, fmtTime(u.registeredAt)), 'time'),
      cell(
        'Action',
        u.status === 'pending'
          ? h('button', { type: 'button', 'aria-label': `Approve ${u.email ?? u.id}`, onclick: (e) => approve(u, e.currentTarget) }, 'Approve')
          : u.tenantId
            ? h('button', { type: 'button', 'aria-label': `Diagnose Square for ${u.email ?? u.id}`, onclick: () => diagnose(u.tenantId) }, 'Diagnose Square')
            : '—',
      ),
    );
    if (u.tenantId) loadConnection(u.tenantId);
  };
  async function loadConnection(tenantId) {
    const c = await guarded(() => api('GET', `/api/v1/client/pos/square${qs({ tenantId })}`));
    if (!c || !current(token)) return;
    connection.replaceChildren(badge(c.status), c.merchantId ? ` ${c.merchantId}` : '', c.lastError ? ` (${c.lastError.code})` : '');
  }
  // Runbook 1 in one answer: variables set, OAuth host, redirect and webhook URLs, connection, token, last webhook and poll.
  async function diagnose(tenantId) {
    const report = await guarded(() => api('GET', `/api/v1/client/debug/square${qs({ tenantId })}`));
    if (report && current(token)) openJson(`Square diagnosis for tenant ${tenantId}`, report);
  }
  async function approve(u, button) {
    button.disabled = true;
    const result = await guarded(() => api('PATCH', `/api/v1/admin/users/${encodeURIComponent(u.id)}/approve`));
    if (!result || !current(token)) {
      button.disabled = false;
      return;
    }
    say(`Approved ${result.user.email ?? result.user.id}${result.user.tenantId ? `; workspace ${result.user.tenantId}` : ''}.`);
    fill({ ...u, ...result.user });
  }
  fill(user);
  return row;
}

// ---------------------------------------------------------------------------------------------- loyalty program
/** Earned and redeemed per interval (bars) and outstanding points at each interval's end (a line). */
function programChart(intervals) {
  if (intervals.length === 0) return h('p', { class: 'empty' }, 'No intervals in this range.');
  const W = 600;
  const H = 220;
  const pad = { l: 64, r: 12, t: 12, b: 28 };
  const vMax = Math.max(1, ...intervals.flatMap((i) => [i.earned, i.redeemed, i.outstanding]));
  const vMin = Math.min(0, ...intervals.map((i) => i.outstanding));
  const slot = (W - pad.l - pad.r) / intervals.length;
  const y = (v) => pad.t + (1 - (v - vMin) / (vMax - vMin || 1)) * (H - pad.t - pad.b);
  const svg = (tag, attrs) => {
    const el = document.createElementNS('http://www.w3.org/2000/svg', tag);
    for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v));
    return el;
  };
  const first = intervals[0];
  const last = intervals[intervals.length - 1];
  const root = svg('svg', {
    viewBox: `0 0 ${W} ${H}`,
    class: 'chart program-chart',
    role: 'img',
    'aria-label': `Earned, redeemed and outstanding points from ${first.from} to ${last.to}: ${fmtNumber(intervals.reduce((s, i) => s + i.earned, 0))} earned, ${fmtNumber(intervals.reduce((s, i) => s + i.redeemed, 0))} redeemed, ${fmtNumber(last.outstanding)} outstanding at the end`,
  });
  root.append(svg('line', { x1: pad.l, y1: y(0), x2: W - pad.r, y2: y(0), class: 'axis' }));
  root.append(svg('line', { x1: pad.l, y1: pad.t, x2: pad.l, y2: H - pad.b, class: 'axis' }));
  intervals.forEach((i, n) => {
    const x = pad.l + n * slot;
    const bar = Math.max(1, slot / 2 - 2);
    root.append(svg('rect', { x: x + 1, y: y(i.earned), width: bar, height: Math.max(0, y(0) - y(i.earned)), class: 'bar earned' }));
    root.append(svg('rect', { x: x + 1 + bar, y: y(i.redeemed), width: bar, height: Math.max(0, y(0) - y(i.redeemed)), class: 'bar redeemed' }));
  });
  root.append(svg('polyline', { points: intervals.map((i, n) => `${(pad.l + (n + 0.5) * slot).toFixed(1)},${y(i.outstanding).toFixed(1)}`).join(' '), class: 'line' }));
  for (const v of [vMin, vMax]) {
    const label = svg('text', { x: pad.l - 6, y: y(v) + 4, 'text-anchor': 'end' });
    label.textContent = fmtNumber(v);
    root.append(label);
  }
  for (const [text, x, anchor] of [[first.from, pad.l, 'start'], [last.to, W - pad.r, 'end']]) {
    const label = svg('text', { x, y: H - 8, 'text-anchor': anchor });
    label.textContent = text;
    root.append(label);
  }
  return h(
    'figure',
    { class: 'stack' },
    root,
    h('figcaption', { class: 'legend' }, h('span', { class: 'key earned' }, 'earned'), ' ', h('span', { class: 'key redeemed' }, 'redeemed'), ' ', h('span', { class: 'key outstanding' }, 'outstanding (line)')),
  );
}

/**
 * A promotion's parts in words: what it gives, when (in the workspace's zone), where, and its conditions; a scheduled
 * one can be ended here (a promotion scheduled by mistake, giving away points, is stopped by support at once).
 */
function promotionRow(p, tenantId, token) {
  const row = h('tr');
  const fill = (shown) => row.replaceChildren(...promotionCells(shown, shown.status === 'scheduled' ? h('button', { type: 'button', 'aria-label': `End promotion ${shown.promotion.name}`, onclick: (e) => end(shown, e.currentTarget) }, 'End') : '—'));
  async function end(shown, button) {
    if (!window.confirm(`End the promotion “${shown.promotion.name}” now? Payments made from now on no longer get it; what was earned stays. It cannot be resumed (schedule a new one).`)) return;
    button.disabled = true;
    const ended = await guarded(() => api('POST', `/api/v1/client/promotions/${encodeURIComponent(shown.promotionId)}/end${qs({ tenantId })}`));
    if (!ended) {
      button.disabled = false;
      return;
    }
    if (!current(token)) return;
    fill(ended);
    say(`Promotion “${ended.promotion.name}” ended: payments made from now on no longer get it.`);
  }
  fill(p);
  return row;
}

function promotionCells(p, action) {
  const promo = p.promotion;
  const gives = promo.incentive.type === 'multiplier' ? `${promo.incentive.multiplier}× points` : `+${fmtNumber(promo.incentive.points)} points`;
  const when = [
    `${promo.startsOn} to ${promo.endsOn ?? 'no end'}`,
    promo.daysOfWeek ? promo.daysOfWeek.join(', ') : 'every day',
    promo.hours ? promo.hours.map((r) => `${r.from}–${r.to}`).join(', ') : 'all day',
  ].join('; ');
  const conditions = [
    promo.minimumSpend !== undefined ? `spend at least ${fmtNumber(promo.minimumSpend)} (minor units)` : '',
    promo.limitPerCustomerPerDay !== undefined ? `${fmtNumber(promo.limitPerCustomerPerDay)} per customer a day` : '',
    promo.itemVariationIds ? `an item of ${promo.itemVariationIds.join(', ')}` : '',
    promo.categoryIds ? `an item in category ${promo.categoryIds.join(', ')}` : '',
  ].filter(Boolean);
  return [
    cell('Name', promo.name),
    cell('Gives', gives),
    cell('When', `${when} (${p.timeZone})`),
    cell('Where', promo.locationIds ? h('span', { class: 'mono' }, promo.locationIds.join(', ')) : 'every location'),
    cell('Conditions', conditions.length ? conditions.join('; ') : 'none'),
    cell('Status', badge(p.status)),
    cell('Scheduled', h('time', { datetime: p.scheduledAt }, fmtTime(p.scheduledAt))),
    cell('Ended', p.endedAt ? h('time', { datetime: p.endedAt }, fmtTime(p.endedAt)) : '—'),
    cell('Action', action),
  ];
}

function promotionsTable(promotions, tenantId, token) {
  return promotions.length === 0
    ? h('p', { class: 'empty' }, 'No promotions scheduled yet.')
    : table('Promotions, newest first', ['Name', 'Gives', 'When', 'Where', 'Conditions', 'Status', 'Scheduled', 'Ended', 'Action'], promotions.map((p) => promotionRow(p, tenantId, token)));
}

const WEEKDAYS = ['MON', 'TUE', 'WED', 'THU', 'FRI', 'SAT', 'SUN'];
/** `14:00-17:00, 18:30–20:00` as the API's `hours`; null when a range is not `HH:MM-HH:MM`. */
function parseHours(text) {
  const parts = text.split(',').map((p) => p.trim()).filter(Boolean);
  const ranges = parts.map((p) => /^(\d{2}:\d{2})\s*[-–]\s*(\d{2}:\d{2})$/.exec(p));
  return ranges.every(Boolean) ? ranges.map((m) => ({ from: m[1], to: m[2] })) : null;
}
const idList = (text) => text.split(/[\s,]+/).filter(Boolean);
/** Today's date on the workspace's wall clock (the promotion's dates are read there), as YYYY-MM-DD. */
const localToday = (timeZone) => new Intl.DateTimeFormat('en-CA', { timeZone, year: 'numeric', month: '2-digit', day: '2-digit' }).format(new Date());

/**
 * Support schedules a promotion for a merchant who asks (the event names the admin). It sends what
 * `POST /api/v1/client/promotions` takes and asks to confirm first: a promotion gives points away and is never edited
 * (it is ended and scheduled again). The API checks everything; its 400 names the field.
 */
function promotionForm(tenantId, token, locations, scheduled) {
  const name = h('input', { type: 'text', name: 'name', required: true, maxlength: 100, autocomplete: 'off' });
  const kind = h('select', { name: 'incentive' }, h('option', { value: 'multiplier' }, 'Multiplier: the rules’ points × N'), h('option', { value: 'bonus' }, 'Bonus: N points more'));
  const amount = h('input', { type: 'number', name: 'amount', required: true, min: 1, step: 1, value: '2', inputmode: 'numeric' });
  const startsOn = h('input', { type: 'date', name: 'startsOn', required: true, value: locations?.timeZone ? localToday(locations.timeZone) : '' });
  const endsOn = h('input', { type: 'date', name: 'endsOn' });
  const days = WEEKDAYS.map((d) => h('input', { type: 'checkbox', name: 'daysOfWeek', value: d }));
  const hours = h('input', { type: 'text', name: 'hours', autocomplete: 'off', placeholder: '14:00-17:00, 18:00-20:00' });
  const places = (locations?.locations ?? []).map((l) => h('input', { type: 'checkbox', name: 'locationIds', value: l.id }));
  const placesText = locations ? null : h('input', { type: 'text', name: 'locationIds', autocomplete: 'off', class: 'mono' });
  const minimumSpend = h('input', { type: 'number', name: 'minimumSpend', min: 0, step: 1, inputmode: 'numeric' });
  const limit = h('input', { type: 'number', name: 'limitPerCustomerPerDay', min: 1, max: 1000, step: 1, inputmode: 'numeric' });
  const items = h('input', { type: 'text', name: 'itemVariationIds', autocomplete: 'off', class: 'mono' });
  const categories = h('input', { type: 'text', name: 'categoryIds', autocomplete: 'off', class: 'mono' });
  const boxes = (legend, inputs, labels, hint) =>
    h('fieldset', { class: 'choices' }, h('legend', {}, legend), inputs.map((input, i) => h('label', {}, input, ` ${labels[i]}`)), h('span', { class: 'hint' }, hint));
  const whole = (input) => (input.value === '' ? undefined : Number(input.value));

  function request() {
    const n = whole(amount);
    const checkedDays = days.filter((d) => d.checked).map((d) => d.value);
    const ranges = hours.value.trim() ? parseHours(hours.value) : undefined;
    if (ranges === null) return { problem: 'Hours: write ranges as HH:MM-HH:MM, separated by commas (14:00-17:00, 18:00-20:00).', input: hours };
    const where = placesText ? idList(placesText.value) : places.filter((p) => p.checked).map((p) => p.value);
    const body = {
      name: name.value.trim(),
      incentive: kind.value === 'multiplier' ? { type: 'multiplier', multiplier: n } : { type: 'bonus', points: n },
      startsOn: startsOn.value,
      endsOn: endsOn.value || undefined,
      daysOfWeek: checkedDays.length ? checkedDays : undefined,
      hours: ranges,
      locationIds: where.length ? where : undefined,
      minimumSpend: whole(minimumSpend),
      limitPerCustomerPerDay: whole(limit),
      itemVariationIds: idList(items.value).length ? idList(items.value) : undefined,
      categoryIds: idList(categories.value).length ? idList(categories.value) : undefined,
    };
    return { body };
  }

  const form = filtersForm(
    { 'aria-label': 'Schedule a promotion' },
    async () => {
      const { body, problem, input } = request();
      if (problem) {
        say(problem, 'error');
        return input.focus();
      }
      const gives = body.incentive.type === 'multiplier' ? `${body.incentive.multiplier}× points` : `+${fmtNumber(body.incentive.points)} points`;
      const when = `from ${body.startsOn} to ${body.endsOn ?? 'no end'}`;
      if (!window.confirm(`Schedule “${body.name}” (${gives}, ${when}) for this workspace? Payments made from now on that meet it get it. It cannot be edited afterwards: end it and schedule another.`)) return;
      const button = form.querySelector('button[type=submit]');
      button.disabled = true;
      const result = await guarded(() => api('POST', `/api/v1/client/promotions${qs({ tenantId })}`, { body }));
      button.disabled = false;
      if (!result || !current(token)) return;
      scheduled(result);
      form.reset();
      say(`Promotion “${result.promotion.name}” scheduled (${result.timeZone}).${result.warnings.length ? ` Warnings: ${result.warnings.join(' ')}` : ''}`);
    },
    field('Name', name, 'Recorded on each purchase it applies to'),
    field('Gives', kind),
    field('N', amount, 'Multiplier 1–10, or bonus points 1–1,000,000'),
    field('Starts on', startsOn, `In the workspace’s time zone${locations?.timeZone ? ` (${locations.timeZone})` : ''}`),
    field('Ends on', endsOn, 'Included; empty: no end'),
    boxes('Days', days, WEEKDAYS, 'None ticked: every day'),
    field('Hours', hours, 'HH:MM-HH:MM, comma-separated; empty: all day'),
    placesText
      ? field('Location ids', placesText, 'Square location ids (the connection’s locations could not be read); empty: every location')
      : boxes('Locations', places, (locations?.locations ?? []).map((l) => `${l.name} (${l.id})`), 'None ticked: every location'),
    field('Minimum spend (minor units)', minimumSpend, 'Tip excluded; empty: none'),
    field('Per customer a day', limit, 'Purchases of one Square customer per local day; empty: no limit'),
    field('Item variation ids', items, 'Qualifying items (Square catalog); empty: any purchase'),
    field('Category ids', categories, 'Qualifying categories (Square catalog); empty: any purchase'),
    submitActions('Schedule promotion'),
  );
  return h('details', { class: 'schedule' }, h('summary', {}, 'Schedule a promotion'), form);
}

function programView(_rest, params, token) {
  const tenant = h('input', { type: 'text', name: 'tenantId', value: params.tenantId ?? '', required: true, autocomplete: 'off', class: 'mono' });
  const interval = h('select', { name: 'interval' }, ['day', 'week', 'month'].map((v) => h('option', { value: v, selected: (params.interval ?? 'week') === v ? true : undefined }, v)));
  const from = h('input', { type: 'date', name: 'from', value: params.from ?? '' });
  const to = h('input', { type: 'date', name: 'to', value: params.to ?? '' });
  const form = filtersForm(
    { 'aria-label': 'Open a workspace’s loyalty program' },
    () => {
      go(`#/program${qs({ tenantId: tenant.value.trim(), interval: interval.value, from: from.value, to: to.value })}`);
    },
    field('Tenant id', tenant, 'The workspace (from the merchants view)'),
    field('Interval', interval),
    field('From', from, 'Default: 12 weeks back'),
    field('To', to, 'Default: today'),
    submitActions('Show program'),
  );
  const body = h('div', { 'aria-busy': params.tenantId ? 'true' : 'false' });
  show(h('section', {}, h('h1', {}, 'Loyalty program'), form, body), 'Loyalty program');
  if (!params.tenantId) {
    body.append(h('p', { class: 'empty' }, 'Name a workspace to see its reward catalog, promotions, expiry policy, adjustment limit and figures.'));
    return;
  }
  const tenantId = params.tenantId;
  const chosen = params.interval ?? 'week';
  const today = new Date().toISOString().slice(0, 10);
  const start = params.from || new Date(Date.now() - 83 * 86_400_000).toISOString().slice(0, 10);
  (async () => {
    const [catalog, promotions, policy, limit, summary, locations] = await Promise.all([
      guarded(() => api('GET', `/api/v1/client/rewards${qs({ tenantId })}`)),
      guarded(() => api('GET', `/api/v1/client/promotions${qs({ tenantId })}`)),
      guarded(() => api('GET', `/api/v1/client/expiry-policy${qs({ tenantId })}`)),
      guarded(() => api('GET', `/api/v1/client/adjustment-limit${qs({ tenantId })}`)),
      guarded(() => api('GET', `/api/v1/client/program/summary${qs({ tenantId, interval: chosen, from: start, to: params.to || today })}`)),
      // For the promotion form's location choices: a workspace without a Square connection has none to offer.
      api('GET', `/api/v1/client/locations${qs({ tenantId })}`).catch(() => null),
    ]);
    if (!current(token)) return;
    body.setAttribute('aria-busy', 'false');
    if (!catalog || !promotions || !policy || !limit || !summary) return;
    const limitInput = h('input', { type: 'number', name: 'limit', min: 0, step: 1, value: limit.limit, inputmode: 'numeric' });
    const limitForm = filtersForm(
      { 'aria-label': 'Merchant adjustment limit' },
      async () => {
        const n = Number(limitInput.value);
        if (!Number.isInteger(n) || n < 0) return say('The limit is a whole number of points, 0 or more.', 'error');
        const result = await guarded(() => api('PUT', `/api/v1/admin/workspaces/${encodeURIComponent(tenantId)}/adjustment-limit`, { body: { limit: n } }));
        if (result && current(token)) say(`Merchants of this workspace may now adjust up to ${fmtNumber(result.limit)} points at a time.`);
      },
      field('Per-adjustment limit (points)', limitInput, 'The most a merchant may add or remove in one correction'),
      submitActions('Set limit'),
    );
    let listed = promotions;
    const promotionList = h('div', {}, promotionsTable(listed, tenantId, token));
    const t = summary.totals;
    body.replaceChildren(
      h('h2', {}, 'Reward catalog'),
      catalog.rewards.length === 0
        ? h('p', { class: 'empty' }, 'No rewards defined yet.')
        : table(
            `Rewards (catalog version ${catalog.version})`,
            ['Name', { label: 'Points', num: true }, 'Status', 'Issued rewards expire after', 'Defined'],
            catalog.rewards.map((r) =>
              h(
                'tr',
                {},
                cell('Name', r.description ? `${r.name}: ${r.description}` : r.name),
                cell('Points', fmtNumber(r.points), 'num'),
                cell('Status', badge(r.status)),
                cell('Issued rewards expire after', `${r.issuedRewardExpiresAfterDays} days`),
                cell('Defined', h('time', { datetime: r.definedAt }, fmtTime(r.definedAt)), 'time'),
              ),
            ),
          ),
      h('h2', {}, 'Promotions'),
      promotionList,
      promotionForm(tenantId, token, locations, (scheduled) => {
        listed = [scheduled, ...listed];
        promotionList.replaceChildren(promotionsTable(listed, tenantId, token));
      }),
      h('h2', {}, 'Points expiry policy'),
      h(
        'p',
        { class: 'policy' },
        policy.expires
          ? [
              policy.earnedMonths ? `Points expire ${policy.earnedMonths} months after they were earned (valid through the end of that month). ` : '',
              policy.inactivityMonths ? `All points expire after ${policy.inactivityMonths} months without activity. ` : '',
              policy.appliesToExistingPoints ? 'Applied to points earned before the policy (confirmed by the merchant). ' : `Points earned before ${fmtTime(policy.effectiveFrom)} count from then. `,
              `Version ${policy.version}.`,
            ].join('')
          : 'Points never expire.',
      ),
      h('h2', {}, 'Merchant adjustments'),
      limitForm,
      h('h2', {}, `Program figures, ${summary.from} to ${summary.to} by ${summary.interval}`),
      h(
        'dl',
        { class: 'figures' },
        [
          ['Earned', t.earned],
          ['Redeemed', t.redeemed],
          ['Expired', t.expired],
          ['Adjusted', t.adjusted],
          ['Rewards issued', t.rewardsIssued],
          ['Rewards redeemed', t.rewardsRedeemed],
          ['Active customers', t.activeCustomers],
          ['Outstanding at the end', t.outstandingAtEnd],
        ].map(([label, value]) => h('div', {}, h('dt', {}, label), h('dd', {}, fmtNumber(value)))),
      ),
      programChart(summary.intervals),
      table(
        'By interval',
        ['From', 'To', { label: 'Earned', num: true }, { label: 'Redeemed', num: true }, { label: 'Expired', num: true }, { label: 'Active customers', num: true }, { label: 'Outstanding', num: true }],
        summary.intervals.map((i) =>
          h(
            'tr',
            {},
            cell('From', i.from),
            cell('To', i.to),
            cell('Earned', fmtNumber(i.earned), 'num'),
            cell('Redeemed', fmtNumber(i.redeemed), 'num'),
            cell('Expired', fmtNumber(i.expired), 'num'),
            cell('Active customers', fmtNumber(i.activeCustomers), 'num'),
            cell('Outstanding', fmtNumber(i.outstanding), 'num'),
          ),
        ),
      ),
      summary.topCustomers.length
        ? table('Top customers by points earned', ['Customer', { label: 'Earned', num: true }], summary.topCustomers.map((c) => h('tr', {}, cell('Customer', h('span', { class: 'mono' }, c.consumerId)), cell('Earned', fmtNumber(c.earned), 'num'))))
        : h('p', { class: 'empty' }, 'No customer earned points in this range.'),
    );
  })();
}

// ---------------------------------------------------------------------------------------------- start
// An identity provider that redirects back with `#access_token=…` (implicit flow) signs the admin in directly.
const fromProvider = new URLSearchParams(location.hash.replace(/^#/, '')).get('access_token');
if (fromProvider) {
  history.replaceState(null, '', `${location.pathname}#/audit`);
  signIn(fromProvider);
} else if (getToken()) {
  signIn(getToken());
} else {
  renderSignIn();
}
