/**
 * Running the loyalty program: the expiry policy and its daily run, the merchant's own corrections within the
 * limit an administrator sets, the program summary and the ledger export.
 */
import { Readable } from 'node:stream';
import type pg from 'pg';
import { z } from 'zod';
import type { EventMetadata, EventStore } from '../../domain/ports/event-store.ts';
import type { ProgramService } from '../../domain/program/service.ts';
import { expiryPolicyRequestSchema, MAX_ADJUSTMENT_LIMIT } from '../../domain/program/program.ts';
import type { ExpiryRunReport } from '../../domain/program/expiry-run.ts';
import { expiryPolicy, type ExpiryPolicy } from '../../domain/wallets/expiry.ts';
import type { WalletsService } from '../../domain/wallets/service.ts';
import { loadState } from '../../domain/shared/command-handler.ts';
import { wholeNumber } from '../../domain/shared/whole-number.ts';
import { workspaceDecider, workspaceStream } from '../../domain/workspaces/workspace.ts';
import { ledgerCsv, programSummary, programSummaryView, intervalEnd, intervalStarts, summaryInterval } from '../../projections/read/program.ts';
import { HttpError, RequestInvalid } from '../errors.ts';
import { caller, metadataFor, requestCorrelation, tenantOf } from '../request.ts';
import { adminTenantId, position, timestamp } from '../schemas.ts';
import { adjustBody, walletInTenant, walletParams, walletWrite, written } from './wallets.ts';
import { route, type RouteSpec } from './table.ts';

export interface ProgramRoutesDependencies {
  program: ProgramService;
  wallets: WalletsService;
  /** One run of points and reward expiry as of `asOf`. */
  expire(asOf: Date, metadata: EventMetadata): Promise<ExpiryRunReport>;
  store: EventStore;
  pool: pg.Pool;
  now(): Date;
}

const policyView = (policy: ExpiryPolicy) => ({
  version: policy.version,
  earnedMonths: policy.earnedMonths,
  inactivityMonths: policy.inactivityMonths,
  appliesToExistingPoints: policy.retroactive,
  effectiveFrom: policy.version === 0 ? null : policy.effectiveFrom,
  timeZone: policy.timeZone,
  expires: policy.earnedMonths !== null || policy.inactivityMonths !== null,
});

const limitBody = z
  .object({
    limit: wholeNumber('limit', 0, MAX_ADJUSTMENT_LIMIT, {
      required: 'limit is required: the most points a merchant may add or remove in one adjustment',
      unit: 'points',
      belowMin: 'limit must be at least 0 (0: merchants cannot adjust)',
    }),
  })
  .strict();
const tenantParams = z.object({ tenantId: z.string().regex(/^[A-Za-z0-9_-]{1,100}$/, 'tenantId must be a workspace id') });
const cronBody = z.object({}).strict();

const DAY = /^\d{4}-\d{2}-\d{2}$/;
/**
 * Whether `YYYY-MM-DD` is a calendar date that exists (2026-02-30 is not, where `Date` reads it as March 2nd) in a
 * year PostgreSQL stores (0001–9999: it refuses year 0000, which `Date` takes).
 */
const existingDay = (text: string) => {
  const parsed = new Date(`${text}T00:00:00.000Z`);
  return DAY.test(text) && !text.startsWith('0000') && !Number.isNaN(parsed.getTime()) && parsed.toISOString().slice(0, 10) === text;
};
/** A UTC day `YYYY-MM-DD`, as a Date at its start. */
const day = (name: string) =>
  z.string().transform((text, ctx) => {
    if (!existingDay(text)) {
      ctx.addIssue({ code: 'custom', message: `${name} must be a date as YYYY-MM-DD, e.g. 2026-01-31` });
      return z.NEVER;
    }
    return new Date(`${text}T00:00:00.000Z`);
  });
/** A day (`YYYY-MM-DD`, UTC) or an instant (ISO 8601 with its offset), its date part a date that exists. */
const dayOrInstant = (name: string) =>
  z.string().transform((text, ctx) => {
    const parsed = !existingDay(text.slice(0, 10))
      ? new Date(Number.NaN)
      : DAY.test(text)
        ? new Date(`${text}T00:00:00.000Z`)
        : // An instant names its offset (`Z` or `±hh:mm`): without one, JavaScript would read it in the server's time zone.
          /^\d{4}-\d{2}-\d{2}T[^Z+-]*(?:\.\d+)?(?:Z|[+-]\d{2}:\d{2})$/.test(text)
          ? new Date(text)
          : new Date(Number.NaN);
    if (Number.isNaN(parsed.getTime())) {
      ctx.addIssue({ code: 'custom', message: `${name} must be a date (YYYY-MM-DD) or an ISO 8601 instant with its offset, such as 2026-01-31T12:00:00Z` });
      return z.NEVER;
    }
    return { at: parsed, isDay: DAY.test(text) };
  });

const MAX_INTERVALS = 400;
const FIRST_DAY = Date.parse('0001-01-01T00:00:00.000Z');
const LAST_DAY = Date.parse('9999-12-31T00:00:00.000Z');
// Both refuse a parameter they do not know (a misspelt `from` widened the range to the whole ledger; found in review, 2026-12-08).
const summaryQuery = z
  .object({
    tenantId: adminTenantId,
    from: day('from').optional(),
    to: day('to').optional(),
    interval: z.enum(summaryInterval.options, { error: "interval must be 'day', 'week' or 'month'" }).default('day'),
  })
  .strict();
const csvQuery = z
  .object({
    tenantId: adminTenantId,
    from: dayOrInstant('from')
      .optional()
      .meta({ description: 'First line time: a day YYYY-MM-DD, a UTC day (from its 00:00 UTC), or an ISO 8601 instant with its offset.' }),
    to: dayOrInstant('to')
      .optional()
      .meta({ description: 'Last line time: a day YYYY-MM-DD, a UTC day, included (up to its end, 24:00 UTC), or an ISO 8601 instant with its offset, excluded.' }),
  })
  .strict();

/** The policy as a merchant reads it (`policyView`): `retroactive` named for what it does, no date before a first policy. */
const policySchema = expiryPolicy.pick({ version: true, earnedMonths: true, inactivityMonths: true, timeZone: true }).extend({
  appliesToExistingPoints: z.boolean(),
  effectiveFrom: timestamp.nullable(),
  expires: z.boolean(),
});

const expiryReport = z.object({
  period: z.string(),
  asOf: timestamp,
  workspaces: z.number().int(),
  walletsChecked: z.number().int(),
  walletsExpired: z.number().int(),
  pointsExpired: z.number().int(),
  rewardsExpired: z.number().int(),
  walletsFailed: z.number().int(),
  rewardsFailed: z.number().int(),
  /** The first 100 wallets or issued rewards passed over (logged too); the next run tries them again. */
  failures: z.array(z.object({ walletId: z.string(), issuedRewardId: z.string().nullable(), code: z.string() })),
  /** Workspaces whose expiry policy could not be read, passed over (none of their wallets checked), and the first 100. */
  workspacesFailed: z.number().int(),
  workspaceFailures: z.array(z.object({ tenantId: z.string(), code: z.string() })),
});

function outOfOrder(field: string, message: string): never {
  throw new RequestInvalid([{ code: 'custom', path: [field], message, input: undefined }], 'query');
}

// Over 80 lines because it is the route table of a context: one short declaration per route.
export function programRoutes(deps: ProgramRoutesDependencies): RouteSpec[] {
  const { program, wallets, pool } = deps;
  return [
    route({
      method: 'get',
      path: '/api/v1/client/expiry-policy',
      access: 'tenant',
      summary: "The workspace's points expiry policy (version 0: points never expire).",
      response: policySchema,
      async handler({ ctx }) {
        return { status: 200, body: policyView((await program.current(tenantOf(ctx))).policy) };
      },
    }),
    route({
      method: 'put',
      path: '/api/v1/client/expiry-policy',
      access: 'tenant',
      summary:
        "Set the expiry policy {earnedMonths? (1–60), inactivityMonths? (1–60), applyToExistingPoints?, timeZone? (IANA; default the Square main location's)}: without the flag, existing points count from now.",
      body: expiryPolicyRequestSchema,
      response: policySchema.extend({ position, warnings: z.array(z.string()) }),
      async handler({ body, ctx }) {
        const result = await program.setExpiryPolicy(tenantOf(ctx), body, caller(ctx).userId, metadataFor(ctx));
        return { status: 200, body: { ...policyView(result.state.policy), position: result.position, warnings: result.warnings } };
      },
    }),
    route({
      method: 'post',
      path: '/api/v1/internal/cron/expire-points',
      access: 'cron',
      summary: 'Expire points past the policy (once per wallet and UTC day) and issued rewards past their time; run daily.',
      body: cronBody,
      response: expiryReport,
      async handler({ ctx }) {
        const metadata: EventMetadata = { correlationId: requestCorrelation(ctx), causationId: requestCorrelation(ctx), actor: 'system:cron' };
        return { status: 200, body: await deps.expire(deps.now(), metadata) };
      },
    }),
    route({
      method: 'post',
      path: '/api/v1/client/wallets/:walletId/adjust',
      access: 'tenant',
      summary: "A merchant corrects a wallet of the workspace {points (±), reason, idempotencyKey?} within the workspace's limit (default 1,000).",
      params: walletParams,
      exists: walletInTenant(wallets),
      body: adjustBody,
      response: walletWrite,
      async handler({ params, body, ctx }) {
        const tenantId = tenantOf(ctx);
        const { adjustmentLimit } = await program.current(tenantId);
        return written(await wallets.adjustAsMerchant(tenantId, params.walletId, body, adjustmentLimit, caller(ctx).userId, metadataFor(ctx)));
      },
    }),
    route({
      method: 'get',
      path: '/api/v1/client/adjustment-limit',
      access: 'tenant',
      summary: 'The most points a merchant of the workspace may add or remove in one adjustment.',
      response: z.object({ limit: z.number().int() }),
      async handler({ ctx }) {
        return { status: 200, body: { limit: (await program.current(tenantOf(ctx))).adjustmentLimit } };
      },
    }),
    route({
      method: 'put',
      path: '/api/v1/admin/workspaces/:tenantId/adjustment-limit',
      access: 'admin',
      summary: "Set a workspace's per-adjustment limit for its merchants {limit} (default 1,000).",
      params: tenantParams,
      body: limitBody,
      response: z.object({ tenantId: z.string(), limit: z.number().int(), position }),
      async handler({ params, body, ctx }) {
        const { tenantId } = params;
        const workspace = await loadState(deps.store, workspaceStream(tenantId), workspaceDecider);
        if (workspace.state.status === 'none') throw new HttpError('NOT_FOUND', `No workspace has tenantId ${tenantId}`);
        const result = await program.setAdjustmentLimit(tenantId, body.limit, caller(ctx).userId, metadataFor(ctx));
        return { status: 200, body: { tenantId, limit: result.state.adjustmentLimit, position: result.position ?? null } };
      },
    }),
    route({
      method: 'get',
      path: '/api/v1/client/program/summary',
      access: 'tenant',
      summary: 'Program figures ?from=&to= (YYYY-MM-DD, default the last 30 days) &interval=day|week|month: points, rewards, active and top customers, outstanding points.',
      query: summaryQuery,
      response: programSummaryView,
      async handler({ query, ctx }) {
        const today = new Date(`${deps.now().toISOString().slice(0, 10)}T00:00:00.000Z`);
        const to = query.to ?? today;
        // The days a summary covers are PostgreSQL's dates of four-digit years: a default `from` stops at the first.
        const from = query.from ?? new Date(Math.max(to.getTime() - 29 * 86_400_000, FIRST_DAY));
        if (from.getTime() > to.getTime()) outOfOrder('from', 'from must be on or before to');
        // Widened to whole intervals, a week holding 9999-12-31 ends in year 10000 (it was a 500). 0001-01-01 is a Monday.
        if (intervalEnd(to, query.interval).getTime() > LAST_DAY) {
          outOfOrder('to', `to is in a ${query.interval} that ends after 9999-12-31, the last day a summary covers: use an earlier to or a shorter interval`);
        }
        // Counted up to one past the bound: a range of millennia by day is refused without listing its days.
        if (intervalStarts(from, to, query.interval, MAX_INTERVALS + 1).length > MAX_INTERVALS) {
          outOfOrder('interval', `the range holds more than ${MAX_INTERVALS} intervals of a ${query.interval}: use a longer interval or a shorter range`);
        }
        return { status: 200, body: await programSummary(pool, tenantOf(ctx), { from, to, interval: query.interval }) };
      },
    }),
    route({
      method: 'get',
      path: '/api/v1/client/ledger.csv',
      access: 'tenant',
      summary: "The workspace's ledger lines as CSV (RFC 4180), oldest first, streamed ?from=&to= (days or ISO 8601 instants; to excluded, a day included).",
      query: csvQuery,
      answers: 'csv',
      // The text of the file: a header line, then one line per ledger line.
      response: z.string(),
      async handler({ query, ctx }) {
        const from = query.from?.at ?? new Date(0);
        // A day as `to` includes that day: the range ends at the start of the next one.
        const to = query.to ? (query.to.isDay ? new Date(query.to.at.getTime() + 86_400_000) : query.to.at) : new Date(deps.now().getTime() + 1);
        if (from.getTime() >= to.getTime()) outOfOrder('from', 'from must be before to');
        const tenantId = tenantOf(ctx);
        // Its first page is read here: no connection or failing query becomes a 200 cut short.
        const lines = await ledgerCsv(pool, tenantId, { from, to });
        return {
          status: 200,
          stream: Readable.from(lines, { objectMode: false }),
          headers: { 'Content-Type': 'text/csv; charset=utf-8; header=present', 'Content-Disposition': `attachment; filename="ledger-${tenantId}.csv"` },
        };
      },
    }),
  ];
}
