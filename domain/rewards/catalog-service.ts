/** Reward catalog use cases for a workspace: define, retire, read. */
import { handleCommand, loadState } from '../shared/command-handler.ts';
import type { CommandPath } from '../shared/command-path.ts';
import type { EventMetadata, EventStore } from '../ports/event-store.ts';
import type { Runtime } from '../ports/identity.ts';
import { rewardCatalogDecider, rewardCatalogStream, type CatalogReward, type CatalogState, type RewardDefinition } from './catalog.ts';

export function rewardCatalogService(deps: { store: EventStore; runtime: Runtime; commands: CommandPath }) {
  const context = (metadata: EventMetadata) => ({ newId: deps.runtime.newId, metadata, path: deps.commands });
  const command = (tenantId: string, body: Parameters<typeof rewardCatalogDecider.decide>[0], metadata: EventMetadata) =>
    handleCommand(deps.store, rewardCatalogStream(tenantId), rewardCatalogDecider, body, context(metadata));
  return {
    async define(tenantId: string, definition: RewardDefinition, by: string, metadata: EventMetadata): Promise<CatalogReward & { position: string | null }> {
      const rewardId = deps.runtime.newId();
      const result = await command(tenantId, { type: 'DefineReward', tenantId, rewardId, definition, by, now: deps.runtime.now().toISOString() }, metadata);
      const reward = result.state.rewards.find((r) => r.rewardId === rewardId);
      if (!reward) throw new Error('the reward was not defined');
      return { ...reward, position: result.position ?? null };
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
