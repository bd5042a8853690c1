// Tally's console: administrators browse and correct everything; merchants serve their customers and run their
// program; customers read their points. What it offers follows the role of the signed-in token. Plain ES modules, no framework, no build step (ui.js has the shared parts). It calls only the public API
// with the bearer token that was pasted (kept in sessionStorage for this tab only).
import { api, badge, brandName, cell, clearStatus, clearToken, CONNECTION_STATUS, current, decimal, field, filtersForm, fmtDuration, fmtNumber, fmtTime, getToken, go, guarded, h, nextView, onSignedOut, POLL_MS, qs, say, session, setToken, show, submitActions, table } from './ui.js';
import { programView } from './program.js';
import { pointsView } from './points.js';
import { rulesView, squareView } from './settings.js';
import { customersView, walletView } from './wallet.js';

const main = document.getElementById('main');
const nav = document.getElementById('nav');
const brand = document.getElementById('brand');
const signOutButton = document.getElementById('sign-out');
const dialog = document.getElementById('detail');

// ---------------------------------------------------------------------------------------------- sign-in
function signOut(message) {
  // The view's work ends with the session: its polls see another view (nextView), the live stream is closed.
  nextView();
  liveConnection?.abort();
  clearToken();
  Object.assign(session, { role: null, tenantId: null });
  nav.hidden = true;
  signOutButton.hidden = true;
  renderSignIn(message);
}
signOutButton.addEventListener('click', () => signOut('Signed out.'));
onSignedOut(signOut);

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

/** Who may use the console: an approved administrator, an approved merchant with a workspace, or a customer. */
function refusal(me) {
  if (me.status === 'pending') return `${me.email ?? me.id} is waiting for an administrator's approval.`;
  if (me.status !== 'approved') return `${me.email ?? me.id} is ${me.status}.`;
  if (me.role === 'admin') return null;
  if (me.role === 'client') return me.tenantId ? null : `The workspace of ${me.email ?? me.id} is not provisioned yet.`;
  if (me.role === 'consumer') return null;
  return `${me.email ?? me.id} has no view here.`;
}

async function signIn(token) {
  setToken(token);
  try {
    const me = await api('GET', '/api/v1/me', { keepSession: true });
    const refused = refusal(me);
    if (refused) {
      clearToken();
      say(refused, 'error');
      return;
    }
    Object.assign(session, { role: me.role, tenantId: me.tenantId ?? null });
    brand.textContent = brandName();
    for (const item of nav.querySelectorAll('li')) item.hidden = !(item.dataset.for ?? 'admin').split(' ').includes(role().nav);
    nav.hidden = false;
    signOutButton.hidden = false;
    if (!location.hash || location.hash === '#/' || location.hash === '#/signin') history.replaceState(null, '', `${location.pathname}#/${role().home}`);
    // What the address asked for and could not be shown is said after who signed in, not replaced by it.
    const problem = route();
    say(`Signed in as ${me.email ?? me.id}${role().as}.${problem ? ` ${problem}` : ''}`, problem ? 'error' : 'info');
  } catch (error) {
    clearToken();
    renderSignIn(`Sign-in failed: ${error.message}`);
  }
}

// ---------------------------------------------------------------------------------------------- routing
/**
 * What each role is offered: its views (a merchant's call only the workspace's routes, `/api/v1/client/…`; a
 * customer's only their own, `/api/v1/me/…`), the first one, its links (`data-for` in index.html), and how it is named.
 * The views are functions declared below, so the table is built when first asked for.
 */
function roles() {
  return {
    admin: { views: { audit: auditView, live: liveView, wallet: walletView, webhooks: webhooksView, projections: projectionsView, merchants: merchantsView, program: programView }, home: 'audit', nav: 'admin', audience: 'administrators', as: '' },
    client: { views: { customers: customersView, wallet: walletView, program: programView, rules: rulesView, square: squareView, webhooks: webhooksView }, home: 'customers', nav: 'merchant', audience: 'merchants', as: ' (merchant)' },
    consumer: { views: { points: pointsView }, home: 'points', nav: 'customer', audience: 'customers', as: ' (customer)' },
  };
}
const role = () => roles()[session.role] ?? roles().admin;
function parseHash() {
  const raw = location.hash.replace(/^#\/?/, '');
  const [path, search = ''] = raw.split('?');
  let parts;
  try {
    parts = path.split('/').map(decodeURIComponent);
  } catch {
    // A malformed escape (`%E0%A4%A`, a link cut short): the home view, not an error that signs the tab out.
    return { section: role().home, rest: [], params: {}, malformed: true };
  }
  return { section: parts[0] || role().home, rest: parts.slice(1), params: Object.fromEntries(new URLSearchParams(search)) };
}

function route() {
  if (!getToken() || !session.role) return renderSignIn();
  const { section, rest, params, malformed } = parseHash();
  const token = nextView();
  liveConnection?.abort();
  for (const link of nav.querySelectorAll('a')) {
    if (link.getAttribute('href') === `#/${section}`) link.setAttribute('aria-current', 'page');
    else link.removeAttribute('aria-current');
  }
  const { views, home, audience } = role();
  const view = views[section];
  let problem;
  if (malformed) problem = `The address ${location.hash} is malformed: showing ${home}.`;
  else if (!view && section !== home) problem = `There is no “${section}” view for ${audience}: showing ${home}.`;
  if (view && !malformed) view(rest, params, token);
  else views[home]([], {}, token);
  if (problem) say(problem, 'error');
  // The view may have focused what comes first (the customer search's field): keep that.
  if (!main.contains(document.activeElement) || document.activeElement === main) main.focus({ preventScroll: true });
  return problem;
}
window.addEventListener('hashchange', () => {
  clearStatus();
  route();
});

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
 * A server-sent event's id and data (its `data:` lines joined by newlines), by the format's own rules: lines end at
 * a line feed only (the server sends no carriage returns), one space after the colon is dropped. Not a regular
 * expression with `.` or `^`/`$`: JavaScript ends lines there at U+2028 and U+2029 too, which JSON leaves unescaped.
 */
function sseFields(block) {
  let id;
  const data = [];
  for (const line of block.split('\n')) {
    const colon = line.indexOf(':');
    if (colon <= 0) continue;
    const name = line.slice(0, colon);
    const value = line.slice(colon + 1).replace(/^ /, '');
    if (name === 'id') id = value;
    else if (name === 'data') data.push(value);
  }
  return { id, data: data.length ? data.join('\n') : undefined };
}

/**
 * Events as they are appended (GET /api/v1/admin/events/stream). fetch, not EventSource: the API wants the bearer
 * token in a header. A dropped connection resumes after the last event shown (Last-Event-ID). Pause keeps
 * receiving but holds the rows back, so nothing is missed when it resumes.
 */
/** A live stream answer to try again after the backoff (429, 5xx): said already, nothing more to say. */
class LiveStreamUnavailable extends Error {}

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
        const message = body?.error?.message ?? `The live stream answered ${response.status}`;
        if (response.status === 401 || response.status === 403) return signOut(`Signed out: ${message}`);
        // A database blip (503), a proxy's 502 or a 429 passes: try again after the backoff. Another 4xx will not.
        const passing = response.status === 429 || response.status >= 500;
        say(passing ? `${message} (${response.status}); reconnecting.` : message, 'error');
        if (!passing) {
          state.textContent = 'Not connected.';
          return;
        }
        throw new LiveStreamUnavailable();
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
          const { id, data } = sseFields(block);
          if (id && data !== undefined) {
            // A frame that cannot be read throws before lastEventId moves: the reconnection asks for it again.
            onEvent(JSON.parse(data));
            lastEventId = id;
          }
        }
      }
    } catch (error) {
      if (controller.signal.aborted || !current(token)) return;
      if (error instanceof SyntaxError) say(`The live stream sent an event that could not be read (${error.message}); reconnecting.`, 'error');
    }
    if (!current(token)) return;
    // The server closed the stream (a restart, or this tab fell behind): come back after the last event shown.
    state.textContent = 'Reconnecting…';
    setTimeout(() => connect(attempt + 1), Math.min(10_000, 500 * 2 ** attempt));
  };
  connect(0);
}

// ---------------------------------------------------------------------------------------------- webhooks
const OUTCOMES = ['pending', 'credited', 'credit_refused', 'stored_anonymous', 'no_rule_no_credit', 'zero_points', 'before_program', 'currency_mismatch', 'same_order', 'location_excluded', 'identity_attached', 'customer_linked', 'duplicate', 'recorded', 'stale', 'refund_applied', 'refund_held', 'refund_pending', 'ignored', 'no_connection', 'revoked', 'failed'];
const RETRYABLE = ['failed', 'no_connection'];
/** How long a re-drive waits for its attempt to end before it gives the button back. */
const RETRY_WAIT_MS = 60_000;

/**
 * What each outcome means for a merchant, in their words (README, "Webhook answers and outcomes", has the whole
 * table): why a payment earned what it did, and what to do about it where something can be done.
 */
const OUTCOME_MEANING = {
  pending: 'Received, not processed yet.',
  credited: "Points added to the customer's wallet.",
  credit_refused: 'Not added: the wallet would pass its limit (10^9 points per credit, 10^12 per balance).',
  stored_anonymous: 'Points held: no customer with a verified email or phone of this Square customer has joined yet. They get them on joining within 90 days.',
  no_rule_no_credit: 'No points: no reward rule was active. Activate one under Reward rules.',
  zero_points: 'No points: the active rules gave 0 for this payment (below a minimum spend, say).',
  before_program: 'No points: paid before your loyalty program started (before a reward rule was active, or before Square was connected).',
  currency_mismatch: "No points: paid in another currency than the workspace's.",
  same_order: 'No points: another payment of the same order already counted the visit.',
  location_excluded: 'No points: paid at a location none of the active rules covers.',
  identity_attached: "The customer's email or phone, now known, was attached to their held purchases.",
  customer_linked: "Square named the customer after the payment completed: its held points go to the member with that customer's email or phone (at once if they joined, else when they join within 90 days).",
  duplicate: 'Already recorded (from another webhook or the poll): counted once.',
  recorded: 'A payment status other than completed: recorded, points come when it completes.',
  stale: 'An older status than one already seen: nothing changed.',
  refund_applied: "Refund: the refunded share of the payment's points taken back.",
  refund_held: 'Refund received before its payment completed: applied once it completes.',
  refund_pending: 'Refund not completed yet.',
  ignored: 'Nothing for the loyalty program in it.',
  no_connection: 'Received while Square was not connected to this workspace.',
  revoked: 'Square access was revoked: reconnect under Square.',
  failed: 'Could not be processed: Tally retries it for about half an hour, then leaves it to the payments poll.',
};

/**
 * Received webhooks, newest first, with what each came to. Administrators see every workspace's, the error text
 * and a re-drive; a merchant sees their own workspace's (`/api/v1/client/webhooks`), with the payment or refund
 * each names and what its outcome means.
 */
function webhooksView(_rest, params, token) {
  const merchant = session.role === 'client';
  // A merchant's list never holds `no_connection`: such a webhook belongs to no workspace (administrators see it).
  const offered = merchant ? OUTCOMES.filter((o) => o !== 'no_connection') : OUTCOMES;
  const outcome = h('select', { name: 'outcome' }, h('option', { value: '' }, 'Any outcome'), offered.map((o) => h('option', { value: o, selected: params.outcome === o }, o)));
  const tenant = h('input', { type: 'text', name: 'tenantId', value: params.tenantId ?? '', autocomplete: 'off' });
  const type = h('input', { type: 'text', name: 'type', value: params.type ?? '', autocomplete: 'off' });
  const form = filtersForm(
    { 'aria-label': 'Webhook filters' },
    () => {
      go(`#/webhooks${qs({ outcome: outcome.value, tenantId: merchant ? '' : tenant.value.trim(), type: type.value.trim() })}`);
    },
    field('Outcome', outcome),
    merchant ? null : field('Tenant id', tenant),
    field('Event type', type, 'e.g. payment.updated'),
    submitActions('Show webhooks'),
  );
  const tbody = h('tbody');
  const count = h('p', { class: 'hint' });
  const more = h('button', { type: 'button', class: 'secondary', hidden: true }, 'Load more');
  const base = merchant ? '/api/v1/client/webhooks' : '/api/v1/admin/webhooks';
  const query = merchant ? { outcome: params.outcome, type: params.type } : params;
  let cursor;
  let total = 0;
  async function load() {
    more.disabled = true;
    const page = await guarded(() => api('GET', `${base}${qs({ ...query, cursor, limit: 50 })}`));
    more.disabled = false;
    if (!page || !current(token)) return;
    tbody.append(...page.items.map((w) => (merchant ? merchantWebhookRow(w) : webhookRow(w, token))));
    total += page.items.length;
    cursor = page.nextCursor;
    more.hidden = !cursor;
    count.textContent = total === 0 ? 'No webhooks match.' : `${fmtNumber(total)} webhook${total === 1 ? '' : 's'} shown.`;
  }
  more.addEventListener('click', load);
  const columns = merchant ? ['Received', 'Type', 'Payment or refund', 'Outcome', 'What it means'] : ['Received', 'Event id', 'Type', 'Merchant', 'Tenant', 'Outcome', 'Attempts', 'Error', 'Action'];
  show(
    h(
      'section',
      {},
      h('h1', {}, 'Webhooks'),
      merchant ? h('p', { class: 'hint' }, 'What Square told Tally about your payments and refunds, and what each came to: why a payment earned what it did.') : null,
      form,
      count,
      h('div', { class: 'table-wrap' }, h('table', { class: 'responsive' }, h('caption', {}, 'Received webhooks, newest first'), h('thead', {}, h('tr', {}, columns.map((x) => h('th', { scope: 'col' }, x)))), tbody)),
      h('div', { class: 'actions' }, more),
    ),
    'Webhooks',
  );
  load();
}

/** A merchant's row: no error text (the API leaves it out), no re-drive (administrators' only). */
function merchantWebhookRow(w) {
  return h(
    'tr',
    { 'data-event-id': w.eventId },
    cell('Received', h('time', { datetime: w.receivedAt }, fmtTime(w.receivedAt)), 'time'),
    cell('Type', w.type),
    cell('Payment or refund', w.objectId ? h('span', { class: 'mono' }, w.objectId) : '—'),
    cell('Outcome', badge(w.outcome)),
    cell('What it means', OUTCOME_MEANING[w.outcome] ?? '—'),
  );
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
  /**
   * Re-drives the webhook, then polls until the attempt it asked for has ended: the webhook settled (`processed`), or
   * due at another time than the re-drive set (`nextAttemptAt`: only a failed attempt moves it, to its backoff's
   * retry). The attempt counter cannot tell: the re-drive restarts it at 0, so a retry that fails again counts 1.
   */
  async function retry(item, button) {
    button.disabled = true;
    const scheduled = await guarded(() => api('POST', `/api/v1/admin/webhooks/${encodeURIComponent(item.eventId)}/retry`));
    if (!scheduled) {
      button.disabled = false;
      return;
    }
    say(`Webhook ${item.eventId} scheduled for another attempt…`);
    const ended = (now) => now.processed || (now.nextAttemptAt !== null && Date.parse(now.nextAttemptAt) !== Date.parse(scheduled.nextAttemptAt));
    const deadline = Date.now() + RETRY_WAIT_MS;
    while (Date.now() < deadline && current(token)) {
      await new Promise((resolve) => setTimeout(resolve, POLL_MS));
      const now = await guarded(() => api('GET', `/api/v1/admin/webhooks/${encodeURIComponent(item.eventId)}`));
      if (!current(token)) return;
      if (!now) {
        button.disabled = false;
        return;
      }
      if (ended(now)) {
        fill(now);
        const next = now.processed ? '' : `; next automatic attempt ${fmtTime(now.nextAttemptAt)}`;
        say(`Webhook ${item.eventId}: ${now.outcome}${now.error ? ` (${now.error})` : ''}${next}.`, now.outcome === 'failed' ? 'error' : 'info');
        return;
      }
    }
    if (!current(token)) return;
    button.disabled = false;
    say(`Webhook ${item.eventId}: no attempt has ended ${fmtDuration(RETRY_WAIT_MS / 1000)} after the re-drive; it stays queued. Show webhooks again for its state.`, 'error');
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
            cell('Action', h('span', { class: 'row-actions' }, ...actions(p))),
          ),
        ),
      ),
    );
    for (const p of list) if (p.rebuild && !jobs.querySelector(`[data-job="${p.rebuild.jobId}"]`)) watch(p.rebuild);
  }
  function actions(p) {
    const buttons = [];
    // A failure's cause fixed outside the code (a stored row mended, a remote service back): feed it again.
    if (p.state === 'failed') buttons.push(h('button', { type: 'button', 'aria-label': `Retry ${p.name}`, onclick: () => retry(p.name) }, 'Retry'));
    if (p.rebuildable) buttons.push(h('button', { type: 'button', class: buttons.length ? 'secondary' : undefined, 'aria-label': `Rebuild ${p.name}`, disabled: p.state === 'rebuilding', onclick: () => rebuild(p.name) }, 'Rebuild'));
    return buttons.length ? buttons : ['—'];
  }
  async function retry(name) {
    const retried = await guarded(() => api('POST', `/api/v1/admin/projections/${encodeURIComponent(name)}/retry`));
    if (!retried || !current(token)) return;
    say(`${name} is fed again from its checkpoint.`);
    load();
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
    const found = await guarded(() => api('GET', `/api/v1/admin/users/search${qs({ q: params.q })}`));
    if (!found || !current(token)) return;
    const { users, more } = found;
    if (users.length === 0) return results.replaceChildren(h('p', { class: 'empty' }, 'No users match.'));
    results.replaceChildren(
      // The search answers the newest matches only: say when there are more, rather than show a partial list as whole.
      h('p', { class: 'hint', 'data-testid': 'search-count' }, more ? `The newest ${fmtNumber(users.length)} users shown; more match: narrow the search.` : `${fmtNumber(users.length)} user${users.length === 1 ? '' : 's'} match.`),
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
    connection.replaceChildren(badge(c.status, CONNECTION_STATUS), c.merchantId ? ` ${c.merchantId}` : '', c.lastError ? ` (${c.lastError.code})` : '');
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

/**
 * A sign-in link (`#access_token=…`, an identity provider's implicit flow) names its account first and signs in only
 * once the person confirms it is theirs. Anyone can craft such a link with their own token: signed in silently, the
 * next thing the person did (connecting their Square business, say) would act for the link's account.
 */
async function confirmSignIn(token) {
  let me = null;
  let problem;
  try {
    const response = await fetch('/api/v1/me', { headers: { accept: 'application/json', authorization: `Bearer ${token}` } });
    const body = await response.json().catch(() => undefined);
    const message = body?.error?.message ?? `GET /api/v1/me answered ${response.status}`;
    if (response.ok) me = body;
    else if (response.status === 401) problem = `The sign-in link carries a token that is not valid (expired, or not for this service): ${message}`;
    // A customer's first link, before their account exists: not a bad token.
    else if (response.status === 404) problem = `The sign-in link's account is not registered yet: ${message}`;
    else problem = `The sign-in link could not be checked (try it again shortly): ${message}`;
  } catch (error) {
    problem = `The sign-in link could not be checked (try it again shortly): ${error.message}`;
  }
  if (!me) {
    renderSignIn(problem);
    return;
  }
  // An email the identity provider has not verified is only a claim: anyone may register with someone else's.
  const email = me.email ? `${me.email}${me.emailVerified ? '' : ' (email not verified)'}` : null;
  const what = me.role === 'client' ? `merchant${me.businessName ? ` of ${me.businessName}` : ''}` : me.role === 'consumer' ? 'customer' : me.role === 'admin' ? 'administrator' : me.role;
  const who = `${email ?? me.id} (${what}; account ${me.id})`;
  show(
    h(
      'section',
      {},
      h('h1', {}, 'Sign in'),
      h('p', { 'data-testid': 'link-account' }, `This link signs you in as ${who}.`),
      h('p', {}, 'Continue only if that is your account. If someone sent you this link, cancel and sign in yourself.'),
      h(
        'div',
        { class: 'actions' },
        h('button', { type: 'button', onclick: () => signIn(token) }, `Continue as ${me.email ?? me.id}`),
        h('button', { type: 'button', class: 'secondary', onclick: () => (getToken() ? signIn(getToken()) : renderSignIn()) }, 'Cancel'),
      ),
    ),
    'Sign in',
  );
}

// ---------------------------------------------------------------------------------------------- start
const fromProvider = new URLSearchParams(location.hash.replace(/^#/, '')).get('access_token');
if (fromProvider) {
  history.replaceState(null, '', `${location.pathname}#/`);
  confirmSignIn(fromProvider);
} else if (getToken()) {
  signIn(getToken());
} else {
  renderSignIn();
}
