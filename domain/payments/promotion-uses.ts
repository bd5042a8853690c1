/**
 * The daily uses of limited promotions while one ingestion batch is decided: which use streams a batch reads
 * (those of the limited promotions each completing payment could meet), the counts the decider sees, and the
 * uses the batch appends, at the revisions it read (see `promotions/uses.ts`).
 */
import { tryNormaliseEmail } from '../identity/normalise.ts';
import type { EventMetadata, NewEvent, RecordedEvent, StreamAppend } from '../ports/event-store.ts';
import { qualifies, type ScheduledPromotion } from '../promotions/promotion.ts';
import { promotionUsesDecider, promotionUsesStream, purchasesOtherThan, type PromotionUse, type PromotionUseEvent, type PromotionUsesState } from '../promotions/uses.ts';
import type { SquarePayment } from '../ports/square.ts';

export interface UsesLoad {
  state: PromotionUsesState;
  revision: number | undefined;
}

export const foldUses = (events: readonly RecordedEvent[]): UsesLoad => ({
  state: events.reduce((s, e) => promotionUsesDecider.evolve(s, promotionUsesDecider.codec.decode(e)), promotionUsesDecider.initialState),
  revision: events.at(-1)?.revision,
});

/** What ingestion knows of a completing payment's buyer once their Square customer is looked up. */
export interface BuyerIdentity {
  /** The keyed hash of their email: the Square customer's, else the payment's buyer email; null with neither. */
  emailHash: string | null;
  /** The customer of this workspace they resolved to, if any. */
  consumerId: string | null;
  /**
   * The keyed hashes of the emails that customer verified (and owns now): a use counted under one before they joined
   * counts against them. Absent: not read (no limited promotion could count their uses), taken as none.
   */
  verifiedEmailHashes?: readonly string[];
}

/**
 * Whom a payment's daily uses are counted for: the person, however they paid. The customer Tally resolved them to
 * (`consumer:<id>`), so that paying once as a Square customer and once by email alone (a Square Online checkout) is
 * one person's count; without one, their email as the keyed hash users' emails are stored as (`email:<hash>`: no
 * address in a stream name), the Square customer's or else the buyer's; without an email, the Square customer id
 * (no Square id has a colon). Null with none, and a limited promotion then does not apply.
 */
export function customerKeyOf(payment: Pick<SquarePayment, 'customerId'>, buyer: BuyerIdentity): string | null {
  if (buyer.consumerId) return `consumer:${buyer.consumerId}`;
  return buyer.emailHash ?? payment.customerId ?? null;
}

/**
 * Every key whose uses count against a payment: `customerKeyOf`'s first (its own use is recorded there), then, for a
 * payment resolved to a customer of the workspace, the keys the same buyer's uses were counted under before they
 * joined: their email's hash, the payment's Square customer id and the hashes of the emails they verified. Ann pays
 * at 10:00 before registering (counted under her email), registers at 10:05, pays at 12:00, even as a Square customer
 * known by her phone alone: her 12:00 payment counts the 10:00 use. Phones are never keys. Empty with no key.
 */
export function countedKeysOf(payment: Pick<SquarePayment, 'customerId'>, buyer: BuyerIdentity): string[] {
  const key = customerKeyOf(payment, buyer);
  if (!key) return [];
  const earlier = buyer.consumerId ? [buyer.emailHash, payment.customerId, ...(buyer.verifiedEmailHashes ?? [])] : [];
  return [...new Set([key, ...earlier.filter((k): k is string => Boolean(k))])];
}

/** Whether `customerKeyOf` will find a key, before the customer is looked up (the rule preview's question). */
export const hasCustomerKey = (payment: Pick<SquarePayment, 'customerId' | 'buyerEmail'>): boolean => Boolean(payment.customerId) || tryNormaliseEmail(payment.buyerEmail) !== null;

/**
 * The use streams a completing payment may count on: those of its customer's keys (`countedKeysOf`), for each limited
 * promotion it could meet.
 */
export function useStreamsOf(payment: SquarePayment, promotions: readonly ScheduledPromotion[], keys: readonly string[]): string[] {
  if (payment.status !== 'COMPLETED' || !keys.length) return [];
  const limited = promotions.filter((p) => p.promotion.limitPerCustomerPerDay !== undefined);
  return limited.flatMap((p) => {
    // Points are not known yet: any positive amount stands for them (a stream read for nothing costs nothing more).
    const local = qualifies(p, { createdAt: payment.createdAt, locationId: payment.locationId, amountMinor: payment.amountMinor, basePoints: 1, order: 'not_read_yet' });
    return local ? keys.map((key) => promotionUsesStream(p.promotionId, key, local.date)) : [];
  });
}

/** The use streams of one decision round: counts as read plus what the round adds. */
export class UsesInBatch {
  private readonly states: Map<string, PromotionUsesState>;
  private readonly added = new Map<string, { event: PromotionUseEvent; metadata: EventMetadata }[]>();

  constructor(private readonly loads: ReadonlyMap<string, UsesLoad>) {
    this.states = new Map([...loads].map(([stream, load]) => [stream, load.state]));
  }

  /**
   * Purchases that used a promotion for a customer on a local day, under any of their keys (`countedKeysOf`), not
   * counting `payment`'s own (itself, or another tender of its order); null when a key's stream was not read.
   */
  count(promotionId: string, customerKeys: readonly string[], localDate: string, payment: PromotionUse): number | null {
    const states = customerKeys.map((key) => this.states.get(promotionUsesStream(promotionId, key, localDate)));
    if (!states.length || states.some((s) => s === undefined)) return null;
    return purchasesOtherThan({ uses: states.flatMap((s) => s?.uses ?? []) }, payment);
  }

  record(command: { tenantId: string; promotionId: string; customerKey: string; localDate: string; paymentId: string; orderId: string | null; now: string }, metadata: EventMetadata): void {
    const stream = promotionUsesStream(command.promotionId, command.customerKey, command.localDate);
    let state = this.states.get(stream) ?? promotionUsesDecider.initialState;
    for (const event of promotionUsesDecider.decide({ type: 'CountPromotionUse', ...command }, state)) {
      state = promotionUsesDecider.evolve(state, event);
      this.added.set(stream, [...(this.added.get(stream) ?? []), { event, metadata }]);
    }
    this.states.set(stream, state);
  }

  appends(newId: () => string): StreamAppend[] {
    return [...this.added].map(([stream, events]) => {
      const revision = this.loads.get(stream)?.revision;
      const encoded: NewEvent[] = events.map(({ event, metadata }) => promotionUsesDecider.codec.encode(event, newId(), metadata));
      return { stream, events: encoded, expected: revision === undefined ? ('no_stream' as const) : revision };
    });
  }
}
