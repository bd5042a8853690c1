/**
 * A rolling deploy that raises a projection's version: an instance still running the old code owns the live
 * projection while a new one rebuilds it beside the live tables and takes over. From the takeover on, the old code
 * writes nothing into the new tables: its runner stands down (its lock released, a warning naming both versions,
 * `superseded` in its status) and the new instance's runner feeds the projection.
 */
import test from 'ava';
import { z } from 'zod';
import { pino } from 'pino';
import { v4 as uuid } from 'uuid';
import { PostgresEventStore } from '../../adapters/eventstore/postgres.ts';
import type { Projection } from '../../projections/projection.ts';
import { ProjectionRebuilds } from '../../projections/rebuild.ts';
import { ProjectionRunner } from '../../projections/runner.ts';
import { createTestEventStore, type TestDatabase } from '../support/database.ts';
import { eventually, until } from '../support/eventually.ts';

const silent = pino({ level: 'silent' });
let database: TestDatabase;
let store: PostgresEventStore;
let close: (() => Promise<void>) | undefined;
test.before(async () => ({ database, store, close } = await createTestEventStore()));
test.after.always(async () => close?.());

/**
 * One row per event, saying which version of the code wrote it. Version 1 writes nothing for a `quiet` event (its
 * runner only advances its checkpoint in memory); version 2 writes a row for every event.
 */
const versionedData = z.object({ quiet: z.boolean().optional() });

function versioned(name: string, version: number): Projection {
  return {
    name,
    version,
    tables: [`${name}_rows`],
    eventTypes: ['Versioned'],
    async apply(events, { db, table }) {
      for (const event of events) {
        if (version === 1 && versionedData.parse(event.data).quiet) continue;
        await db.query(`INSERT INTO ${table(`${name}_rows`)} (id, written_by) VALUES ($1, $2) ON CONFLICT (id) DO NOTHING`, [event.id, version]);
      }
    },
  };
}

test('after a version-bump takeover, a runner of the old version stands down: no old-version writes land in the new tables', async (t) => {
  const name = 'v_rolling';
  await database.pool.query(`CREATE TABLE ${name}_rows (id text PRIMARY KEY, written_by int NOT NULL)`);
  const append = async (quiet = false) =>
    (await store.append(`${name}-${uuid()}`, [{ id: uuid(), type: 'Versioned', data: { quiet } }], 'no_stream')).position;
  const warnings: Array<{ msg: string; storedVersion?: number; version?: number }> = [];
  const oldLog = pino({ level: 'warn' }, { write: (line: string) => void warnings.push(JSON.parse(line)) });

  // Instance A, the old code, owns the live projection; its lazily advanced checkpoint stays in memory a while.
  const a = new ProjectionRunner(database.pool, { connectionString: database.url }, store, [versioned(name, 1)], oldLog, {
    standbyRetryMs: 100,
    checkpointIdleMs: 60_000,
    checkpointEveryMs: 60_000,
  });
  t.teardown(() => a.stop());
  a.start();
  let last = await append();
  await append();
  last = await append();
  t.true(await a.waitForPosition(last, 10_000));

  // Instance B, the new code, starts: its runner stands by, its rebuild replays into fresh tables and takes over.
  const b = new ProjectionRunner(database.pool, { connectionString: database.url }, store, [versioned(name, 2)], silent, { standbyRetryMs: 100 });
  t.teardown(() => b.stop());
  b.start();
  await until(async () => b.status()[0]?.state, (state) => state === 'standby');
  const rebuilds = new ProjectionRebuilds(database.pool, { connectionString: database.url }, store, [versioned(name, 2)], silent, uuid);
  t.teardown(() => rebuilds.stop());
  const [job] = await rebuilds.rebuildOutdated();
  t.is((await rebuilds.wait(job!.jobId))?.state, 'completed');

  // Events after the takeover, some of which the old code would only have passed in memory.
  await append(true);
  await append();
  await append(true);
  last = await append();
  const rows = async () =>
    (await database.pool.query<{ written_by: number; n: number }>(`SELECT written_by, count(*)::int AS n FROM ${name}_rows GROUP BY 1 ORDER BY 1`)).rows;
  const written = await eventually(rows, (r) => r.reduce((sum, row) => sum + row.n, 0) >= 7, { timeoutMs: 10_000 });
  t.deepEqual(written, [{ written_by: 2, n: 7 }], 'every row, before and after the takeover, written by version 2');
  t.true(await b.waitForPosition(last, 10_000));
  t.is(b.status()[0]?.state, 'running', 'the new instance feeds the projection');
  t.is<string | undefined, string>(a.status()[0]?.state, 'superseded', "the old instance's status says why it stopped");
  const stoodDown = warnings.find((w) => w.storedVersion === 2 && w.version === 1);
  t.truthy(stoodDown, 'a warning names both versions');
  t.regex(stoodDown?.msg ?? '', /version/);
  const { rows: checkpoint } = await database.pool.query<{ version: number }>('SELECT version FROM projection_checkpoints WHERE name = $1', [name]);
  t.is(checkpoint[0]?.version, 2);
});
