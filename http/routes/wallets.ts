/** Wallets: consumers read theirs, merchants find, read and redeem, administrators adjust with a reason. */
import type pg from 'pg';
import { z } from 'zod';
import type { IdentityHasher } from '../../domain/ports/identity.ts';
import { NotFound } from '../../domain/shared/errors.ts';
import { wholeNumber } from '../../domain/shared/whole-number.ts';
import type { WalletsService, WalletWriteResult } from '../../domain/wallets/service.ts';
import {
  consumerWalletView,
  findConsumerWallet,
  findTenantWallet,
  ledgerPage,
  ledgerPageView,
  consumerLedgerPageView,
  forConsumer,
  searchWallets,
  walletsOfConsumer,
  walletView,
  withExpiringSoon,
  type WalletView,
} from '../../projections/read/wallets.ts';
import { caller, metadataFor, tenantOf, type RequestContext } from '../request.ts';
import { pageCursor, pageLimit, userId, uuid } from '../schemas.ts';
import { route, type Answer, type RouteSpec } from './table.ts';

export interface WalletRoutesDependencies {
  wallets: WalletsService;
  pool: pg.Pool;
  /** Hashes a searched email or phone the way users' identities were hashed. */
  hasher: IdentityHasher;
  /** The clock `expiringSoon` looks ahead from. */
  now(): Date;
}

const MAX_POINTS = 1_000_000_000;

export const walletParams = z.object({ walletId: uuid('walletId must be a wallet id (a uuid)') });

const pageQuery = z.object({
  cursor: pageCursor(1000),
  limit: pageLimit(100, 50),
});

const searchQuery = z.object({
  q: z
    .string({ error: 'q is required: the email address or phone number of the customer, e.g. ?q=jane@example.com' })
    .trim()
    .min(1, 'q is required: the email address or phone number of the customer, e.g. ?q=jane@example.com')
    .max(320, 'q must be at most 320 characters'),
});

export const idempotencyKey = z
  .string({ error: 'idempotencyKey is required: a string unique to this redemption (1-200 characters); retries reuse it' })
  .min(1, 'idempotencyKey must not be empty')
  .max(200, 'idempotencyKey must be at most 200 characters');

const redeemBody = z
  .object({
    points: wholeNumber('points', 1, MAX_POINTS, { required: 'points must be a whole number of points to redeem' }),
    idempotencyKey,
    reference: z.string().max(200, 'reference must be at most 200 characters').nullish(),
  })
  .strict();

export const adjustBody = z
  .object({
    points: wholeNumber('points', -MAX_POINTS, MAX_POINTS, {
      required: 'points must be a whole number: positive adds points, negative removes them',
    }).refine((points) => points !== 0, 'points must not be 0: positive adds points, negative removes them'),
    reason: z
      .string({ error: 'reason is required: say why the balance is corrected (it is kept in the audit trail)' })
      .trim()
      .min(1, 'reason must not be empty: say why the balance is corrected')
      .max(500, 'reason must be at most 500 characters'),
    idempotencyKey: idempotencyKey.optional(),
  })
  .strict();

/** A wallet's points as its writes and its rewards answer them: the figures of its view. */
export const walletPoints = walletView.pick({ walletId: true, balance: true, available: true, locked: true });

export const walletWrite = walletPoints.extend({ position: z.string() });

/** Every write answers with the new balance and its event's position; a replayed key is marked in a header. */
export function written<Extra extends Record<string, unknown> = Record<string, never>>(
  result: WalletWriteResult,
  extra?: Extra,
  status = 200,
): Answer<z.input<typeof walletWrite> & Extra> {
  return {
    status,
    body: { walletId: result.walletId, balance: result.balance, available: result.available, locked: result.locked, ...(extra as Extra), position: result.position },
    ...(result.replayed ? { headers: { 'Idempotent-Replayed': 'true' } } : {}),
  };
}

/** A route's `exists` for a wallet of the caller's tenant (`:walletId`): another tenant's is missing whatever the body says. */
export const walletInTenant =
  (wallets: Pick<WalletsService, 'requireInTenant'>) =>
  ({ params, ctx }: { params: { walletId: string }; ctx: Parameters<typeof tenantOf>[0] }) =>
    wallets.requireInTenant(tenantOf(ctx), params.walletId);

/** Who reads one wallet, and where it is found: a consumer reads their own, a merchant one of their tenant's. */
const walletReaders = {
  me: { access: 'user', find: (pool: pg.Pool, ctx: RequestContext, walletId: string) => findConsumerWallet(pool, caller(ctx).userId, walletId) },
  client: { access: 'tenant', find: (pool: pg.Pool, ctx: RequestContext, walletId: string) => findTenantWallet(pool, tenantOf(ctx), walletId) },
} as const;

/**
 * A read of one wallet, `GET /api/v1/<reader>/wallets/:walletId<path>`, served ahead of Koa: the caller's own
 * wallet (`me`) or one of their tenant's (`client`); any other wallet reads as missing (404). `read` answers from it.
 */
export function walletRead<R extends z.ZodType, Q extends z.ZodType = z.ZodUndefined>(
  pool: pg.Pool,
  reader: keyof typeof walletReaders,
  spec: { path: string; summary: string; query?: Q; response: R; read(wallet: WalletView, query: z.output<Q>): Promise<z.input<R>> },
): RouteSpec {
  const { access, find } = walletReaders[reader];
  return route<typeof walletParams, Q, z.ZodUndefined, R>({
    method: 'get',
    path: `/api/v1/${reader}/wallets/:walletId${spec.path}`,
    access,
    direct: true,
    summary: spec.summary,
    params: walletParams,
    query: spec.query,
    response: spec.response,
    async handler({ params, query, ctx }) {
      const wallet = await find(pool, ctx, params.walletId);
      if (!wallet) throw new NotFound('Wallet');
      return { status: 200, body: await spec.read(wallet, query) };
    },
  });
}

// Over 80 lines because it is the route table of a context: one short declaration per route.
export function walletRoutes(deps: WalletRoutesDependencies): RouteSpec[] {
  const { wallets, pool, hasher } = deps;
  const current = <W extends Parameters<typeof withExpiringSoon>[1][number]>(found: W[]) => withExpiringSoon(pool, found, deps.now());
  return [
    route({
      method: 'get',
      path: '/api/v1/me/wallets',
      access: 'user',
      direct: true,
      summary: "The caller's wallets with each merchant's name (consumers; other roles have none).",
      response: z.array(consumerWalletView),
      async handler({ ctx }) {
        const c = caller(ctx);
        if (c.user?.role !== 'consumer') return { status: 200, body: [] };
        const { wallets, policies } = await walletsOfConsumer(pool, c.userId);
        return { status: 200, body: await withExpiringSoon(pool, wallets, deps.now(), policies) };
      },
    }),
    walletRead(pool, 'me', {
      path: '/ledger',
      summary: "A page of the caller's wallet ledger, newest first (?cursor=&limit=); a line names no staff member (no adminId) and no idempotencyKey.",
      query: pageQuery,
      response: consumerLedgerPageView,
      read: async (wallet, query) => forConsumer(await ledgerPage(pool, wallet.walletId, query)),
    }),
    route({
      method: 'get',
      path: '/api/v1/client/wallets',
      access: 'tenant',
      direct: true,
      summary: "Find the tenant's wallets of a customer by email or phone (?q=, any format).",
      query: searchQuery,
      response: z.array(walletView),
      async handler({ query, ctx }) {
        return { status: 200, body: await current(await searchWallets(pool, hasher, tenantOf(ctx), query.q)) };
      },
    }),
    walletRead(pool, 'client', {
      path: '',
      summary: "One of the tenant's wallets: balance, available, locked, expiringSoon and lifetime totals.",
      response: walletView,
      read: async (wallet) => (await current([wallet]))[0]!,
    }),
    walletRead(pool, 'client', {
      path: '/ledger',
      summary: "A page of the ledger of one of the tenant's wallets, newest first (?cursor=&limit=).",
      query: pageQuery,
      response: ledgerPageView,
      read: (wallet, query) => ledgerPage(pool, wallet.walletId, query),
    }),
    route({
      method: 'post',
      path: '/api/v1/client/wallets/:walletId/redeem',
      access: 'tenant',
      summary: 'Redeem points {points, idempotencyKey, reference?}; never below zero; a retried key answers as the first time.',
      params: walletParams,
      exists: walletInTenant(wallets),
      body: redeemBody,
      response: walletWrite,
      async handler({ params, body, ctx }) {
        return written(await wallets.redeem(tenantOf(ctx), params.walletId, body, caller(ctx).userId, metadataFor(ctx)));
      },
    }),
    route({
      method: 'get',
      path: '/api/v1/admin/users/:userId/wallets',
      access: 'admin',
      direct: true,
      summary:
        "A customer's wallets in every workspace, by their user id (from the user search): support finds the wallets of an account whose email another account verified since, which a workspace's search by that email no longer finds.",
      params: z.object({ userId: userId('userId') }),
      response: z.array(consumerWalletView),
      async handler({ params }) {
        // An unknown id is a 404, not an empty list a support typo would read as "no wallets".
        if (!(await pool.query('SELECT 1 FROM users WHERE id = $1', [params.userId])).rowCount) throw new NotFound('User');
        const { wallets, policies } = await walletsOfConsumer(pool, params.userId);
        return { status: 200, body: await withExpiringSoon(pool, wallets, deps.now(), policies) };
      },
    }),
    route({
      method: 'post',
      path: '/api/v1/admin/wallets/:walletId/adjust',
      access: 'admin',
      summary: 'Correct a balance {points (±), reason, idempotencyKey?}; the admin and the reason are recorded in the event.',
      params: walletParams,
      body: adjustBody,
      response: walletWrite,
      async handler({ params, body, ctx }) {
        return written(await wallets.adjust(params.walletId, body, caller(ctx).userId, metadataFor(ctx)));
      },
    }),
  ];
}
