/**
 * A payment is decided for the tenant that holds its merchant when it is decided: a poll run lists a connection, the
 * merchant disconnects (or connects to another workspace) while the run goes on, and what the run read before is not
 * credited to the workspace it was read for.
 */
import test from 'ava';
import { ingestionService, type IngestionFact } from '../../domain/payments/ingestion.ts';
import type { SquarePayment } from '../../domain/ports/square.ts';
import type { RuleSetState } from '../../domain/rewards/rule-set.ts';
import { testCommandPath } from '../support/command-path.ts';
import { InMemoryEventStore } from '../support/memory-event-store.ts';

const RULE = { ruleId: 'rule-1', version: 1, rule: { kind: 'spend' as const, points: 1, per: 100, basis: 'amount' as const, minimumSpend: 0 }, createdAt: '2026-09-30T00:00:00.000Z' };
const RULE_SET: RuleSetState = { versions: [RULE], activeRuleIds: ['rule-1'], retiredThrough: 0, history: [{ at: '2026-10-01T00:00:00.000Z', ruleIds: ['rule-1'] }] };

function payment(id: string): SquarePayment {
  const at = '2026-11-01T10:00:00.000Z';
  return { id, status: 'COMPLETED', amountMinor: 1000, tipMinor: 0, totalMinor: 1000, currency: 'USD', customerId: 'cust-ann', buyerEmail: null, locationId: 'L1', orderId: null, createdAt: at, updatedAt: at };
}

test('a payment read for a workspace that no longer holds its merchant is no_connection, appends nothing; the holder’s is decided', async (t) => {
  const store = new InMemoryEventStore();
  let next = 0;
  const holder = new Map([['M1', 'tenant-now']]);
  const ingestion = ingestionService({
    store,
    runtime: { now: () => new Date('2026-11-03T00:00:00Z'), newId: () => `00000000-0000-4000-8000-${String(++next).padStart(12, '0')}` },
    hasher: { hashEmail: (e) => `email:${e}`, hashPhone: (p) => `phone:${p}`, hashVerificationCode: (u, p, c) => `code:${u}:${p}:${c}` },
    catchUp: async () => undefined,
    tenantForMerchant: (merchantId) => holder.get(merchantId),
    ruleSet: () => RULE_SET,
    workspace: () => ({ currency: 'USD', country: 'US' }),
    customerContacts: async () => ({ email: 'ann@example.com', phone: null }),
    consumersByIdentity: async (sets) => sets.map(() => 'ann'),
    walletIdFor: (tenantId, consumerId) => `${tenantId}:${consumerId}`,
    inlineWalletEffects: true,
    wallets: testCommandPath(),
  });
  const fact = (tenantId: string, id: string): IngestionFact => ({ kind: 'payment', tenantId, merchantId: 'M1', payment: payment(id), source: `poll:${id}`, metadata: {} });
  const [stale, current] = await ingestion.ingestBatch([fact('tenant-before', 'pay-stale'), fact('tenant-now', 'pay-current')]);
  t.like(stale, { ok: true, result: { outcome: 'no_connection' } });
  t.like(current, { ok: true, result: { outcome: 'credited' } });
  t.deepEqual(await store.readStream('payment-pay-stale'), [], 'nothing recorded for the workspace that let the merchant go');
  t.true((await store.readStream('payment-pay-current')).length > 0);
});

test('a sale taken before the workspace connected its merchant is before_program and counts no visit: a tender of the same order after it counts the visit', async (t) => {
  const store = new InMemoryEventStore();
  let next = 0;
  const visitSet: RuleSetState = {
    versions: [{ ruleId: 'rule-visit', version: 1, rule: { kind: 'visit', points: 10, minimumSpend: 0 }, createdAt: '2026-09-30T00:00:00.000Z' }],
    activeRuleIds: ['rule-visit'],
    retiredThrough: 0,
    history: [{ at: '2026-10-01T00:00:00.000Z', ruleIds: ['rule-visit'] }],
  };
  const ingestion = ingestionService({
    store,
    runtime: { now: () => new Date('2026-11-03T00:00:00Z'), newId: () => `00000000-0000-4000-8000-${String(++next).padStart(12, '0')}` },
    hasher: { hashEmail: (e) => `email:${e}`, hashPhone: (p) => `phone:${p}`, hashVerificationCode: (u, p, c) => `code:${u}:${p}:${c}` },
    catchUp: async () => undefined,
    tenantForMerchant: () => 'tenant-1',
    ruleSet: () => visitSet,
    // Connected at 15:00, the rule active since October.
    workspace: () => ({ currency: 'USD', country: 'US', connectedSince: '2026-11-01T15:00:00.000Z' }),
    customerContacts: async () => ({ email: 'ann@example.com', phone: null }),
    consumersByIdentity: async (sets) => sets.map(() => 'ann'),
    walletIdFor: (tenantId, consumerId) => `${tenantId}:${consumerId}`,
    inlineWalletEffects: true,
    wallets: testCommandPath(),
  });
  const tender = (id: string, at: string): IngestionFact => ({
    kind: 'payment',
    tenantId: 'tenant-1',
    merchantId: 'M1',
    payment: { ...payment(id), orderId: 'order-split', createdAt: at, updatedAt: '2026-11-01T16:00:00.000Z' },
    source: `webhook:${id}`,
    metadata: {},
  });
  const [before] = await ingestion.ingestBatch([tender('pay-old', '2026-11-01T14:00:00.000Z')]);
  t.like(before, { ok: true, result: { outcome: 'before_program' } });
  const [after] = await ingestion.ingestBatch([tender('pay-new', '2026-11-01T15:30:00.000Z')]);
  t.like(after, { ok: true, result: { outcome: 'credited' } }, "the order's visit is this tender's: the one from before the connect took none");
});
