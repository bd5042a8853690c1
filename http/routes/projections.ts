/** Projection status and zero-downtime rebuilds. */
import { z } from 'zod';
import type { EventStore, Position } from '../../domain/ports/event-store.ts';
import type { ProjectionRunner } from '../../projections/runner.ts';
import type { ProjectionRebuilds } from '../../projections/rebuild.ts';
import { HttpError } from '../errors.ts';
import { params } from './accounts.ts';
import type { RouteSpec } from './table.ts';

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

export function projectionRoutes(deps: ProjectionRoutesDependencies): RouteSpec[] {
  const name = z.object({ name: z.string().min(1).max(100) });
  const job = z.object({ jobId: z.string().uuid('jobId must be a job id returned by a rebuild') });
  return [
    {
      method: 'get',
      path: '/api/v1/admin/projections',
      access: 'admin',
      summary:
        'Per projection and reactor: checkpoint, events of its types behind the head, lag, state (running, rebuilding, failed), last error, and events read vs applied by its filtered subscription.',
      async handler(ctx) {
        const jobs = await deps.rebuilds.recent(50);
        const now = deps.now();
        ctx.body = await Promise.all(
          deps.runner.status().map(async (s) => {
            const rebuilding = jobs.find((j) => j.projection === s.name && j.state === 'running');
            return {
              name: s.name,
              kind: s.kind,
              state: rebuilding ? 'rebuilding' : s.state,
              checkpoint: s.position ?? null,
              eventTypes: s.eventTypes,
              eventsRead: s.eventsRead,
              eventsApplied: s.eventsApplied,
              upTo: s.upTo ?? null,
              ...(await lagOf(deps.store, s.upTo, s.eventTypes, now)),
              lastError: s.lastError ?? null,
              errorPosition: s.errorPosition ?? null,
              rebuild: rebuilding ?? null,
              rebuildable: deps.rebuilds.names().includes(s.name),
            };
          }),
        );
      },
    },
    {
      method: 'post',
      path: '/api/v1/admin/projections/:name/rebuild',
      access: 'admin',
      summary: 'Rebuild a projection from position zero beside the live one; it takes over atomically when caught up (202 with a job id).',
      async handler(ctx) {
        const { name: projection } = params(name, ctx);
        const started = await deps.rebuilds.start(projection);
        ctx.status = 202;
        ctx.set('Location', `/api/v1/admin/jobs/${started.jobId}`);
        ctx.body = started;
      },
    },
    {
      method: 'get',
      path: '/api/v1/admin/jobs/:jobId',
      access: 'admin',
      summary: "A rebuild job's state and progress (events applied, total, events/s, estimate of time left).",
      async handler(ctx) {
        const { jobId } = params(job, ctx);
        const found = await deps.rebuilds.get(jobId);
        if (!found) throw new HttpError('NOT_FOUND', 'No such job');
        ctx.body = found;
      },
    },
    {
      method: 'post',
      path: '/api/v1/admin/jobs/:jobId/cancel',
      access: 'admin',
      summary: 'Cancel a running rebuild; starting a rebuild of the same projection resumes it.',
      async handler(ctx) {
        const { jobId } = params(job, ctx);
        ctx.body = await deps.rebuilds.cancel(jobId);
      },
    },
  ];
}
