import { unreachable } from '../shared/exhaustive.ts';
import type { Decider } from '../shared/decider.ts';
import { DomainError, NotFound } from '../shared/errors.ts';
import type { RewardRule } from './rule.ts';
import { ruleSetEvents, type RuleSetEvent } from './events.ts';

export type { RuleSetEvent } from './events.ts';

/** A tenant's versioned reward rules; at most one version is active. Stream `reward-rules-<tenantId>`. */
export interface RuleVersion {
  ruleId: string;
  version: number;
  rule: RewardRule;
  createdAt: string;
}

/** From `at`, the rule in force was `ruleId` (null: none, after a retirement). */
export interface RuleChange {
  at: string;
  ruleId: string | null;
}

export interface RuleSetState {
  versions: RuleVersion[];
  activeRuleId: string | null;
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
  | { type: 'ActivateRewardRule'; tenantId: string; ruleId: string; by: string; now: string }
  | { type: 'RetireRewardRules'; tenantId: string; by: string; now: string };

export const ruleSetStream = (tenantId: string) => `reward-rules-${tenantId}`;

export const ruleSetDecider: Decider<RuleSetCommand, RuleSetEvent, RuleSetState> = {
  codec: ruleSetEvents,
  initialState: { versions: [], activeRuleId: null, retiredThrough: 0, history: [] },
  decide(command, state) {
    switch (command.type) {
      case 'CreateRewardRule':
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
      case 'ActivateRewardRule': {
        const target = state.versions.find((v) => v.ruleId === command.ruleId);
        if (!target) throw new NotFound('Reward rule');
        if (state.activeRuleId === command.ruleId) return [];
        if (target.version <= state.retiredThrough) throw new RuleRetired(target.version);
        return [
          {
            type: 'RewardRuleActivated',
            data: {
              tenantId: command.tenantId,
              ruleId: target.ruleId,
              version: target.version,
              deactivatedRuleId: state.activeRuleId,
              activatedBy: command.by,
              activatedAt: command.now,
            },
          },
        ];
      }
      case 'RetireRewardRules': {
        if (unretiredVersions(state) === 0) return [];
        return [
          {
            type: 'RewardRulesRetired',
            data: { tenantId: command.tenantId, throughVersion: state.versions.length, deactivatedRuleId: state.activeRuleId, retiredBy: command.by, retiredAt: command.now },
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
      case 'RewardRuleActivated':
        return { ...state, activeRuleId: event.data.ruleId, history: [...state.history, { at: event.data.activatedAt, ruleId: event.data.ruleId }] };
      case 'RewardRulesRetired':
        return {
          ...state,
          activeRuleId: null,
          retiredThrough: event.data.throughVersion,
          history: [...state.history, { at: event.data.retiredAt, ruleId: null }],
        };
      default:
        return unreachable(event);
    }
  },
};

/** The active rule version, if any. */
export function activeRule(state: RuleSetState): RuleVersion | undefined {
  return state.versions.find((v) => v.ruleId === state.activeRuleId);
}

/** Versions not retired: while there are any, the workspace's currency may not change under them. */
export function unretiredVersions(state: RuleSetState): number {
  return state.versions.length - state.retiredThrough;
}

/**
 * The rule in force at `at` (a payment's `created_at`), from the rule set's history: `before_program` when no rule
 * had been activated yet at that moment (but one has since), `none` when no rule was in force then (never any, or
 * retired), else that version. The moment of an activation is included.
 */
export type RuleInForce = { kind: 'rule'; ruleId: string; version: number; rule: RewardRule } | { kind: 'before_program' } | { kind: 'none' };

export function ruleInForce(state: RuleSetState, at: string): RuleInForce {
  const when = Date.parse(at);
  let current: RuleChange | undefined;
  for (const change of state.history) {
    if (Date.parse(change.at) <= when) current = change;
    else break;
  }
  if (!current) return state.history.length ? { kind: 'before_program' } : { kind: 'none' };
  const version = current.ruleId ? state.versions.find((v) => v.ruleId === current.ruleId) : undefined;
  return version ? { kind: 'rule', ruleId: version.ruleId, version: version.version, rule: version.rule } : { kind: 'none' };
}
