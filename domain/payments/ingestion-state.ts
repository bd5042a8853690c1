/**
 * What ingestion decides on, held in memory: which tenant holds each Square merchant, each tenant's connection
 * and its reward rules. Folded from the event feed with the very deciders that write those streams, so the
 * view cannot disagree with the write model about what an event means; it is only ever behind it.
 *
 * Freshness: before a batch is decided, the caller brings the view up to the feed's head as read at that
 * moment (`catchUp`). Every event committed before a webhook was stored is at or below that head (the store
 * answers a `complete` head or throws, retryable), so a revocation or a rule change recorded before the webhook
 * arrived is always seen; the view is never read behind the write it must respect. Each instance keeps its own.
 */
import type { EventStore, Position, RecordedEvent } from '../ports/event-store.ts';
import { squareConnectionDecider } from '../connections/decider.ts';
import { CONNECTION_STREAM_PREFIX, initialConnectionState, type SquareConnectionState } from '../connections/events.ts';
import { merchantReservationDecider, type MerchantReservationState } from '../connections/merchant-reservation.ts';
import { activeRule, ruleSetDecider, type RuleSetState } from '../rewards/rule-set.ts';
import type { Workspace } from './ingestion.ts';
import type { RewardRule } from '../rewards/rule.ts';
import { PROMOTIONS_STREAM_PREFIX, promotionsDecider, type PromotionsState } from '../promotions/decider.ts';
import type { ScheduledPromotion } from '../promotions/promotion.ts';

export const MERCHANT_STREAM_PREFIX = 'square-merchant-';
export const RULES_STREAM_PREFIX = 'reward-rules-';
const STREAM_PREFIXES = [CONNECTION_STREAM_PREFIX, MERCHANT_STREAM_PREFIX, RULES_STREAM_PREFIX, PROMOTIONS_STREAM_PREFIX] as const;

/** Events read per page while catching up (the first catch-up of a large log takes several pages). */
const PAGE = 2_000;

export interface ActiveRuleVersion {
  ruleId: string;
  version: number;
  rule: RewardRule;
}

export class IngestionState {
  private readonly connections = new Map<string, SquareConnectionState>();
  private readonly reservations = new Map<string, MerchantReservationState>();
  private readonly rules = new Map<string, RuleSetState>();
  private readonly promotionSets = new Map<string, PromotionsState>();
  private position: Position | undefined;
  private catchingUp: Promise<void> | undefined;
  /** Events folded since the view was made (for tests and metrics). */
  applied = 0;

  constructor(private readonly store: EventStore) {}

  /** Folds one event of the four stream families; anything else is ignored. */
  apply(event: RecordedEvent): void {
    if (event.stream.startsWith(CONNECTION_STREAM_PREFIX)) {
      const tenantId = event.stream.slice(CONNECTION_STREAM_PREFIX.length);
      const before = this.connections.get(tenantId) ?? initialConnectionState;
      this.connections.set(tenantId, squareConnectionDecider.evolve(before, squareConnectionDecider.codec.decode(event)));
    } else if (event.stream.startsWith(MERCHANT_STREAM_PREFIX)) {
      const merchantId = event.stream.slice(MERCHANT_STREAM_PREFIX.length);
      const before = this.reservations.get(merchantId) ?? merchantReservationDecider.initialState;
      this.reservations.set(merchantId, merchantReservationDecider.evolve(before, merchantReservationDecider.codec.decode(event)));
    } else if (event.stream.startsWith(RULES_STREAM_PREFIX)) {
      const tenantId = event.stream.slice(RULES_STREAM_PREFIX.length);
      const before = this.rules.get(tenantId) ?? ruleSetDecider.initialState;
      this.rules.set(tenantId, ruleSetDecider.evolve(before, ruleSetDecider.codec.decode(event)));
    } else if (event.stream.startsWith(PROMOTIONS_STREAM_PREFIX)) {
      const tenantId = event.stream.slice(PROMOTIONS_STREAM_PREFIX.length);
      const before = this.promotionSets.get(tenantId) ?? promotionsDecider.initialState;
      this.promotionSets.set(tenantId, promotionsDecider.evolve(before, promotionsDecider.codec.decode(event)));
    } else {
      return;
    }
    this.applied += 1;
  }

  /**
   * Brings the view to the feed's head as it is now: one read of the head, and one filtered read of what came
   * since the last catch-up (usually nothing). Concurrent callers share one catch-up.
   */
  async catchUp(): Promise<void> {
    while (this.catchingUp) await this.catchingUp;
    this.catchingUp = this.readToHead().finally(() => {
      this.catchingUp = undefined;
    });
    return this.catchingUp;
  }

  private async readToHead(): Promise<void> {
    // A head at or after every event committed before now: when appends in progress hold such events back, the store
    // throws EventStoreUnavailable, and the batch fails and is retried, rather than decide on a view behind a write
    // it must respect (until 2026-12-07, an append open over 2 s left the head undefined, and this returned silently).
    const head = await this.store.headPosition({ complete: true });
    // Only an empty store has no head: nothing to fold.
    if (!head) return;
    if (this.position && !this.store.isAfter(head, this.position)) return;
    for (;;) {
      const from = this.position ?? 'start';
      const page = await this.store.readAll({ from, to: head, limit: PAGE, filter: { streamPrefixes: STREAM_PREFIXES } });
      // Forwards reads include `from`: the event at our own position was folded already.
      const fresh = this.position ? page.filter((e) => this.store.isAfter(e.position, this.position as Position)) : page;
      for (const event of fresh) this.apply(event);
      const last = page.at(-1);
      if (last && (!this.position || this.store.isAfter(last.position, this.position))) this.position = last.position;
      if (page.length < PAGE || fresh.length === 0) break;
    }
    // Nothing of ours may lie between the last event read and the head: the view stands at the head.
    if (!this.position || this.store.isAfter(head, this.position)) this.position = head;
  }

  /** The tenant whose connection to this merchant is active, if any (the write model's rule, on the view). */
  tenantForMerchant(merchantId: string): string | undefined {
    const reservation = this.reservations.get(merchantId);
    if (!reservation || reservation.status !== 'claimed') return undefined;
    const connection = this.connections.get(reservation.tenantId);
    return connection?.status === 'active' && connection.merchantId === merchantId ? reservation.tenantId : undefined;
  }

  connection(tenantId: string): SquareConnectionState {
    return this.connections.get(tenantId) ?? initialConnectionState;
  }

  /** The tenant's rule set, with the history of which rule was in force when (`ruleInForce`). */
  ruleSet(tenantId: string): RuleSetState {
    return this.rules.get(tenantId) ?? ruleSetDecider.initialState;
  }

  /** The workspace's promotions, ended ones included (a payment made before the end may still use one). */
  promotions(tenantId: string): readonly ScheduledPromotion[] {
    return this.promotionSets.get(tenantId)?.promotions ?? [];
  }

  /** The workspace's currency, country and since when it holds its merchant, from its connection (null: unknown or not connected). */
  workspace(tenantId: string): Workspace {
    const connection = this.connection(tenantId);
    return connection.status === 'not_connected'
      ? { currency: null, country: null, connectedSince: null }
      : { currency: connection.currency, country: connection.country, connectedSince: connection.connectedSince };
  }

  activeRule(tenantId: string): ActiveRuleVersion | null {
    const state = this.rules.get(tenantId);
    const active = state ? activeRule(state) : undefined;
    return active ? { ruleId: active.ruleId, version: active.version, rule: active.rule } : null;
  }
}
