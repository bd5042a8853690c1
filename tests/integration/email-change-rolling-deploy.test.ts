/**
 * The rolling deploy of the release that added `UserEmailChanged` to the `users` and `held_points` projections
 * (2026-12-07 21:26). The release before it (20:11) does not know that type: its filtered subscription never hands
 * it over and its checkpoint moves past it, so while it owns the projections the new instances' email changes are
 * skipped in their tables. Raising both versions makes the new release rebuild them from the log; before, it did
 * not, and the former email kept matching this consumer's purchases and claiming what was held for it.
 */
import test from 'ava';
import { pino } from 'pino';
import { v4 as uuid } from 'uuid';
import type { JsonObject } from '../../domain/ports/event-store.ts';
import type { Projection } from '../../projections/projection.ts';
import { usersProjection } from '../../projections/accounts.ts';
import { heldPointsProjection } from '../../projections/held-points.ts';
import { ProjectionRebuilds } from '../../projections/rebuild.ts';
import { ProjectionRunner } from '../../projections/runner.ts';
import { eventStoreForTests } from '../support/database.ts';

const silent = pino({ level: 'silent' });
const suite = eventStoreForTests(test);

/** The projection as the release of 2026-12-07 20:11 ran it: the version it declared, without `UserEmailChanged`. */
const released = (current: Projection, version: number): Projection => ({
  ...current,
  version,
  eventTypes: (current.eventTypes as readonly string[]).filter((type) => type !== 'UserEmailChanged'),
});

test('an email changed while the previous release fed users and held_points: the new release rebuilds both and the former email matches nobody', async (t) => {
  const { database, store } = suite;
  const older = new ProjectionRunner(database.pool, { connectionString: database.url }, store, [released(usersProjection, 2), released(heldPointsProjection, 3)], silent, {
    standbyRetryMs: 100,
  });
  t.teardown(() => older.stop());
  older.start();

  const userId = uuid();
  const stream = `user-${userId}`;
  let revision = -1;
  const append = async (type: string, data: JsonObject) => {
    const { position } = await store.append(stream, [{ id: uuid(), type, data: { userId, ...data }, metadata: { schemaVersion: 1 } }], revision < 0 ? 'no_stream' : revision);
    revision++;
    return position;
  };
  const at = '2026-12-07T21:00:00.000Z';
  await append('UserRegistered', { role: 'consumer', status: 'approved', emailHash: 'email:former', phoneHash: null, businessName: null, registeredAt: at });
  await append('UserEmailVerified', { emailHash: 'email:former', via: 'token', verifiedAt: at });
  // Written by a new instance during the deploy: the older runner passes the change over.
  await append('UserEmailChanged', { emailHash: 'email:new', changedAt: at });
  const last = await append('UserEmailVerified', { emailHash: 'email:new', via: 'token', verifiedAt: at });
  t.true(await older.waitForPosition(last, 10_000));

  const rows = async () => ({
    user: (await database.pool.query(`SELECT email_hash, email_verified FROM users WHERE id = $1`, [userId])).rows,
    owned: (await database.pool.query(`SELECT identity_hash FROM identity_owners WHERE consumer_id = $1 ORDER BY 1`, [userId])).rows.map((r) => r.identity_hash),
    claiming: (await database.pool.query(`SELECT identity_hash FROM consumer_identities WHERE consumer_id = $1 ORDER BY 1`, [userId])).rows.map((r) => r.identity_hash),
  });
  t.deepEqual((await rows()).owned, ['email:former', 'email:new'], 'the older code kept the former email matching (what the rebuild mends)');

  const rebuilds = new ProjectionRebuilds(database.pool, { connectionString: database.url }, store, [usersProjection, heldPointsProjection], silent, uuid);
  t.teardown(() => rebuilds.stop());
  const jobs = await rebuilds.rebuildOutdated();
  t.deepEqual(jobs.map((j) => j.projection).sort(), ['held_points', 'users'], 'the new release rebuilds both projections at start-up');
  for (const job of jobs) t.is((await rebuilds.wait(job.jobId))?.state, 'completed');

  t.deepEqual(await rows(), {
    user: [{ email_hash: 'email:new', email_verified: true }],
    owned: ['email:new'],
    claiming: ['email:new'],
  });
  const { rows: versions } = await database.pool.query(`SELECT name, version FROM projection_checkpoints WHERE name IN ('users', 'held_points') ORDER BY name`);
  t.deepEqual(versions, [
    { name: 'held_points', version: heldPointsProjection.version },
    { name: 'users', version: usersProjection.version },
  ]);
});
