/** Loyalty program settings: the merchant's expiry policy, the administrator's adjustment limit. */
import { handleCommand, loadState } from '../shared/command-handler.ts';
import type { CommandPath } from '../shared/command-path.ts';
import type { EventMetadata, EventStore } from '../ports/event-store.ts';
import type { Runtime } from '../ports/identity.ts';
import { programDecider, programStream, type ExpiryPolicyRequest, type ProgramCommand, type ProgramState } from './program.ts';

export function programService(deps: { store: EventStore; runtime: Runtime; commands: CommandPath }) {
  const context = (metadata: EventMetadata) => ({ newId: deps.runtime.newId, metadata, path: deps.commands });
  const run = (tenantId: string, command: ProgramCommand, metadata: EventMetadata) =>
    handleCommand(deps.store, programStream(tenantId), programDecider, command, context(metadata));
  return {
    async setExpiryPolicy(tenantId: string, request: ExpiryPolicyRequest, by: string, metadata: EventMetadata) {
      const result = await run(tenantId, { type: 'SetExpiryPolicy', tenantId, request, by, now: deps.runtime.now().toISOString() }, metadata);
      return { state: result.state, position: result.position ?? null };
    },
    async setAdjustmentLimit(tenantId: string, limit: number, by: string, metadata: EventMetadata) {
      const result = await run(tenantId, { type: 'SetAdjustmentLimit', tenantId, limit, by, now: deps.runtime.now().toISOString() }, metadata);
      return { state: result.state, position: result.position ?? null };
    },
    async current(tenantId: string): Promise<ProgramState> {
      return (await loadState(deps.store, programStream(tenantId), programDecider, deps.commands)).state;
    },
  };
}

export type ProgramService = ReturnType<typeof programService>;
