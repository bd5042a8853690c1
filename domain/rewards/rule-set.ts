import type { Decider } from '../shared/decider.ts';
import { NotFound } from '../shared/errors.ts';
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

export interface RuleSetState {
  versions: RuleVersion[];
  activeRuleId: string | null;
}

export type RuleSetCommand =
  | { type: 'CreateRewardRule'; tenantId: string; ruleId: string; rule: RewardRule; by: string; now: string }
  | { type: 'ActivateRewardRule'; tenantId: string; ruleId: string; by: string; now: string };

export const ruleSetStream = (tenantId: string) => `reward-rules-${tenantId}`;

export const ruleSetDecider: Decider<RuleSetCommand, RuleSetEvent, RuleSetState> = {
  codec: ruleSetEvents,
  initialState: { versions: [], activeRuleId: null },
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
      default: {
        const unexpected: never = command;
        return unexpected;
      }
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
        return { ...state, activeRuleId: event.data.ruleId };
      default: {
        const unexpected: never = event;
        return unexpected;
      }
    }
  },
};

/** The active rule version, if any. */
export function activeRule(state: RuleSetState): RuleVersion | undefined {
  return state.versions.find((v) => v.ruleId === state.activeRuleId);
}
