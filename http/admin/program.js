// A workspace's loyalty program, for both roles: an administrator names the workspace, a merchant sees their own.
// The reward catalog, promotions (scheduled here, ended here), the expiry policy, the merchant adjustment limit (set by
// an administrator) and the program summary's figures with a chart.
import { api, append, badge, cell, current, download, field, filtersForm, fmtMoney, fmtNumber, fmtTime, writeForm, go, guarded, guardedOn, h, isMerchant, qs, say, session, show, submitActions, svg, table } from './ui.js';

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
function promotionRow(p, tenantId, token, currency) {
  const row = h('tr');
  // Upcoming or running: it can be ended; one past its last day or ended already cannot.
  const fill = (shown) => row.replaceChildren(...promotionCells(shown, shown.phase === 'upcoming' || shown.phase === 'running' ? h('button', { type: 'button', 'aria-label': `End promotion ${shown.promotion.name}`, onclick: (e) => end(shown, e.currentTarget) }, 'End') : '—', currency));
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

function promotionCells(p, action, currency) {
  const promo = p.promotion;
  const gives = promo.incentive.type === 'multiplier' ? `${promo.incentive.multiplier}× points` : `+${fmtNumber(promo.incentive.points)} points`;
  const when = [
    `${promo.startsOn} to ${promo.endsOn ?? 'no end'}`,
    promo.daysOfWeek ? promo.daysOfWeek.join(', ') : 'every day',
    promo.hours ? promo.hours.map((r) => `${r.from}–${r.to}`).join(', ') : 'all day',
  ].join('; ');
  const conditions = [
    promo.minimumSpend !== undefined ? `spend at least ${fmtMoney(promo.minimumSpend, currency)}` : '',
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
    cell('Status', badge(p.phase)),
    cell('Scheduled', h('time', { datetime: p.scheduledAt }, fmtTime(p.scheduledAt))),
    cell('Ended', p.endedAt ? h('time', { datetime: p.endedAt }, fmtTime(p.endedAt)) : '—'),
    cell('Action', action),
  ];
}

/** `currency`: the workspace's, for the promotions' amounts (null: shown in minor units). */
function promotionsTable(promotions, tenantId, token, currency) {
  return promotions.length === 0
    ? h('p', { class: 'empty' }, 'No promotions scheduled yet.')
    : table('Promotions, newest first', ['Name', 'Gives', 'When', 'Where', 'Conditions', 'Status', 'Scheduled', 'Ended', 'Action'], promotions.map((p) => promotionRow(p, tenantId, token, currency)));
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
/** The day (`YYYY-MM-DD`) it is in `timeZone` at `at` (default now). */
const localToday = (timeZone, at = new Date()) => new Intl.DateTimeFormat('en-CA', { timeZone, year: 'numeric', month: '2-digit', day: '2-digit' }).format(at);
/** `day` (`YYYY-MM-DD`) moved by `days` whole days. */
const addDays = (day, days) => new Date(Date.parse(`${day}T00:00:00Z`) + days * 86_400_000).toISOString().slice(0, 10);
/** How far `timeZone`'s clock is ahead of UTC at `at` (ms), read back through Intl. */
function zoneOffset(timeZone, at) {
  const parts = Object.fromEntries(new Intl.DateTimeFormat('en-US', { timeZone, hourCycle: 'h23', year: 'numeric', month: '2-digit', day: '2-digit', hour: '2-digit', minute: '2-digit', second: '2-digit' }).formatToParts(at).map((p) => [p.type, p.value]));
  return Date.UTC(Number(parts.year), Number(parts.month) - 1, Number(parts.day), Number(parts.hour), Number(parts.minute), Number(parts.second)) - Math.floor(at.getTime() / 1000) * 1000;
}
/** The instant (ISO 8601, UTC) at which `day` begins in `timeZone`: its local midnight, daylight saving included. */
function zoneMidnight(day, timeZone) {
  const wall = Date.parse(`${day}T00:00:00Z`);
  // The offset at the first guess, then at the instant it gives (they differ only across a change of the clocks).
  const guess = wall - zoneOffset(timeZone, new Date(wall));
  return new Date(wall - zoneOffset(timeZone, new Date(guess))).toISOString();
}

/**
 * A merchant schedules a promotion, or support does for a merchant who asks (the event names who). It sends what
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

  const form = writeForm(
    token,
    { 'aria-label': 'Schedule a promotion' },
    async (write) => {
      const { body, problem, input } = request();
      if (problem) {
        say(problem, 'error');
        return input.focus();
      }
      const gives = body.incentive.type === 'multiplier' ? `${body.incentive.multiplier}× points` : `+${fmtNumber(body.incentive.points)} points`;
      const when = `from ${body.startsOn} to ${body.endsOn ?? 'no end'}`;
      if (!window.confirm(`Schedule “${body.name}” (${gives}, ${when}) for this workspace? Payments made from now on that meet it get it. It cannot be edited afterwards: end it and schedule another.`)) return;
      const result = await write((idempotencyKey) => api('POST', `/api/v1/client/promotions${qs({ tenantId })}`, { body: { ...body, idempotencyKey } }));
      if (!result) return;
      scheduled(result);
      form.reset();
      say(`Promotion “${result.promotion.name}” scheduled (${result.timeZone}).${result.warnings.length ? ` Warnings: ${result.warnings.join(' ')}` : ''}`);
    },
    field('Name', name, 'Recorded on each purchase it applies to'),
    field('Gives', kind),
    field('N', amount, 'Multiplier 1–10, or bonus points 1–1,000,000'),
    field('Starts on', startsOn, `In the workspace’s time zone${locations?.timeZone ? ` (${locations.timeZone})` : ''}; limited to locations, in theirs (one zone per promotion)`),
    field('Ends on', endsOn, 'Included; empty: no end'),
    boxes('Days', days, WEEKDAYS, 'None ticked: every day'),
    field('Hours', hours, 'HH:MM-HH:MM, comma-separated; empty: all day'),
    placesText
      ? field('Location ids', placesText, 'Square location ids (the connection’s locations could not be read); empty: every location')
      : boxes('Locations', places, (locations?.locations ?? []).map((l) => `${l.name} (${l.id})`), 'None ticked: every location'),
    field('Minimum spend (minor units)', minimumSpend, 'Tip excluded; empty: none'),
    field('Per customer a day', limit, 'Purchases of one customer per local day, however they pay (Square customer or online by email); empty: no limit'),
    field('Item variation ids', items, 'Qualifying items (Square catalog); empty: any purchase'),
    field('Category ids', categories, 'Qualifying categories (Square catalog); empty: any purchase'),
    submitActions('Schedule promotion'),
  );
  return h('details', { class: 'schedule' }, h('summary', {}, 'Schedule a promotion'), form);
}

/** An administrator sets how many points a merchant of the workspace may add or remove in one adjustment. */
function adminLimitForm(tenantId, limit, token) {
  const limitInput = h('input', { type: 'number', name: 'limit', min: 0, step: 1, value: limit.limit, inputmode: 'numeric' });
  return filtersForm(
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
}

/** The reward catalog, retired rewards included: an active one can be retired; a form defines a new one. */
function catalogSection(catalog, tenantId, token, reload) {
  const retire = async (r, button) => {
    if (!window.confirm(`Retire “${r.name}”? It can no longer be issued; rewards already issued keep their expiry.`)) return;
    const done = await guardedOn(button, () => api('POST', `/api/v1/client/rewards/${encodeURIComponent(r.rewardId)}/retire${qs({ tenantId })}`, { body: {} }));
    if (!done || !current(token)) return;
    reload();
    say(`“${r.name}” is retired.`);
  };
  const name = h('input', { type: 'text', name: 'name', required: true, maxlength: 100, autocomplete: 'off' });
  const points = h('input', { type: 'number', name: 'points', required: true, min: 1, step: 1, inputmode: 'numeric' });
  const description = h('input', { type: 'text', name: 'description', maxlength: 500, autocomplete: 'off' });
  const days = h('input', { type: 'number', name: 'issuedRewardExpiresAfterDays', min: 1, step: 1, inputmode: 'numeric', placeholder: '30' });
  const form = writeForm(
    token,
    { 'aria-label': 'Define a reward' },
    async (write) => {
      const body = { name: name.value.trim(), points: Number(points.value), ...(description.value.trim() ? { description: description.value.trim() } : {}), ...(days.value ? { issuedRewardExpiresAfterDays: Number(days.value) } : {}) };
      const defined = await write((idempotencyKey) => api('POST', `/api/v1/client/rewards${qs({ tenantId })}`, { body: { ...body, idempotencyKey } }));
      if (!defined) return;
      reload();
      say(`“${defined.name}” (${fmtNumber(defined.points)} points) is in the catalog.`);
    },
    field('Reward', name, 'As the customer sees it'),
    field('Points', points, 'What it costs'),
    field('Description', description, 'Optional'),
    field('Issued rewards expire after (days)', days, 'Empty: 30'),
    submitActions('Define reward'),
  );
  return [
    catalog.rewards.length === 0
      ? h('p', { class: 'empty' }, 'No rewards defined yet.')
      : table(
          `Rewards (catalog version ${catalog.version})`,
          ['Name', { label: 'Points', num: true }, 'Status', 'Issued rewards expire after', 'Defined', 'Action'],
          catalog.rewards.map((r) =>
            h(
              'tr',
              {},
              cell('Name', r.description ? `${r.name}: ${r.description}` : r.name),
              cell('Points', fmtNumber(r.points), 'num'),
              cell('Status', badge(r.status)),
              cell('Issued rewards expire after', `${r.issuedRewardExpiresAfterDays} days`),
              cell('Defined', h('time', { datetime: r.definedAt }, fmtTime(r.definedAt)), 'time'),
              cell('Action', r.status === 'active' ? h('button', { type: 'button', class: 'secondary', 'aria-label': `Retire ${r.name}`, onclick: (e) => retire(r, e.currentTarget) }, 'Retire') : '—'),
            ),
          ),
        ),
    h('details', { class: 'schedule' }, h('summary', {}, 'Define a reward'), form),
  ];
}

/** The expiry policy, set as a new version: without applying it to existing points, they count from now. */
function policyForm(policy, tenantId, token, reload) {
  const earned = h('input', { type: 'number', name: 'earnedMonths', min: 1, max: 60, step: 1, inputmode: 'numeric', value: policy.earnedMonths ?? '' });
  const inactivity = h('input', { type: 'number', name: 'inactivityMonths', min: 1, max: 60, step: 1, inputmode: 'numeric', value: policy.inactivityMonths ?? '' });
  // Checked as the policy in force has it: editing the months of a policy applied to existing points keeps it so.
  const existing = h('input', { type: 'checkbox', name: 'applyToExistingPoints', checked: policy.appliesToExistingPoints === true });
  const form = filtersForm(
    { 'aria-label': 'Points expiry policy' },
    async () => {
      const body = { earnedMonths: earned.value ? Number(earned.value) : null, inactivityMonths: inactivity.value ? Number(inactivity.value) : null, applyToExistingPoints: existing.checked };
      if (body.applyToExistingPoints && !window.confirm('Apply the policy to points earned before it too? Points older than the policy allows expire at the next daily run.')) return;
      const set = await guarded(() => api('PUT', `/api/v1/client/expiry-policy${qs({ tenantId })}`, { body }));
      if (!set || !current(token)) return;
      reload();
      say([set.expires ? `Expiry policy version ${set.version} is in force. Months end at midnight ${set.timeZone} time.` : 'Points never expire now.', ...set.warnings].join(' '));
    },
    field('Expire months after earned', earned, '1–60; empty: not by age'),
    field('Expire after months without activity', inactivity, '1–60; empty: not by inactivity'),
    h('div', { class: 'field' }, h('label', {}, existing, ' Apply to points earned before it'), h('span', { class: 'hint' }, 'Unticked: they count from now')),
    submitActions('Set policy'),
  );
  return h('details', { class: 'schedule' }, h('summary', {}, 'Change the policy'), form);
}

/** The workspace's ledger lines of the range as a CSV file (`GET /api/v1/client/ledger.csv`), for accounting. */
// The days are the workspace's (`timeZone`): sent as the instants of their local midnights, `to`'s next day excluded.
function exportButton(tenantId, from, to, timeZone, token) {
  const button = h('button', { type: 'button', class: 'secondary' }, 'Export the ledger (CSV)');
  button.addEventListener('click', async () => {
    const range = { from: zoneMidnight(from, timeZone), to: zoneMidnight(addDays(to, 1), timeZone) };
    const saved = await guardedOn(button, async () => (await download(`/api/v1/client/ledger.csv${qs({ tenantId: isMerchant() ? '' : tenantId, ...range })}`, `ledger-${from}-to-${to}.csv`), true));
    if (saved && current(token)) say(`The ledger lines from ${from} to ${to} (both included, days in ${timeZone}) are saved as a CSV file.`);
  });
  return h('p', {}, button);
}

export function programView(_rest, params, token) {
  const merchant = isMerchant();
  const tenant = h('input', { type: 'text', name: 'tenantId', value: params.tenantId ?? '', required: true, autocomplete: 'off', class: 'mono' });
  const interval = h('select', { name: 'interval' }, ['day', 'week', 'month'].map((v) => h('option', { value: v, selected: (params.interval ?? 'week') === v ? true : undefined }, v)));
  const from = h('input', { type: 'date', name: 'from', value: params.from ?? '' });
  const to = h('input', { type: 'date', name: 'to', value: params.to ?? '' });
  const form = filtersForm(
    { 'aria-label': 'Open a workspace’s loyalty program' },
    () => {
      go(`#/program${qs({ tenantId: merchant ? '' : tenant.value.trim(), interval: interval.value, from: from.value, to: to.value })}`);
    },
    merchant ? null : field('Tenant id', tenant, 'The workspace (from the merchants view)'),
    field('Interval', interval),
    field('From', from, 'Default: 12 weeks back'),
    field('To', to, 'Default: today (the workspace’s day, or UTC’s when it is later)'),
    submitActions('Show program'),
  );
  const tenantId = merchant ? session.tenantId : params.tenantId;
  const body = h('div', { 'aria-busy': tenantId ? 'true' : 'false' });
  show(h('section', {}, h('h1', {}, 'Loyalty program'), form, body), 'Loyalty program');
  if (!tenantId) {
    body.append(h('p', { class: 'empty' }, 'Name a workspace to see its reward catalog, promotions, expiry policy, adjustment limit and figures.'));
    return;
  }
  const chosen = params.interval ?? 'week';
  // After a change of the catalog or the policy: the view again, as it is now (both are read from their streams).
  const reload = () => programView(_rest, params, token);
  (async () => {
    const [policy, locations, currency] = await Promise.all([
      guarded(() => api('GET', `/api/v1/client/expiry-policy${qs({ tenantId })}`)),
      // For the promotion form's location choices: a workspace without a Square connection has none to offer.
      api('GET', `/api/v1/client/locations${qs({ tenantId })}`).catch(() => null),
      // The workspace's currency (its Square connection's), for the promotions' amounts.
      api('GET', `/api/v1/client/pos/square${qs({ tenantId })}`, { keepSession: true }).then((c) => c?.currency ?? null, () => null),
    ]);
    // "Today" is the workspace's (its Square main location's zone, else its expiry policy's), not UTC's.
    const timeZone = locations?.timeZone ?? policy?.timeZone ?? 'UTC';
    const today = localToday(timeZone);
    const start = params.from || addDays(today, -83);
    // The figures count UTC days: the range ends on the later of the workspace's day and UTC's, so activity of a
    // western evening (already tomorrow in UTC) is not left out.
    const utcToday = new Date().toISOString().slice(0, 10);
    const end = params.to || (utcToday > today ? utcToday : today);
    const [catalog, promotions, limit, summary] = await Promise.all([
      guarded(() => api('GET', `/api/v1/client/rewards${qs({ tenantId, status: 'all' })}`)),
      guarded(() => api('GET', `/api/v1/client/promotions${qs({ tenantId })}`)),
      guarded(() => api('GET', `/api/v1/client/adjustment-limit${qs({ tenantId })}`)),
      guarded(() => api('GET', `/api/v1/client/program/summary${qs({ tenantId, interval: chosen, from: start, to: end })}`)),
    ]);
    if (!current(token)) return;
    body.setAttribute('aria-busy', 'false');
    if (!catalog || !promotions || !policy || !limit || !summary) return;
    const limitForm = merchant
      ? h('p', {}, `You may add or remove up to ${fmtNumber(limit.limit)} points in one adjustment; an administrator sets this limit.`)
      : adminLimitForm(tenantId, limit, token);
    let listed = promotions;
    const promotionList = h('div', {}, promotionsTable(listed, tenantId, token, currency));
    const t = summary.totals;
    body.replaceChildren();
    append(body, [
      h('h2', {}, 'Reward catalog'),
      catalogSection(catalog, tenantId, token, reload),
      h('h2', {}, 'Promotions'),
      promotionList,
      promotionForm(tenantId, token, locations, (scheduled) => {
        listed = [scheduled, ...listed];
        promotionList.replaceChildren(promotionsTable(listed, tenantId, token, currency));
      }),
      h('h2', {}, 'Points expiry policy'),
      h(
        'p',
        { class: 'policy' },
        policy.expires
          ? [
              policy.earnedMonths ? `Points expire ${policy.earnedMonths} months after they were earned (valid through the end of that month, ${policy.timeZone} time). ` : '',
              policy.inactivityMonths ? `All points expire after ${policy.inactivityMonths} months without activity. ` : '',
              policy.appliesToExistingPoints ? 'Applied to points earned before the policy (confirmed by the merchant). ' : `Points earned before ${fmtTime(policy.effectiveFrom)} count from then. `,
              `Version ${policy.version}.`,
            ].join('')
          : 'Points never expire.',
      ),
      policyForm(policy, tenantId, token, reload),
      h('h2', {}, 'Merchant adjustments'),
      limitForm,
      h('h2', {}, `Program figures, ${summary.from} to ${summary.to} by ${summary.interval} (UTC days)`),
      h('p', { class: 'hint' }, `The figures count UTC days (from 00:00 UTC); the CSV export counts the same days in ${timeZone} time.`),
      exportButton(tenantId, summary.from, summary.to, timeZone, token),
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
        // Earned − redeemed − expired + adjusted is each interval's change of the outstanding points.
        ['From', 'To', { label: 'Earned', num: true }, { label: 'Redeemed', num: true }, { label: 'Expired', num: true }, { label: 'Adjusted', num: true }, { label: 'Active customers', num: true }, { label: 'Outstanding', num: true }],
        summary.intervals.map((i) =>
          h(
            'tr',
            {},
            cell('From', i.from),
            cell('To', i.to),
            cell('Earned', fmtNumber(i.earned), 'num'),
            cell('Redeemed', fmtNumber(i.redeemed), 'num'),
            cell('Expired', fmtNumber(i.expired), 'num'),
            cell('Adjusted', fmtNumber(i.adjusted), 'num'),
            cell('Active customers', fmtNumber(i.activeCustomers), 'num'),
            cell('Outstanding', fmtNumber(i.outstanding), 'num'),
          ),
        ),
      ),
      summary.topCustomers.length
        ? table('Top customers by points earned', ['Customer', { label: 'Earned', num: true }], summary.topCustomers.map((c) => h('tr', {}, cell('Customer', c.walletId ? h('a', { href: `#/wallet/${encodeURIComponent(c.walletId)}${qs({ tenantId: merchant ? '' : tenantId })}`, class: 'mono', 'aria-label': `Wallet of customer ${c.consumerId}` }, c.consumerId) : h('span', { class: 'mono' }, c.consumerId)), cell('Earned', fmtNumber(c.earned), 'num'))))
        : h('p', { class: 'empty' }, 'No customer earned points in this range.'),
    ]);
  })();
}
