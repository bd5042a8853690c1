/** Promotion use cases for a workspace: schedule (checked against the merchant's Square locations), end, list. */
import { handleCommand, loadState } from '../shared/command-handler.ts';
import type { CommandPath } from '../shared/command-path.ts';
import type { EventMetadata, EventStore } from '../ports/event-store.ts';
import type { KeyedRuntime } from '../ports/identity.ts';
import { NotFound } from '../shared/errors.ts';
import { createdId, firstCreated } from '../shared/keyed-create.ts';
import { promotionsDecider, promotionsStream, type PromotionsState } from './decider.ts';
import { promotionTimeZone, type MerchantLocations } from './locations.ts';
import { localTime, type Promotion, type ScheduledPromotion } from './promotion.ts';

export interface PromotionsDependencies {
  store: EventStore;
  runtime: KeyedRuntime;
  commands: CommandPath;
  /** The merchant's locations and time zone as Square lists them now (the tenant's connection must be active). */
  merchantLocations(tenantId: string): Promise<MerchantLocations>;
  /**
   * Checks qualifying item variation and category ids against the merchant's Square catalog: unknown ones throw a
   * 400 naming the field; the answer is the warnings (the catalog could not be read, orders cannot be read). No ids:
   * nothing to check, no warning.
   */
  checkCatalog(tenantId: string, ids: { itemVariationIds: readonly string[]; categoryIds: readonly string[] }): Promise<string[]>;
}

/** Namespace of promotion ids derived from (tenant, idempotency key). */
const PROMOTION_NAMESPACE = '5a8e3c27-9b4d-4f61-a2c8-7d1e6b3f9c52';

/**
 * `status`: whether it was ended by hand (`scheduled` until then, whatever its dates). `phase`: where it stands now,
 * on its dates in its time zone: `upcoming` (before `startsOn`), `running` (from `startsOn` through `endsOn`, its days
 * and hours checked per payment), `finished` (after `endsOn`), or `ended` (by hand).
 */
export type PromotionPhase = 'upcoming' | 'running' | 'finished' | 'ended';
export type PromotionView = ScheduledPromotion & { status: 'scheduled' | 'ended'; phase: PromotionPhase };

export function promotionPhase(p: ScheduledPromotion, now: Date): PromotionPhase {
  if (p.endedAt !== null) return 'ended';
  const today = localTime(now.toISOString(), p.timeZone).date;
  if (today < p.promotion.startsOn) return 'upcoming';
  return p.promotion.endsOn !== undefined && today > p.promotion.endsOn ? 'finished' : 'running';
}

export function promotionsService(deps: PromotionsDependencies) {
  const context = (metadata: EventMetadata) => ({ newId: deps.runtime.newId, metadata, path: deps.commands });
  const view = (p: ScheduledPromotion): PromotionView => ({ ...p, status: p.endedAt === null ? 'scheduled' : 'ended', phase: promotionPhase(p, deps.runtime.now()) });
  const now = () => deps.runtime.now().toISOString();
  async function scheduled(tenantId: string): Promise<readonly ScheduledPromotion[]> {
    const { state } = await loadState(deps.store, promotionsStream(tenantId), promotionsDecider);
    return state.promotions;
  }
  return {
    /**
     * `idempotencyKey`: a retry with it answers as the first request did (`replayed`), the promotion as it was then;
     * with another promotion, IDEMPOTENCY_KEY_REUSED. Without one, every call schedules a new promotion.
     */
    async schedule(tenantId: string, promotion: Promotion, by: string, metadata: EventMetadata, idempotencyKey?: string) {
      // Two Square reads, at once: the locations, and the catalog for qualifying items (none named: nothing read).
      const [found, warnings] = await Promise.all([
        deps.merchantLocations(tenantId),
        deps.checkCatalog(tenantId, { itemVariationIds: promotion.itemVariationIds ?? [], categoryIds: promotion.categoryIds ?? [] }),
      ]);
      const timeZone = promotionTimeZone(found, promotion.locationIds);
      const promotionId = createdId(PROMOTION_NAMESPACE, tenantId, idempotencyKey, deps.runtime);
      let result: { state: PromotionsState; position: string | undefined } = await handleCommand(
        deps.store,
        promotionsStream(tenantId),
        promotionsDecider,
        { type: 'SchedulePromotion', tenantId, promotionId, promotion, timeZone, merchantLocationIds: found.locations.map((l) => l.id), by, now: now() },
        context(metadata),
      );
      const replayed = result.position === undefined;
      if (replayed) {
        result = await firstCreated(deps.store, promotionsStream(tenantId), promotionsDecider, (e) => e.type === 'PromotionScheduled' && e.data.promotionId === promotionId);
      }
      const scheduled = result.state.promotions.find((p) => p.promotionId === promotionId);
      if (!scheduled) throw new Error('promotion was not scheduled');
      return { ...view(scheduled), position: result.position, warnings, replayed };
    },

    async end(tenantId: string, promotionId: string, by: string, metadata: EventMetadata) {
      const result = await handleCommand(deps.store, promotionsStream(tenantId), promotionsDecider, { type: 'EndPromotion', tenantId, promotionId, by, now: now() }, context(metadata));
      const ended = result.state.promotions.find((p) => p.promotionId === promotionId);
      if (!ended) throw new NotFound('Promotion');
      return { ...view(ended), position: result.position };
    },

    /** Every promotion of the workspace, newest first, from its stream (a workspace has a handful). */
    async list(tenantId: string): Promise<PromotionView[]> {
      return (await scheduled(tenantId)).map(view).reverse();
    },

    /** Every promotion in the order it was scheduled: the order ingestion weighs them in (`bestPromotion`: the first scheduled wins a tie). */
    scheduled,
  };
}

export type PromotionsService = ReturnType<typeof promotionsService>;
