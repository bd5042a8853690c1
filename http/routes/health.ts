import Router from '@koa/router';

export interface ReadinessCheck {
  name: string;
  check(): Promise<{ ok: boolean; detail?: unknown }>;
}

/** `/healthz`: the process is alive. `/readyz`: every dependency is reachable and ready (503 otherwise). */
export function healthRouter(checks: ReadinessCheck[]): Router {
  const router = new Router();
  router.get('/healthz', (ctx) => {
    ctx.body = { status: 'ok', uptimeSeconds: Math.round(process.uptime()) };
  });
  router.get('/readyz', async (ctx) => {
    const results = await Promise.all(
      checks.map(async (c) => {
        try {
          return [c.name, await c.check()] as const;
        } catch (error) {
          ctx.log.warn({ err: error, check: c.name }, 'readiness check failed');
          return [c.name, { ok: false, detail: 'unreachable' }] as const;
        }
      }),
    );
    const ready = results.every(([, r]) => r.ok);
    ctx.status = ready ? 200 : 503;
    if (!ready) ctx.set('Retry-After', '5');
    ctx.body = { status: ready ? 'ready' : 'not_ready', checks: Object.fromEntries(results) };
  });
  return router;
}
