import test from 'ava';
import { v4 as uuid } from 'uuid';
import type { Position } from '../../domain/ports/event-store.ts';
import { fold } from '../../domain/shared/decider.ts';
import { walletDecider, walletStream, type WalletEvent } from '../../domain/wallets/wallet.ts';
import { walletsProjection } from '../../projections/wallets.ts';
import { startTestService, type TestService } from '../support/service.ts';
import { api, tokenFor, TEST_JWT_SECRET } from '../support/http.ts';
import { codeSentTo } from '../support/sms.ts';

let service: TestService;
let call: ReturnType<typeof api>;
const ADMIN_EMAIL = 'ops@wallets.test';
let admin: { id: string; token: string };

async function register(role: 'client' | 'consumer', email: string, extra: Record<string, unknown> = {}) {
  const id = uuid();
  const token = await tokenFor(id, email);
  const response = await call('POST', '/api/v1/me/register', { token, body: { role, ...extra } });
  if (response.status !== 201) throw new Error(`registration failed: ${JSON.stringify(response.body)}`);
  return { id, token, email };
}

test.before(async () => {
  service = await startTestService({ AUTH_JWT_SECRET: TEST_JWT_SECRET, ADMIN_EMAILS: ADMIN_EMAIL });
  call = api(service.url);
  admin = await register('consumer', ADMIN_EMAIL);
});
test.after.always(async () => {
  await service?.stop();
});

async function merchant() {
  const businessName = `Cafe ${uuid().slice(0, 6)}`;
  const client = await register('client', `owner-${uuid().slice(0, 8)}@cafe.test`, { businessName });
  const approval = await call('PATCH', `/api/v1/admin/users/${client.id}/approve`, { token: admin.token });
  return { ...client, businessName, tenantId: approval.body.user.tenantId as string };
}

async function consumer(extra: Record<string, unknown> = {}) {
  return register('consumer', `Shopper.${uuid().slice(0, 8)}@Example.COM`, extra);
}

/** A phone added to the consumer's profile, and verified with the code the development SMS adapter logged. */
async function verifiedPhone(user: { token: string }, phone: string, e164: string) {
  succeeded(await call('PATCH', '/api/v1/me', { token: user.token, body: { phone } }));
  succeeded(await call('POST', '/api/v1/me/phone/verification', { token: user.token }));
  const verified = await call('POST', '/api/v1/me/phone/verify', { token: user.token, body: { code: codeSentTo(service.logs, e164) } });
  succeeded(verified);
}

function succeeded(response: { status: number; body: unknown }) {
  if (response.status >= 300) throw new Error(`${response.status}: ${JSON.stringify(response.body)}`);
}

/** Points credited the way ingestion will credit them: a PointsCredited on the wallet's stream. */
async function credit(wallet: { walletId: string; tenantId: string; consumerId: string }, points: number, via: 'purchase' | 'claim' = 'purchase') {
  const paymentId = `pay-${uuid()}`;
  const event: WalletEvent = {
    type: 'PointsCredited',
    data: { ...wallet, paymentId, points, ruleId: 'rule-1', ruleVersion: 1, basis: 'amount', basisAmountMinor: points * 100, via },
  };
  const result = await service.tally.store.append(walletStream(wallet.walletId), [{ id: uuid(), ...event, metadata: { actor: 'system:test' } }], 'any');
  return { paymentId, position: result.position };
}

async function walletWith(points: number) {
  const m = await merchant();
  const c = await consumer();
  const wallet = { walletId: uuid(), tenantId: m.tenantId, consumerId: c.id };
  const { position } = await credit(wallet, points);
  return { merchant: m, consumer: c, wallet, walletId: wallet.walletId, position };
}

const after = (position: string) => ({ 'x-min-position': position });

/** A ledger line as its customer reads it: no staff member's id, no idempotency key. */
const withoutStaffFields = ({ adminId: _adminId, idempotencyKey: _key, ...line }: Record<string, unknown>) => line;

test('a consumer sees their wallets with the merchant name; the merchant sees the balance and the ledger', async (t) => {
  const { merchant: m, consumer: c, wallet } = await walletWith(120);
  const claimed = await credit(wallet, 30, 'claim');

  const mine = await call('GET', '/api/v1/me/wallets', { token: c.token, headers: after(claimed.position) });
  t.is(mine.status, 200);
  t.deepEqual(
    mine.body.map((w: Record<string, unknown>) => ({ ...w, createdAt: typeof w.createdAt, updatedAt: typeof w.updatedAt })),
    [{ ...wallet, balance: 150, available: 150, locked: 0, expiringSoon: { points: 0, at: null }, lifetimeEarned: 150, lifetimeRedeemed: 0, lifetimeExpired: 0, businessName: m.businessName, createdAt: 'string', updatedAt: 'string' }],
  );

  const seen = await call('GET', `/api/v1/client/wallets/${wallet.walletId}`, { token: m.token, headers: after(claimed.position) });
  t.is(seen.status, 200);
  t.like(seen.body, { ...wallet, balance: 150, lifetimeEarned: 150 });

  const ledger = await call('GET', `/api/v1/client/wallets/${wallet.walletId}/ledger`, { token: m.token });
  t.is(ledger.status, 200);
  t.like(ledger.body.items, [
    { entryType: 'credit', kind: 'claim', points: 30, balanceAfter: 150, paymentId: claimed.paymentId, position: claimed.position },
    { entryType: 'credit', kind: 'earn', points: 120, balanceAfter: 120 },
  ]);
  t.is(ledger.body.items.length, 2);
  t.is(ledger.body.nextCursor, null);
  const own = await call('GET', `/api/v1/me/wallets/${wallet.walletId}/ledger`, { token: c.token });
  t.deepEqual(own.body, { ...ledger.body, items: ledger.body.items.map(withoutStaffFields) }, 'the consumer reads the same ledger, without the staff fields');

  const asMerchant = await call('GET', '/api/v1/me/wallets', { token: m.token });
  t.deepEqual(asMerchant.body, [], 'a merchant holds no wallets');
});

test('the lines of one append keep their stream order in the ledger, whatever their ids', async (t) => {
  const { merchant: m, wallet, position: first } = await walletWith(5);
  await service.tally.runner.waitForPosition(first as Position, 5000);
  // Ids that sort against the append order: ordering by id would show these backwards.
  const ids = ['ffffffff-0000-4000-8000-000000000000', '88888888-0000-4000-8000-000000000000', '00000000-0000-4000-8000-000000000001'];
  const events = ids.map((id, i) => ({
    id,
    type: 'PointsCredited',
    data: { ...wallet, paymentId: `pay-${uuid()}`, points: i + 1, ruleId: 'rule-1', ruleVersion: 1, basis: 'amount', basisAmountMinor: (i + 1) * 100, via: 'claim' },
    metadata: { actor: 'system:test' },
  }));
  const appended = await service.tally.store.append(walletStream(wallet.walletId), events, 'any');
  const ledger = await call('GET', `/api/v1/client/wallets/${wallet.walletId}/ledger`, { token: m.token, headers: after(appended.position) });
  t.deepEqual(
    ledger.body.items.map((i: { points: number; balanceAfter: number }) => [i.points, i.balanceAfter]),
    [[3, 11], [2, 8], [1, 6], [5, 5]],
    'newest first, in the stream order of the append, each balance after the line before it',
  );
  const pages = [];
  let cursor: string | null = null;
  do {
    const page: { body: { items: { id: string }[]; nextCursor: string | null } } = await call('GET', `/api/v1/client/wallets/${wallet.walletId}/ledger?limit=1${cursor ? `&cursor=${cursor}` : ''}`, { token: m.token });
    pages.push(...page.body.items.map((i) => i.id));
    cursor = page.body.nextCursor;
  } while (cursor);
  t.deepEqual(pages, ledger.body.items.map((i: { id: string }) => i.id), 'pages of one line walk the same order');
});

test('ledger pages run newest first and a cursor stays stable: no duplicates, no gaps', async (t) => {
  const { merchant: m, consumer: c, wallet } = await walletWith(10);
  for (let i = 1; i <= 9; i++) await credit(wallet, 10 + i);
  const redeemed = await call('POST', `/api/v1/client/wallets/${wallet.walletId}/redeem`, {
    token: m.token,
    body: { points: 25, idempotencyKey: uuid() },
  });
  t.is(redeemed.status, 200);
  const ledgerPath = `/api/v1/client/wallets/${wallet.walletId}/ledger`;
  const full = await call('GET', `${ledgerPath}?limit=100`, { token: m.token, headers: after(redeemed.body.position) });
  t.is(full.body.items.length, 11);
  t.is(full.body.items[0].kind, 'redemption', 'the newest entry comes first');
  t.is(full.body.items[0].adminId, m.id, 'a redemption names who redeemed, as every line someone made');
  t.is(full.body.items[0].balanceAfter, redeemed.body.balance);
  const times = full.body.items.map((i: { createdAt: string }) => Date.parse(i.createdAt));
  t.deepEqual(times, [...times].sort((a, b) => b - a), 'newest first');
  const byDefault = await call('GET', ledgerPath, { token: m.token });
  t.deepEqual(byDefault.body, full.body, 'the default page holds 50');

  const first = await call('GET', `${ledgerPath}?limit=4`, { token: m.token });
  // An entry written between two pages shows at the head, never inside the pages already handed out.
  const later = await credit(wallet, 1);
  await service.tally.runner.waitForPosition(later.position, 5000);
  const pages = [first.body];
  while (pages.at(-1).nextCursor) {
    const next = await call('GET', `${ledgerPath}?limit=4&cursor=${pages.at(-1).nextCursor}`, { token: m.token });
    t.is(next.status, 200);
    pages.push(next.body);
  }
  t.deepEqual(pages.map((p) => p.items.length), [4, 4, 3]);
  t.deepEqual(pages.flatMap((p) => p.items), full.body.items, 'the pages together are the ledger, in order');

  // A blank cursor is the first page, as a blank limit is its default; a cursor given twice says so.
  for (const [path, token] of [[ledgerPath, m.token], [`/api/v1/me/wallets/${wallet.walletId}/ledger`, c.token]] as const) {
    const blank = await call('GET', `${path}?cursor=&limit=4`, { token });
    t.is(blank.status, 200, JSON.stringify(blank.body));
    t.deepEqual(blank.body, (await call('GET', `${path}?limit=4`, { token })).body);
    const twice = await call('GET', `${path}?cursor=${first.body.nextCursor}&cursor=${first.body.nextCursor}`, { token });
    t.is(twice.status, 400);
    t.regex(twice.body.error.message, /query\.cursor: cursor must be given once/);
  }
  const badCursor = await call('GET', `${ledgerPath}?cursor=not-a-cursor`, { token: m.token });
  t.is(badCursor.status, 400);
  t.regex(badCursor.body.error.message, /cursor is not valid: pass the nextCursor/);
  for (const limit of ['0', '101', 'ten']) {
    const bad = await call('GET', `${ledgerPath}?limit=${limit}`, { token: m.token });
    t.is(bad.status, 400, limit);
    t.regex(bad.body.error.message, /limit/);
  }
});

test('a merchant finds a wallet by email or by phone in any format, only within its tenant', async (t) => {
  const m = await merchant();
  const c = await consumer();
  await verifiedPhone(c, '+1-212-555-4240', '+12125554240');
  const wallet = { walletId: uuid(), tenantId: m.tenantId, consumerId: c.id };
  const { position } = await credit(wallet, 7);
  const search = (q: string, token = m.token) =>
    call('GET', `/api/v1/client/wallets?q=${encodeURIComponent(q)}`, { token, headers: after(position) });

  for (const q of [c.email.toUpperCase(), ` ${c.email.toLowerCase()} `, '+12125554240', '+1-212-555-4240', '(212) 555-4240']) {
    const found = await search(q);
    t.is(found.status, 200, q);
    t.deepEqual(found.body.map((w: { walletId: string }) => w.walletId), [wallet.walletId], q);
    t.like(found.body[0], { balance: 7, consumerId: c.id });
  }
  t.deepEqual((await search('someone-else@example.com')).body, []);

  const other = await merchant();
  t.deepEqual((await search(c.email, other.token)).body, [], "another tenant's merchant finds nothing");
  const asAdmin = await call('GET', `/api/v1/client/wallets?tenantId=${m.tenantId}&q=${encodeURIComponent(c.email)}`, { token: admin.token });
  t.is(asAdmin.body[0]?.walletId, wallet.walletId, 'an admin searches a named tenant');

  const missing = await call('GET', '/api/v1/client/wallets', { token: m.token });
  t.is(missing.status, 400);
  t.regex(missing.body.error.message, /q is required: the email address or phone number/);
  const neither = await search('coffee');
  t.is(neither.status, 400);
  t.regex(neither.body.error.message, /q must be an email address or a phone number/);
});

test('a person whose personal data was erased is no longer found by email or phone, and cannot give the account a phone again', async (t) => {
  const m = await merchant();
  const c = await consumer();
  await verifiedPhone(c, '+1 415 555 0142', '+14155550142');
  const { position } = await credit({ walletId: uuid(), tenantId: m.tenantId, consumerId: c.id }, 5);
  const search = (q: string, at = position) => call('GET', `/api/v1/client/wallets?q=${encodeURIComponent(q)}`, { token: m.token, headers: after(at) });
  t.is((await search(c.email)).body.length, 1);
  t.is((await search('+14155550142')).body.length, 1);
  const erased = await call('DELETE', `/api/v1/admin/users/${c.id}/personal-data`, { token: admin.token });
  t.is(erased.status, 200);
  t.deepEqual((await search(c.email, erased.body.position)).body, []);
  t.deepEqual((await search('+14155550142', erased.body.position)).body, []);
  // The person adds a phone afterwards: refused, saying why (until 2026-12-07 it was stored, could be verified and
  // shown verified, and matched nothing: an erased account owns no identity), and nothing is stored.
  const changed = await call('PATCH', '/api/v1/me', { token: c.token, body: { phone: '+1 415 555 0199' } });
  t.is(changed.status, 409);
  t.regex(changed.body.error.message, /personal data was erased/);
  t.is((await call('POST', '/api/v1/me/phone/verification', { token: c.token })).status, 409, 'no code sent either');
  const stored = await service.database.pool.query('SELECT phone FROM personal_data WHERE user_id = $1', [c.id]);
  t.true(stored.rows.every((r: { phone: string | null }) => r.phone === null), 'no phone stored');
  t.deepEqual((await search(c.email, erased.body.position)).body, []);
});

test('a phone or email someone only typed into their profile finds nothing: a counter correction cannot be steered to them', async (t) => {
  const m = await merchant();
  const jane = await consumer();
  await verifiedPhone(jane, '+1 212 555 4290', '+12125554290');
  const janes = { walletId: uuid(), tenantId: m.tenantId, consumerId: jane.id };
  await credit(janes, 10);
  // Mallory types Jane's number into her own profile and never verifies it; she has a newer wallet at the cafe.
  const mallory = await consumer();
  const malloryWallet = { walletId: uuid(), tenantId: m.tenantId, consumerId: mallory.id };
  await credit(malloryWallet, 3);
  const typed = await call('PATCH', '/api/v1/me', { token: mallory.token, body: { phone: '+1 212 555 4290' } });
  t.is(typed.status, 200);
  const { position } = await credit(malloryWallet, 1);
  const found = await call('GET', `/api/v1/client/wallets?q=${encodeURIComponent('(212) 555-4290')}`, { token: m.token, headers: after(position) });
  t.deepEqual(found.body.map((w: { walletId: string }) => w.walletId), [janes.walletId], "only the wallet of the person who verified the number");
});

test("another tenant's merchant gets 404 for a wallet, its ledger and a redemption, and changes nothing", async (t) => {
  const { merchant: m, walletId, position } = await walletWith(50);
  const key = uuid();
  const mine = await call('POST', `/api/v1/client/wallets/${walletId}/redeem`, { token: m.token, body: { points: 5, idempotencyKey: key } });
  t.is(mine.status, 200);
  const other = await merchant();
  const attempts = [
    await call('GET', `/api/v1/client/wallets/${walletId}`, { token: other.token, headers: after(position) }),
    await call('GET', `/api/v1/client/wallets/${walletId}/ledger`, { token: other.token }),
    await call('POST', `/api/v1/client/wallets/${walletId}/redeem`, { token: other.token, body: { points: 5, idempotencyKey: uuid() } }),
    await call('POST', `/api/v1/client/wallets/${walletId}/redeem`, { token: other.token, body: { points: 5, idempotencyKey: key } }),
    await call('POST', `/api/v1/client/wallets/${walletId}/redeem`, { token: other.token, body: {} }),
  ];
  for (const response of attempts) {
    t.is(response.status, 404);
    t.is(response.body.error.code, 'NOT_FOUND');
    t.false(JSON.stringify(response.body).includes(m.tenantId));
  }
  const stream = await service.tally.store.readStream(walletStream(walletId));
  t.deepEqual(stream.map((e) => e.type), ['PointsCredited', 'PointsRedeemed'], 'nothing was written');
});

test('a consumer reads only their own ledger', async (t) => {
  const { merchant: m, walletId, position } = await walletWith(10);
  const stranger = await consumer();
  const theirs = await call('GET', `/api/v1/me/wallets/${walletId}/ledger`, { token: stranger.token, headers: after(position) });
  t.is(theirs.status, 404);
  t.is(theirs.body.error.code, 'NOT_FOUND');
  t.deepEqual((await call('GET', '/api/v1/me/wallets', { token: stranger.token })).body, []);
  t.is((await call('GET', `/api/v1/me/wallets/${walletId}/ledger`, { token: m.token })).status, 404, 'not even the merchant, on /me');
  t.is((await call('GET', `/api/v1/me/wallets/not-a-uuid/ledger`, { token: stranger.token })).status, 400);
});

test('twenty concurrent redemptions never overdraw: exactly floor(balance / points) succeed, the rest 409', async (t) => {
  const { merchant: m, walletId } = await walletWith(100);
  const points = 15;
  const responses = await Promise.all(
    Array.from({ length: 20 }, () =>
      call('POST', `/api/v1/client/wallets/${walletId}/redeem`, { token: m.token, body: { points, idempotencyKey: uuid() } }),
    ),
  );
  const succeeded = responses.filter((r) => r.status === 200);
  const refused = responses.filter((r) => r.status !== 200);
  t.is(succeeded.length, Math.floor(100 / points));
  t.true(refused.every((r) => r.status === 409 && r.body.error.code === 'INSUFFICIENT_POINTS'), JSON.stringify(refused.map((r) => r.body)));
  t.deepEqual(
    succeeded.map((r) => r.body.balance).sort((a: number, b: number) => a - b),
    [10, 25, 40, 55, 70, 85],
    'each success answers with the balance right after it',
  );

  const stream = await service.tally.store.readStream(walletStream(walletId));
  const folded = fold(walletDecider, stream.map((e) => walletDecider.codec.decode(e)));
  t.is(folded.balance, 10);
  const last = stream.at(-1)?.position as Position;
  const wallet = await call('GET', `/api/v1/client/wallets/${walletId}`, { token: m.token, headers: after(last) });
  t.like(wallet.body, { balance: folded.balance, lifetimeRedeemed: 90 });
  // Runbook 5: the snapshot equals the ledger sum.
  const { rows } = await service.tally.pool.query(
    `SELECT w.points_balance::int AS snapshot, SUM(CASE WHEN l.entry_type = 'credit' THEN l.points ELSE -l.points END)::int AS ledger_sum
       FROM wallets w JOIN wallet_ledger l ON l.wallet_id = w.id WHERE w.id = $1 GROUP BY w.points_balance`,
    [walletId],
  );
  t.deepEqual(rows, [{ snapshot: 10, ledger_sum: 10 }]);
});

test('a redemption retried with its key answers as the first time; the key with another body is refused with 422', async (t) => {
  const { merchant: m, walletId } = await walletWith(100);
  const redeem = (body: unknown) => call('POST', `/api/v1/client/wallets/${walletId}/redeem`, { token: m.token, body });
  const key = uuid();
  const first = await redeem({ points: 30, idempotencyKey: key, reference: 'order-1' });
  t.is(first.status, 200);
  t.deepEqual(Object.keys(first.body).sort(), ['available', 'balance', 'locked', 'position', 'walletId']);
  t.like(first.body, { walletId, balance: 70 });
  const other = await redeem({ points: 10, idempotencyKey: uuid() });
  t.is(other.body.balance, 60);

  const again = await redeem({ points: 30, idempotencyKey: key, reference: 'order-1' });
  t.is(again.status, 200);
  t.deepEqual(again.body, first.body, 'the same answer, though the balance moved since');
  t.is(again.headers.get('idempotent-replayed'), 'true');
  for (const changed of [{ points: 31, idempotencyKey: key, reference: 'order-1' }, { points: 30, idempotencyKey: key, reference: 'order-2' }, { points: 30, idempotencyKey: key }]) {
    const refused = await redeem(changed);
    t.is(refused.status, 422, JSON.stringify(changed));
    t.is(refused.body.error.code, 'IDEMPOTENCY_KEY_REUSED');
    t.regex(refused.body.error.message, /use a new key/);
  }
  const stream = await service.tally.store.readStream(walletStream(walletId));
  t.is(stream.filter((e) => e.type === 'PointsRedeemed').length, 2);

  const short = await redeem({ points: 61, idempotencyKey: uuid() });
  t.is(short.status, 409);
  t.like(short.body.error, { code: 'INSUFFICIENT_POINTS', details: { balance: 60, requested: 61 } });
});

test('a redemption body is validated with messages that say what to fix', async (t) => {
  const { merchant: m, walletId } = await walletWith(10);
  const cases: [unknown, RegExp][] = [
    [{ points: 0, idempotencyKey: 'k' }, /points must be at least 1/],
    [{ points: 2.5, idempotencyKey: 'k' }, /points must be a whole number/],
    [{ points: '5', idempotencyKey: 'k' }, /points must be a whole number of points/],
    [{ points: 1_000_000_001, idempotencyKey: 'k' }, /points must be at most 1000000000/],
    [{ points: 5 }, /idempotencyKey is required/],
    [{ points: 5, idempotencyKey: '' }, /idempotencyKey must not be empty/],
    [{ points: 5, idempotencyKey: 'k'.repeat(201) }, /idempotencyKey must be at most 200/],
    [{ points: 5, idempotencyKey: 'k', reference: 'r'.repeat(201) }, /reference must be at most 200/],
    [{ points: 5, idempotencyKey: 'k', balance: 1e6 }, /balance/],
  ];
  for (const [body, message] of cases) {
    const response = await call('POST', `/api/v1/client/wallets/${walletId}/redeem`, { token: m.token, body });
    t.is(response.status, 400, JSON.stringify(body));
    t.regex(response.body.error.message, message, JSON.stringify(body));
  }
  const stream = await service.tally.store.readStream(walletStream(walletId));
  t.is(stream.length, 1, 'nothing was redeemed');
});

test('an admin adjusts a balance only with a reason; the event records who and why; the ledger shows it', async (t) => {
  const { merchant: m, walletId } = await walletWith(100);
  const adjust = (body: unknown, id = walletId) => call('POST', `/api/v1/admin/wallets/${id}/adjust`, { token: admin.token, body });
  const noReason = await adjust({ points: -25 });
  t.is(noReason.status, 400);
  t.regex(noReason.body.error.message, /reason is required: say why the balance is corrected/);
  t.regex((await adjust({ points: -25, reason: '   ' })).body.error.message, /reason must not be empty/);
  t.regex((await adjust({ points: 0, reason: 'x' })).body.error.message, /points must not be 0/);
  t.is((await adjust({ points: -25, reason: 'x' }, uuid())).status, 404, 'an unknown wallet');
  t.is((await call('POST', `/api/v1/admin/wallets/${walletId}/adjust`, { token: m.token, body: { points: 5, reason: 'x' } })).status, 403);

  const adjusted = await adjust({ points: -25, reason: 'Duplicate credit for a refunded order' });
  t.is(adjusted.status, 200);
  t.like(adjusted.body, { walletId, balance: 75 });
  const [event] = (await service.tally.store.readStream(walletStream(walletId))).filter((e) => e.type === 'PointsAdjusted');
  t.like(event?.data, { points: -25, reason: 'Duplicate credit for a refunded order', adjustedBy: admin.id, idempotencyKey: null });
  t.is(event?.metadata.actor, `admin:${admin.id}`);

  const ledger = await call('GET', `/api/v1/client/wallets/${walletId}/ledger`, { token: m.token, headers: after(adjusted.body.position) });
  t.like(ledger.body.items[0], { entryType: 'debit', kind: 'adjustment', points: -25, balanceAfter: 75, adminId: admin.id, reason: 'Duplicate credit for a refunded order' });
  const wallet = await call('GET', `/api/v1/client/wallets/${walletId}`, { token: m.token });
  t.like(wallet.body, { balance: 75, lifetimeEarned: 100, lifetimeRedeemed: 0 });

  const key = uuid();
  const once = await adjust({ points: 5, reason: 'goodwill', idempotencyKey: key });
  const twice = await adjust({ points: 5, reason: 'goodwill', idempotencyKey: key });
  t.deepEqual(twice.body, once.body);
  t.like(once.body, { balance: 80 });
  t.is((await adjust({ points: 6, reason: 'goodwill', idempotencyKey: key })).status, 422);
});

test("a customer's ledger names no staff member and no idempotency key; an adjustment's reason is shown to them", async (t) => {
  const { merchant: m, consumer: c, walletId } = await walletWith(100);
  const adjusted = await call('POST', `/api/v1/admin/wallets/${walletId}/adjust`, { token: admin.token, body: { points: -25, reason: 'Duplicate credit', idempotencyKey: `adjust-${uuid()}` } });
  t.is(adjusted.status, 200);
  const redeemed = await call('POST', `/api/v1/client/wallets/${walletId}/redeem`, { token: m.token, body: { points: 10, idempotencyKey: `redeem-${uuid()}`, reference: 'receipt 12' } });
  t.is(redeemed.status, 200);
  const merchants = await call('GET', `/api/v1/client/wallets/${walletId}/ledger`, { token: m.token, headers: after(redeemed.body.position) });
  t.like(merchants.body.items[1], { kind: 'adjustment', adminId: admin.id, reason: 'Duplicate credit' });
  t.truthy(merchants.body.items[1].idempotencyKey, 'the workspace sees the key it sent');
  t.truthy(merchants.body.items[0].idempotencyKey);

  const customers = await call('GET', `/api/v1/me/wallets/${walletId}/ledger`, { token: c.token, headers: after(redeemed.body.position) });
  t.is(customers.status, 200);
  t.is(customers.body.items.length, 3);
  for (const line of customers.body.items) {
    t.false('adminId' in line, `line ${line.kind} names no staff member`);
    t.false('idempotencyKey' in line, `line ${line.kind} has no idempotency key`);
  }
  t.false(JSON.stringify(customers.body).includes(admin.id), "the admin's id appears nowhere in the answer");
  t.like(customers.body.items[1], { kind: 'adjustment', points: -25, reason: 'Duplicate credit' });
  t.like(customers.body.items[0], { kind: 'redemption', points: -10, reference: 'receipt 12' });
  t.deepEqual(customers.body.items, merchants.body.items.map(withoutStaffFields));
});

test('the wallets projection applied twice changes nothing', async (t) => {
  const { merchant: m, walletId } = await walletWith(40);
  const redeemed = await call('POST', `/api/v1/client/wallets/${walletId}/redeem`, { token: m.token, body: { points: 15, idempotencyKey: uuid() } });
  t.true(await service.tally.runner.waitForPosition(redeemed.body.position, 5000));
  const snapshot = async () => ({
    wallet: (await service.tally.pool.query('SELECT * FROM wallets WHERE id = $1', [walletId])).rows,
    ledger: (await service.tally.pool.query('SELECT * FROM wallet_ledger WHERE wallet_id = $1 ORDER BY created_at, id', [walletId])).rows,
  });
  const before = await snapshot();
  t.like(before.wallet[0], { points_balance: '25' });

  const history = await service.tally.store.readStream(walletStream(walletId));
  const client = await service.tally.pool.connect();
  try {
    await client.query('BEGIN');
    await walletsProjection.apply(history, { db: client, table: (name) => name });
    await walletsProjection.apply(history, { db: client, table: (name) => name });
    await client.query('COMMIT');
  } finally {
    client.release();
  }
  t.deepEqual(await snapshot(), before);
});

test('a wallet id in upper case names the same wallet (ids are normalised to lower case), served directly or through Koa', async (t) => {
  const { merchant: m, walletId, position } = await walletWith(7);
  for (const path of [`/api/v1/client/wallets/${walletId.toUpperCase()}`, `/api/v1/client/wallets/${walletId.toUpperCase()}/`]) {
    const seen = await call('GET', path, { token: m.token, headers: after(position) });
    t.is(seen.status, 200, `${path}: ${JSON.stringify(seen.body)}`);
    t.is(seen.body.walletId, walletId);
    t.is(seen.body.balance, 7);
  }
});

test('the Idempotency-Key header is the body’s idempotencyKey: a retry with the header alone replays; a different key in the body is a 400', async (t) => {
  const { walletId, merchant: owner } = await walletWith(100);
  const adjust = (headers: Record<string, string>, body: Record<string, unknown> = { points: 1, reason: 'goodwill' }) =>
    call('POST', `/api/v1/admin/wallets/${walletId}/adjust`, { token: admin.token, body, headers });
  const first = await adjust({ 'idempotency-key': 'header-key-1' });
  t.is(first.status, 200);
  t.like(first.body, { balance: 101 });
  const retried = await adjust({ 'idempotency-key': 'header-key-1' });
  t.is(retried.status, 200);
  t.like(retried.body, { balance: 101 }, 'the retry is answered as the first time, nothing applied again');
  t.is(retried.headers.get('idempotent-replayed'), 'true');
  const both = await adjust({ 'idempotency-key': 'header-key-1' }, { points: 1, reason: 'goodwill', idempotencyKey: 'another' });
  t.is(both.status, 400);
  t.regex(both.body.error.message, /idempotencyKey and the Idempotency-Key header differ/);
  // The redemption, whose key is required, takes it from the header too.
  const redeemed = await call('POST', `/api/v1/client/wallets/${walletId}/redeem`, { token: owner.token, body: { points: 1 }, headers: { 'idempotency-key': 'header-redeem-1' } });
  t.is(redeemed.status, 200, JSON.stringify(redeemed.body));
});

test('an Idempotency-Key header the key’s rules refuse is named as the header, not as the body’s field; an empty one is no key', async (t) => {
  const { walletId, merchant: owner } = await walletWith(10);
  const redeem = (key: string, body: object = {}) =>
    call('POST', `/api/v1/client/wallets/${walletId}/redeem`, { token: owner.token, body: { points: 1, ...body }, headers: { 'idempotency-key': key } });
  const adjust = (key: string, body: object = {}) =>
    call('POST', `/api/v1/admin/wallets/${walletId}/adjust`, { token: admin.token, body: { points: 1, reason: 'goodwill', ...body }, headers: { 'idempotency-key': key } });
  for (const [name, send] of [['redeem', redeem], ['adjust', adjust]] as const) {
    const long = await send('k'.repeat(201));
    t.is(long.status, 400, name);
    t.is(long.body.error.message, 'The request is invalid: headers.idempotency-key: Idempotency-Key must be at most 200 characters', name);
    t.deepEqual(long.body.error.issues, [{ path: 'idempotency-key', message: 'Idempotency-Key must be at most 200 characters' }], name);
    // Clients and wrappers that always send the header send it empty when they have no key (found in review,
    // 2026-12-08: it had become a 400): the body's key is the request's, and its retry replays.
    const key = `body-key-${name}-${uuid()}`;
    const first = await send('', { idempotencyKey: key });
    t.is(first.status, 200, `${name}: ${JSON.stringify(first.body)}`);
    const retried = await send('', { idempotencyKey: key });
    t.is(retried.status, 200, name);
    t.is(retried.headers.get('idempotent-replayed'), 'true', name);
  }
  // With no key at all, an empty header is the missing key it stands for: required for a redemption, not an adjustment.
  t.is((await redeem('')).body.error.message, 'The request is invalid: body.idempotencyKey: idempotencyKey is required: a string unique to this redemption (1-200 characters); retries reuse it');
  t.is((await adjust('')).status, 200);
  // The body's own key is still named as the body's field.
  const inBody = await call('POST', `/api/v1/client/wallets/${walletId}/redeem`, { token: owner.token, body: { points: 1, idempotencyKey: 'k'.repeat(201) } });
  t.is(inBody.body.error.message, 'The request is invalid: body.idempotencyKey: idempotencyKey must be at most 200 characters');
});
