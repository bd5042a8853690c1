// A merchant's set-up: the Square connection (connect, reconnect, disconnect) and the reward rules (create, activate,
// deactivate). Everything goes through the workspace's own routes (`/api/v1/client/…`); the API checks it all and its
// refusals, which name the field, are shown as they are.
import { api, append, badge, cell, CONNECTION_STATUS, loaded, current, field, filtersForm, fmtMoney, fmtNumber, fmtTime, writeForm, guarded, guardedOn, h, say, show, submitActions, table } from './ui.js';

const CONNECTABLE = ['not_connected', 'revoked', 'needs_reconnect', 'token_undecryptable'];

/** What a connection status means to the merchant, and what to do. */
const STATUS_TEXT = {
  not_connected: 'Square is not connected: payments at your business do not earn points yet.',
  active: 'Square is connected: payments at your business earn points as they happen.',
  needs_reconnect: 'Square no longer accepts Tally’s access (it expired or was refused): connect again, nothing earned is lost.',
  token_undecryptable: 'Tally cannot read the stored Square access (its encryption key changed): connect again.',
  revoked: 'Square was disconnected: payments no longer earn points until you connect again.',
};

export function squareView(_rest, _params, token) {
  const body = h('div', { 'aria-busy': 'true' });
  show(h('section', {}, h('h1', {}, 'Square connection'), body), 'Square connection');
  (async () => {
    const connection = await loaded(body, token, () => api('GET', '/api/v1/client/pos/square'));
    if (!connection) return;
    const connect = async (button) => {
      const started = await guardedOn(button, () => api('GET', '/api/v1/client/pos/square/connect'));
      // The start URL binds the flow to this browser and sends it on to Square's consent page; Square sends it back
      // to Tally's /pos page, which links here.
      if (started && current(token)) location.assign(started.url);
    };
    const disconnect = async (button) => {
      if (!window.confirm('Disconnect Square? Tally’s access is revoked at Square; payments stop earning points until you connect again. Points already earned stay.')) return;
      const done = await guardedOn(button, () => api('DELETE', '/api/v1/client/pos/square'));
      if (!done || !current(token)) return;
      squareView([], {}, token);
      say('Square is disconnected.');
    };
    const c = connection;
    body.replaceChildren();
    append(body, [
      h('p', {}, badge(c.status, CONNECTION_STATUS), ' ', STATUS_TEXT[c.status] ?? c.status),
      h(
        'dl',
        { class: 'cards' },
        h('div', {}, h('dt', {}, 'Square business'), h('dd', {}, c.businessName ?? '—', c.merchantId ? h('span', { class: 'hint mono' }, ` ${c.merchantId}`) : null)),
        h('div', {}, h('dt', {}, 'Currency'), h('dd', {}, c.currency ?? '—')),
        h('div', {}, h('dt', {}, 'Connected'), h('dd', { class: 'hint' }, fmtTime(c.authorizedAt))),
        h('div', {}, h('dt', {}, 'Last poll'), h('dd', { class: 'hint' }, fmtTime(c.lastPolledAt))),
        h('div', {}, h('dt', {}, 'Access renewed'), h('dd', { class: 'hint' }, fmtTime(c.lastRefreshedAt))),
      ),
      c.lastError ? h('p', { class: 'status error' }, `Last error: ${c.lastError.code}${c.lastError.message ? `: ${c.lastError.message}` : ''} (${fmtTime(c.lastError.at)})`) : null,
      c.scopes.length ? h('p', { class: 'hint' }, `Permissions granted: ${c.scopes.join(', ')}.`) : null,
      h(
        'div',
        { class: 'actions' },
        CONNECTABLE.includes(c.status)
          ? h('button', { type: 'button', onclick: (e) => connect(e.currentTarget) }, 'Connect Square')
          : [h('button', { type: 'button', class: 'secondary', onclick: (e) => connect(e.currentTarget) }, 'Reconnect'), h('button', { type: 'button', class: 'danger', onclick: (e) => disconnect(e.currentTarget) }, 'Disconnect')],
      ),
    ]);
  })();
}

/** A rule in words, as the merchant wrote it; its amounts in `currency` (the workspace's; null: in minor units). */
function ruleText(rule, currency) {
  const minimum = rule.minimumSpend ? `, from ${fmtMoney(rule.minimumSpend, currency)}` : '';
  const lists = [
    rule.itemVariationIds ? `items ${rule.itemVariationIds.join(', ')}` : '',
    rule.categoryIds ? `categories ${rule.categoryIds.join(', ')}` : '',
    rule.excludedItemVariationIds?.length ? `excluding items ${rule.excludedItemVariationIds.join(', ')}` : '',
    rule.excludedCategoryIds?.length ? `excluding categories ${rule.excludedCategoryIds.join(', ')}` : '',
    rule.locationIds ? `at ${rule.locationIds.join(', ')}` : '',
  ].filter(Boolean);
  const base = {
    spend: () => `${fmtNumber(rule.points)} point(s) per ${fmtMoney(rule.per, currency)} of the ${rule.basis === 'total' ? 'total (tip included)' : 'amount (tip excluded)'}${rule.taxMode === 'before_tax' ? ', before tax' : ''}${minimum}`,
    visit: () => `${fmtNumber(rule.points)} point(s) per visit${minimum}`,
    item: () => `${fmtNumber(rule.points)} point(s) per unit`,
    category: () => `${fmtNumber(rule.points)} point(s) per unit`,
  }[rule.kind];
  return [base ? base() : rule.kind, ...lists].join('; ');
}

const ids = (input) => input.value.split(/[\s,]+/).filter(Boolean);

/** The rule the form describes, as `POST /api/v1/client/reward-rules` takes it; fields a kind has not are left out. */
function ruleBody(f) {
  const kind = f.kind.value;
  const whole = (input) => (input.value === '' ? undefined : Number(input.value));
  const body = { kind, points: whole(f.points), minimumSpend: kind === 'spend' || kind === 'visit' ? whole(f.minimumSpend) : undefined };
  if (kind === 'spend') {
    Object.assign(body, { per: whole(f.per), basis: f.basis.value, taxMode: f.taxMode.value });
    if (ids(f.excludedCategoryIds).length) body.excludedCategoryIds = ids(f.excludedCategoryIds);
    if (ids(f.excludedItemVariationIds).length) body.excludedItemVariationIds = ids(f.excludedItemVariationIds);
  }
  if (kind === 'item') body.itemVariationIds = ids(f.itemVariationIds);
  if (kind === 'category') body.categoryIds = ids(f.categoryIds);
  if (ids(f.locationIds).length) body.locationIds = ids(f.locationIds);
  return body;
}

/**
 * What `per: 100` means in the workspace's currency, by its exponent (Intl's fraction digits): "100 = $1.00 (USD)",
 * "100 = ¥100 (JPY)". Currency unknown (not connected): both examples.
 */
function perHint(currency) {
  if (!currency) return 'Minor units of your Square currency: 100 = $1.00 in USD, ¥100 in JPY';
  return `100 = ${fmtMoney(100, currency)} (${currency})`;
}

/** The workspace's currency, from its Square connection; null when not connected or not readable. */
const workspaceCurrency = () => api('GET', '/api/v1/client/pos/square', { keepSession: true }).then((c) => c?.currency ?? null, () => null);

function ruleForm(token, created) {
  const f = {
    kind: h('select', { name: 'kind' }, [['spend', 'Spend: points per amount'], ['visit', 'Visit: points per payment'], ['item', 'Item: points per unit of listed items'], ['category', 'Category: points per unit in listed categories']].map(([v, label]) => h('option', { value: v }, label))),
    points: h('input', { type: 'number', name: 'points', required: true, min: 1, step: 1, value: '1', inputmode: 'numeric' }),
    per: h('input', { type: 'number', name: 'per', min: 1, step: 1, value: '100', inputmode: 'numeric' }),
    basis: h('select', { name: 'basis' }, h('option', { value: 'amount' }, 'Amount (tip excluded)'), h('option', { value: 'total' }, 'Total (tip included)')),
    taxMode: h('select', { name: 'taxMode' }, h('option', { value: 'after_tax' }, 'After tax (as charged)'), h('option', { value: 'before_tax' }, 'Before tax')),
    minimumSpend: h('input', { type: 'number', name: 'minimumSpend', min: 0, step: 1, inputmode: 'numeric' }),
    itemVariationIds: h('input', { type: 'text', name: 'itemVariationIds', autocomplete: 'off', class: 'mono' }),
    categoryIds: h('input', { type: 'text', name: 'categoryIds', autocomplete: 'off', class: 'mono' }),
    excludedItemVariationIds: h('input', { type: 'text', name: 'excludedItemVariationIds', autocomplete: 'off', class: 'mono' }),
    excludedCategoryIds: h('input', { type: 'text', name: 'excludedCategoryIds', autocomplete: 'off', class: 'mono' }),
    locationIds: h('input', { type: 'text', name: 'locationIds', autocomplete: 'off', class: 'mono' }),
  };
  // Only the fields of the chosen kind are shown.
  const fields = {
    per: field('Per (minor units)', f.per, perHint(null)),
    basis: field('Counted on', f.basis),
    taxMode: field('Tax', f.taxMode),
    minimumSpend: field('Minimum spend (minor units)', f.minimumSpend, 'Empty: none'),
    itemVariationIds: field('Item variation ids', f.itemVariationIds, 'Square catalog ids, comma-separated'),
    categoryIds: field('Category ids', f.categoryIds, 'Square catalog ids, comma-separated'),
    excludedItemVariationIds: field('Excluded item variation ids', f.excludedItemVariationIds, 'Optional'),
    excludedCategoryIds: field('Excluded category ids', f.excludedCategoryIds, 'Optional (gift card sales need none: a rule that reads the order leaves them out)'),
  };
  // The connection's currency says what 100 minor units are (a zero-decimal currency's are whole yen).
  workspaceCurrency().then((currency) => {
    if (currency && current(token)) fields.per.querySelector('.hint').textContent = perHint(currency);
  });
  const shown = { spend: ['per', 'basis', 'taxMode', 'minimumSpend', 'excludedItemVariationIds', 'excludedCategoryIds'], visit: ['minimumSpend'], item: ['itemVariationIds'], category: ['categoryIds'] };
  const fit = () => {
    for (const [name, el] of Object.entries(fields)) el.hidden = !shown[f.kind.value].includes(name);
  };
  f.kind.addEventListener('change', fit);
  fit();
  const form = writeForm(
    token,
    { 'aria-label': 'Create a rule' },
    async (write) => {
      const result = await write((idempotencyKey) => api('POST', '/api/v1/client/reward-rules', { body: { ...ruleBody(f), idempotencyKey } }));
      if (!result) return;
      await created(result.position);
      form.reset();
      fit();
      say(`Rule version ${result.version} created, not active yet: activate it to earn by it.${result.warnings.length ? ` Warnings: ${result.warnings.join(' ')}` : ''}`);
    },
    field('Kind', f.kind),
    field('Points', f.points, '1–1,000,000'),
    Object.values(fields),
    field('Location ids', f.locationIds, 'Optional: only payments at these Square locations'),
    submitActions('Create rule'),
  );
  return form;
}

/** A preview line's rule, as the merchant knows it: its version (the id only when the preview does not list it). */
function ruleName(rules, ruleId) {
  if (!ruleId) return '—';
  const version = rules.find((r) => r.ruleId === ruleId)?.version;
  return version == null ? h('span', { class: 'mono' }, ruleId) : `Version ${version}`;
}

/**
 * "Why did this payment earn that?": the preview of a Square payment under the active rules, line by line, with the
 * promotion it would get and what the preview could not know. It records nothing. (Ingestion used the rules in force
 * when the customer paid: the two differ only if the rules changed since.)
 */
function explainForm(token) {
  const paymentId = h('input', { type: 'text', name: 'paymentId', required: true, autocomplete: 'off', class: 'mono' });
  const answer = h('div', { 'aria-live': 'polite' });
  const form = filtersForm(
    { 'aria-label': 'Explain a payment' },
    async () => {
      const [preview, currency] = await Promise.all([guarded(() => api('POST', '/api/v1/client/reward-rules/preview', { body: { paymentId: paymentId.value.trim() } })), workspaceCurrency()]);
      if (!preview || !current(token)) return;
      const p = preview.payment;
      answer.replaceChildren();
      append(answer, [
        h('p', {}, `${fmtNumber(preview.points)} point(s): ${fmtNumber(preview.rulePoints)} by the rules${preview.promotion ? `, ${fmtNumber(preview.promotion.points)} by the promotion “${preview.promotion.name}” (${preview.promotion.localDate})` : ''}. Paid ${fmtTime(p.createdAt)}${p.locationId ? ` at ${p.locationId}` : ''}: ${fmtMoney(p.amountMinor, currency)} without the tip${p.orderId ? `, order ${p.orderId}${p.orderRead ? '' : ' (not read)'}` : ''}.`),
        table('Why, line by line', ['Rule', 'Explanation', { label: 'Points', num: true }], preview.lines.map((l) => h('tr', {}, cell('Rule', ruleName(preview.rules, l.ruleId)), cell('Explanation', l.text), cell('Points', fmtNumber(l.points), 'num')))),
        preview.warnings.length ? h('ul', { class: 'warnings' }, preview.warnings.map((w) => h('li', {}, w))) : null,
      ]);
    },
    field('Square payment id', paymentId, 'What it earns under the active rules, and why'),
    submitActions('Explain'),
  );
  return [form, answer];
}

const versions = (rules) => rules.map((o) => `version ${o.version}`).join(', ');

/**
 * What to ask before a rule action that leaves payments earning differently than the merchant may think: activating a
 * version alone switches the other active ones off, deactivating the last active one leaves payments earning nothing.
 * Null: nothing to ask (adding alongside, activating when none other is active, deactivating one of several).
 */
function confirmation(rules, rule, path, body) {
  const others = rules.filter((o) => o.isActive && !o.retiredAt && o.version !== rule.version);
  if (path === 'activate' && !body.alongside && others.length > 0) {
    return `Activate version ${rule.version} alone? It switches off ${versions(others)}: payments from now on earn by version ${rule.version} only. (“Add alongside” keeps them.)`;
  }
  if (path === 'deactivate' && others.length === 0) {
    return `Deactivate version ${rule.version}, the only active rule? Payments then earn nothing until a rule is active (webhooks answer no_rule_no_credit).`;
  }
  return null;
}

/**
 * "Retire all rules" (`POST /api/v1/client/reward-rules/retire`): every version so far retired, none active; what a
 * merchant does before connecting a Square business that counts in another currency. Null when nothing is left to retire.
 */
function retireAll(rules, token, load) {
  if (!rules.some((r) => !r.retiredAt)) return null;
  const button = h('button', { type: 'button', class: 'secondary' }, 'Retire all rules');
  button.addEventListener('click', async () => {
    if (!window.confirm('Retire every rule version? None stays active and none can be activated again: payments earn nothing until you create a new rule and activate it. (Needed before connecting a Square business in another currency.)')) return;
    const result = await guardedOn(button, () => api('POST', '/api/v1/client/reward-rules/retire', { body: {} }));
    if (!result || !current(token)) return;
    await load(result.position);
    say(`Every rule through version ${result.retiredThroughVersion} is retired: payments earn nothing until a new rule is active.`);
  });
  return h('p', {}, button, ' ', h('span', { class: 'hint' }, 'Before connecting a Square business in another currency: rule amounts are in the workspace’s currency.'));
}

export function rulesView(_rest, _params, token) {
  const list = h('div', { 'aria-busy': 'true' });
  /** `minPosition`: a write's position, so the list read after it shows it (read-your-writes). */
  async function load(minPosition) {
    const rules = await loaded(list, token, () => api('GET', '/api/v1/client/reward-rules', { headers: minPosition ? { 'x-min-position': minPosition } : {} }));
    if (!rules) return;
    const act = async (button, rule, path, body, done) => {
      const ask = confirmation(rules, rule, path, body);
      if (ask && !window.confirm(ask)) return;
      const result = await guardedOn(button, () => api('POST', `/api/v1/client/reward-rules/${encodeURIComponent(rule.ruleId)}/${path}`, { body }));
      if (!result || !current(token)) return;
      await load(result.position);
      say(done);
    };
    const actions = (r) =>
      r.retiredAt
        ? '—'
        : r.isActive
          ? h('button', { type: 'button', class: 'secondary', 'aria-label': `Deactivate version ${r.version}`, onclick: (e) => act(e.currentTarget, r, 'deactivate', {}, `Version ${r.version} no longer earns points.`) }, 'Deactivate')
          : h(
              'div',
              { class: 'actions' },
              h('button', { type: 'button', 'aria-label': `Activate version ${r.version}`, onclick: (e) => act(e.currentTarget, r, 'activate', { alongside: false }, `Version ${r.version} is now the active rule: payments from now on earn by it alone.`) }, 'Activate'),
              h('button', { type: 'button', class: 'secondary', 'aria-label': `Add version ${r.version} alongside`, onclick: (e) => act(e.currentTarget, r, 'activate', { alongside: true }, `Version ${r.version} is active beside the others: their points add up.`) }, 'Add alongside'),
            );
    list.replaceChildren(
      ...[retireAll(rules, token, load)].filter(Boolean),
      rules.length === 0
        ? h('p', { class: 'empty' }, 'No rule yet: payments earn nothing until a rule is active (webhooks answer no_rule_no_credit).')
        : table(
            'Rule versions, newest first',
            ['Version', 'Kind', 'Gives', 'Status', 'Created', 'Action'],
            rules.map((r) =>
              h(
                'tr',
                {},
                cell('Version', String(r.version)),
                cell('Kind', r.rule.kind),
                cell('Gives', ruleText(r.rule, r.currency)),
                cell('Status', badge(r.retiredAt ? 'retired' : r.isActive ? 'active' : 'inactive')),
                cell('Created', h('time', { datetime: r.createdAt }, fmtTime(r.createdAt)), 'time'),
                cell('Action', actions(r)),
              ),
            ),
          ),
    );
  }
  show(
    h(
      'section',
      {},
      h('h1', {}, 'Reward rules'),
      h('p', { class: 'hint' }, 'A payment earns the sum of what each active rule gives. A rule is never edited: create a new version and activate it. Amounts are in minor units of your currency.'),
      list,
      h('h2', {}, 'Create a rule'),
      ruleForm(token, load),
      h('h2', {}, 'Explain a payment'),
      explainForm(token),
    ),
    'Reward rules',
  );
  load();
}
