/**
 * A rolling deploy that adds an event version: newer instances write version 2 while an older one still feeds a
 * projection. The older code cannot decode it; it recorded `failed` on the checkpoint row every instance shares, and
 * the newer code, taking the projection over once the older instance was gone, inherited the failure and stopped too,
 * until an operator retried it. Now the older code waits (retries from its checkpoint) and records nothing.
 */
import test from 'ava';
import { z } from 'zod';
import { pino } from 'pino';
import { v4 as uuid } from 'uuid';
import { EventType, eventCodec, type EventCodec } from '../../domain/shared/codec.ts';
import { projection, type Projection } from '../../projections/projection.ts';
import { ProjectionRunner } from '../../projections/runner.ts';
import { eventStoreForTests } from '../support/database.ts';
import { until } from '../support/eventually.ts';

const silent = pino({ level: 'silent' });
const suite = eventStoreForTests(test);

const v1 = EventType.define('Noted', z.object({ n: z.number().int() }));
const v2 = v1.next(z.object({ n: z.number().int(), extra: z.number().int() }), (d) => ({ ...d, extra: 0 }));
const NAME = 'noted_rolling';

/** The same projection in the older code (it knows version 1) and the newer (version 2). */
const noted = (type: typeof v1 | typeof v2) =>
  projection({
    name: NAME,
    version: 1,
    tables: [`${NAME}_rows`],
    events: eventCodec(undefined, type as typeof v1),
    async apply(events, { db, table }) {
      for (const e of events) await db.query(`INSERT INTO ${table(`${NAME}_rows`)} (id) VALUES ($1) ON CONFLICT DO NOTHING`, [e.id]);
    },
  });

const rows = async () => (await suite.database.pool.query<{ n: number }>(`SELECT count(*)::int AS n FROM ${NAME}_rows`)).rows[0]!.n;
const checkpoint = async () =>
  (await suite.database.pool.query<{ status: string; last_error: string | null }>(`SELECT status, last_error FROM projection_checkpoints WHERE name = $1`, [NAME])).rows[0];

test('an event of a version newer than the code feeding a projection does not fail it: the newer code takes it over and applies it', async (t) => {
  await suite.database.pool.query(`CREATE TABLE ${NAME}_rows (id text PRIMARY KEY)`);
  const older = new ProjectionRunner(suite.database.pool, { connectionString: suite.database.url }, suite.store, [noted(v1)], silent, { standbyRetryMs: 100 });
  older.start();
  const first = await suite.store.append(`noted-${uuid()}`, [{ id: uuid(), type: 'Noted', data: { n: 1 }, metadata: { schemaVersion: 1 } }], 'no_stream');
  t.true(await older.waitForPosition(first.position, 10_000));

  // The newer code, deployed beside it, writes version 2; the older runner meets it, and must not record a failure.
  const second = await suite.store.append(`noted-${uuid()}`, [{ id: uuid(), type: 'Noted', data: { n: 2, extra: 5 }, metadata: { schemaVersion: 2 } }], 'no_stream');
  t.false(await older.waitForPosition(second.position, 1_500), 'the older code cannot apply it');
  t.not(older.status()[0]?.state, 'failed');
  t.like(await checkpoint(), { status: 'running', last_error: null }, 'nothing recorded on the shared row');
  await older.stop();

  // The deploy completes: the newer code feeds the projection, version 2 included.
  const newer = new ProjectionRunner(suite.database.pool, { connectionString: suite.database.url }, suite.store, [noted(v2)], silent, { standbyRetryMs: 100 });
  t.teardown(() => newer.stop());
  newer.start();
  t.true(await newer.waitForPosition(second.position, 15_000));
  t.is(newer.status()[0]?.state, 'running');
  t.is(await until(rows, (n) => n === 2), 2);
});

/**
 * The same for an event type the older code does not declare at all. A projection's subscription, filtered by its
 * types, is never handed one; a reader of every event of some streams is (here, of the `noted_types_rolling-` streams).
 */
const jotted = EventType.define('Jotted', z.object({ n: z.number().int() }));
const added = EventType.define('JottedAgain', z.object({ n: z.number().int() }));
const TYPES_NAME = 'noted_types_rolling';
const notedStreams = (codec: EventCodec): Projection => ({
  name: TYPES_NAME,
  version: 1,
  tables: [`${TYPES_NAME}_rows`],
  eventTypes: 'all',
  async apply(events, { db, table }) {
    for (const e of events.filter((event) => event.stream.startsWith(`${TYPES_NAME}-`))) {
      await db.query(`INSERT INTO ${table(`${TYPES_NAME}_rows`)} (id, type) VALUES ($1, $2) ON CONFLICT DO NOTHING`, [e.id, codec.decode(e).type]);
    }
  },
});

test('an event of a type the code feeding a projection does not declare does not fail it: the newer code takes it over and applies it', async (t) => {
  const { pool } = suite.database;
  await pool.query(`CREATE TABLE ${TYPES_NAME}_rows (id text PRIMARY KEY, type text NOT NULL)`);
  const runner = (codec: EventCodec) => new ProjectionRunner(pool, { connectionString: suite.database.url }, suite.store, [notedStreams(codec)], silent, { standbyRetryMs: 100 });
  const older = runner(eventCodec(undefined, jotted));
  t.teardown(() => older.stop());
  older.start();
  const append = async (type: string) => (await suite.store.append(`${TYPES_NAME}-${uuid()}`, [{ id: uuid(), type, data: { n: 1 }, metadata: { schemaVersion: 1 } }], 'no_stream')).position;
  t.true(await older.waitForPosition(await append('Jotted'), 10_000));

  const unknown = await append('JottedAgain');
  t.false(await older.waitForPosition(unknown, 1_500), 'the older code cannot apply it');
  t.not(older.status()[0]?.state, 'failed');
  const { rows } = await pool.query(`SELECT status, last_error FROM projection_checkpoints WHERE name = $1`, [TYPES_NAME]);
  t.like(rows[0], { status: 'running', last_error: null }, 'nothing recorded on the shared row');
  await older.stop();

  const newer = runner(eventCodec(undefined, jotted, added));
  t.teardown(() => newer.stop());
  newer.start();
  t.true(await newer.waitForPosition(unknown, 15_000));
  t.is(newer.status()[0]?.state, 'running');
  const types = async () => (await pool.query<{ type: string }>(`SELECT type FROM ${TYPES_NAME}_rows ORDER BY type`)).rows.map((r) => r.type);
  t.deepEqual(await until(types, (found) => found.length === 2), ['Jotted', 'JottedAgain']);
});
