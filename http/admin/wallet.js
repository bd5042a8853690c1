// The wallet view, for both roles: an administrator opens any wallet (reconciliation, adjustments without limit, the
// audit trail); a merchant finds a customer's wallet by email or phone and serves them at the counter: redeem points,
// issue and redeem rewards, adjust within the workspace's limit.
import { api, append, badge, cell, current, field, filtersForm, fmtNumber, fmtTime, writeForm, go, guarded, guardedOn, h, isMerchant, loaded, qs, say, session, shortDate, show, signed, statusText, submitActions, svg, table } from './ui.js';

/** `complete`: the whole ledger is loaded, so the balance started at 0. */
export function balanceChart(ledgerNewestFirst, complete) {
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

export function walletView(rest, params, token) {
  const walletId = rest[0];
  const idInput = h('input', { type: 'text', name: 'walletId', value: walletId ?? '', required: true, autocomplete: 'off', class: 'mono' });
  const tenantInput = h('input', { type: 'text', name: 'tenantId', value: params.tenantId ?? '', autocomplete: 'off', class: 'mono' });
  const open = filtersForm(
    { 'aria-label': 'Open a wallet' },
    () => {
      const id = idInput.value.trim();
      if (id) go(`#/wallet/${encodeURIComponent(id)}${qs({ tenantId: isMerchant() ? '' : tenantInput.value.trim() })}`);
    },
    field('Wallet id', idInput),
    isMerchant() ? null : field('Tenant id', tenantInput, 'Optional: found from the audit trail when empty'),
    submitActions('Open wallet'),
  );
  const body = h('div', { 'aria-busy': walletId ? 'true' : 'false' });
  show(h('section', {}, h('h1', {}, walletId ? 'Wallet' : 'Open a wallet'), open, body), 'Wallet');
  if (walletId) loadWallet(walletId, isMerchant() ? session.tenantId : params.tenantId, body, token);
}

/** A merchant's customers: wallets of the workspace found by the customer's email address or phone number. */
export function customersView(_rest, params, token) {
  const q = h('input', { type: 'search', name: 'q', value: params.q ?? '', required: true, autocomplete: 'off', maxlength: 320 });
  const form = filtersForm(
    { 'aria-label': 'Find a customer' },
    () => go(`#/customers${qs({ q: q.value.trim() })}`),
    field('Email or phone', q, 'As the customer gives it, any format: jane@example.com, (212) 555-0100'),
    submitActions('Find'),
  );
  const body = h('div', { 'aria-busy': params.q ? 'true' : 'false' });
  show(h('section', {}, h('h1', {}, 'Customers'), form, body), 'Customers');
  if (!params.q) {
    body.append(h('p', { class: 'empty' }, 'Ask the customer for the email address or phone number they registered with.'));
    q.focus();
    return;
  }
  (async () => {
    const found = await loaded(body, token, () => api('GET', `/api/v1/client/wallets${qs({ q: params.q })}`));
    if (!found) return;
    // Said as well as shown: the results arrive after the page did, outside any live region.
    say(found.length === 0 ? `No customer found for “${params.q}”.` : `${found.length === 1 ? 'One wallet' : `${fmtNumber(found.length)} wallets`} found for “${params.q}”.`);
    body.replaceChildren(
      found.length === 0
        ? h('p', { class: 'empty' }, `No customer of this workspace has the email or phone “${params.q}”. They may not have registered with Tally yet.`)
        : table(
            `Wallets of “${params.q}”`,
            ['Wallet', { label: 'Balance', num: true }, { label: 'Available', num: true }, 'Expiring soon', 'Last activity'],
            found.map((w) =>
              h(
                'tr',
                {},
                cell('Wallet', h('a', { href: `#/wallet/${encodeURIComponent(w.walletId)}`, class: 'mono', 'aria-label': `Open wallet ${w.walletId}` }, w.walletId)),
                cell('Balance', fmtNumber(w.balance), 'num'),
                cell('Available', fmtNumber(w.available), 'num'),
                cell('Expiring soon', w.expiringSoon.points ? `${fmtNumber(w.expiringSoon.points)} on ${fmtTime(w.expiringSoon.at)}` : '—'),
                cell('Last activity', h('time', { datetime: w.updatedAt }, fmtTime(w.updatedAt)), 'time'),
              ),
            ),
          ),
    );
  })();
}

async function tenantOfWallet(walletId, body, token) {
  const trail = await guarded(() => api('GET', `/api/v1/admin/audit${qs({ walletId, limit: 1 })}`));
  const tenantId = trail?.items?.[0]?.tenantId ?? undefined;
  if (!tenantId) {
    if (trail && current(token)) say('No event of this wallet names its tenant: enter the tenant id.', 'error');
    body.setAttribute('aria-busy', 'false');
  }
  return tenantId;
}

/** Reads and shows a wallet: true once it is shown in full, false when a read failed (the status line says why). */
async function loadWallet(walletId, tenantGiven, body, token, minPosition) {
  const id = encodeURIComponent(walletId);
  const merchant = isMerchant();
  const tenantId = tenantGiven || (await tenantOfWallet(walletId, body, token));
  if (!tenantId) return false;
  const headers = minPosition ? { 'x-min-position': minPosition } : {};
  const [wallet, ledger, report, rewards, limit] = await Promise.all([
    guarded(() => api('GET', `/api/v1/client/wallets/${id}${qs({ tenantId })}`, { headers })),
    guarded(() => api('GET', `/api/v1/client/wallets/${id}/ledger${qs({ tenantId, limit: 100 })}`, { headers })),
    merchant ? null : guarded(() => api('GET', `/api/v1/admin/wallets/${id}/reconcile`)),
    merchant ? guarded(() => api('GET', `/api/v1/client/wallets/${id}/rewards`, { headers })) : null,
    merchant ? guarded(() => api('GET', '/api/v1/client/adjustment-limit')) : null,
  ]);
  if (!current(token)) return false;
  body.setAttribute('aria-busy', 'false');
  if (!wallet || !ledger) return false;
  const reload = (position) => loadWallet(walletId, tenantId, body, token, position);

  body.replaceChildren();
  append(body, [
    h('p', { class: 'mono' }, merchant ? `${walletId} · customer ${wallet.consumerId}` : `${walletId} · tenant ${tenantId} · consumer ${wallet.consumerId}`),
    h(
      'dl',
      { class: 'cards' },
      h('div', {}, h('dt', {}, 'Balance'), h('dd', { 'data-testid': 'balance' }, `${fmtNumber(wallet.balance)} pts`)),
      h('div', {}, h('dt', {}, 'Available'), h('dd', { 'data-testid': 'available' }, fmtNumber(wallet.available))),
      wallet.locked ? h('div', {}, h('dt', {}, 'Locked by rewards'), h('dd', {}, fmtNumber(wallet.locked))) : null,
      wallet.expiringSoon.points ? h('div', {}, h('dt', {}, 'Expiring soon'), h('dd', {}, `${fmtNumber(wallet.expiringSoon.points)} on ${fmtTime(wallet.expiringSoon.at)}`)) : null,
      h('div', {}, h('dt', {}, 'Lifetime earned'), h('dd', {}, fmtNumber(wallet.lifetimeEarned))),
      h('div', {}, h('dt', {}, 'Lifetime redeemed'), h('dd', {}, fmtNumber(wallet.lifetimeRedeemed))),
      h('div', {}, h('dt', {}, 'Updated'), h('dd', { class: 'hint' }, fmtTime(wallet.updatedAt))),
    ),
    h(
      'div',
      { class: 'grid2' },
      h('div', {}, h('h2', {}, 'Balance over time'), balanceChart(ledger.items, !ledger.nextCursor)),
      merchant
        ? h('div', {}, h('h2', {}, 'Redeem points'), redeemForm(walletId, wallet, token, reload), h('h2', {}, 'Adjust'), limit ? h('p', { class: 'hint' }, `Up to ${fmtNumber(limit.limit)} points at a time (the workspace's limit, set by an administrator).`) : null, adjustForm(walletId, tenantId, body, token))
        : h('div', {}, h('h2', {}, 'Adjust'), adjustForm(walletId, tenantId, body, token), h('h2', {}, 'Reconciliation by replay'), reconciliation(report)),
    ),
    merchant && rewards ? rewardsPanel(walletId, rewards, token, reload) : null,
    h('h2', {}, 'Ledger'),
    ledgerTable(ledger, (cursor) => guarded(() => api('GET', `/api/v1/client/wallets/${id}/ledger${qs({ tenantId, limit: 100, cursor })}`))),
    merchant ? null : h('p', {}, h('a', { href: `#/audit?${new URLSearchParams({ stream: `wallet-${walletId}` })}` }, 'Events of this wallet in the audit trail')),
  ]);
  // Shown in full: a merchant's rewards too (a reward just issued is among them).
  return !merchant || Boolean(rewards);
}

/**
 * After a write: the wallet is read again (`X-Min-Position`, so it shows the write), then the write's message is
 * said. When that read fails (a 503 while the read models catch up), its error stays on the status line, followed by
 * the write's message and that it is recorded: the page still shows the wallet as it was before.
 */
async function reloadThenSay(reloaded, token, done) {
  const shown = await reloaded;
  if (!current(token)) return;
  if (shown) say(done);
  else say(`${statusText().trim()} ${done} It is recorded, but the wallet could not be read again: reload the page to see it.`.trim(), 'error');
}

function reconciliation(report) {
  return !report
    ? h('p', { class: 'empty' }, 'Reconciliation unavailable.')
    : h(
        'div',
        {},
        h('p', {}, report.consistent ? badge('consistent') : badge('inconsistent'), ' ', `${fmtNumber(report.eventsReplayed)} events replayed in ${fmtNumber(report.durationMs)} ms.`),
        report.mismatches.length
          ? h('ul', {}, report.mismatches.map((m) => h('li', {}, `Read model: ${m.projected ? `${fmtNumber(m.projected.balance)} points, ${fmtNumber(m.projected.ledgerLines)} lines summing to ${fmtNumber(m.projected.ledgerPoints)}` : 'missing'}; replayed: ${m.replayed ? `${fmtNumber(m.replayed.balance)} points, ${fmtNumber(m.replayed.ledgerLines)} lines summing to ${fmtNumber(m.replayed.ledgerPoints)}` : 'none'}${m.firstDifferingEvent ? `; first difference at ${m.firstDifferingEvent.type} #${m.firstDifferingEvent.revision}` : ''}.`)))
          : null,
      );
}

/** What each kind of ledger line is, as a merchant and a customer read it (the API's `kind` stays on the cell). */
const ENTRY_LABELS = {
  earn: 'Earned',
  // Held for nobody first (paid before joining, while suspended, or under an email not yet the account's), then added.
  claim: 'Earned (held, then added)',
  reversal: 'Refund',
  redemption: 'Redeemed',
  adjustment: 'Adjustment',
  merchant_adjustment: 'Adjustment by the merchant',
  reward_issued: 'Reward issued (points held)',
  reward_redeemed: 'Reward redeemed',
  reward_voided: 'Reward voided (points given back)',
  reward_expired: 'Reward expired (points given back)',
  points_expired: 'Points expired',
};

/** An expiry's reason in words (`earned (policy v2)` is the projection's record of which rule took them). */
function reasonOf(line) {
  if (line.kind === 'points_expired' && line.reason) {
    if (line.reason.startsWith('earned')) return 'Their time ran out: the months after they were earned';
    if (line.reason.startsWith('inactivity')) return 'No points earned or spent for the months the program allows';
  }
  return line.reason ?? line.reference ?? '—';
}

const ledgerRow = (l) =>
  h(
    'tr',
    {},
    cell('Time', h('time', { datetime: l.createdAt }, fmtTime(l.createdAt)), 'time'),
    h('td', { 'data-label': 'Entry', 'data-kind': l.kind }, ENTRY_LABELS[l.kind] ?? l.kind),
    cell('Points', signed.format(l.points), 'num'),
    cell('Balance after', fmtNumber(l.balanceAfter), 'num'),
    cell('Reason or reference', reasonOf(l)),
    cell('Payment', h('span', { class: 'mono' }, l.paymentId ?? '—')),
  );

/**
 * The ledger, newest first; with `older(cursor)` (the next page, or undefined when it failed), an "Older lines" button
 * reads on as long as there are more.
 */
export function ledgerTable(ledger, older) {
  if (!ledger.items.length) return [h('p', { class: 'empty' }, 'No ledger lines.')];
  const headers = ['Time', 'Entry', { label: 'Points', num: true }, { label: 'Balance after', num: true }, 'Reason or reference', 'Payment'];
  const wrap = table('Ledger, newest first', headers, ledger.items.map(ledgerRow));
  const rows = wrap.querySelector('tbody');
  const shown = h('p', { class: 'hint' });
  const button = h('button', { type: 'button', class: 'secondary' }, 'Older lines');
  let cursor = ledger.nextCursor;
  let count = ledger.items.length;
  const tell = () => {
    shown.textContent = cursor ? `Showing the newest ${fmtNumber(count)} lines.` : `All ${fmtNumber(count)} lines.`;
    button.hidden = !cursor || !older;
  };
  button.addEventListener('click', async () => {
    button.disabled = true;
    const page = await older(cursor);
    button.disabled = false;
    if (!page) return;
    rows.append(...page.items.map(ledgerRow));
    count += page.items.length;
    cursor = page.nextCursor;
    tell();
  });
  tell();
  return [wrap, ledger.nextCursor ? shown : null, h('div', { class: 'actions' }, button)];
}

/**
 * A merchant redeems points at the counter. The idempotency key lives as long as what is typed: a retry after a lost
 * answer cannot redeem twice, and a new amount is a new redemption.
 */
function redeemForm(walletId, wallet, token, reload) {
  const points = h('input', { type: 'number', name: 'points', min: 1, max: wallet.available, step: 1, required: true, inputmode: 'numeric', autocomplete: 'off' });
  const reference = h('input', { type: 'text', name: 'reference', maxlength: 200, autocomplete: 'off' });
  return writeForm(
    token,
    { class: 'stack', 'aria-label': 'Redeem points' },
    async (write) => {
      const n = Number(points.value);
      if (!Number.isInteger(n) || n < 1) return say('Enter a whole number of points to redeem, 1 or more.', 'error');
      const result = await write((idempotencyKey) => api('POST', `/api/v1/client/wallets/${encodeURIComponent(walletId)}/redeem`, { body: { points: n, idempotencyKey, reference: reference.value.trim() || null } }));
      if (!result) return;
      await reloadThenSay(reload(result.position), token, `Redeemed ${fmtNumber(n)} points; the balance is now ${fmtNumber(result.balance)}.`);
    },
    field('Points', points, `Up to ${fmtNumber(wallet.available)} (the available points)`),
    field('Reference', reference, 'Optional: a receipt or order number'),
    submitActions('Redeem points'),
  );
}

/**
 * The catalog's active rewards as a wallet's rewards answer lists them (`affordable` by its available points), with a
 * last column of the reader's: the merchant's Issue button, the customer's "ask for it".
 */
export function catalogTable(rewards, caption, none, lastHeader, last) {
  if (rewards.rewards.length === 0) return h('p', { class: 'empty' }, none);
  const name = (r) => (r.description ? `${r.name}: ${r.description}` : r.name);
  return table(caption, ['Reward', { label: 'Points', num: true }, lastHeader], rewards.rewards.map((r) => h('tr', {}, cell('Reward', name(r)), cell('Points', fmtNumber(r.points), 'num'), cell(lastHeader, last(r)))));
}

/** The workspace's rewards this wallet affords (issue one: its points are locked), and the rewards issued to it. */
function rewardsPanel(walletId, rewards, token, reload) {
  const id = encodeURIComponent(walletId);
  async function act(button, path, body, done) {
    const result = await guardedOn(button, () => api('POST', `/api/v1/client/wallets/${id}${path}`, { body }));
    if (!result || !current(token)) return false;
    // The view first, then the message: what it says is on screen when it is read.
    await reloadThenSay(reload(result.position), token, done(result));
    return true;
  }
  // One key per reward until an issue of it is answered: a click again after a lost answer replays that issue
  // rather than issuing a second reward; once answered, the next click is a new issue.
  const issueKeys = new Map();
  const issue = (r) => async (e) => {
    const key = issueKeys.get(r.rewardId) ?? crypto.randomUUID();
    issueKeys.set(r.rewardId, key);
    const issued = await act(e.currentTarget, '/rewards', { rewardId: r.rewardId, idempotencyKey: key }, (x) => `Issued “${r.name}”: ${fmtNumber(r.points)} points locked until it is redeemed or voided (expires ${fmtTime(x.issuedReward.expiresAt)}).`);
    if (issued) issueKeys.delete(r.rewardId);
  };
  const redeem = (i) => (e) => act(e.currentTarget, `/rewards/${encodeURIComponent(i.issuedRewardId)}/redeem`, { idempotencyKey: `redeem-${i.issuedRewardId}` }, (x) => `Redeemed “${i.name}”; the balance is now ${fmtNumber(x.balance)}.`);
  const voidIt = (i) => (e) => {
    if (!window.confirm(`Void “${i.name}”? Its ${fmtNumber(i.points)} points become available again.`)) return;
    return act(e.currentTarget, `/rewards/${encodeURIComponent(i.issuedRewardId)}/void`, {}, () => `Voided “${i.name}”: its points are available again.`);
  };
  return [
    h('h2', {}, 'Rewards'),
    catalogTable(rewards, 'Rewards of the catalog', 'The reward catalog has no active reward.', 'Action', (r) =>
      r.affordable ? h('button', { type: 'button', 'aria-label': `Issue ${r.name}`, onclick: issue(r) }, 'Issue') : h('span', { class: 'hint' }, `${fmtNumber(r.points - rewards.available)} more points needed`),
    ),
    rewards.issued.length === 0
      ? null
      : table(
          'Issued rewards, newest first',
          ['Reward', { label: 'Points', num: true }, 'Status', 'Issued', 'Expires', 'Action'],
          rewards.issued.map((i) =>
            h(
              'tr',
              {},
              cell('Reward', i.name),
              cell('Points', fmtNumber(i.points), 'num'),
              cell('Status', badge(i.status)),
              cell('Issued', h('time', { datetime: i.issuedAt }, fmtTime(i.issuedAt)), 'time'),
              cell('Expires', h('time', { datetime: i.expiresAt }, fmtTime(i.expiresAt)), 'time'),
              cell(
                'Action',
                i.status === 'issued'
                  ? h('div', { class: 'actions' }, h('button', { type: 'button', 'aria-label': `Redeem ${i.name}`, onclick: redeem(i) }, 'Redeem'), h('button', { type: 'button', class: 'secondary', 'aria-label': `Void ${i.name}`, onclick: voidIt(i) }, 'Void'))
                  : '—',
              ),
            ),
          ),
        ),
  ];
}

/** Adjust with a reason: an administrator without limit, a merchant within the workspace's limit (the API refuses beyond it). */
function adjustForm(walletId, tenantId, body, token) {
  const points = h('input', { type: 'number', name: 'points', step: 1, inputmode: 'numeric', autocomplete: 'off' });
  const reason = h('textarea', { name: 'reason', rows: 2, maxlength: 500 });
  const pointsError = h('p', { class: 'field-error', id: 'adjust-points-error', hidden: true });
  const reasonError = h('p', { class: 'field-error', id: 'adjust-reason-error', hidden: true });
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
  // As for a redemption: a retry after a lost answer cannot adjust twice.
  return writeForm(
    token,
    { class: 'stack', novalidate: true, 'aria-label': 'Adjust balance' },
    async (write) => {
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
      const result = await write((idempotencyKey) => api('POST', `/api/v1/${isMerchant() ? 'client' : 'admin'}/wallets/${encodeURIComponent(walletId)}/adjust`, { body: { points: n, reason: why, idempotencyKey } }));
      if (!result) return;
      await reloadThenSay(loadWallet(walletId, tenantId, body, token, result.position), token, `Adjusted by ${signed.format(n)} points; the balance is now ${fmtNumber(result.balance)}.`);
    },
    field('Points (±)', points, 'Positive adds points, negative removes them'),
    pointsError,
    field('Reason', reason, 'Required; recorded with your name in the event, and shown to the customer in their history (your name is not)'),
    reasonError,
    submitActions('Adjust balance'),
  );
}

