/**
 * `AUDIT_RETENTION_DAYS` (found in review, 2026-12-08: the trail is 43 % of a payment's 15.5 KB on disk and nothing
 * removed any of it): the rows recorded before the cutoff are deleted, late rows included, the newer ones and the
 * pages over them stay as they were; a run that finds nothing old deletes nothing. Shutdown during a run over a
 * backlog (found in review, 2026-12-08: it waited for the whole run, 1.5 M rows 4.7 s, ~3 M past the 10 s bound)
 * waits for the slice under way only, and the next run deletes the rest.
 */
import test from 'ava';
import { v4 as uuid } from 'uuid';
import { pino } from 'pino';
import { auditPage, deleteAuditRecordedBefore } from '../../projections/read/audit.ts';
import { provideAudit } from '../../wiring/audit.ts';
import type { Infrastructure } from '../../wiring/infrastructure.ts';
import { Cleanups } from '../../wiring/lifecycle.ts';
import { createTestDatabase, type TestDatabase } from '../support/database.ts';
import { gate } from '../support/gate.ts';
import { watchedPool } from '../support/watched-pool.ts';

let database: TestDatabase;

test.before(async () => {
  database = await createTestDatabase();
});
test.after.always(async () => {
  await database?.drop();
});

const DAY = 86_400_000;
const NOW = Date.parse('2026-12-08T12:00:00Z');

/** One audit row as the projection writes it: `late` when recorded before the newest row stored before it. */
async function row(seq: number, daysAgo: number, late = false) {
  await database.pool.query(
    `INSERT INTO audit_events (seq, event_id, position, stream, revision, type, recorded_at, late, tenant_id, data)
     VALUES ($1, $2, $3, 'wallet-w1', $1, 'PointsCredited', $4, $5, 't1', '{}')`,
    [seq, uuid(), `${seq}.0`, new Date(NOW - daysAgo * DAY), late],
  );
}

const seqs = async () => (await database.pool.query<{ seq: string }>('SELECT seq FROM audit_events ORDER BY seq')).rows.map((r) => Number(r.seq));

test.serial('rows recorded before the cutoff are deleted, in slices, late ones too; newer rows and their pages stay', async (t) => {
  // 12 rows from 100 days ago to 1 day ago, in feed order; seq 9 is late (recorded 95 days ago, stored after seq 8).
  const ages = [100, 98, 96, 94, 92, 90, 40, 30, 95, 20, 10, 1];
  for (const [i, age] of ages.entries()) await row(i + 1, age, i + 1 === 9);
  const before = await auditPage(database.pool, { from: new Date(NOW - 35 * DAY) }, { limit: 50 });
  const cutoff = new Date(NOW - 60 * DAY);
  t.is(await deleteAuditRecordedBefore(database.pool, cutoff, 4), 7, 'six in feed order (two slices of four, the second short) and the late one');
  t.deepEqual(await seqs(), [7, 8, 10, 11, 12]);
  const after = await auditPage(database.pool, { from: new Date(NOW - 35 * DAY) }, { limit: 50 });
  t.deepEqual(after.items.map((i) => i.position), before.items.map((i) => i.position), 'the pages of newer rows are the same');
  t.is(await deleteAuditRecordedBefore(database.pool, cutoff, 4), 0, 'nothing old is left');
});

test.serial('a cutoff after every row deletes them all; an empty trail deletes nothing', async (t) => {
  await database.pool.query('DELETE FROM audit_events');
  await row(1, 5);
  await row(2, 3);
  t.is(await deleteAuditRecordedBefore(database.pool, new Date(NOW)), 2);
  t.deepEqual(await seqs(), []);
  t.is(await deleteAuditRecordedBefore(database.pool, new Date(NOW)), 0);
});

test.serial('shutdown during a run over a backlog ends it after the slice under way; the next run deletes the rest', async (t) => {
  await database.pool.query('DELETE FROM audit_events');
  // Two slices and one row (the service's slice is 5,000), recorded 40 days ago; AUDIT_RETENTION_DAYS is 30.
  await database.pool.query(
    `INSERT INTO audit_events (seq, event_id, position, stream, revision, type, recorded_at, late, tenant_id, data)
     SELECT n, gen_random_uuid(), n || '.0', 'wallet-w1', n, 'PointsCredited', now() - interval '40 days', false, 't1', '{}'
       FROM generate_series(1, 10001) n`,
  );
  const firstSlice = gate();
  const held = gate();
  let slices = 0;
  // The run is held after its first slice until shutdown has begun.
  const pool = watchedPool(database.pool, /^DELETE FROM audit_events/, async () => {
    slices += 1;
    if (slices > 1) return;
    firstSlice.open();
    await held.opened;
  });
  const cleanups = new Cleanups();
  const infrastructure = { pool, store: {}, log: pino({ level: 'silent' }), config: { AUDIT_RETENTION_DAYS: 30 }, runtime: { now: () => new Date() } };
  const audit = provideAudit(infrastructure as unknown as Infrastructure, () => true, cleanups, { firstAfterMs: 0, jitterMs: 0, everyMs: 3_600_000 });
  await firstSlice.opened;
  const stopped = cleanups.run();
  held.open();
  await stopped;
  t.is(slices, 1, 'shutdown started no other slice');
  t.is((await seqs()).length, 5_001, 'the rest of the backlog waits for the next run');
  t.is(await audit.pruneAudit(), 5_001);
  t.deepEqual(await seqs(), []);
});
