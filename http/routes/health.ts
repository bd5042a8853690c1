/**
 * `/healthz`: the process is alive. `/readyz`: every dependency is reachable and ready (503 otherwise). Both are
 * public: `/readyz` says what is not ready, never an error's text (a projection's error is on the admin route), and
 * its checks run at most once per `READINESS_REUSE_MS`, however many callers ask.
 */
import { z } from 'zod';
import { route, type RouteSpec } from './table.ts';

export interface ReadinessCheck {
  name: string;
  check(): Promise<{ ok: boolean; detail?: unknown }>;
}

/** How long one round of readiness checks answers every caller: a public route, so its database queries are bounded. */
export const READINESS_REUSE_MS = 250;

type CheckResults = (readonly [string, { ok: boolean; detail?: unknown }])[];

export function healthRoutes(checks: ReadinessCheck[], now: () => number = () => performance.now()): RouteSpec[] {
  let last: { at: number; results: Promise<CheckResults> } | undefined;
  const run = (log: { warn(obj: object, msg: string): void }): Promise<CheckResults> =>
    Promise.all(
      checks.map(async (c) => {
        try {
          return [c.name, await c.check()] as const;
        } catch (error) {
          log.warn({ err: error, check: c.name }, 'readiness check failed');
          return [c.name, { ok: false, detail: 'unreachable' }] as const;
        }
      }),
    );
  return [
    route({
      method: 'get',
      path: '/healthz',
      access: 'public',
      summary: 'Liveness: the process answers.',
      response: z.object({ status: z.literal('ok'), uptimeSeconds: z.number().int() }),
      handler: () => ({ status: 200, body: { status: 'ok' as const, uptimeSeconds: Math.round(process.uptime()) } }),
    }),
    route({
      method: 'get',
      path: '/readyz',
      access: 'public',
      summary: 'Readiness: every dependency (database, event store, migrations, projections) checked; 503 when one is not ready.',
      response: z.object({
        status: z.enum(['ready', 'not_ready']),
        checks: z.record(z.string(), z.object({ ok: z.boolean(), detail: z.unknown().optional() })),
      }),
      statuses: [200, 503],
      async handler({ ctx }) {
        // Callers within the reuse window (or while a round runs) share its answer.
        if (!last || now() - last.at >= READINESS_REUSE_MS) last = { at: now(), results: run(ctx.log) };
        const results = await last.results;
        const ready = results.every(([, r]) => r.ok);
        return {
          status: ready ? 200 : 503,
          body: { status: ready ? ('ready' as const) : ('not_ready' as const), checks: Object.fromEntries(results) },
          ...(ready ? {} : { headers: { 'Retry-After': '5' } }),
        };
      },
    }),
  ];
}
