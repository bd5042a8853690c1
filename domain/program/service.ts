/** Loyalty program settings: the merchant's expiry policy, the administrator's adjustment limit. */
import { handleCommand, loadState } from '../shared/command-handler.ts';
import type { CommandPath } from '../shared/command-path.ts';
import type { EventMetadata, EventStore } from '../ports/event-store.ts';
import type { Runtime } from '../ports/identity.ts';
import { DomainError } from '../shared/errors.ts';
import { canonicalTimeZone } from '../shared/time-zone.ts';
import { ConnectionUnavailable } from '../connections/errors.ts';
import type { MerchantLocations } from '../promotions/locations.ts';
import { clockRestartWarning, programDecider, programStream, type ExpiryPolicyRequest, type ProgramCommand, type ProgramState } from './program.ts';

export interface ProgramDependencies {
  store: EventStore;
  runtime: Runtime;
  commands: CommandPath;
  /**
   * The merchant's locations and time zone as Square lists them now (`merchantLocations`): a new expiry policy takes
   * the workspace's time zone from it when the request names none. Throws `ConnectionUnavailable` without a connection.
   */
  merchantLocations(tenantId: string): Promise<MerchantLocations>;
}

/** Connection states in which the workspace has no Square to ask: not a failure, nothing to warn about. */
const NOT_CONNECTED = new Set(['not_connected', 'revoked']);
const KEPT = 'the policy keeps the time zone it had (UTC for a first policy); name one with timeZone';

/**
 * The time zone of a new policy: the request's; else the workspace's (its Square main location's); else null, and
 * the decider keeps the current policy's (UTC before any). Square failing or giving no zone never stops the policy
 * being set: the answer's warnings say so.
 */
async function policyTimeZone(deps: ProgramDependencies, tenantId: string, request: ExpiryPolicyRequest): Promise<{ timeZone: string | null; warnings: string[] }> {
  if (request.timeZone !== undefined) return { timeZone: request.timeZone, warnings: [] };
  let timer: NodeJS.Timeout | undefined;
  try {
    // A Square that does not answer soon does not hold the merchant's save (its client waits up to 30 s).
    const late = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new DomainError('UNAVAILABLE', `Square did not answer within ${ZONE_LOOKUP_LIMIT_MS / 1000} s`)), ZONE_LOOKUP_LIMIT_MS);
    });
    const { timeZone } = await Promise.race([deps.merchantLocations(tenantId), late]);
    if (timeZone) return { timeZone: canonicalTimeZone(timeZone), warnings: [] };
    return { timeZone: null, warnings: [`Square gives no time zone for the merchant's main location: ${KEPT}, or set the location's in the Square Dashboard`] };
  } catch (error) {
    if (error instanceof ConnectionUnavailable && NOT_CONNECTED.has(error.status)) return { timeZone: null, warnings: [] };
    const why = error instanceof DomainError ? error.message : 'an internal error';
    return { timeZone: null, warnings: [`The workspace's time zone could not be read from Square (${why}): ${KEPT}`] };
  } finally {
    clearTimeout(timer);
  }
}

/** How long setting a policy waits for Square to say the workspace's time zone. */
export const ZONE_LOOKUP_LIMIT_MS = 5_000;

export function programService(deps: ProgramDependencies) {
  const context = (metadata: EventMetadata) => ({ newId: deps.runtime.newId, metadata, path: deps.commands });
  const run = (tenantId: string, command: ProgramCommand, metadata: EventMetadata) =>
    handleCommand(deps.store, programStream(tenantId), programDecider, command, context(metadata));
  return {
    async setExpiryPolicy(tenantId: string, request: ExpiryPolicyRequest, by: string, metadata: EventMetadata) {
      const { timeZone, warnings } = await policyTimeZone(deps, tenantId, request);
      // The policy before, for the warning below (the command path holds the stream's state: it reads what came after).
      const before = (await loadState(deps.store, programStream(tenantId), programDecider, deps.commands)).state.policy;
      const result = await run(tenantId, { type: 'SetExpiryPolicy', tenantId, request, timeZone, by, now: deps.runtime.now().toISOString() }, metadata);
      const restarted = result.events.length > 0 ? clockRestartWarning(before, result.state.policy) : null;
      return { state: result.state, position: result.position ?? null, warnings: restarted ? [...warnings, restarted] : warnings };
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
