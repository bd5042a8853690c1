/**
 * A workspace's reward catalog (stream `reward-catalog-<tenantId>`): rewards the merchant offers for points.
 * Every change takes the catalog's next version, as reward rules do; a retired reward keeps its history.
 */
import { unreachable } from '../shared/exhaustive.ts';
import { z } from 'zod';
import type { Decider } from '../shared/decider.ts';
import { DomainError, NotFound } from '../shared/errors.ts';
import { wholeNumber } from '../shared/whole-number.ts';
import { replayOrRefuse, sameFields } from '../shared/keyed-create.ts';
import { rewardCatalogEvents, type RewardCatalogEvent } from './catalog-events.ts';

export type { RewardCatalogEvent } from './catalog-events.ts';

export const MAX_REWARD_POINTS = 1_000_000_000;
export const MAX_REWARD_NAME = 100;
export const DEFAULT_ISSUED_REWARD_DAYS = 30;

/** A reward as a merchant defines it: the request's schema, with messages that say what to fix. */
export const rewardDefinitionSchema = z
  .object({
    name: z
      .string({ error: 'name is required: what the customer gets, e.g. "Free coffee"' })
      .trim()
      .min(1, 'name must not be empty')
      .max(MAX_REWARD_NAME, `name must be at most ${MAX_REWARD_NAME} characters`),
    description: z.string().trim().max(500, 'description must be at most 500 characters').nullish(),
    points: wholeNumber('points', 1, MAX_REWARD_POINTS, {
      required: 'points is required: what the reward costs, a whole number of points',
      belowMin: 'points must be at least 1: a reward costs points',
    }),
    issuedRewardExpiresAfterDays: wholeNumber('issuedRewardExpiresAfterDays', 1, 366, {
      required: 'issuedRewardExpiresAfterDays must be a whole number of days',
      unit: 'days',
    }).default(DEFAULT_ISSUED_REWARD_DAYS),
  })
  .strict();

export type RewardDefinition = z.infer<typeof rewardDefinitionSchema>;

export interface CatalogReward {
  rewardId: string;
  /** The catalog version that defined it. */
  version: number;
  name: string;
  description: string | null;
  points: number;
  issuedRewardExpiresAfterDays: number;
  status: 'active' | 'retired';
  definedAt: string;
  retiredAt: string | null;
}

export interface CatalogState {
  version: number;
  rewards: CatalogReward[];
}

export type CatalogCommand =
  | { type: 'DefineReward'; tenantId: string; rewardId: string; definition: RewardDefinition; by: string; now: string }
  | { type: 'RetireReward'; tenantId: string; rewardId: string; by: string; now: string };

export const rewardCatalogStream = (tenantId: string) => `reward-catalog-${tenantId}`;

/** At most this many rewards (active and retired) per workspace: a menu, not a database. */
export const MAX_CATALOG_REWARDS = 500;

/** Whether a reward was defined as `definition` asks (its status and dates aside). */
function sameDefinition(reward: CatalogReward, definition: RewardDefinition): boolean {
  const { name, description, points, issuedRewardExpiresAfterDays } = reward;
  return sameFields({ name, description, points, issuedRewardExpiresAfterDays }, { ...definition, description: definition.description ?? null });
}

export const rewardCatalogDecider: Decider<CatalogCommand, RewardCatalogEvent, CatalogState> = {
  codec: rewardCatalogEvents,
  initialState: { version: 0, rewards: [] },
  decide(command, state) {
    switch (command.type) {
      case 'DefineReward': {
        // Already defined (the id is derived from an idempotency key): a retry of the same definition, or a refusal.
        const existing = state.rewards.find((r) => r.rewardId === command.rewardId);
        if (existing) return replayOrRefuse(sameDefinition(existing, command.definition));
        if (state.rewards.length >= MAX_CATALOG_REWARDS) {
          throw new DomainError('UNPROCESSABLE', `A catalog holds at most ${MAX_CATALOG_REWARDS} rewards`, { limit: MAX_CATALOG_REWARDS });
        }
        const { definition } = command;
        return [
          {
            type: 'RewardDefined',
            data: {
              tenantId: command.tenantId,
              rewardId: command.rewardId,
              version: state.version + 1,
              name: definition.name,
              description: definition.description ?? null,
              points: definition.points,
              issuedRewardExpiresAfterDays: definition.issuedRewardExpiresAfterDays,
              definedBy: command.by,
              definedAt: command.now,
            },
          },
        ];
      }
      case 'RetireReward': {
        const reward = state.rewards.find((r) => r.rewardId === command.rewardId);
        if (!reward) throw new NotFound('Reward');
        if (reward.status === 'retired') return [];
        return [
          { type: 'RewardRetired', data: { tenantId: command.tenantId, rewardId: command.rewardId, version: state.version + 1, retiredBy: command.by, retiredAt: command.now } },
        ];
      }
      default:
        return unreachable(command);
    }
  },
  evolve(state, event) {
    switch (event.type) {
      case 'RewardDefined': {
        const { tenantId: _t, definedBy: _b, ...reward } = event.data;
        return { version: event.data.version, rewards: [...state.rewards, { ...reward, status: 'active', retiredAt: null }] };
      }
      case 'RewardRetired':
        return {
          version: event.data.version,
          rewards: state.rewards.map((r) => (r.rewardId === event.data.rewardId ? { ...r, status: 'retired', retiredAt: event.data.retiredAt } : r)),
        };
      default:
        return unreachable(event);
    }
  },
};

/** A reward of the catalog, retired or not (the wallet refuses a new issue of a retired one): missing is NOT_FOUND. */
export function catalogReward(state: CatalogState, rewardId: string): CatalogReward {
  const reward = state.rewards.find((r) => r.rewardId === rewardId);
  if (!reward) throw new NotFound('Reward');
  return reward;
}
