import { unreachable } from '../shared/exhaustive.ts';
import type { Decider } from '../shared/decider.ts';
import { DomainError, NotFound } from '../shared/errors.ts';
import { replayOrRefuse, sameFields } from '../shared/keyed-create.ts';
import type { RewardRule } from './rule.ts';
import { ruleSetEvents, type RuleSetEvent } from './events.ts';

export type { RuleSetEvent } from './events.ts';

/**
 * A tenant's versioned reward rules; several versions may be active together (their points add up, see
 * `evaluate.ts`). Stream `reward-rules-<tenantId>`.
 */
export interface RuleVersion {
  ruleId: string;
  version: number;
  rule: RewardRule;
  createdAt: string;
}

/** From `at`, the rules in force were `ruleIds`, in activation order (none: after a retirement or the last deactivation). */
export interface RuleChange {
  at: string;
  ruleIds: readonly string[];
}

export interface RuleSetState {
  versions: RuleVersion[];
  /** The active versions, in the order they were activated. */
  activeRuleIds: readonly string[];
  /** Versions up to this one are retired (0: none). */
  retiredThrough: number;
  /** Every activation and retirement, in order: which rule was in force when (a payment earns by its own time). */
  history: RuleChange[];
}

/** A retired rule version cannot be activated again. */
export class RuleRetired extends DomainError {
  constructor(version: number) {
    super('RULE_RETIRED', `Reward rule version ${version} was retired and cannot be activated again: create a new version`);
    this.name = 'RuleRetired';
  }
}

export type RuleSetCommand =
  | { type: 'CreateRewardRule'; tenantId: string; ruleId: string; rule: RewardRule; by: string; now: string }
  /** `alongside`: the rule joins the active ones; otherwise it replaces them all (the single active rule, as before). */
  | { type: 'ActivateRewardRule'; tenantId: string; ruleId: string; by: string; now: string; alongside?: boolean }
  | { type: 'DeactivateRewardRule'; tenantId: string; ruleId: string; by: string; now: string }
  | { type: 'RetireRewardRules'; tenantId: string; by: string; now: string };

export const ruleSetStream = (tenantId: string) => `reward-rules-${tenantId}`;

export const ruleSetDecider: Decider<RuleSetCommand, RuleSetEvent, RuleSetState> = {
  codec: ruleSetEvents,
  initialState: { versions: [], activeRuleIds: [], retiredThrough: 0, history: [] },
  decide(command, state) {
    switch (command.type) {
      case 'CreateRewardRule': {
        // Already created (the id is derived from an idempotency key): a retry of the same rule, or a refusal.
        const existing = state.versions.find((v) => v.ruleId === command.ruleId);
        if (existing) return replayOrRefuse(sameFields(existing.rule, command.rule));
        return [
          {
            type: 'RewardRuleCreated',
            data: {
              tenantId: command.tenantId,
              ruleId: command.ruleId,
              version: state.versions.length + 1,
              rule: command.rule,
              createdBy: command.by,
              createdAt: command.now,
            },
          },
        ];
      }
      case 'ActivateRewardRule': {
        const target = state.versions.find((v) => v.ruleId === command.ruleId);
        if (!target) throw new NotFound('Reward rule');
        const alongside = command.alongside ?? false;
        const others = state.activeRuleIds.filter((id) => id !== command.ruleId);
        // Already active, and nothing to replace: nothing changes.
        if (state.activeRuleIds.includes(command.ruleId) && (alongside || !others.length)) return [];
        if (target.version <= state.retiredThrough) throw new RuleRetired(target.version);
        return [
          {
            type: 'RewardRuleActivated',
            data: {
              tenantId: command.tenantId,
              ruleId: target.ruleId,
              version: target.version,
              deactivatedRuleIds: alongside ? [] : others,
              alongside,
              activatedBy: command.by,
              activatedAt: command.now,
            },
          },
        ];
      }
      case 'DeactivateRewardRule': {
        const target = state.versions.find((v) => v.ruleId === command.ruleId);
        if (!target) throw new NotFound('Reward rule');
        if (!state.activeRuleIds.includes(command.ruleId)) return [];
        return [
          {
            type: 'RewardRuleDeactivated',
            data: { tenantId: command.tenantId, ruleId: target.ruleId, version: target.version, deactivatedBy: command.by, deactivatedAt: command.now },
          },
        ];
      }
      case 'RetireRewardRules': {
        if (unretiredVersions(state) === 0) return [];
        return [
          {
            type: 'RewardRulesRetired',
            data: {
              tenantId: command.tenantId,
              throughVersion: state.versions.length,
              deactivatedRuleId: state.activeRuleIds[0] ?? null,
              retiredBy: command.by,
              retiredAt: command.now,
            },
          },
        ];
      }
      default:
        return unreachable(command);
    }
  },
  evolve(state, event) {
    switch (event.type) {
      case 'RewardRuleCreated':
        return {
          ...state,
          versions: [...state.versions, { ruleId: event.data.ruleId, version: event.data.version, rule: event.data.rule, createdAt: event.data.createdAt }],
        };
      case 'RewardRuleActivated': {
        const replaced = new Set(event.data.deactivatedRuleIds);
        const activeRuleIds = [...state.activeRuleIds.filter((id) => !replaced.has(id) && id !== event.data.ruleId), event.data.ruleId];
        return { ...state, activeRuleIds, history: [...state.history, { at: event.data.activatedAt, ruleIds: activeRuleIds }] };
      }
      case 'RewardRuleDeactivated': {
        const activeRuleIds = state.activeRuleIds.filter((id) => id !== event.data.ruleId);
        return { ...state, activeRuleIds, history: [...state.history, { at: event.data.deactivatedAt, ruleIds: activeRuleIds }] };
      }
      case 'RewardRulesRetired':
        return {
          ...state,
          activeRuleIds: [],
          retiredThrough: event.data.throughVersion,
          history: [...state.history, { at: event.data.retiredAt, ruleIds: [] }],
        };
      default:
        return unreachable(event);
    }
  },
};

/** The active rule versions, in activation order. */
export function activeRules(state: RuleSetState): RuleVersion[] {
  return state.activeRuleIds.flatMap((id) => state.versions.find((v) => v.ruleId === id) ?? []);
}

/** The first active rule version, if any (a workspace with one active rule: that one). */
export function activeRule(state: RuleSetState): RuleVersion | undefined {
  return activeRules(state)[0];
}

/** Versions not retired: while there are any, the workspace's currency may not change under them. */
export function unretiredVersions(state: RuleSetState): number {
  return state.versions.length - state.retiredThrough;
}

/**
 * The rules in force at `at` (a payment's `created_at`), from the rule set's history: `before_program` when no rule
 * had been activated yet at that moment (but one has since), `none` when no rule was in force then (never any,
 * retired, or all deactivated), else those versions. The moment of an activation is included.
 */
export type RulesInForce = { kind: 'rules'; rules: RuleVersion[] } | { kind: 'before_program' } | { kind: 'none' };

export function rulesInForce(state: RuleSetState, at: string): RulesInForce {
  const when = Date.parse(at);
  let current: RuleChange | undefined;
  for (const change of state.history) {
    if (Date.parse(change.at) <= when) current = change;
    else break;
  }
  if (!current) return state.history.length ? { kind: 'before_program' } : { kind: 'none' };
  const rules = current.ruleIds.flatMap((id) => state.versions.find((v) => v.ruleId === id) ?? []);
  return rules.length ? { kind: 'rules', rules } : { kind: 'none' };
}
