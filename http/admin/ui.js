// The console's shared parts: formatting, the DOM helper, the status line, the API client and the view token.
// Plain ES modules, no framework, no build step; the views are in app.js (routing and the administrators' views),
// program.js (a workspace's loyalty program, for both roles) and merchant.js (a merchant's customers and wallets).

const TOKEN_KEY = 'tally.admin.token';
export const POLL_MS = 500;

const main = document.getElementById('main');
const statusBox = document.getElementById('status');

/** Who is signed in: an administrator, or a merchant (`client`) with their workspace. Set by the sign-in. */
export const session = { role: null, tenantId: null };
export const isMerchant = () => session.role === 'client';
const isCustomer = () => session.role === 'consumer';
/** The console's name for who is signed in. */
export const brandName = () => (isMerchant() ? 'Tally for merchants' : isCustomer() ? 'Tally: your points' : 'Tally admin');

let signedOut = () => undefined;
/** What a 401 (or 403 outside `keepSession`) does: set by the sign-in, which signs the tab out. */
export function onSignedOut(handler) {
  signedOut = handler;
}
export const setToken = (token) => sessionStorage.setItem(TOKEN_KEY, token);
export const clearToken = () => sessionStorage.removeItem(TOKEN_KEY);

// ---------------------------------------------------------------------------------------------- formatting
const dateTime = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'medium' });
export const shortDate = new Intl.DateTimeFormat(undefined, { dateStyle: 'short', timeStyle: 'short' });
const integer = new Intl.NumberFormat();
export const signed = new Intl.NumberFormat(undefined, { signDisplay: 'exceptZero' });
export const decimal = new Intl.NumberFormat(undefined, { maximumFractionDigits: 1 });

export const fmtTime = (iso) => (iso ? dateTime.format(new Date(iso)) : '—');
export const fmtNumber = (n) => (n === null || n === undefined ? '—' : integer.format(n));
/** ISO 4217 exponents where Intl's differ (cli/money.ts says why): Square's minor units follow ISO 4217. */
const ISO_4217_EXPONENTS = { HUF: 2, IDR: 2, LBP: 2, IQD: 3 };
/**
 * An amount of money given in minor units, in its currency by the currency's exponent (Intl's fraction digits):
 * 1000 USD is "$10.00", 1000 JPY "¥1,000", 1000 KWD "KWD 1.000". Currency unknown (not connected) or not one Intl
 * knows: the number, "1,000 minor units".
 */
export function fmtMoney(minor, currency) {
  if (minor === null || minor === undefined) return '—';
  if (!currency) return `${fmtNumber(minor)} minor units`;
  try {
    const iso = ISO_4217_EXPONENTS[currency.toUpperCase()];
    const digits = iso === undefined ? {} : { minimumFractionDigits: iso, maximumFractionDigits: iso };
    const format = new Intl.NumberFormat(undefined, { style: 'currency', currency, ...digits });
    return format.format(minor / 10 ** format.resolvedOptions().maximumFractionDigits);
  } catch {
    return `${fmtNumber(minor)} minor units of ${currency}`;
  }
}
export function fmtDuration(seconds) {
  if (seconds === null || seconds === undefined) return '—';
  if (seconds < 1) return 'under a second';
  if (seconds < 60) return `${decimal.format(seconds)} s`;
  if (seconds < 3600) return `${decimal.format(seconds / 60)} min`;
  return `${decimal.format(seconds / 3600)} h`;
}

// ---------------------------------------------------------------------------------------------- DOM helper
/** h('tag', { attr, onclick }, ...children): builds elements; text is always text, never HTML. */
export function h(tag, attrs = {}, ...children) {
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
/** svg('tag', attrs): an SVG element for the charts. */
export function svg(tag, attrs) {
  const el = document.createElementNS('http://www.w3.org/2000/svg', tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v));
  return el;
}
export function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}
let fieldCounter = 0;
/** A form of the filters bar; `submit` runs instead of the browser's submission (which would reload the page). */
export function filtersForm(attrs, submit, ...children) {
  return h('form', { class: 'filters', ...attrs, onsubmit: (event) => (event.preventDefault(), submit()) }, ...children);
}

/** A form's submit button, and a link that clears its filters where `clearHref` is given. */
export function submitActions(label, clearHref) {
  return h('div', { class: 'actions' }, h('button', { type: 'submit' }, label), clearHref ? h('a', { href: clearHref }, 'Clear') : null);
}

/**
 * A form that writes. `submit(write)` runs on submission instead of the browser's; `write(request)` disables the
 * form's submit button while `request(idempotencyKey)` runs, shows an API error, and resolves to the answer, or to
 * undefined where the request failed or the view changed meanwhile (`token`). The key lives as long as what is
 * typed: a second click, or a retry after a lost answer, replays the first request instead of writing twice; an
 * edit of the form, or an answer, makes the next submission a new one.
 */
export function writeForm(token, attrs, submit, ...children) {
  let key = crypto.randomUUID();
  const renew = () => {
    key = crypto.randomUUID();
  };
  const write = async (request) => {
    const result = await guardedOn(form.querySelector('button[type=submit]'), () => request(key));
    if (!result || !current(token)) return undefined;
    renew();
    return result;
  };
  const form = filtersForm(attrs, () => submit(write), ...children);
  for (const type of ['input', 'change', 'reset']) form.addEventListener(type, renew);
  return form;
}

/** A labelled input; every input of the console has a visible label. */
export function field(label, input, hint) {
  const id = input.id || `f${++fieldCounter}`;
  input.id = id;
  const hintEl = hint ? h('span', { class: 'hint', id: `${id}-hint` }, hint) : null;
  if (hintEl) input.setAttribute('aria-describedby', hintEl.id);
  return h('div', { class: 'field' }, h('label', { for: id }, label), input, hintEl);
}
export function table(caption, headers, rows, options = {}) {
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
export const cell = (label, content, cls) => h('td', { 'data-label': label, class: cls }, content);
/** A Square connection's status (`GET /api/v1/client/pos/square`) in words. */
export const CONNECTION_STATUS = {
  not_connected: 'Not connected',
  active: 'Connected',
  needs_reconnect: 'Needs reconnecting',
  token_undecryptable: 'Access unreadable',
  revoked: 'Revoked',
};
/** A status as a badge; `words` (code → text) shows it in words, the code kept in `data-status` for support. */
export function badge(outcome, words) {
  const good = ['credited', 'completed', 'running', 'active', 'approved', 'consistent', 'refund_applied', 'recorded', 'duplicate', 'scheduled', 'upcoming'];
  const bad = ['failed', 'no_connection', 'revoked', 'needs_reconnect', 'token_undecryptable', 'suspended', 'inconsistent', 'cancelled'];
  const cls = good.includes(outcome) ? 'ok' : bad.includes(outcome) ? 'bad' : 'warn';
  const text = words?.[outcome];
  return h('span', { class: `badge ${cls}`, ...(text ? { 'data-status': outcome, title: outcome } : {}) }, text ?? outcome ?? '—');
}

/** Buttons disabled while their request runs (`guardedOn`). */
let busy = 0;
export function say(message, kind = 'info') {
  statusBox.className = `status${kind === 'error' ? ' error' : ''}`;
  statusBox.textContent = message;
  if (!message) return;
  // Focus a write lost (its form redrawn) goes to what it says (a button busy meanwhile gets it back itself); and on
  // a phone the line above the page, scrolled away from the form that wrote, comes into view (the answer would be
  // drawn off-screen).
  if (busy === 0 && (!document.activeElement || document.activeElement === document.body)) statusBox.focus();
  else {
    const box = statusBox.getBoundingClientRect();
    if (box.bottom < 0 || box.top > window.innerHeight) statusBox.scrollIntoView({ block: 'nearest' });
  }
}
export const clearStatus = () => say('');
/** What the status line says now (an error a later message should keep). */
export const statusText = () => statusBox.textContent;

// ---------------------------------------------------------------------------------------------- API client
class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}
export const getToken = () => sessionStorage.getItem(TOKEN_KEY);

export async function api(method, path, options = {}) {
  const headers = { accept: 'application/json', authorization: `Bearer ${getToken() ?? ''}`, ...(options.headers ?? {}) };
  if (options.body !== undefined) headers['content-type'] = 'application/json';
  const response = await reach(() => fetch(path, { method, headers, body: options.body === undefined ? undefined : JSON.stringify(options.body) }), method !== 'GET');
  const text = await response.text();
  let body;
  try {
    body = text ? JSON.parse(text) : undefined;
  } catch {
    body = undefined;
  }
  if (!response.ok) throw refusal(response, body, `${method} ${path}`, options.keepSession);
  return body;
}
/** A request's answer; the browser's bare "Failed to fetch" when Tally cannot be reached becomes what to do. */
async function reach(request, writes) {
  try {
    return await request();
  } catch (error) {
    if (!(error instanceof TypeError)) throw error;
    const retry = writes ? ' Sending the same form again does not write twice.' : '';
    throw new ApiError(0, 'UNREACHABLE', `Tally could not be reached (the connection failed): check the network and try again.${retry}`);
  }
}
/** The error of an answer that is not OK, with a 5xx's request id; a 401 (or a 403 outside `keepSession`) signs the tab out first. */
function refusal(response, body, request, keepSession = false) {
  const message = body?.error?.message ?? `${request} answered ${response.status}`;
  // A 500 asks to quote its request id: the message carries it.
  const requestId = response.status >= 500 ? (body?.error?.requestId ?? response.headers.get('x-request-id')) : null;
  const error = new ApiError(response.status, body?.error?.code ?? 'HTTP_ERROR', requestId ? `${message} Request id: ${requestId}.` : message);
  if (response.status === 401 || (response.status === 403 && !keepSession)) signedOut(`Signed out: ${error.message}`);
  return error;
}
/**
 * Saves a file the API answers (a plain link cannot carry the bearer token): fetched, then handed to the browser's
 * download as a blob. An API error is thrown as `api` throws it, and signs the tab out as it does.
 */
export async function download(path, filename) {
  const response = await reach(() => fetch(path, { headers: { authorization: `Bearer ${getToken() ?? ''}` } }), false);
  if (!response.ok) throw refusal(response, await response.json().catch(() => undefined), `GET ${path}`);
  const url = URL.createObjectURL(await response.blob());
  const link = h('a', { href: url, download: filename, hidden: true });
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 60_000);
}
export const qs = (params) => {
  const search = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null && v !== '') search.set(k, v);
  const s = search.toString();
  return s ? `?${s}` : '';
};
/**
 * `guarded`, with `button` disabled while the action runs. A disabled button loses the focus: it is given back once
 * the button is enabled again (a keyboard or screen-reader user stays where they were, not at the top of the page).
 */
export async function guardedOn(button, action) {
  const focused = document.activeElement === button;
  button.disabled = true;
  busy++;
  try {
    return await guarded(action);
  } finally {
    busy--;
    button.disabled = false;
    // Without scrolling: what the answer said stays in view.
    if (focused && button.isConnected && (!document.activeElement || document.activeElement === document.body)) button.focus({ preventScroll: true });
  }
}
/** Runs an action, showing an API error in the status area instead of throwing. */
export async function guarded(action) {
  try {
    return await action();
  } catch (error) {
    if (error instanceof ApiError && (error.status === 401 || error.status === 403)) return undefined;
    say(error.message, 'error');
    return undefined;
  }
}

// ---------------------------------------------------------------------------------------------- views
export function show(content, title) {
  main.replaceChildren(content);
  document.title = `${title} · ${brandName()}`;
}
let routeToken = 0;
/** A new view is on screen: the token its async tasks check with `current`. */
export const nextView = () => ++routeToken;
/** True while the view that started an async task is still the one on screen. */
export const current = (token) => token === routeToken;
/**
 * What a view reads before it shows anything: the answer, or undefined when the read failed (the status line says
 * why) or another view has taken the screen. `body` stops being busy either way, if the view is still on screen.
 */
export async function loaded(body, token, read) {
  const answer = await guarded(read);
  if (!current(token)) return undefined;
  body.setAttribute('aria-busy', 'false');
  return answer ?? undefined;
}
export const go = (hash) => {
  location.hash = hash;
};
