/**
 * The reward catalog and the reward lifecycle on a wallet: merchants define and retire rewards, issue one to a
 * wallet (its points are locked), redeem it (spent) or void it (available again); consumers and merchants see
 * which rewards a wallet affords and the rewards issued to it.
 */
import type pg from 'pg';
import { z } from 'zod';
import type { RewardCatalogService } from '../../domain/rewards/catalog-service.ts';
import { catalogReward, rewardDefinitionSchema, type CatalogReward } from '../../domain/rewards/catalog.ts';
import type { WalletsService } from '../../domain/wallets/service.ts';
import type { WalletView } from '../../projections/read/wallets.ts';
import { issuedRewardLine, issuedRewardsOf, issuedRewardView } from '../../projections/read/program.ts';
import { caller, metadataFor, tenantOf } from '../request.ts';
import { createIdempotencyKey, position, timestamp, uuid } from '../schemas.ts';
import { idempotencyKey, walletInTenant, walletParams, walletPoints, walletRead, walletWrite, written } from './wallets.ts';
import { created, route, type RouteSpec } from './table.ts';

export interface RewardRoutesDependencies {
  catalog: RewardCatalogService;
  wallets: WalletsService;
  pool: pg.Pool;
}

const rewardParams = z.object({ rewardId: uuid('rewardId must be a reward id (a uuid)') });
const issuedParams = walletParams.extend({ issuedRewardId: uuid('issuedRewardId must be an issued reward id (a uuid)') });
const listQuery = z.object({ status: z.enum(['active', 'all'], { error: "status must be 'active' or 'all'" }).default('all') });
const issueBody = z.object({ rewardId: uuid('rewardId is required: the id of an active reward of the catalog (a uuid)'), idempotencyKey }).strict();
const redeemBody = z.object({ idempotencyKey }).strict();
const voidBody = z.object({ reason: z.string().trim().max(500, 'reason must be at most 500 characters').nullish() }).strict();

const rewardSchema = z.object({
  rewardId: z.string(),
  version: z.number().int(),
  name: z.string(),
  description: z.string().nullable(),
  points: z.number().int(),
  issuedRewardExpiresAfterDays: z.number().int(),
  status: z.enum(['active', 'retired']),
  definedAt: timestamp,
  retiredAt: timestamp.nullable(),
});

const walletRewardsView = walletPoints.extend({
  rewards: z.array(rewardSchema.extend({ affordable: z.boolean() })),
  issued: z.array(issuedRewardLine),
});

const rewardView = ({ rewardId, version, name, description, points, issuedRewardExpiresAfterDays, status, definedAt, retiredAt }: CatalogReward) => ({
  rewardId,
  version,
  name,
  description,
  points,
  issuedRewardExpiresAfterDays,
  status,
  definedAt,
  retiredAt,
});

// Over 80 lines because it is the route table of a context: one short declaration per route.
export function rewardRoutes(deps: RewardRoutesDependencies): RouteSpec[] {
  const { catalog, wallets, pool } = deps;

  /** The workspace's active rewards, each marked whether the wallet's available points afford it, and the wallet's issued rewards. */
  async function walletRewards(wallet: WalletView): Promise<z.input<typeof walletRewardsView>> {
    const state = await catalog.current(wallet.tenantId);
    return {
      walletId: wallet.walletId,
      balance: wallet.balance,
      available: wallet.available,
      locked: wallet.locked,
      rewards: state.rewards.filter((r) => r.status === 'active').map((r) => ({ ...rewardView(r), affordable: wallet.available >= r.points })),
      issued: await issuedRewardsOf(pool, wallet.walletId),
    };
  }
  const inTenant = walletInTenant(wallets);

  return [
    route({
      method: 'get',
      path: '/api/v1/client/rewards',
      access: 'tenant',
      summary: "The workspace's reward catalog (?status=active|all, default all) and its version.",
      query: listQuery,
      response: z.object({ version: z.number().int(), rewards: z.array(rewardSchema) }),
      async handler({ query, ctx }) {
        const state = await catalog.current(tenantOf(ctx));
        return { status: 200, body: { version: state.version, rewards: state.rewards.filter((r) => query.status === 'all' || r.status === 'active').map(rewardView) } };
      },
    }),
    route({
      method: 'post',
      path: '/api/v1/client/rewards',
      access: 'tenant',
      summary:
        'Define a reward {name (≤100), points (1–1,000,000,000), description?, issuedRewardExpiresAfterDays? (default 30), idempotencyKey? (or the Idempotency-Key header: a retry answers as the first call did)}.',
      body: rewardDefinitionSchema.extend({ idempotencyKey: createIdempotencyKey }),
      response: rewardSchema.extend({ position }),
      statuses: [201, 200],
      async handler({ body: { idempotencyKey: key, ...definition }, ctx }) {
        const { position: at, replayed, ...reward } = await catalog.define(tenantOf(ctx), definition, caller(ctx).userId, metadataFor(ctx), key);
        return created({ ...rewardView(reward), position: at }, replayed);
      },
    }),
    route({
      method: 'post',
      path: '/api/v1/client/rewards/:rewardId/retire',
      access: 'tenant',
      summary: 'Retire a reward: no longer issued (rewards already issued stay redeemable). Idempotent.',
      params: rewardParams,
      body: z.object({}).strict(),
      response: rewardSchema.extend({ position }),
      async handler({ params, ctx }) {
        const { position: at, ...reward } = await catalog.retire(tenantOf(ctx), params.rewardId, caller(ctx).userId, metadataFor(ctx));
        return { status: 200, body: { ...rewardView(reward), position: at } };
      },
    }),
    walletRead(pool, 'me', {
      path: '/rewards',
      summary: "The workspace's active rewards, which the wallet's available points afford, and the rewards issued to the wallet.",
      response: walletRewardsView,
      read: walletRewards,
    }),
    walletRead(pool, 'client', {
      path: '/rewards',
      summary: "One of the tenant's wallets: the active rewards it affords and the rewards issued to it.",
      response: walletRewardsView,
      read: walletRewards,
    }),
    route({
      method: 'post',
      path: '/api/v1/client/wallets/:walletId/rewards',
      access: 'tenant',
      summary: 'Issue a reward {rewardId, idempotencyKey}: its points are locked; a retried key answers as the first time.',
      params: walletParams,
      exists: inTenant,
      body: issueBody,
      response: walletWrite.extend({ issuedReward: issuedRewardView }),
      statuses: [200, 201],
      async handler({ params, body, ctx }) {
        const tenantId = tenantOf(ctx);
        const reward = catalogReward(await catalog.current(tenantId), body.rewardId);
        const result = await wallets.issueReward(
          tenantId,
          params.walletId,
          {
            reward: { rewardId: reward.rewardId, version: reward.version, name: reward.name, points: reward.points },
            retiredAt: reward.retiredAt,
            idempotencyKey: body.idempotencyKey,
            expiresAfterDays: reward.issuedRewardExpiresAfterDays,
          },
          caller(ctx).userId,
          metadataFor(ctx),
        );
        return written(result, { issuedReward: result.issuedReward }, result.replayed ? 200 : 201);
      },
    }),
    route({
      method: 'post',
      path: '/api/v1/client/wallets/:walletId/rewards/:issuedRewardId/redeem',
      access: 'tenant',
      summary: 'Redeem an issued reward {idempotencyKey}: its locked points are spent.',
      params: issuedParams,
      exists: inTenant,
      body: redeemBody,
      response: walletWrite,
      async handler({ params, body, ctx }) {
        return written(await wallets.redeemReward(tenantOf(ctx), params.walletId, params.issuedRewardId, body.idempotencyKey, caller(ctx).userId, metadataFor(ctx)));
      },
    }),
    route({
      method: 'post',
      path: '/api/v1/client/wallets/:walletId/rewards/:issuedRewardId/void',
      access: 'tenant',
      summary: 'Void an issued reward {reason?}: its points are available again. Idempotent.',
      params: issuedParams,
      exists: inTenant,
      body: voidBody,
      response: walletWrite,
      async handler({ params, body, ctx }) {
        return written(await wallets.voidReward(tenantOf(ctx), params.walletId, params.issuedRewardId, body.reason ?? null, caller(ctx).userId, metadataFor(ctx)));
      },
    }),
  ];
}
