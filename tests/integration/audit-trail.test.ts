/**
 * The audit projection and its queries against real PostgreSQL, for what HTTP tests cannot arrange: events
 * whose recorded times run out of feed order (a transaction that committed after a later-recorded one).
 * Whatever the order and batching, a time filter answers exactly what the recorded times say, and applying a
 * batch again changes nothing.
 */
import test from 'ava';
import fc from 'fast-check';
import { v4 as uuid } from 'uuid';
import { z } from 'zod';
import type { Position, RecordedEvent } from '../../domain/ports/event-store.ts';
import { auditProjection } from '../../projections/audit.ts';
import { auditPage, type AuditFilter, type AuditItem } from '../../projections/read/audit.ts';
import { withTransaction } from '../../adapters/postgres/transaction.ts';
import { createTestDatabase, type TestDatabase } from '../support/database.ts';

let database: TestDatabase;

test.before(async () => {
  database = await createTestDatabase();
});
test.after.always(async () => {
  await database?.drop();
});

const T0 = Date.parse('2026-03-01T12:00:00Z');
const TYPES = ['PointsCredited', 'PointsRedeemed', 'UserRegistered'] as const;

function event(index: number, offsetMs: number, type: string): RecordedEvent {
  return {
    id: uuid(),
    type,
    data: { tenantId: index % 2 ? 'tenant-odd' : 'tenant-even', walletId: `w-${index % 3}` },
    metadata: { actor: 'system:test', correlationId: `c-${index}` },
    stream: `wallet-w-${index % 3}`,
    revision: index,
    position: `0.${index}` as Position,
    recordedAt: new Date(T0 + offsetMs),
  };
}

async function project(batches: readonly RecordedEvent[][]): Promise<void> {
  for (const batch of batches) await withTransaction(database.pool, (db) => auditProjection.apply(batch, { db, table: (name) => name }));
}

async function everyPage(filter: AuditFilter, limit: number): Promise<AuditItem[]> {
  const items: AuditItem[] = [];
  let cursor: string | undefined;
  do {
    const page = await auditPage(database.pool, filter, { cursor, limit });
    items.push(...page.items);
    cursor = page.nextCursor ?? undefined;
  } while (cursor);
  return items;
}

/** The tenant an event's data names, if any. */
const tenantOf = (e: RecordedEvent) => z.object({ tenantId: z.string().optional() }).parse(e.data).tenantId;

/** The answer by definition: the feed, newest first, filtered by recorded time and type. */
function expected(feed: readonly RecordedEvent[], filter: AuditFilter): string[] {
  return [...feed]
    .reverse()
    .filter((e) => (!filter.from || e.recordedAt >= filter.from) && (!filter.to || e.recordedAt < filter.to))
    .filter((e) => !filter.types || filter.types.includes(e.type))
    .filter((e) => !filter.tenantId || tenantOf(e) === filter.tenantId)
    .map((e) => e.id);
}

test.serial('time filters are exact when recorded times run out of feed order, across batches and pages', async (t) => {
  const scenario = fc.record({
    // Mostly forwards in time, sometimes an event recorded up to 5 s before the one ahead of it in the feed.
    steps: fc.array(fc.tuple(fc.integer({ min: -5000, max: 2000 }), fc.constantFrom(...TYPES)), { minLength: 1, maxLength: 60 }),
    batchSize: fc.integer({ min: 1, max: 25 }),
    from: fc.option(fc.integer({ min: -10_000, max: 60_000 }), { nil: undefined }),
    to: fc.option(fc.integer({ min: -10_000, max: 60_000 }), { nil: undefined }),
    types: fc.option(fc.subarray([...TYPES], { minLength: 1 }), { nil: undefined }),
    tenantId: fc.option(fc.constantFrom('tenant-odd', 'tenant-even'), { nil: undefined }),
    limit: fc.integer({ min: 1, max: 7 }),
  });
  await fc.assert(
    fc.asyncProperty(scenario, async ({ steps, batchSize, from, to, types, tenantId, limit }) => {
      await database.pool.query('TRUNCATE audit_events');
      let clock = 0;
      const feed = steps.map(([delta, type], i) => event(i, (clock += delta), type));
      const batches: RecordedEvent[][] = [];
      for (let i = 0; i < feed.length; i += batchSize) batches.push(feed.slice(i, i + batchSize));
      await project(batches);
      const filter: AuditFilter = {
        from: from === undefined ? undefined : new Date(T0 + from),
        to: to === undefined ? undefined : new Date(T0 + to),
        types,
        tenantId,
      };
      const got = (await everyPage(filter, limit)).map((i) => i.eventId);
      t.deepEqual(got, expected(feed, filter));
    }),
    { numRuns: 60 },
  );
});

test.serial('applying a batch again changes nothing; seq continues in feed order', async (t) => {
  await database.pool.query('TRUNCATE audit_events');
  const feed = [event(0, 0, 'PointsCredited'), event(1, 10, 'PointsRedeemed'), event(2, 5, 'PointsCredited')];
  await project([feed.slice(0, 2)]);
  await project([feed, feed.slice(1)]);
  const { rows } = await database.pool.query<{ event_id: string; seq: string; late: boolean }>('SELECT event_id, seq, late FROM audit_events ORDER BY seq');
  t.deepEqual(
    rows.map((r) => r.event_id),
    feed.map((e) => e.id),
  );
  t.deepEqual(
    rows.map((r) => r.late),
    [false, false, true],
    'the third was recorded before the second',
  );
  t.true(Number(rows[1]!.seq) < Number(rows[2]!.seq));
});
