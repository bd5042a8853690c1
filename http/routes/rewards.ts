/**
 * The reward catalog and the reward lifecycle on a wallet: merchants define and retire rewards, issue one to a
 * wallet (its points are locked), redeem it (spent) or void it (available again); consumers and merchants see
 * which rewards a wallet affords and the rewards issued to it.
 */
import type pg from 'pg';
import { z } from 'zod';
import type { RewardCatalogService } from '../../domain/rewards/catalog-service.ts';
import { issuableReward, rewardDefinitionSchema, type CatalogReward } from '../../domain/rewards/catalog.ts';
import { NotFound } from '../../domain/shared/errors.ts';
import type { WalletsService } from '../../domain/wallets/service.ts';
import { findConsumerWallet, findTenantWallet, type WalletView } from '../../projections/read/wallets.ts';
import { issuedRewardsOf } from '../../projections/read/program.ts';
import { body, caller, metadataFor, params, query, tenantOf } from './accounts.ts';
import { idempotencyKey, respond, walletParams } from './wallets.ts';
import type { RouteSpec } from './table.ts';

export interface RewardRoutesDependencies {
  catalog: RewardCatalogService;
  wallets: WalletsService;
  pool: pg.Pool;
}

const rewardParams = z.object({ rewardId: z.uuid({ error: 'rewardId must be a reward id (a uuid)' }) });
const issuedParams = walletParams.extend({ issuedRewardId: z.uuid({ error: 'issuedRewardId must be an issued reward id (a uuid)' }) });
const listQuery = z.object({ status: z.enum(['active', 'all'], { error: "status must be 'active' or 'all'" }).default('all') });
const issueBody = z.object({ rewardId: z.uuid({ error: 'rewardId is required: the id of an active reward of the catalog (a uuid)' }), idempotencyKey }).strict();
const redeemBody = z.object({ idempotencyKey }).strict();
const voidBody = z.object({ reason: z.string().trim().max(500, 'reason must be at most 500 characters').nullish() }).strict();

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

export function rewardRoutes(deps: RewardRoutesDependencies): RouteSpec[] {
  const { catalog, wallets, pool } = deps;

  /** The workspace's active rewards, each marked whether the wallet's available points afford it, and the wallet's issued rewards. */
  async function walletRewards(wallet: WalletView) {
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

  return [
    {
      method: 'get',
      path: '/api/v1/client/rewards',
      access: 'tenant',
      summary: "The workspace's reward catalog (?status=active|all, default all) and its version.",
      async handler(ctx) {
        const { status } = query(listQuery, ctx);
        const state = await catalog.current(tenantOf(ctx));
        ctx.body = { version: state.version, rewards: state.rewards.filter((r) => status === 'all' || r.status === 'active').map(rewardView) };
      },
    },
    {
      method: 'post',
      path: '/api/v1/client/rewards',
      access: 'tenant',
      summary: 'Define a reward {name (≤100), points (1–1,000,000,000), description?, issuedRewardExpiresAfterDays? (default 30)}.',
      async handler(ctx) {
        const definition = body(rewardDefinitionSchema, ctx);
        const { position, ...reward } = await catalog.define(tenantOf(ctx), definition, caller(ctx).userId, metadataFor(ctx));
        ctx.status = 201;
        ctx.body = { ...rewardView(reward), position };
      },
    },
    {
      method: 'post',
      path: '/api/v1/client/rewards/:rewardId/retire',
      access: 'tenant',
      summary: 'Retire a reward: no longer issued (rewards already issued stay redeemable). Idempotent.',
      async handler(ctx) {
        const { rewardId } = params(rewardParams, ctx);
        body(z.object({}).strict(), ctx);
        const { position, ...reward } = await catalog.retire(tenantOf(ctx), rewardId, caller(ctx).userId, metadataFor(ctx));
        ctx.body = { ...rewardView(reward), position };
      },
    },
    {
      method: 'get',
      path: '/api/v1/me/wallets/:walletId/rewards',
      access: 'user',
      summary: "The workspace's active rewards, which the wallet's available points afford, and the rewards issued to the wallet.",
      async handler(ctx) {
        const { walletId } = params(walletParams, ctx);
        const wallet = await findConsumerWallet(pool, caller(ctx).userId, walletId);
        if (!wallet) throw new NotFound('Wallet');
        ctx.body = await walletRewards(wallet);
      },
    },
    {
      method: 'get',
      path: '/api/v1/client/wallets/:walletId/rewards',
      access: 'tenant',
      summary: "One of the tenant's wallets: the active rewards it affords and the rewards issued to it.",
      async handler(ctx) {
        const { walletId } = params(walletParams, ctx);
        const wallet = await findTenantWallet(pool, tenantOf(ctx), walletId);
        if (!wallet) throw new NotFound('Wallet');
        ctx.body = await walletRewards(wallet);
      },
    },
    {
      method: 'post',
      path: '/api/v1/client/wallets/:walletId/rewards',
      access: 'tenant',
      summary: 'Issue a reward {rewardId, idempotencyKey}: its points are locked; a retried key answers as the first time.',
      async handler(ctx) {
        const { walletId } = params(walletParams, ctx);
        const tenantId = tenantOf(ctx);
        await wallets.requireInTenant(tenantId, walletId);
        const input = body(issueBody, ctx);
        const reward = issuableReward(await catalog.current(tenantId), input.rewardId);
        const result = await wallets.issueReward(
          tenantId,
          walletId,
          { reward: { rewardId: reward.rewardId, version: reward.version, name: reward.name, points: reward.points }, idempotencyKey: input.idempotencyKey, expiresAfterDays: reward.issuedRewardExpiresAfterDays },
          caller(ctx).userId,
          metadataFor(ctx),
        );
        respond(ctx, result, { issuedReward: result.issuedReward });
        if (!result.replayed) ctx.status = 201;
      },
    },
    {
      method: 'post',
      path: '/api/v1/client/wallets/:walletId/rewards/:issuedRewardId/redeem',
      access: 'tenant',
      summary: 'Redeem an issued reward {idempotencyKey}: its locked points are spent.',
      async handler(ctx) {
        const { walletId, issuedRewardId } = params(issuedParams, ctx);
        const tenantId = tenantOf(ctx);
        await wallets.requireInTenant(tenantId, walletId);
        const input = body(redeemBody, ctx);
        respond(ctx, await wallets.redeemReward(tenantId, walletId, issuedRewardId, input.idempotencyKey, caller(ctx).userId, metadataFor(ctx)));
      },
    },
    {
      method: 'post',
      path: '/api/v1/client/wallets/:walletId/rewards/:issuedRewardId/void',
      access: 'tenant',
      summary: 'Void an issued reward {reason?}: its points are available again. Idempotent.',
      async handler(ctx) {
        const { walletId, issuedRewardId } = params(issuedParams, ctx);
        const tenantId = tenantOf(ctx);
        await wallets.requireInTenant(tenantId, walletId);
        const input = body(voidBody, ctx);
        respond(ctx, await wallets.voidReward(tenantId, walletId, issuedRewardId, input.reason ?? null, caller(ctx).userId, metadataFor(ctx)));
      },
    },
  ];
}
