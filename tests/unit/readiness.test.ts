/** The readiness route's reuse window: one round of checks answers every caller within it, and a failure's text stays in the log. */
import test from 'ava';
import type { Context } from 'koa';
import { healthRoutes, READINESS_REUSE_MS, type ReadinessCheck } from '../../http/routes/health.ts';

function readyz(checks: ReadinessCheck[], clock: { now: number }) {
  const route = healthRoutes(checks, () => clock.now).find((r) => r.path === '/readyz')!;
  const warnings: unknown[] = [];
  const ctx = { log: { warn: (obj: unknown) => warnings.push(obj) } } as unknown as Context;
  return { ask: () => route.handler({ params: undefined, query: undefined, body: undefined, ctx }) as Promise<{ status: number; body: any }>, warnings };
}

test('callers within the reuse window share one round of checks; the next round runs after it', async (t) => {
  let rounds = 0;
  const clock = { now: 1_000 };
  const { ask } = readyz([{ name: 'database', check: async () => (rounds++, { ok: true }) }], clock);
  const answers = await Promise.all(Array.from({ length: 20 }, ask));
  t.is(rounds, 1, 'twenty concurrent callers, one round');
  t.true(answers.every((a) => a.status === 200));
  clock.now += READINESS_REUSE_MS - 1;
  await ask();
  t.is(rounds, 1);
  clock.now += 1;
  await ask();
  t.is(rounds, 2);
});

test('a check that throws answers 503 "unreachable"; what it threw goes to the log only', async (t) => {
  const clock = { now: 0 };
  const { ask, warnings } = readyz([{ name: 'eventStore', check: async () => Promise.reject(new Error('ECONNREFUSED 10.0.0.7:2113 secret-host')) }], clock);
  const answer = await ask();
  t.is(answer.status, 503);
  t.deepEqual(answer.body.checks, { eventStore: { ok: false, detail: 'unreachable' } });
  t.notRegex(JSON.stringify(answer.body), /ECONNREFUSED|secret-host/);
  t.is(warnings.length, 1);
});
