/** The Square connection: connect (OAuth), see, refresh, disconnect, the refresh cron, and the runbook's debug endpoint. */
import type pg from 'pg';
import { randomBytes } from 'node:crypto';
import type { Context } from 'koa';
import { z } from 'zod';
import type { EventMetadata } from '../../domain/ports/event-store.ts';
import { OAUTH_STATE_LIFETIME_SECONDS, OAUTH_TICKET_LIFETIME_SECONDS } from '../../domain/ports/oauth-state.ts';
import { ConnectFailed, type ConnectFailureReason } from '../../domain/connections/errors.ts';
import type { RefreshReport, SquareConnectionsService } from '../../domain/connections/service.ts';
import type { SquareSettings } from '../../adapters/square/settings.ts';
import { lastWebhookReceivedAt, posConnection, posConnectionView } from '../../projections/read/connections.ts';
import { metadataFor, requestCorrelation, tenantOf } from '../request.ts';
import { position, timestamp } from '../schemas.ts';
import { squareDiagnosis, squareDiagnosisView } from './square-diagnosis.ts';
import { route, type Answer, type RouteSpec } from './table.ts';

export interface ConnectionRoutesDependencies {
  connections: SquareConnectionsService;
  pool: pg.Pool;
  settings: SquareSettings;
  now(): Date;
}

/** What Square appends to the redirect URI. Anything unexpected is treated as an invalid state (null here). */
const callbackQuery = z
  .object({
    code: z.string().max(2000).optional(),
    state: z.string().max(4000).optional(),
    error: z.string().max(200).optional(),
    error_description: z.string().max(2000).optional(),
  })
  .nullable()
  .catch(null);

/** The one-time ticket of the connect URL; anything else is no ticket (the flow then fails as an invalid state). */
const startQuery = z.object({ ticket: z.string().max(4000).optional().catch(undefined) });

const refreshReport = z.object({
  tenantId: z.string(),
  merchantId: z.string().nullable(),
  outcome: z.enum(['refreshed', 'not_due', 'failed', 'needs_reconnect', 'token_undecryptable', 'skipped']),
  tokenExpiresAt: timestamp.nullable(),
  error: z.object({ code: z.string(), detail: z.string() }).nullable(),
  position,
});

/** The browser goes back to the front end either way: the answer is a redirect, never an error body. */
const redirect = z.undefined();

/** Who acts, as recorded in events: `admin:<id>` or `user:<id>`. */
const actorOf = (ctx: Context) => metadataFor(ctx).actor ?? 'anonymous';

const reportJson = (report: RefreshReport): z.input<typeof refreshReport> => ({ ...report, position: report.position ?? null });

/**
 * A refresh Square refused for the app's own credentials fails for every merchant alike and is ours to fix: said at
 * error level with the fix, once per run (the connections stay active and the next run retries them).
 */
function logRejectedAppCredentials(ctx: Context, reports: readonly RefreshReport[]): void {
  const rejected = reports.filter((r) => r.error?.code === 'APP_CREDENTIALS_REJECTED');
  if (!rejected.length) return;
  ctx.log.error(
    { connections: rejected.length, tenantIds: rejected.slice(0, 20).map((r) => r.tenantId) },
    'Square refused the app credentials on token refresh: check SQUARE_APP_ID and SQUARE_APP_SECRET (rotated in the Developer Dashboard?); no merchant was marked for reconnecting, the next run retries',
  );
}

/**
 * The level of a refused connect attempt: `warn` once it is a workspace's (its ticket or state verified: the error
 * names the tenant) or the app lacks its Square settings; `info` otherwise, since a missing, forged, expired or
 * reused ticket or state comes from anyone who opens the public URL, and must not fill the log with warnings.
 */
const refusalLevel = (error: ConnectFailed): 'warn' | 'info' => (error.tenantId !== undefined || error.reason === 'configuration_missing' ? 'warn' : 'info');

/** The browser's half of the OAuth flow binding: HttpOnly, SameSite=Lax (it must ride Square's top-level redirect back). */
export const OAUTH_NONCE_COOKIE = 'tally_square_oauth';
const COOKIE_PATH = '/api/v1/oauth/square';

// Over 80 lines because it is the route table of a context: one short declaration per route.
export function connectionRoutes(deps: ConnectionRoutesDependencies): RouteSpec[] {
  const { connections, settings } = deps;
  const backToFrontend = (ctx: Context, outcome: { connected: true } | { error: ConnectFailureReason }): Answer<undefined> => {
    const target = new URL(`${settings.frontendUrl}/pos`);
    if ('connected' in outcome) target.searchParams.set('connected', 'square');
    else target.searchParams.set('error', outcome.error);
    return { status: 302, redirect: target.toString() };
  };

  const cookieOptions = { httpOnly: true, secure: settings.secureCookies, sameSite: 'lax' as const, path: COOKIE_PATH, overwrite: true };
  /**
   * TLS ends at the edge (API_BASE_URL is https): the cookie is Secure though this hop is plain http, so the
   * cookie library is told the connection is secure rather than refusing to send it.
   */
  const setNonce = (ctx: Context, value: string, extra: { maxAge: number; expires?: Date }) => {
    if (settings.secureCookies) (ctx.cookies as unknown as { secure: boolean }).secure = true;
    ctx.cookies.set(OAUTH_NONCE_COOKIE, value, { ...cookieOptions, ...extra });
  };
  const clearNonce = (ctx: Context) => setNonce(ctx, '', { maxAge: 0, expires: new Date(0) });

  return [
    route({
      method: 'get',
      path: '/api/v1/client/pos/square/connect',
      access: 'tenant',
      summary:
        'A one-time start URL (valid 5 minutes) for this browser to open: the answer sets an HttpOnly cookie the URL is bound to, so the URL works only in the browser that asked; it redirects to Square.',
      response: z.object({ url: z.string() }),
      async handler({ ctx }) {
        const nonce = randomBytes(32).toString('base64url');
        const answer = await connections.connectUrl({ tenantId: tenantOf(ctx), actor: actorOf(ctx) }, nonce);
        // Lives as long as the ticket and then the state: the start page and the callback read it.
        setNonce(ctx, nonce, { maxAge: (OAUTH_TICKET_LIFETIME_SECONDS + OAUTH_STATE_LIFETIME_SECONDS) * 1000 });
        return { status: 200, body: answer, headers: { 'Cache-Control': 'no-store' } };
      },
    }),
    route({
      method: 'get',
      path: '/api/v1/oauth/square/start',
      access: 'public',
      summary:
        "The browser that asked for the connect URL opens it here (with the cookie that answer set; any other browser is sent back with error=invalid_state): answers 302 to Square's authorize URL, its state bound to the same cookie.",
      query: startQuery,
      response: redirect,
      answers: 'redirect',
      async handler({ query, ctx }) {
        const browserNonce = ctx.cookies.get(OAUTH_NONCE_COOKIE) || undefined;
        try {
          const { authorizeUrl } = await connections.startConnect(query.ticket, browserNonce);
          return { status: 302, redirect: authorizeUrl, headers: { 'Cache-Control': 'no-store' } };
        } catch (error) {
          if (error instanceof ConnectFailed) {
            ctx.log[refusalLevel(error)]({ reason: error.reason, detail: error.detail, tenantId: error.tenantId }, 'Square connect could not start');
            return backToFrontend(ctx, { error: error.reason });
          }
          throw error;
        }
      },
    }),
    route({
      method: 'get',
      path: '/api/v1/oauth/square/callback',
      access: 'public',
      summary: 'Square redirects the browser here after consent; answers 302 to <FRONTEND_URL>/pos?connected=square or ?error=<code>.',
      query: callbackQuery,
      response: redirect,
      answers: 'redirect',
      async handler({ query: q, ctx }) {
        const browserNonce = ctx.cookies.get(OAUTH_NONCE_COOKIE) || undefined;
        // Whatever happens next, the nonce is spent: one flow per cookie.
        if (browserNonce) clearNonce(ctx);
        if (!q) {
          ctx.log.info({ reason: 'invalid_state', detail: 'the callback query is malformed' }, 'Square connect failed');
          return backToFrontend(ctx, { error: 'invalid_state' });
        }
        try {
          const connected = await connections.completeConnect(
            { code: q.code, state: q.state, error: q.error, errorDescription: q.error_description },
            browserNonce,
            metadataFor(ctx),
          );
          ctx.log.info({ tenantId: connected.tenantId, merchantId: connected.merchantId, previous: connected.previous }, 'Square connected');
          if (connected.previous && !connected.previous.revoked) {
            ctx.log.warn(
              { tenantId: connected.tenantId, previousMerchantId: connected.previous.merchantId, detail: connected.previous.error },
              'the previous Square merchant’s grant could not be revoked: revoke it in that merchant’s Square dashboard (Apps)',
            );
          }
          return backToFrontend(ctx, { connected: true });
        } catch (error) {
          if (error instanceof ConnectFailed) {
            // The detail names what went wrong (never a code or token); the browser only gets the reason.
            ctx.log[refusalLevel(error)]({ reason: error.reason, detail: error.detail, tenantId: error.tenantId }, 'Square connect failed');
            return backToFrontend(ctx, { error: error.reason });
          }
          ctx.log.error({ err: error }, 'Square connect failed unexpectedly');
          return backToFrontend(ctx, { error: 'token_exchange_failed' });
        }
      },
    }),
    route({
      method: 'get',
      path: '/api/v1/client/pos/square',
      access: 'tenant',
      summary: "The tenant's Square connection: status (not_connected, active, needs_reconnect, token_undecryptable, revoked), merchant, scopes, token expiry, last refresh, poll and error.",
      response: posConnectionView,
      async handler({ ctx }) {
        return { status: 200, body: await posConnection(deps.pool, tenantOf(ctx)) };
      },
    }),
    route({
      method: 'delete',
      path: '/api/v1/client/pos/square',
      access: 'tenant',
      summary: 'Disconnect Square: revokes the tokens at Square, records the revocation and deletes the stored tokens.',
      response: z.object({ status: z.literal('revoked'), position }),
      async handler({ ctx }) {
        const result = await connections.disconnect(tenantOf(ctx), actorOf(ctx), metadataFor(ctx));
        return { status: 200, body: { status: result.status, position: result.position ?? null } };
      },
    }),
    route({
      method: 'post',
      path: '/api/v1/client/pos/square/refresh',
      access: 'tenant',
      summary: "Refresh the tenant's Square access token now.",
      response: refreshReport,
      async handler({ ctx }) {
        const report = await connections.refresh(tenantOf(ctx), metadataFor(ctx));
        logRejectedAppCredentials(ctx, [report]);
        return { status: 200, body: reportJson(report) };
      },
    }),
    route({
      method: 'post',
      path: '/api/v1/internal/cron/square-refresh-tokens',
      access: 'cron',
      summary: 'Refresh every active Square token older than 7 days or expiring within 8; reports what happened per connection.',
      response: z.object({ checked: z.number().int(), counts: z.record(z.string(), z.number().int()), connections: z.array(refreshReport) }),
      async handler({ ctx }) {
        const metadata: EventMetadata = { correlationId: requestCorrelation(ctx), causationId: requestCorrelation(ctx), actor: 'system:cron' };
        const reports = await connections.refreshDue(metadata, (tenantId, error) => ctx.log.error({ err: error, tenantId }, 'Square token refresh failed unexpectedly'));
        const counts: Record<string, number> = {};
        for (const report of reports) counts[report.outcome] = (counts[report.outcome] ?? 0) + 1;
        ctx.log.info({ counts }, 'Square token refresh run');
        logRejectedAppCredentials(ctx, reports);
        return { status: 200, body: { checked: reports.length, counts, connections: reports.map(reportJson) } };
      },
    }),
    route({
      method: 'get',
      path: '/api/v1/client/debug/square',
      access: 'tenant',
      summary: 'Runbook 1 in one answer: which variables are set, environment, OAuth host, redirect and webhook URLs, connection, token, last webhook and poll.',
      response: squareDiagnosisView,
      async handler({ ctx }) {
        const tenantId = tenantOf(ctx);
        const [connection, token] = await Promise.all([connections.connection(tenantId), connections.tokenCheck(tenantId)]);
        const lastWebhookAt = connection.status === 'not_connected' ? null : await lastWebhookReceivedAt(deps.pool, connection.merchantId);
        return { status: 200, body: squareDiagnosis({ tenantId, settings, connection, token, lastWebhookAt, now: deps.now() }) };
      },
    }),
  ];
}
