/** Reward catalog use cases for a workspace: define, retire, read. */
import { handleCommand, loadState } from '../shared/command-handler.ts';
import type { CommandPath } from '../shared/command-path.ts';
import type { EventMetadata, EventStore } from '../ports/event-store.ts';
import type { KeyedRuntime } from '../ports/identity.ts';
import { createdId, firstCreated } from '../shared/keyed-create.ts';
import { rewardCatalogDecider, rewardCatalogStream, type CatalogReward, type CatalogState, type RewardDefinition } from './catalog.ts';

/** Namespace of reward ids derived from (tenant, idempotency key). */
const REWARD_NAMESPACE = '0d6f2a51-6c1e-4b7f-8a9d-3e5c7b1f2a40';

export function rewardCatalogService(deps: { store: EventStore; runtime: KeyedRuntime; commands: CommandPath }) {
  const context = (metadata: EventMetadata) => ({ newId: deps.runtime.newId, metadata, path: deps.commands });
  const command = (tenantId: string, body: Parameters<typeof rewardCatalogDecider.decide>[0], metadata: EventMetadata) =>
    handleCommand(deps.store, rewardCatalogStream(tenantId), rewardCatalogDecider, body, context(metadata));
  return {
    /**
     * `idempotencyKey`: a retry with it answers as the first request did (`replayed`), the reward as it was then;
     * with another definition, IDEMPOTENCY_KEY_REUSED. Without one, every call defines a new reward.
     */
    async define(
      tenantId: string,
      definition: RewardDefinition,
      by: string,
      metadata: EventMetadata,
      idempotencyKey?: string,
    ): Promise<CatalogReward & { position: string | null; replayed: boolean }> {
      const rewardId = createdId(REWARD_NAMESPACE, tenantId, idempotencyKey, deps.runtime);
      const stream = rewardCatalogStream(tenantId);
      let result: { state: CatalogState; position: string | undefined } = await command(tenantId, { type: 'DefineReward', tenantId, rewardId, definition, by, now: deps.runtime.now().toISOString() }, metadata);
      const replayed = result.position === undefined;
      if (replayed) result = await firstCreated(deps.store, stream, rewardCatalogDecider, (e) => e.type === 'RewardDefined' && e.data.rewardId === rewardId);
      const reward = result.state.rewards.find((r) => r.rewardId === rewardId);
      if (!reward) throw new Error('the reward was not defined');
      return { ...reward, position: result.position ?? null, replayed };
    },

    /** NOT_FOUND for a reward not in this workspace's catalog; retiring twice is one retirement. */
    async retire(tenantId: string, rewardId: string, by: string, metadata: EventMetadata): Promise<CatalogReward & { position: string | null }> {
      const result = await command(tenantId, { type: 'RetireReward', tenantId, rewardId, by, now: deps.runtime.now().toISOString() }, metadata);
      const reward = result.state.rewards.find((r) => r.rewardId === rewardId);
      if (!reward) throw new Error('the reward vanished');
      return { ...reward, position: result.position ?? null };
    },

    /** The catalog as the write model holds it (a small stream, read through the command path's cache). */
    async current(tenantId: string): Promise<CatalogState> {
      return (await loadState(deps.store, rewardCatalogStream(tenantId), rewardCatalogDecider, deps.commands)).state;
    },
  };
}

export type RewardCatalogService = ReturnType<typeof rewardCatalogService>;
