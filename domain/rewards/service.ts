/** Reward-rule use cases for a tenant. */
import { handleCommand, loadState } from '../shared/command-handler.ts';
import type { CommandPath } from '../shared/command-path.ts';
import type { EventMetadata, EventStore } from '../ports/event-store.ts';
import type { KeyedRuntime } from '../ports/identity.ts';
import { NotFound } from '../shared/errors.ts';
import { foreignLocations } from '../promotions/locations.ts';
import { createdId, firstCreated } from '../shared/keyed-create.ts';
import { ruleSetDecider, ruleSetStream, type RuleSetState } from './rule-set.ts';
import type { RewardRule } from './rule.ts';

export interface RewardRulesDependencies {
  store: EventStore;
  runtime: KeyedRuntime;
  commands: CommandPath;
  /** The merchant's Square location ids (a rule limited to locations names only these). Omitted: none is checked. */
  merchantLocationIds?(tenantId: string): Promise<string[]>;
}

/** Namespace of rule ids derived from (tenant, idempotency key). */
const RULE_NAMESPACE = 'c4b19e73-2f5a-4d8c-b6e0-9a3d7f1c5e86';

export function rewardRulesService(deps: RewardRulesDependencies) {
  const context = (metadata: EventMetadata) => ({ newId: deps.runtime.newId, metadata, path: deps.commands });
  return {
    /**
     * `idempotencyKey`: a retry with it answers as the first request did (`replayed`); with another rule,
     * IDEMPOTENCY_KEY_REUSED. Without one, every call creates a new version.
     */
    async create(tenantId: string, rule: RewardRule, by: string, metadata: EventMetadata, idempotencyKey?: string) {
      if (rule.locationIds && deps.merchantLocationIds) {
        const foreign = foreignLocations('locationIds', rule.locationIds, await deps.merchantLocationIds(tenantId));
        if (foreign) throw foreign;
      }
      const ruleId = createdId(RULE_NAMESPACE, tenantId, idempotencyKey, deps.runtime);
      let result: { state: RuleSetState; position: string | undefined } = await handleCommand(
        deps.store,
        ruleSetStream(tenantId),
        ruleSetDecider,
        { type: 'CreateRewardRule', tenantId, ruleId, rule, by, now: deps.runtime.now().toISOString() },
        context(metadata),
      );
      const replayed = result.position === undefined;
      if (replayed) result = await firstCreated(deps.store, ruleSetStream(tenantId), ruleSetDecider, (e) => e.type === 'RewardRuleCreated' && e.data.ruleId === ruleId);
      const created = result.state.versions.find((v) => v.ruleId === ruleId);
      if (!created) throw new Error('rule was not created');
      return { ruleId, version: created.version, isActive: false, rule: created.rule, createdAt: created.createdAt, position: result.position, replayed };
    },

    /** Makes a version active: the only one, or `alongside` those already active (their points add up). */
    async activate(tenantId: string, ruleId: string, by: string, metadata: EventMetadata, options: { alongside?: boolean } = {}) {
      const result = await handleCommand(
        deps.store,
        ruleSetStream(tenantId),
        ruleSetDecider,
        { type: 'ActivateRewardRule', tenantId, ruleId, by, now: deps.runtime.now().toISOString(), alongside: options.alongside ?? false },
        context(metadata),
      );
      const active = result.state.versions.find((v) => v.ruleId === ruleId);
      if (!active) throw new NotFound('Reward rule');
      return { ruleId, version: active.version, isActive: true, rule: active.rule, activeRuleIds: [...result.state.activeRuleIds], position: result.position };
    },

    /** Takes one version out of the active set; the others stay in force. Idempotent. */
    async deactivate(tenantId: string, ruleId: string, by: string, metadata: EventMetadata) {
      const result = await handleCommand(
        deps.store,
        ruleSetStream(tenantId),
        ruleSetDecider,
        { type: 'DeactivateRewardRule', tenantId, ruleId, by, now: deps.runtime.now().toISOString() },
        context(metadata),
      );
      const version = result.state.versions.find((v) => v.ruleId === ruleId);
      if (!version) throw new NotFound('Reward rule');
      return { ruleId, version: version.version, isActive: false, rule: version.rule, activeRuleIds: [...result.state.activeRuleIds], position: result.position };
    },

    /** Retires every version so far: none is active from now, none can be activated again (e.g. before a currency change). */
    async retire(tenantId: string, by: string, metadata: EventMetadata) {
      const result = await handleCommand(deps.store, ruleSetStream(tenantId), ruleSetDecider, { type: 'RetireRewardRules', tenantId, by, now: deps.runtime.now().toISOString() }, context(metadata));
      return { retiredThroughVersion: result.state.retiredThrough, position: result.position };
    },

    /** The rule set as the write model sees it (used when evaluating payments). */
    async current(tenantId: string) {
      return (await loadState(deps.store, ruleSetStream(tenantId), ruleSetDecider)).state;
    },
  };
}

export type RewardRulesService = ReturnType<typeof rewardRulesService>;
