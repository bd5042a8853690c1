/** Projection status and zero-downtime rebuilds. */
import { z } from 'zod';
import type { EventStore, Position } from '../../domain/ports/event-store.ts';
import type { ProjectionRunner } from '../../projections/runner.ts';
import { rebuildJob, type ProjectionRebuilds } from '../../projections/rebuild.ts';
import { DomainError, NotFound } from '../../domain/shared/errors.ts';
import { uuid } from '../schemas.ts';
import { caller } from '../request.ts';
import { found, route, type RouteSpec } from './table.ts';

const BEHIND_CAP = 10_000;

export interface ProjectionRoutesDependencies {
  runner: ProjectionRunner;
  rebuilds: ProjectionRebuilds;
  store: EventStore;
  now(): Date;
}

/** Events of the types it handles the projection has not applied yet (capped), and how long the oldest of them has waited. */
async function lagOf(store: EventStore, position: Position | undefined, eventTypes: readonly string[] | 'all', now: Date) {
  const filter = eventTypes === 'all' ? {} : { filter: { eventTypes } };
  const pending = await store.readAll({ ...(position ? { from: position } : {}), limit: BEHIND_CAP + 1, ...filter });
  const unapplied = position ? pending.filter((e) => e.position !== position) : pending;
  const oldest = unapplied[0];
  return {
    eventsBehind: Math.min(unapplied.length, BEHIND_CAP),
    eventsBehindCapped: unapplied.length > BEHIND_CAP,
    lagMs: oldest ? Math.max(0, now.getTime() - oldest.recordedAt.getTime()) : 0,
  };
}

/** Every projection and reactor as the status route answers it. */
async function projectionStatuses(deps: ProjectionRoutesDependencies) {
  const jobs = await deps.rebuilds.recent(50);
  const now = deps.now();
  const statuses = deps.runner.status();
  // A projection another instance feeds (standby here, or not started): its lag from its stored checkpoint, not
  // from the start of the feed (a scan of the whole history per projection, and every event counted behind).
  const fedHere = (s: (typeof statuses)[number]) => s.state === 'running' || s.state === 'failed';
  const stored = await deps.runner.storedCheckpoints(statuses.filter((s) => !fedHere(s)).map((s) => s.name));
  return Promise.all(
    statuses.map(async (s) => {
      const rebuilding = jobs.find((j) => j.projection === s.name && j.state === 'running');
      const from = fedHere(s) ? s.upTo : stored.get(s.name);
      return {
        name: s.name,
        kind: s.kind,
        state: rebuilding ? ('rebuilding' as const) : s.state,
        checkpoint: (fedHere(s) ? s.position : from) ?? null,
        eventTypes: s.eventTypes === 'all' ? ('all' as const) : [...s.eventTypes],
        eventsRead: s.eventsRead,
        eventsApplied: s.eventsApplied,
        upTo: (fedHere(s) ? s.upTo : from) ?? null,
        ...(await lagOf(deps.store, from, s.eventTypes, now)),
        lastError: s.lastError ?? null,
        errorPosition: s.errorPosition ?? null,
        rebuild: rebuilding ?? null,
        rebuildable: deps.rebuilds.names().includes(s.name),
      };
    }),
  );
}

const projectionView = z.object({
  name: z.string(),
  kind: z.enum(['projection', 'reactor']),
  state: z.enum(['starting', 'running', 'standby', 'stopped', 'failed', 'superseded', 'rebuilding']),
  checkpoint: z.string().nullable(),
  eventTypes: z.union([z.array(z.string()), z.literal('all')]),
  eventsRead: z.number().int(),
  eventsApplied: z.number().int(),
  upTo: z.string().nullable(),
  eventsBehind: z.number().int(),
  eventsBehindCapped: z.boolean(),
  lagMs: z.number(),
  lastError: z.string().nullable(),
  errorPosition: z.string().nullable(),
  rebuild: rebuildJob.nullable(),
  rebuildable: z.boolean(),
});

const retryAnswer = z.object({
  name: z.string(),
  /** The checkpoint it is fed from: the first event after it is the one it failed on. */
  resumesAfter: z.string().nullable(),
});

export function projectionRoutes(deps: ProjectionRoutesDependencies): RouteSpec[] {
  const name = z.object({ name: z.string().min(1).max(100) });
  const job = z.object({ jobId: uuid('jobId must be a job id returned by a rebuild') });
  return [
    route({
      method: 'get',
      path: '/api/v1/admin/projections',
      access: 'admin',
      summary:
        'Per projection and reactor: checkpoint, events of its types behind the head, lag, state (running, rebuilding, failed), last error, and events read vs applied by its filtered subscription.',
      response: z.array(projectionView),
      handler: async () => ({ status: 200, body: await projectionStatuses(deps) }),
    }),
    route({
      method: 'post',
      path: '/api/v1/admin/projections/:name/rebuild',
      access: 'admin',
      summary: 'Rebuild a projection from position zero beside the live one; it takes over atomically when caught up (202 with a job id).',
      params: name,
      response: rebuildJob,
      statuses: [202],
      async handler({ params }) {
        const started = await deps.rebuilds.start(params.name);
        return { status: 202, body: started, headers: { Location: `/api/v1/admin/jobs/${started.jobId}` } };
      },
    }),
    retryRoute(deps, name),
    route({
      method: 'get',
      path: '/api/v1/admin/jobs/:jobId',
      access: 'admin',
      summary: "A rebuild job's state and progress (events applied, total, events/s, estimate of time left).",
      params: job,
      response: rebuildJob,
      async handler({ params }) {
        return found(await deps.rebuilds.get(params.jobId), 'No such job');
      },
    }),
    route({
      method: 'post',
      path: '/api/v1/admin/jobs/:jobId/cancel',
      access: 'admin',
      summary: 'Cancel a running rebuild; starting a rebuild of the same projection resumes it.',
      params: job,
      response: rebuildJob,
      async handler({ params }) {
        return { status: 200, body: await deps.rebuilds.cancel(params.jobId) };
      },
    }),
  ];
}

/** A failed projection or reactor fed again from its checkpoint, once its cause is fixed. */
function retryRoute(deps: ProjectionRoutesDependencies, name: z.ZodObject<{ name: z.ZodString }>): RouteSpec {
  return route({
    method: 'post',
    path: '/api/v1/admin/projections/:name/retry',
    access: 'admin',
    summary:
      'Feed a failed projection or reactor again from its checkpoint (the event it failed on), once the cause is fixed outside the code; a failure that persists is recorded again. 409 when it has not failed.',
    params: name,
    response: retryAnswer,
    statuses: [202],
    async handler({ params, ctx }) {
      if (!deps.runner.names().includes(params.name)) throw new NotFound('Projection');
      const retried = await deps.runner.retryFailed(params.name);
      if (!retried) throw new DomainError('CONFLICT', `${params.name} has not failed: nothing to retry`);
      ctx.log.warn({ projection: params.name, from: retried.position ?? null, by: caller(ctx).userId }, 'failed projection retried');
      return { status: 202, body: { name: params.name, resumesAfter: retried.position ?? null } };
    },
  });
}
