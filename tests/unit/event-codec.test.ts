/**
 * The event codec against the events as they are stored: every declared type and version has a fixture under
 * tests/fixtures/events/ (a payload as written by that version) and it decodes to the current shape; an older
 * version is upcast; a stored event that does not decode stops the reader with its stream, revision and position.
 */
import { readdirSync, readFileSync } from 'node:fs';
import test from 'ava';
import { v4 as uuid } from 'uuid';
import { eventFamilies } from '../../domain/event-catalogue.ts';
import { z } from 'zod';
import { EventDecodeFailed, EventType, familyCodec } from '../../domain/shared/codec.ts';
import { handleCommand, loadState } from '../../domain/shared/command-handler.ts';
import type { JsonObject, RecordedEvent } from '../../domain/ports/event-store.ts';
import { paymentEvents } from '../../domain/payments/events.ts';
import { programEvents } from '../../domain/program/events.ts';
import { promotionUseEvents } from '../../domain/promotions/events.ts';
import { paymentDecider, paymentStream } from '../../domain/payments/payment.ts';
import { pointsDelta, walletDecider, walletStream } from '../../domain/wallets/wallet.ts';
import { walletBalanceEvents, walletEvents } from '../../domain/wallets/events.ts';
import { testCommandPath } from '../support/command-path.ts';
import { InMemoryEventStore } from '../support/memory-event-store.ts';

const FIXTURES = new URL('../fixtures/events/', import.meta.url);

interface Fixture {
  type: string;
  schemaVersion: number;
  data: JsonObject;
}

const fixture = (type: string, version: number): Fixture => JSON.parse(readFileSync(new URL(`${type}.v${version}.json`, FIXTURES), 'utf8')) as Fixture;

/** A fixture as the store hands it back. */
function recorded(f: Fixture, at: Partial<RecordedEvent> = {}): RecordedEvent {
  return {
    id: uuid(),
    type: f.type,
    data: f.data,
    metadata: { schemaVersion: f.schemaVersion },
    stream: 'fixture-1',
    revision: 0,
    position: '0/1' as RecordedEvent['position'],
    recordedAt: new Date('2026-11-10T12:00:00Z'),
    ...at,
  };
}

const definitions = new Map<string, EventType>();
for (const family of eventFamilies) for (const d of family.definitions) definitions.set(d.type, d);

test('every event type at every version it ever had has a fixture, and every fixture is of a declared type and version', (t) => {
  const expected = [...definitions.values()].flatMap((d) => d.versions().map((v) => `${d.type}.v${v}.json`)).sort();
  const present = readdirSync(FIXTURES).filter((f) => f.endsWith('.json')).sort();
  t.deepEqual(present, expected);
  t.true(expected.length >= 28, 'all stream families are in the catalogue');
});

test('the payload of each current version decodes to itself: no stored field is dropped or changed', (t) => {
  for (const family of eventFamilies) {
    for (const d of family.definitions) {
      const f = fixture(d.type, d.version);
      t.deepEqual(family.decode(recorded(f)).data, f.data, `${d.type} v${d.version}`);
    }
  }
});

test('the payload of every older version decodes to data the current schema accepts as it is', (t) => {
  let older = 0;
  for (const family of eventFamilies) {
    for (const d of family.definitions) {
      for (const version of d.versions().filter((v) => v < d.version)) {
        const decoded = family.decode(recorded(fixture(d.type, version))).data;
        const parsed = d.schema.safeParse(decoded);
        t.true(parsed.success, `${d.type} v${version}: ${parsed.success ? '' : parsed.error.message}`);
        if (parsed.success) t.deepEqual(parsed.data, decoded, `${d.type} v${version} upcast to what v${d.version} is`);
        older++;
      }
    }
  }
  t.true(older >= 10, `older versions decoded: ${older}`);
});

/** What a purchase of one rule (before version 5) upcasts to: that rule's single contribution, the order not read. */
const oneRule = (d: Record<string, unknown>, refundBasis: string) => ({
  orderRead: false,
  contributions: [{ ruleId: d.ruleId, ruleVersion: d.ruleVersion, kind: refundBasis === 'full_refund' ? 'visit' : 'spend', points: d.points, basis: d.basis, basisAmountMinor: d.basisAmountMinor, refundBasis }],
});

test('a PurchaseCompleted stored as version 1 is upcast step by step to version 6: no payment time, credited by the reactor, no order, refunds on the total, one rule, no promotion', (t) => {
  const v1 = fixture('PurchaseCompleted', 1);
  const decoded = paymentEvents.decode(recorded(v1));
  t.is(decoded.type, 'PurchaseCompleted');
  const since3 = { orderId: null, refundBasis: 'total', ...oneRule(v1.data, 'total'), promotion: null };
  t.deepEqual(decoded.data, { ...v1.data, paymentCreatedAt: null, walletEffect: 'reactor', ...since3 });
  // An event written before any version was stamped is version 1.
  const unstamped = paymentEvents.decode({ ...recorded(v1), metadata: {} });
  t.deepEqual(unstamped.data, decoded.data);
  const v2 = fixture('PurchaseCompleted', 2);
  t.deepEqual(paymentEvents.decode(recorded(v2)).data, { ...v2.data, walletEffect: 'reactor', ...since3 });
  const v3 = fixture('PurchaseCompleted', 3);
  t.deepEqual(paymentEvents.decode(recorded(v3)).data, { ...v3.data, ...since3 }, 'purchases before version 4 keep being reversed on the share of the total');
  const v4 = fixture('PurchaseCompleted', 4);
  t.deepEqual(paymentEvents.decode(recorded(v4)).data, { ...v4.data, ...oneRule(v4.data, 'amount'), promotion: null }, "a version 4 purchase is its one rule's contribution");
  const v5 = fixture('PurchaseCompleted', 5);
  t.deepEqual(paymentEvents.decode(recorded(v5)).data, { ...v5.data, promotion: null }, 'purchases before version 6 had no promotion');
  t.is(paymentEvents.versionOf('PurchaseCompleted'), 6);
});

test("a PromotionUseCounted of version 1 counted a Square customer: its customerId is the version 2 customerKey; before version 3 no order", (t) => {
  const v1 = fixture('PromotionUseCounted', 1);
  const { customerId, ...rest } = v1.data;
  t.deepEqual(promotionUseEvents.decode(recorded(v1)).data, { ...rest, customerKey: customerId, orderId: null });
  const v2 = fixture('PromotionUseCounted', 2);
  t.deepEqual(promotionUseEvents.decode(recorded(v2)).data, { ...v2.data, orderId: null }, 'uses before version 3 name no order: each its own purchase');
  t.is(promotionUseEvents.versionOf('PromotionUseCounted'), 3);
});

test('a RefundHeld of version 1 has no currency; a SquareConnectionAuthorized of version 1 no currency nor country', (t) => {
  const held = fixture('RefundHeld', 1);
  t.deepEqual(paymentEvents.decode(recorded(held)).data, { ...held.data, currency: null });
  const authorized = fixture('SquareConnectionAuthorized', 1);
  const connections = eventFamilies.find((f) => f.handles('SquareConnectionAuthorized'));
  t.deepEqual(connections?.decode(recorded(authorized)).data, { ...authorized.data, currency: null, country: null });
});

test('a RefundApplied stored as version 1 is upcast to version 3: its reversal was the reactor\'s, of its one rule', (t) => {
  const v1 = fixture('RefundApplied', 1);
  t.deepEqual(paymentEvents.decode(recorded(v1)).data, { ...v1.data, walletEffect: 'reactor', contributions: [] });
  t.is(paymentEvents.versionOf('RefundApplied'), 3);
});

test('a RewardRuleActivated of version 1 replaced the rule it names; a RewardRuleCreated of version 1 is a version 2 rule as it is', (t) => {
  const rules = eventFamilies.find((f) => f.handles('RewardRuleActivated'));
  const v1 = fixture('RewardRuleActivated', 1);
  const { deactivatedRuleId, ...rest } = v1.data;
  t.deepEqual(rules?.decode(recorded(v1)).data, { ...rest, deactivatedRuleIds: deactivatedRuleId ? [deactivatedRuleId] : [], alongside: false });
  const replaced = recorded({ ...v1, data: { ...v1.data, deactivatedRuleId: 'rule-0' } });
  t.like(rules?.decode(replaced).data, { deactivatedRuleIds: ['rule-0'], alongside: false });
  const created = fixture('RewardRuleCreated', 1);
  t.deepEqual(rules?.decode(recorded(created)).data, created.data);
});

test('a stored event that does not decode names its stream, revision, position, type and what is wrong', (t) => {
  const { points, ...rest } = fixture('PointsCredited', 1).data;
  const renamed = recorded({ type: 'PointsCredited', schemaVersion: 1, data: { ...rest, pointz: points ?? 0 } }, { stream: 'wallet-w1', revision: 4, position: '12/3' as RecordedEvent['position'] });
  const error = t.throws(() => walletDecider.codec.decode(renamed), { instanceOf: EventDecodeFailed });
  t.like(error, { stream: 'wallet-w1', revision: 4, position: '12/3', eventType: 'PointsCredited', schemaVersion: 1, writtenByNewerCode: false });
  t.regex(error?.message ?? '', /wallet-w1 revision 4 \(position 12\/3\).*points/);

  const fractional = recorded({ ...fixture('PointsRedeemed', 1), data: { ...fixture('PointsRedeemed', 1).data, points: 2.5 } });
  t.throws(() => walletDecider.codec.decode(fractional), { instanceOf: EventDecodeFailed, message: /points/ });
  const newer = recorded({ ...fixture('PointsRedeemed', 1), schemaVersion: 2 });
  t.like(t.throws(() => walletDecider.codec.decode(newer), { instanceOf: EventDecodeFailed, message: /newer than this code knows/ }), { writtenByNewerCode: true });
  const foreign = recorded(fixture('UserApproved', 1));
  t.throws(() => walletDecider.codec.decode(foreign), { instanceOf: EventDecodeFailed, message: /not an event type this reader handles/ });
});

test('an event of a type the codec does not declare is taken for one written by newer code, as a newer version is', (t) => {
  // A release that adds a type to a family writes it while instances of the release before still read the stream.
  const unknown = recorded({ type: 'PointsGifted', schemaVersion: 1, data: { walletId: 'w1', points: 5 } }, { stream: 'wallet-w1', revision: 2 });
  const error = t.throws(() => walletDecider.codec.decode(unknown), { instanceOf: EventDecodeFailed, message: /wallet-w1 revision 2 .*not an event type this reader handles/ });
  t.like(error, { eventType: 'PointsGifted', writtenByNewerCode: true }, 'a subscription retries it from its checkpoint instead of recording a failure');
});

test('a command on a stream holding an undecodable event stops without appending, instead of deciding on NaN', async (t) => {
  const store = new InMemoryEventStore();
  const walletId = 'w-renamed';
  const { points, ...rest } = fixture('PointsCredited', 1).data;
  await store.append(walletStream(walletId), [{ id: uuid(), type: 'PointsCredited', data: { ...rest, walletId, pointz: points ?? 0 } }], 'no_stream');
  await t.throwsAsync(loadState(store, walletStream(walletId), walletDecider), { instanceOf: EventDecodeFailed });
  await t.throwsAsync(loadState(store, walletStream(walletId), walletDecider, testCommandPath()), { instanceOf: EventDecodeFailed }, 'the command path folds through the codec too');
  await t.throwsAsync(
    handleCommand(store, walletStream(walletId), walletDecider, { type: 'RedeemPoints', walletId, points: 5, idempotencyKey: 'k1', reference: null, by: 'user:1' }, { newId: uuid, metadata: {}, path: testCommandPath() }),
    { instanceOf: EventDecodeFailed, message: new RegExp(`${walletStream(walletId)} revision 0`) },
  );
  t.is((await store.readStream(walletStream(walletId))).length, 1, 'nothing was appended');
});

test('a command on a stream holding an event of a type its code does not declare (written by a newer release) stops without appending', async (t) => {
  const store = new InMemoryEventStore();
  const walletId = 'w-unknown-type';
  await store.append(walletStream(walletId), [{ id: uuid(), type: 'PointsGifted', data: { walletId, points: 5 } }], 'no_stream');
  await t.throwsAsync(
    handleCommand(store, walletStream(walletId), walletDecider, { type: 'RedeemPoints', walletId, points: 5, idempotencyKey: 'k1', reference: null, by: 'user:1' }, { newId: uuid, metadata: {}, path: testCommandPath() }),
    { instanceOf: EventDecodeFailed, message: new RegExp(`PointsGifted v1 at ${walletStream(walletId)} revision 0`) },
  );
  t.is((await store.readStream(walletStream(walletId))).length, 1, 'nothing was appended');
});

test('writers stamp the current version of each type in the metadata', async (t) => {
  const store = new InMemoryEventStore();
  const payment = { paymentId: 'pay_9', status: 'COMPLETED', amountMinor: 1000, tipMinor: 0, totalMinor: 1000, currency: 'USD', customerId: null, locationId: 'L1', updatedAt: '2026-11-10T12:00:05Z', createdAt: '2026-11-10T11:59:00Z' };
  await handleCommand(store, paymentStream('pay_9'), paymentDecider, { type: 'ObserveRefund', tenantId: 't1', refundId: 'r1', paymentId: 'pay_9', status: 'COMPLETED', amountMinor: 100, source: 'test' }, { newId: uuid, metadata: { actor: 'test' }, path: testCommandPath() });
  const result = await handleCommand(
    store,
    paymentStream('pay_9'),
    paymentDecider,
    { type: 'ObservePayment', tenantId: 't1', merchantId: 'M1', payment, identityHashes: [], resolution: { kind: 'anonymous' }, activeRule: null, source: 'test' },
    { newId: uuid, metadata: { actor: 'test' }, path: testCommandPath() },
  );
  t.deepEqual(result.events.map((e) => e.type), ['PurchaseCompleted', 'RefundApplied']);
  const stored = await store.readStream(paymentStream('pay_9'));
  t.deepEqual(stored.map((e) => [e.type, e.metadata.schemaVersion, e.metadata.actor]), [
    ['RefundHeld', 2, 'test'],
    ['PurchaseCompleted', 6, 'test'],
    ['RefundApplied', 3, 'test'],
  ]);
  const completed = paymentEvents.decode(stored[1]!);
  t.is(completed.type === 'PurchaseCompleted' ? completed.data.paymentCreatedAt : undefined, '2026-11-10T11:59:00Z', 'version 2 records when the customer paid');
  t.is(completed.type === 'PurchaseCompleted' ? completed.data.walletEffect : undefined, 'reactor', 'a command without walletEffect leaves the credit to the reactor');
});

test('an event type is declared once: the same name in two families is the same declaration', (t) => {
  const seen = new Map<string, EventType>();
  for (const family of eventFamilies) {
    for (const d of family.definitions) {
      const earlier = seen.get(d.type);
      t.true(earlier === undefined || earlier === d, `${d.type} is declared twice`);
      seen.set(d.type, d);
    }
  }
});

test('an ExpiryPolicySet stored as version 1 is upcast to version 2: its months were UTC\'s', (t) => {
  const v1 = fixture('ExpiryPolicySet', 1);
  t.deepEqual(programEvents.decode(recorded(v1)).data, { ...v1.data, timeZone: 'UTC' });
  t.is(programEvents.versionOf('ExpiryPolicySet'), 2);
});

test('a PointsAdjusted stored as version 1 is upcast to version 2: every adjustment before merchants could adjust was an administrator\'s', (t) => {
  const v1 = fixture('PointsAdjusted', 1);
  t.deepEqual(walletDecider.codec.decode(recorded(v1)).data, { ...v1.data, adjustedAs: 'admin' });
  t.is(walletDecider.codec.versionOf('PointsAdjusted'), 2);
});

test('a PointsReversed stored as version 1 is upcast to version 2: every reversal before expired points were told apart took all its points from the balance', (t) => {
  const v1 = fixture('PointsReversed', 1);
  const decoded = walletDecider.codec.decode(recorded(v1));
  t.deepEqual(decoded.data, { ...v1.data, fromExpired: 0 });
  t.is(walletDecider.codec.versionOf('PointsReversed'), 2);
  if (decoded.type === 'PointsReversed') t.is(pointsDelta(decoded), -(v1.data.points as number), 'the balance moves by all its points, as it did when it was written');
});

test('a stored event read by several readers is decoded once: each gets the same frozen data, and a version mismatch decodes again', (t) => {
  const v1 = fixture('PurchaseCompleted', 1);
  const stored = recorded(v1);
  const first = paymentEvents.decode(stored);
  const second = paymentEvents.decodeHandled([stored])[0];
  t.is(second?.data, first.data, 'the second reader gets the data the first one decoded');
  t.true(Object.isFrozen(first.data));
  t.false(Reflect.set(first.data, 'points', 1), 'a reader cannot change what the next one reads');
  // The same data object stored under another version (not something the store does, but the cache must not
  // answer for a version it did not decode): validated again, by that version's schema, which version 1's data fails.
  const current = definitions.get('PurchaseCompleted')!.version;
  t.throws(() => paymentEvents.decode(recorded({ ...v1, schemaVersion: current })), { instanceOf: EventDecodeFailed, message: /paymentCreatedAt/ });
});

test('a family codec holds every event type its module exports, and nothing else; the ledger lines are the wallet family without PointsCreditRefused', (t) => {
  const module = { ay: EventType.define('Ay', z.object({})), helper: z.string(), bee: EventType.define('Bee', z.object({ n: z.number() })) };
  const codec = familyCodec({ stream: 'test-<id>', writtenBy: 'test' }, module);
  t.deepEqual(codec.types, ['Ay', 'Bee'], 'the schema beside them left out');
  t.deepEqual(codec.family, { stream: 'test-<id>', writtenBy: 'test' });
  t.deepEqual(
    walletBalanceEvents.types,
    walletEvents.types.filter((type) => type !== 'PointsCreditRefused'),
  );
  t.false(walletBalanceEvents.handles('PointsCreditRefused'));
  t.is(walletBalanceEvents.family, undefined, 'a reader of a family, not a family the catalogue lists');
});
