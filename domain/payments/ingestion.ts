/**
 * Square facts become purchase commands here, whether a webhook or a poll reported them: one path, so a
 * payment is credited once whatever mix of sources reports it. Outcomes use the seed's names.
 *
 * Facts are decided in batches: every payment stream a batch names is read in one round trip, each stream's
 * facts are decided in order on its folded state, and the whole batch is appended at once: the purchase
 * events and, where the store appends atomically across streams, the wallet credits and reversals they cause
 * (`walletEffect: 'inline'`), so a credit no longer waits for the wallet-credits reactor. A conflict (another
 * process wrote one of the streams) re-reads and re-decides the conflicting streams only.
 */
import { ConcurrencyConflict, MultiStreamConflict, type EventMetadata, type EventStore, type NewEvent, type Position, type RecordedEvent, type StreamAppend } from '../ports/event-store.ts';
import type { IdentityHasher, Runtime } from '../ports/identity.ts';
import type { SquarePayment, SquareRefund } from '../ports/square.ts';
import { rulesInForce, type RuleSetState } from '../rewards/rule-set.ts';
import type { RuleRef } from '../rewards/evaluate.ts';
import type { PurchaseOrder } from '../rewards/order.ts';
import { foldDecoded, loadWithSnapshot } from '../shared/command-handler.ts';
import type { CommandPath, FoldedStream } from '../shared/command-path.ts';
import { KeyedQueue } from '../shared/keyed-queue.ts';
import { tryNormaliseEmail, tryNormalisePhone } from '../identity/normalise.ts';
import { walletDecider, walletStream, type WalletState } from '../wallets/wallet.ts';
import { awaitsCustomer, paymentFacts, paymentDecider, paymentStream, type CreditOutcome, type OrderVisit, type PaymentEvent, type PaymentState, type Resolution, type WalletEffect } from './payment.ts';
import { bonusTakenBy, orderStream, orderVisitDecider, visitMinimumOf, visitOf, type OrderVisitEvent, type OrderVisitState } from './order-visit.ts';
import { walletCommandFor } from './wallet-effects.ts';
import { countedKeysOf, customerKeyOf, foldUses, useStreamsOf, UsesInBatch, type BuyerIdentity, type UsesLoad } from './promotion-uses.ts';
import type { ScheduledPromotion } from '../promotions/promotion.ts';
import { orderNeed } from './order-need.ts';

export type IngestionOutcome =
  | CreditOutcome
  | 'duplicate'
  | 'recorded'
  | 'stale'
  | 'refund_applied'
  | 'refund_held'
  | 'refund_pending'
  | 'ignored'
  | 'no_connection'
  | 'revoked'
  | 'identity_attached'
  | 'customer_linked'
  | 'credit_refused'
  | 'failed';

/**
 * Per outcome, whether it changes nothing anyone acts on: a repeat (`duplicate`), an older status (`stale`), a type or
 * object Tally does not use (`ignored`), a refund not completed yet (`refund_pending`), a payment status before
 * completion (`recorded`). Such outcomes are logged at debug; every other one decides a purchase or a refund, changes a
 * wallet or a connection, or needs someone (`no_connection`, `failed`). A Record, so a new outcome must be placed.
 */
const CHANGES_NOTHING: Readonly<Record<IngestionOutcome, boolean>> = {
  credited: false,
  stored_anonymous: false,
  no_rule_no_credit: false,
  zero_points: false,
  before_program: false,
  currency_mismatch: false,
  same_order: false,
  location_excluded: false,
  credit_refused: false,
  refund_applied: false,
  refund_held: false,
  identity_attached: false,
  customer_linked: false,
  no_connection: false,
  revoked: false,
  failed: false,
  duplicate: true,
  stale: true,
  ignored: true,
  refund_pending: true,
  recorded: true,
};

export const changesNothing = (outcome: IngestionOutcome): boolean => CHANGES_NOTHING[outcome];

export interface IngestionDependencies {
  store: EventStore;
  runtime: Runtime;
  hasher: IdentityHasher;
  /** Brings the state `ruleSet` and `workspace` answer from to the feed's head (see `ingestion-state.ts`). */
  catchUp(): Promise<void>;
  /** The tenant holding the Square merchant now (after `catchUp`); omitted: a fact's tenant is taken as it is. */
  tenantForMerchant?(merchantId: string): string | undefined;
  /** The tenant's rule set with its history: a payment earns by the rule in force when it was created. */
  ruleSet(tenantId: string): RuleSetState;
  /** The workspace's currency and country, from the connected Square merchant's profile; null when unknown. */
  workspace(tenantId: string): Workspace;
  /** The workspace's promotions (issue 19); a payment may use one in force when it was created. Omitted: none. */
  promotions?(tenantId: string): readonly ScheduledPromotion[];
  /**
   * The payment's Square order, read only when a rule in force needs it (cached, see `order-lookup.ts`); null when
   * Square does not know it. A failure fails the fact, which is retried. Omitted: such rules count no order.
   */
  purchaseOrder?(tenantId: string, orderId: string, withCategories: boolean): Promise<PurchaseOrder | null>;
  /** The Square customer's contact details as the merchant typed them, or null when Square does not know it. */
  customerContacts(tenantId: string, customerId: string): Promise<{ email: string | null; phone: string | null } | null>;
  /**
   * Drops cached contacts of these customers that changed at Square (a customer webhook, on any instance) since they
   * were cached: called once before a batch's customers are looked up. Omitted: nothing is dropped.
   */
  dropChangedCustomers?(customers: readonly { tenantId: string; customerId: string }[]): Promise<void>;
  /** For each set of identity hashes, the approved consumer it belongs to: one read for a whole batch. */
  consumersByIdentity(hashSets: readonly (readonly string[])[]): Promise<(string | undefined)[]>;
  /**
   * For these consumers, the keyed hashes of the emails each verified and owns now: one read for a batch, asked only
   * for payments a limited promotion could count (a use counted under such an email before they joined counts).
   * Omitted: none are read, and such a use is not seen.
   */
  verifiedEmailsOf?(consumerIds: readonly string[]): Promise<ReadonlyMap<string, readonly string[]>>;
  walletIdFor(tenantId: string, consumerId: string): string;
  /** Whether wallet effects may be appended with the purchase events (an atomic multi-stream append). */
  inlineWalletEffects: boolean;
  /**
   * The wallet commands' path (snapshots and the states this process holds): inline wallet effects are
   * decided on the wallet's real state, so its bounds hold, and appended at the revision decided on.
   */
  wallets: CommandPath;
}

export interface Workspace {
  currency: string | null;
  country: string | null;
  /**
   * Since when the workspace holds its Square merchant (kept while it reconnects to the same one; a switch to another
   * merchant and back starts it again, as the poll does): a
   * payment created before it is not the program's (`before_program`), as the poll, which starts there, has it.
   * Absent or null: not known, nothing is left out for it.
   */
  connectedSince?: string | null;
}

/** Whether a payment was taken before the workspace connected its merchant. */
const beforeConnection = (workspace: Workspace, createdAt: string): boolean =>
  Boolean(workspace.connectedSince) && Date.parse(createdAt) < Date.parse(workspace.connectedSince!);

export interface IngestionResult {
  outcome: IngestionOutcome;
  position: Position | undefined;
  detail?: Record<string, unknown>;
}

/** One Square fact to ingest, for one tenant. `source` names who reported it (a webhook, a poll). */
export type IngestionFact =
  | { kind: 'payment'; tenantId: string; merchantId: string; payment: SquarePayment; source: string; metadata: EventMetadata }
  | { kind: 'refund'; tenantId: string; refund: SquareRefund; source: string; metadata: EventMetadata };

/** Per fact, in the order given: its result, or the error that kept it from being decided (retry it). */
export type FactResult = { ok: true; result: IngestionResult } | { ok: false; error: unknown };

/**
 * Writes a batch's appends. The default is `store.appendMany`; the webhook worker passes one that also settles
 * its inbox rows in the same transaction (given the results, which are final once the append succeeds).
 */
export type BatchCommit = (requests: readonly StreamAppend[], results: readonly FactResult[]) => Promise<Position | undefined>;

/** Conflicts are re-decided at most this many times; each round lets at least one writer of a stream through. */
const MAX_ROUNDS = 8;

function outcomeOf(before: PaymentState, source: string): IngestionOutcome {
  // A source whose effect is already recorded (a crash between append and acknowledgement) gets its own outcome back.
  if (before.status === 'completed') return before.source === source ? before.outcome : before.linkedBy === source ? 'customer_linked' : 'duplicate';
  return 'stale';
}

/**
 * A completed payment reported again with a customer or a buyer email, for a purchase that waits for its customer
 * (`awaitsCustomer`): its contacts are looked up, and the purchase is linked to it (`LinkCustomer`).
 */
const linksCustomer = (state: PaymentState, fact: IngestionFact): fact is IngestionFact & { kind: 'payment' } =>
  fact.kind === 'payment' && fact.payment.status === 'COMPLETED' && Boolean(fact.payment.customerId || fact.payment.buyerEmail) && awaitsCustomer(state);

const streamOf = (fact: IngestionFact) => paymentStream(fact.kind === 'payment' ? fact.payment.id : (fact.refund.paymentId ?? ''));

interface Identity {
  hashes: string[];
  resolution: Resolution;
  /** The first of `hashes` that is an email's: whom a promotion's daily uses count for without a consumer. */
  emailHash: string | null;
  /** The emails the consumer verified (`addVerifiedEmails`), read only when a limited promotion counts their uses. */
  verifiedEmailHashes?: readonly string[];
}

const buyerOf = (identity: Identity): BuyerIdentity => ({
  emailHash: identity.emailHash,
  consumerId: identity.resolution.kind === 'consumer' ? identity.resolution.consumerId : null,
  ...(identity.verifiedEmailHashes ? { verifiedEmailHashes: identity.verifiedEmailHashes } : {}),
});

/** A purchase event decided for the fact at `index` of the batch. */
interface DecidedEvent {
  event: PaymentEvent;
  metadata: EventMetadata;
  index: number;
}

interface StreamLoad {
  state: PaymentState;
  revision: number | undefined;
}

interface OrderLoad {
  state: OrderVisitState;
  revision: number | undefined;
}

/** An order's state while a batch is decided, with the events the batch adds to it. */
interface OrderInBatch {
  state: OrderVisitState;
  events: { event: OrderVisitEvent; metadata: EventMetadata }[];
}

// Over 80 lines because it is a factory: the steps of a batch (identities, decisions, wallet effects, appends) share its dependencies, and each is its own function.
export function ingestionService(deps: IngestionDependencies) {
  const walletEffect: WalletEffect = deps.inlineWalletEffects ? 'inline' : 'reactor';
  // Batches in flight decide and look up concurrently, but take turns to decide wallet effects and append: each
  // decides on the wallets as the one before it left them, so batches of this process never conflict on a
  // wallet (a livelock when four batches share regular customers); only another process's writes do.
  const walletTurns = new KeyedQueue();

  const fold = (events: readonly RecordedEvent[]): StreamLoad => ({ state: foldDecoded(paymentDecider, events), revision: events.at(-1)?.revision });

  const foldOrder = (events: readonly RecordedEvent[]): OrderLoad => ({
    state: events.reduce((s, e) => orderVisitDecider.evolve(s, orderVisitDecider.codec.decode(e)), orderVisitDecider.initialState),
    revision: events.at(-1)?.revision,
  });

  const promotionsOf = (tenantId: string) => deps.promotions?.(tenantId) ?? [];

  /** The payment streams, the order streams and the promotion-use streams (one round trip for all). */
  async function load(
    streams: readonly string[],
    orders: readonly string[] = [],
    uses: readonly string[] = [],
  ): Promise<{ payments: Map<string, StreamLoad>; orders: Map<string, OrderLoad>; uses: Map<string, UsesLoad> }> {
    const read = await deps.store.readStreams([...streams, ...orders, ...uses]);
    return {
      payments: new Map(streams.map((stream) => [stream, fold(read.get(stream) ?? [])])),
      orders: new Map(orders.map((stream) => [stream, foldOrder(read.get(stream) ?? [])])),
      uses: new Map(uses.map((stream) => [stream, foldUses(read.get(stream) ?? [])])),
    };
  }

  const underVisitRule = (fact: IngestionFact & { kind: 'payment' }) => ruleFor(fact.tenantId, fact.payment.createdAt).rules.some((r) => r.rule.kind === 'visit');
  const withBonusPromotion = (tenantId: string) => promotionsOf(tenantId).some((p) => p.promotion.incentive.type === 'bonus');

  /**
   * The order stream of a payment fact: only a tender of an order, under a visit rule (its visit is counted there)
   * or in a workspace with a fixed-bonus promotion (the bonus is given once per order, recorded there).
   */
  function orderStreamOf(fact: IngestionFact): string | undefined {
    if (fact.kind !== 'payment' || !fact.payment.orderId) return undefined;
    return underVisitRule(fact) || withBonusPromotion(fact.tenantId) ? orderStream(fact.payment.orderId) : undefined;
  }

  /** Identities of the completing payments' customers: cached Square lookups, then one consumer read. */
  async function identify(facts: readonly { index: number; tenantId: string; customerId: string | null; buyerEmail: string | null }[]): Promise<Map<number, Identity | Error>> {
    const found = new Map<number, Identity | Error>();
    const withHashes: { index: number; tenantId: string; hashes: string[]; emailHash: string | null }[] = [];
    try {
      await deps.dropChangedCustomers?.(facts.flatMap(({ tenantId, customerId }) => (customerId ? [{ tenantId, customerId }] : [])));
    } catch (error) {
      // Which contacts are stale is unknown: the batch's purchases fail and are retried.
      for (const { index } of facts) found.set(index, error instanceof Error ? error : new Error(String(error)));
      return found;
    }
    await Promise.all(
      facts.map(async ({ index, tenantId, customerId, buyerEmail }) => {
        try {
          // A Square Online payment carries the buyer's email and often no customer: that email is an identity too.
          const contacts = customerId ? await deps.customerContacts(tenantId, customerId) : null;
          const emails = emailHashes(deps.hasher, [contacts?.email, buyerEmail]);
          const hashes = [...emails, ...phoneHashes(deps.hasher, contacts?.phone, deps.workspace(tenantId).country)];
          if (hashes.length) withHashes.push({ index, tenantId, hashes, emailHash: emails[0] ?? null });
          else found.set(index, { hashes, resolution: { kind: 'anonymous' }, emailHash: null });
        } catch (error) {
          found.set(index, error instanceof Error ? error : new Error(String(error)));
        }
      }),
    );
    if (withHashes.length) {
      const consumers = await deps.consumersByIdentity(withHashes.map((w) => w.hashes));
      withHashes.forEach(({ index, tenantId, hashes, emailHash }, i) => {
        const consumerId = consumers[i];
        found.set(index, {
          hashes,
          resolution: consumerId ? { kind: 'consumer', consumerId, walletId: deps.walletIdFor(tenantId, consumerId) } : { kind: 'anonymous' },
          emailHash,
        });
      });
    }
    return found;
  }

  /**
   * Adds to the consumers just identified the emails they verified, for those a limited promotion may count (one read
   * for the batch; none in a batch without one): a use counted under such an email before they joined counts too.
   */
  async function addVerifiedEmails(identified: readonly { index: number }[], facts: readonly IngestionFact[], identities: Map<number, Identity | Error>): Promise<void> {
    if (!deps.verifiedEmailsOf) return;
    const counted = identified.flatMap(({ index }) => {
      const fact = facts[index];
      const identity = identities.get(index);
      if (fact?.kind !== 'payment' || !identity || identity instanceof Error || identity.resolution.kind !== 'consumer') return [];
      const limited = useStreamsOf(fact.payment, promotionsOf(fact.tenantId), countedKeysOf(fact.payment, buyerOf(identity))).length > 0;
      return limited ? [{ index, identity, consumerId: identity.resolution.consumerId }] : [];
    });
    if (!counted.length) return;
    const emails = await deps.verifiedEmailsOf([...new Set(counted.map((c) => c.consumerId))]);
    for (const { index, identity, consumerId } of counted) identities.set(index, { ...identity, verifiedEmailHashes: emails.get(consumerId) ?? [] });
  }

  /** The promotion-use streams the payments just identified may count on (`useStreamsOf`): none without a limited promotion. */
  function useStreamsFor(identified: readonly { index: number }[], facts: readonly IngestionFact[], identities: ReadonlyMap<number, Identity | Error>): string[] {
    const streams = identified.flatMap(({ index }) => {
      const fact = facts[index];
      const identity = identities.get(index);
      if (fact?.kind !== 'payment' || !identity || identity instanceof Error) return [];
      return useStreamsOf(fact.payment, promotionsOf(fact.tenantId), countedKeysOf(fact.payment, buyerOf(identity)));
    });
    return [...new Set(streams)];
  }

  /**
   * The rules a payment earns by, given when it was created: the rule set's history, not the rules active now. A
   * payment taken before the workspace connected its merchant is before the program too (until 2026-12-07 such a
   * sale, updated at Square after the connect, earned under a rule already active).
   */
  function ruleFor(tenantId: string, createdAt: string): { activeRule: null; rules: RuleRef[]; beforeProgram: boolean } {
    // Every caller asks through here (the decision, the visit check, the order reads): a sale from before the connect
    // earns nothing, counts no visit and reads no order.
    if (beforeConnection(deps.workspace(tenantId), createdAt)) return { activeRule: null, rules: [], beforeProgram: true };
    const inForce = rulesInForce(deps.ruleSet(tenantId), createdAt);
    return inForce.kind === 'rules'
      ? { activeRule: null, rules: inForce.rules.map(({ ruleId, version, rule }) => ({ ruleId, version, rule })), beforeProgram: false }
      : { activeRule: null, rules: [], beforeProgram: inForce.kind === 'before_program' };
  }

  /**
   * The Square orders of completing payments whose rules, or a promotion in force, need one: read together, each
   * failure kept for its fact.
   */
  async function readOrders(facts: readonly { index: number; fact: IngestionFact }[]): Promise<Map<number, PurchaseOrder | null | Error>> {
    const read = new Map<number, PurchaseOrder | null | Error>();
    await Promise.all(
      facts.map(async ({ index, fact }) => {
        if (fact.kind !== 'payment' || !fact.payment.orderId) return;
        const need = orderNeed(ruleFor(fact.tenantId, fact.payment.createdAt).rules, promotionsOf(fact.tenantId), fact.payment);
        if (!need.order || !deps.purchaseOrder) return;
        try {
          read.set(index, await deps.purchaseOrder(fact.tenantId, fact.payment.orderId, need.categories));
        } catch (error) {
          read.set(index, error instanceof Error ? error : new Error(String(error)));
        }
      }),
    );
    return read;
  }

  /**
   * Links a purchase held for nobody to the customer (or buyer email) a later report of its payment carries: the
   * fact fails (and is retried) when the customer could not be looked up, as a completing payment's does.
   */
  function linkCustomer(state: PaymentState, fact: IngestionFact & { kind: 'payment' }, identity: Identity | Error | undefined): { events: PaymentEvent[]; result: FactResult } {
    if (identity instanceof Error || identity === undefined) return { events: [], result: { ok: false, error: identity ?? new Error('the customer was not looked up') } };
    const { payment } = fact;
    const command = { type: 'LinkCustomer', tenantId: fact.tenantId, customerId: payment.customerId, identityHashes: identity.hashes, updatedAt: payment.updatedAt, source: fact.source } as const;
    const events = paymentDecider.decide(command, state);
    if (!events.length) return { events, result: { ok: true, result: { outcome: outcomeOf(state, fact.source), position: undefined } } };
    return { events, result: { ok: true, result: { outcome: 'customer_linked', position: undefined, detail: { paymentId: payment.id, customerId: payment.customerId } } } };
  }

  /**
   * Decides every fact of one stream in order on its state. Returns the purchase events, each fact's result,
   * and the wallet events the purchase events cause (when inline).
   */
  // Over 80 lines because it is one loop over a stream's facts, each kind (payment with its order's visit, refund) decided on the state the loop carries.
  function decideStream(
    load: StreamLoad,
    items: readonly { index: number; fact: IngestionFact }[],
    identities: Map<number, Identity | Error>,
    orders: Map<string, OrderInBatch>,
    purchaseOrders: ReadonlyMap<number, PurchaseOrder | null | Error>,
    uses: UsesInBatch,
  ): { events: DecidedEvent[]; results: Map<number, FactResult>; wrote: Set<number> } {
    let state = load.state;
    const events: DecidedEvent[] = [];
    const results = new Map<number, FactResult>();
    const wrote = new Set<number>();
    for (const { index, fact } of items) {
      let decided: PaymentEvent[];
      if (fact.kind === 'payment') {
        if (state.status === 'completed') {
          const link = linksCustomer(state, fact) ? linkCustomer(state, fact, identities.get(index)) : undefined;
          results.set(index, link?.result ?? { ok: true, result: { outcome: outcomeOf(state, fact.source), position: undefined } });
          if (!link?.events.length) continue;
          wrote.add(index);
          for (const event of link.events) {
            state = paymentDecider.evolve(state, event);
            events.push({ event, metadata: fact.metadata, index });
          }
          continue;
        }
        const { payment } = fact;
        const completing = payment.status === 'COMPLETED';
        const identity = completing ? identities.get(index) : { hashes: [], resolution: { kind: 'anonymous' } as const, emailHash: null };
        if (identity instanceof Error || identity === undefined) {
          results.set(index, { ok: false, error: identity ?? new Error('the customer was not looked up') });
          continue;
        }
        // A limited promotion's use is recorded under the customer's key, and counts the uses of all their keys.
        const buyer = buyerOf(identity);
        const customerKey = customerKeyOf(payment, buyer);
        const countedKeys = countedKeysOf(payment, buyer);
        // The order a rule needed could not be read: the fact fails and is retried, it never earns as if empty.
        const purchaseOrder = completing ? purchaseOrders.get(index) : undefined;
        if (purchaseOrder instanceof Error) {
          results.set(index, { ok: false, error: purchaseOrder });
          continue;
        }
        // A tender of an order under a visit rule: the order records it, and the first completion at the minimum counts the visit.
        let orderVisit: OrderVisit | null = null;
        const orderKey = orderStreamOf(fact);
        const order = orderKey ? orders.get(orderKey) : undefined;
        if (order && payment.orderId && underVisitRule(fact)) {
          const observed = orderVisitDecider.decide(
            {
              type: 'ObserveTender',
              orderId: payment.orderId,
              tenantId: fact.tenantId,
              paymentId: payment.id,
              // A declined or voided tender adds nothing to the order's amount.
              amountMinor: payment.status === 'FAILED' || payment.status === 'CANCELED' ? 0 : payment.amountMinor,
              completing,
              minimumMinor: visitMinimumOf(ruleFor(fact.tenantId, payment.createdAt).rules, payment.locationId),
              now: payment.updatedAt,
            },
            order.state,
          );
          for (const event of observed) {
            order.state = orderVisitDecider.evolve(order.state, event);
            order.events.push({ event, metadata: fact.metadata });
          }
          if (completing) orderVisit = visitOf(order.state, payment.orderId, payment.id);
        }
        decided = paymentDecider.decide(
          {
            type: 'ObservePayment',
            tenantId: fact.tenantId,
            merchantId: fact.merchantId,
            payment: paymentFacts(payment),
            identityHashes: identity.hashes,
            resolution: identity.resolution,
            ...(completing ? ruleFor(fact.tenantId, payment.createdAt) : { activeRule: null }),
            order: purchaseOrder ?? null,
            workspaceCurrency: deps.workspace(fact.tenantId).currency,
            orderVisit,
            promotions: promotionsOf(fact.tenantId),
            promotionUses: (promotionId, localDate) => {
              return countedKeys.length ? uses.count(promotionId, countedKeys, localDate, { paymentId: payment.id, orderId: payment.orderId }) : null;
            },
            orderBonusTaken: order ? bonusTakenBy(order.state, payment.id) : false,
            source: fact.source,
            walletEffect,
          },
          state,
        );
        const completion = decided.find((e) => e.type === 'PurchaseCompleted');
        const applied = completion?.type === 'PurchaseCompleted' ? completion.data.promotion : null;
        const limited = applied && promotionsOf(fact.tenantId).find((p) => p.promotionId === applied.promotionId)?.promotion.limitPerCustomerPerDay !== undefined;
        if (applied?.incentive.type === 'bonus' && order && payment.orderId) {
          const command = { type: 'RecordBonus', orderId: payment.orderId, tenantId: fact.tenantId, paymentId: payment.id, promotionId: applied.promotionId, now: payment.updatedAt } as const;
          for (const event of orderVisitDecider.decide(command, order.state)) {
            order.state = orderVisitDecider.evolve(order.state, event);
            order.events.push({ event, metadata: fact.metadata });
          }
        }
        const key = applied && limited ? customerKey : null;
        if (applied && key) {
          const { promotionId, localDate } = applied;
          uses.record({ tenantId: fact.tenantId, promotionId, customerKey: key, localDate, paymentId: payment.id, orderId: payment.orderId, now: payment.updatedAt }, fact.metadata);
        }
        const result: IngestionResult =
          completion?.type === 'PurchaseCompleted'
            ? { outcome: completion.data.outcome, position: undefined, detail: { points: completion.data.points, paymentId: payment.id } }
            : decided.length
              ? { outcome: 'recorded', position: undefined, detail: { status: payment.status } }
              : { outcome: outcomeOf(state, fact.source), position: undefined };
        results.set(index, { ok: true, result });
      } else {
        const { refund } = fact;
        decided = paymentDecider.decide(
          {
            type: 'ObserveRefund',
            tenantId: fact.tenantId,
            refundId: refund.id,
            paymentId: refund.paymentId ?? '',
            status: refund.status,
            amountMinor: refund.amountMinor,
            currency: refund.currency,
            source: fact.source,
            walletEffect,
          },
          state,
        );
        const event = decided[0];
        const result: IngestionResult =
          event?.type === 'RefundApplied'
            ? { outcome: 'refund_applied', position: undefined, detail: { pointsReversed: event.data.pointsReversed } }
            : event?.type === 'RefundHeld'
              ? { outcome: 'refund_held', position: undefined }
              : state.status === 'completed' && state.tenantId !== fact.tenantId
                ? // The decider reverses nothing for a refund whose merchant did not take the payment.
                  { outcome: 'ignored', position: undefined, detail: { reason: "the refund's merchant did not take this payment" } }
                : state.status === 'completed' && !state.refunds.has(refund.id) && state.currency !== refund.currency
                  ? // Nor for one in another currency than the payment's.
                    { outcome: 'currency_mismatch', position: undefined, detail: { refundCurrency: refund.currency, paymentCurrency: state.currency } }
                  : { outcome: 'duplicate', position: undefined };
        results.set(index, { ok: true, result });
      }
      if (decided.length) wrote.add(index);
      for (const event of decided) {
        state = paymentDecider.evolve(state, event);
        events.push({ event, metadata: fact.metadata, index });
      }
    }
    return { events, results, wrote };
  }

  /**
   * Turns decided purchase events into append requests: the orders', the purchase streams', then the wallets'
   * (inline). A wallet effect is decided on the wallet's state (the one this process holds, else its snapshot and
   * the events after it) and appended at that revision, so the balance bounds hold on this path too; a state held
   * here that another writer has moved past makes the append conflict, and the wallet is read again. A credit
   * the wallet refuses (a bound) changes the fact's outcome to `credit_refused`.
   */
  /**
   * Reads, before the batch takes its turn, the wallets its effects touch that this process holds no state of:
   * the turn itself then does no reads in the common case (a state another batch appended since is newer in
   * `recent`, and wins).
   */
  async function warmWallets(decided: Map<string, { events: DecidedEvent[] }>): Promise<Map<string, FoldedStream<WalletState>>> {
    const streams = new Set<string>();
    for (const { events } of decided.values()) {
      for (const { event } of events) {
        const command = walletCommandFor(event);
        if (command) streams.add(walletStream(command.walletId));
      }
    }
    const missing = [...streams].filter((stream) => !deps.wallets.recent.get(stream, walletDecider.evolve));
    if (!missing.length) return new Map();
    // One read for the whole batch (a statement per wallet would cost more than the batch's own append); a long
    // wallet is read whole once, then held in `recent` like any state this process decided on.
    const read = await deps.store.readStreams(missing);
    const warmed = new Map<string, FoldedStream<WalletState>>();
    for (const stream of missing) {
      const events = read.get(stream) ?? [];
      const folded = { state: foldDecoded(walletDecider, events), revision: events.at(-1)?.revision, snapshotRevision: -1 };
      warmed.set(stream, folded);
      if (folded.revision !== undefined) deps.wallets.recent.set(stream, walletDecider.evolve, folded);
    }
    return warmed;
  }

  async function appendsFor(
    decided: Map<string, { events: DecidedEvent[] }>,
    loads: Map<string, StreamLoad>,
    orders: Map<string, OrderInBatch>,
    orderLoads: Map<string, OrderLoad>,
    uses: UsesInBatch,
    warmed: ReadonlyMap<string, FoldedStream<WalletState>>,
  ): Promise<{ appends: StreamAppend[]; refused: Map<number, Record<string, unknown>>; wallets: Map<string, FoldedStream<WalletState>> }> {
    // Orders first: where the store appends stream by stream, a visit is counted before any purchase relies on it,
    // and a conflict on the order stops the batch before a purchase is written.
    const orderAppends: StreamAppend[] = [];
    for (const [stream, order] of orders) {
      if (!order.events.length) continue;
      const revision = orderLoads.get(stream)?.revision;
      orderAppends.push({
        stream,
        events: order.events.map(({ event, metadata }) => orderVisitDecider.codec.encode(event, deps.runtime.newId(), metadata)),
        expected: revision === undefined ? 'no_stream' : revision,
      });
    }
    // A promotion's daily uses likewise: counted before the purchase that took one is written.
    orderAppends.push(...uses.appends(deps.runtime.newId));
    const purchases: StreamAppend[] = [];
    const effects: { command: NonNullable<ReturnType<typeof walletCommandFor>>; index: number; metadata: EventMetadata; causationId: string }[] = [];
    for (const [stream, { events }] of decided) {
      if (!events.length) continue;
      const newEvents: NewEvent[] = [];
      for (const { event, metadata, index } of events) {
        const id = deps.runtime.newId();
        newEvents.push(paymentDecider.codec.encode(event, id, metadata));
        const command = walletEffect === 'inline' ? walletCommandFor(event) : undefined;
        if (command) effects.push({ command, index, metadata, causationId: id });
      }
      const revision = loads.get(stream)?.revision;
      purchases.push({ stream, events: newEvents, expected: revision === undefined ? 'no_stream' : revision });
    }
    const targets = [...new Set(effects.map((e) => walletStream(e.command.walletId)))];
    const loaded = await Promise.all(
      targets.map(async (stream) => [stream, deps.wallets.recent.get<WalletState>(stream, walletDecider.evolve) ?? warmed.get(stream) ?? (await loadWithSnapshot(deps.store, deps.wallets, stream, walletDecider))] as const),
    );
    const before = new Map(loaded);
    const states = new Map([...before].map(([stream, folded]) => [stream, folded.state]));
    const wallets = new Map<string, NewEvent[]>();
    const refused = new Map<number, Record<string, unknown>>();
    for (const { command, index, metadata, causationId } of effects) {
      const stream = walletStream(command.walletId);
      let state = states.get(stream) ?? walletDecider.initialState;
      for (const walletEvent of walletDecider.decide(command, state)) {
        state = walletDecider.evolve(state, walletEvent);
        if (walletEvent.type === 'PointsCreditRefused') refused.set(index, { reason: walletEvent.data.reason, limit: walletEvent.data.limit, points: walletEvent.data.points });
        const list = wallets.get(stream) ?? [];
        list.push(walletDecider.codec.encode(walletEvent, deps.runtime.newId(), { correlationId: metadata.correlationId ?? causationId, causationId, actor: 'system:wallet-credits' }));
        wallets.set(stream, list);
      }
      states.set(stream, state);
    }
    const walletAppends = [...wallets].map(([stream, events]) => {
      const revision = before.get(stream)?.revision;
      return { stream, events, expected: revision === undefined ? ('no_stream' as const) : revision };
    });
    const after = new Map<string, FoldedStream<WalletState>>();
    for (const { stream, events } of walletAppends) {
      const start = before.get(stream);
      const base = start?.revision ?? -1;
      const state = states.get(stream);
      if (state) after.set(stream, { state, revision: base + events.length, snapshotRevision: start?.snapshotRevision ?? -1 });
    }
    return { appends: [...orderAppends, ...purchases, ...walletAppends], refused, wallets: after };
  }

  /**
   * A payment read for a tenant that no longer holds its merchant by the time it is decided (a poll run lists a
   * connection, then the merchant disconnects or connects elsewhere while the run goes on): `no_connection`, as a
   * webhook about it would be, not credited to the tenant it was read for.
   */
  function dropFactsOfReleasedMerchants(byStream: Map<string, { index: number; fact: IngestionFact }[]>, results: FactResult[]) {
    if (!deps.tenantForMerchant) return;
    for (const [stream, list] of byStream) {
      const kept = list.filter(({ index, fact }) => {
        if (fact.kind !== 'payment' || deps.tenantForMerchant!(fact.merchantId) === fact.tenantId) return true;
        results[index] = { ok: true, result: { outcome: 'no_connection', position: undefined, detail: { reason: 'the workspace no longer holds this merchant' } } };
        return false;
      });
      if (kept.length) byStream.set(stream, kept);
      else byStream.delete(stream);
    }
  }

  /**
   * Ingests facts as one batch. Facts whose customer could not be looked up come back as failures; the rest
   * are decided and appended together, with `commit` (default: `store.appendMany`).
   */
  // Over 80 lines because the batch path reads as one sequence (catch-up, lookups, decisions in the wallet turn, appends with their conflict retries).
  async function ingestBatch(facts: readonly IngestionFact[], commit?: BatchCommit, options: { caughtUp?: boolean } = {}): Promise<FactResult[]> {
    const results: FactResult[] = facts.map(() => ({ ok: true, result: { outcome: 'ignored', position: undefined } }));
    const byStream = new Map<string, { index: number; fact: IngestionFact }[]>();
    facts.forEach((fact, index) => {
      if (fact.kind === 'refund') {
        if (!fact.refund.paymentId) return void (results[index] = { ok: true, result: { outcome: 'ignored', position: undefined, detail: { reason: 'refund without a payment' } } });
        if (fact.refund.status !== 'COMPLETED') {
          return void (results[index] = { ok: true, result: { outcome: 'refund_pending', position: undefined, detail: { status: fact.refund.status } } });
        }
      }
      const stream = streamOf(fact);
      const list = byStream.get(stream) ?? [];
      list.push({ index, fact });
      byStream.set(stream, list);
    });
    const write = commit ?? (async (requests) => (await deps.store.appendMany(requests)).position);
    if (!byStream.size) {
      await write([], results);
      return results;
    }

    if (!options.caughtUp) await deps.catchUp();
    dropFactsOfReleasedMerchants(byStream, results);
    if (!byStream.size) {
      await write([], results);
      return results;
    }
    const identities = new Map<number, Identity | Error>();
    const purchaseOrders = new Map<number, PurchaseOrder | null | Error>();
    const orderStreams = [...new Set([...byStream.values()].flat().flatMap(({ fact }) => orderStreamOf(fact) ?? []))];
    // Whom a promotion's daily uses count for is known once the customers are looked up: their streams are read then.
    let useStreams: string[] = [];
    const loaded = await load([...byStream.keys()], orderStreams);
    let loads = loaded.payments;
    let orderLoads = loaded.orders;
    let useLoads = loaded.uses;
    let pending = [...byStream.keys()];
    const decided = new Map<string, ReturnType<typeof decideStream>>();
    /** Wallet states read before the turn (see `warmWallets`); a wallet that conflicted is dropped and read again. */
    const warmed = new Map<string, FoldedStream<WalletState>>();

    for (let round = 1; ; round++) {
      // Customers are looked up only for payments that complete now, and only once per fact across rounds.
      const lookups: { index: number; tenantId: string; customerId: string | null; buyerEmail: string | null }[] = [];
      const orderReads: { index: number; fact: IngestionFact }[] = [];
      // Purchases completed already are looked up only to link a customer Square named since (no order, no promotion).
      const links: typeof lookups = [];
      for (const stream of pending) {
        const state = loads.get(stream)?.state;
        if (state?.status === 'completed') {
          for (const { index, fact } of byStream.get(stream) ?? []) {
            if (linksCustomer(state, fact) && !identities.has(index)) links.push({ index, tenantId: fact.tenantId, customerId: fact.payment.customerId, buyerEmail: fact.payment.buyerEmail });
          }
          continue;
        }
        for (const { index, fact } of byStream.get(stream) ?? []) {
          if (fact.kind === 'payment' && fact.payment.status === 'COMPLETED' && !identities.has(index)) {
            lookups.push({ index, tenantId: fact.tenantId, customerId: fact.payment.customerId, buyerEmail: fact.payment.buyerEmail });
            orderReads.push({ index, fact });
          }
        }
      }
      if (lookups.length || links.length) {
        // The customers and the orders are read at once: a purchase waits for the slower of the two, not both.
        const [identified, read] = await Promise.all([identify([...lookups, ...links]), readOrders(orderReads)]);
        for (const [index, identity] of identified) identities.set(index, identity);
        for (const [index, order] of read) purchaseOrders.set(index, order);
        await addVerifiedEmails(lookups, facts, identities);
        const uses = useStreamsFor(lookups, facts, identities);
        const unread = uses.filter((stream) => !useLoads.has(stream));
        if (unread.length) useLoads = new Map([...useLoads, ...(await load([], [], unread)).uses]);
        useStreams = [...new Set([...useStreams, ...uses])];
      }
      // Orders are shared between payment streams: each round decides them afresh from what was read.
      const orders = new Map<string, OrderInBatch>([...orderLoads].map(([stream, o]) => [stream, { state: o.state, events: [] }]));
      const uses = new UsesInBatch(useLoads);
      for (const stream of pending) {
        const load = loads.get(stream);
        if (load) decided.set(stream, decideStream(load, byStream.get(stream) ?? [], identities, orders, purchaseOrders, uses));
      }
      const current: FactResult[] = [...results];
      const wrote = new Set<number>();
      for (const streamDecision of decided.values()) {
        for (const [index, result] of streamDecision.results) current[index] = result;
        for (const index of streamDecision.wrote) wrote.add(index);
      }
      if (walletEffect === 'inline') for (const [stream, folded] of await warmWallets(decided)) warmed.set(stream, folded);
      const attempt = async () => {
        const { appends, refused, wallets } = await appendsFor(decided, loads, orders, orderLoads, uses, warmed);
        for (const [index, detail] of refused) current[index] = { ok: true, result: { outcome: 'credit_refused', position: undefined, detail } };
        const position = await write(appends, current);
        // The wallets' states as appended: the next batch decides on them without reading the wallets again.
        for (const [stream, folded] of wallets) deps.wallets.recent.set(stream, walletDecider.evolve, folded);
        return position;
      };
      try {
        const position = walletEffect === 'inline' ? await walletTurns.run('wallet-effects', attempt) : await attempt();
        return current.map((r, index) => (r.ok && wrote.has(index) ? { ok: true, result: { ...r.result, position } } : r));
      } catch (error) {
        if (!(error instanceof ConcurrencyConflict) || round >= MAX_ROUNDS) throw error;
        // Another writer got there first: re-read and re-decide only what conflicted (and, where the store
        // appends stream by stream, what it had already written, which now decides as already done). A wallet
        // that conflicted is read again from the store when the appends are built anew.
        const conflicting = error instanceof MultiStreamConflict ? [...error.conflicts.map((c) => c.stream), ...error.written.map((w) => w.stream)] : [error.stream];
        for (const stream of conflicting) {
          if (byStream.has(stream)) continue;
          deps.wallets.recent.delete(stream);
          warmed.delete(stream);
        }
        if (orderStreams.length || useStreams.length) {
          // A batch with orders or promotion uses re-decides everything: a re-decided tender may change what its
          // order (or a customer's uses of the day) decided for other payments, and their events are made afresh.
          pending = [...byStream.keys()];
          const fresh = await load(pending, orderStreams, useStreams);
          loads = fresh.payments;
          orderLoads = fresh.orders;
          useLoads = fresh.uses;
          continue;
        }
        const purchaseConflicts = conflicting.filter((s) => byStream.has(s));
        // Only wallets conflicted (another process wrote them): the purchase decisions stand, the wallets are read again.
        pending = conflicting.length > 0 && purchaseConflicts.length === 0 ? [] : purchaseConflicts.length ? purchaseConflicts : [...byStream.keys()];
        if (!pending.length) continue;
        const fresh = await load(pending);
        loads = new Map([...loads, ...fresh.payments]);
      }
    }
  }

  async function one(fact: IngestionFact): Promise<IngestionResult> {
    const [result] = await ingestBatch([fact]);
    if (!result) throw new Error('no result');
    if (!result.ok) throw result.error;
    return result.result;
  }

  return {
    ingestBatch,
    ingestPayment: (tenantId: string, merchantId: string, payment: SquarePayment, source: string, metadata: EventMetadata): Promise<IngestionResult> =>
      one({ kind: 'payment', tenantId, merchantId, payment, source, metadata }),
    ingestRefund: (tenantId: string, refund: SquareRefund, source: string, metadata: EventMetadata): Promise<IngestionResult> =>
      one({ kind: 'refund', tenantId, refund, source, metadata }),
  };
}

export type IngestionService = ReturnType<typeof ingestionService>;

/** Keyed hashes of a customer's normalised emails and phone (read in the merchant's country when it has no `+`). */
export function identityHashes(hasher: IdentityHasher, emails: readonly (string | null | undefined)[], phone: string | null | undefined, country: string | null): string[] {
  return [...emailHashes(hasher, emails), ...phoneHashes(hasher, phone, country)];
}

/** Keyed hashes of the normalisable emails, in the order given, each once. */
function emailHashes(hasher: IdentityHasher, emails: readonly (string | null | undefined)[]): string[] {
  return [...new Set(emails.map((e) => tryNormaliseEmail(e)).filter((e): e is string => e !== null))].map((e) => hasher.hashEmail(e));
}

function phoneHashes(hasher: IdentityHasher, phone: string | null | undefined, country: string | null): string[] {
  const normalised = tryNormalisePhone(phone, country);
  return normalised ? [hasher.hashPhone(normalised)] : [];
}
