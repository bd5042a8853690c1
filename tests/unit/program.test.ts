/**
 * The expiry policy on the program decider, given(events).when(command).then(events): its time zone, and which
 * zone a new policy takes when the request names none (the service, with Square's answer stubbed).
 */
import test from 'ava';
import { v4 as uuid } from 'uuid';
import { programDecider, programStream, type ExpiryPolicyRequest, type ProgramCommand, type ProgramEvent } from '../../domain/program/program.ts';
import { programService } from '../../domain/program/service.ts';
import { ConnectionUnavailable, SquareRequestFailed } from '../../domain/connections/errors.ts';
import type { MerchantLocations } from '../../domain/promotions/locations.ts';
import { deciderSpec } from '../support/decider-spec.ts';
import { testCommandPath } from '../support/command-path.ts';
import { InMemoryEventStore } from '../support/memory-event-store.ts';

const spec = deciderSpec(programDecider);
const NOW = '2026-12-08T14:00:00.000Z';
const request = { earnedMonths: 12, inactivityMonths: null, applyToExistingPoints: false };
const set = (timeZone: string | null): ProgramCommand => ({ type: 'SetExpiryPolicy', tenantId: 't1', request, timeZone, by: 'u1', now: NOW });
const policySet = (version: number, timeZone: string, changes: { effectiveFrom?: string; earnedMonths?: number } = {}): ProgramEvent => ({
  type: 'ExpiryPolicySet',
  data: { tenantId: 't1', version, earnedMonths: 12, inactivityMonths: null, retroactive: false, effectiveFrom: NOW, setBy: 'u1', timeZone, ...changes },
});
const setMonths = (timeZone: string, earnedMonths: number | null): ProgramCommand => ({ type: 'SetExpiryPolicy', tenantId: 't1', request: { ...request, earnedMonths }, timeZone, by: 'u1', now: NOW });

test('a policy records its time zone; the same months, retroactivity and zone again change nothing', (t) => {
  spec(t).given().when(set('America/New_York')).then([policySet(1, 'America/New_York')]);
  spec(t).given(policySet(1, 'America/New_York')).when(set('America/New_York')).thenNothing();
});

test("a change of time zone alone is a new version of the policy that keeps its clock (when points count from)", (t) => {
  spec(t).given(policySet(1, 'UTC')).when(set('America/New_York')).then([policySet(2, 'America/New_York')]);
  // A policy of 2026-01-01 saved again unchanged but for its zone: points earned before it still count from then,
  // not from the save (which gave every point up to a term of extra life, unasked).
  const older = policySet(1, 'UTC', { effectiveFrom: '2026-01-01T00:00:00.000Z' });
  spec(t).given(older).when(set('America/New_York')).then([policySet(2, 'America/New_York', { effectiveFrom: '2026-01-01T00:00:00.000Z' })]);
  // New months restart the clock, as ever (unless applied to existing points).
  spec(t).given(older).when(setMonths('America/New_York', 6)).then([policySet(2, 'America/New_York', { earnedMonths: 6 })]);
});

test('a zone alone, on a policy that expires nothing, writes nothing', (t) => {
  spec(t).given().when(setMonths('America/New_York', null)).thenNothing();
});

test('a time zone is stored by its canonical name: one zone typed two ways is one zone', async (t) => {
  const { expiryPolicyRequestSchema } = await import('../../domain/program/program.ts');
  t.is(expiryPolicyRequestSchema.parse({ earnedMonths: 12, timeZone: 'america/new_york' }).timeZone, 'America/New_York');
  t.is(expiryPolicyRequestSchema.parse({ earnedMonths: 12, timeZone: 'utc' }).timeZone, 'UTC');
});

test('without a zone to set, a policy keeps the one it had (UTC for a first policy)', (t) => {
  spec(t).given().when(set(null)).then([policySet(1, 'UTC')]);
  spec(t).given(policySet(1, 'Asia/Tokyo')).when(set(null)).thenNothing();
});

const located = (timeZone: string | null): MerchantLocations => ({ mainLocationId: 'LMAIN', timeZone, locations: [] });

/** The zone and warnings a first policy gets when Square answers with `square`. */
async function firstPolicy(square: () => Promise<MerchantLocations>, timeZone?: string) {
  const store = new InMemoryEventStore();
  const program = programService({ store, runtime: { now: () => new Date(NOW), newId: uuid }, commands: testCommandPath(), merchantLocations: square });
  const result = await program.setExpiryPolicy('t1', { ...request, ...(timeZone ? { timeZone } : {}) }, 'u1', {});
  return { timeZone: result.state.policy.timeZone, warnings: result.warnings, stored: (await store.readStream(programStream('t1'))).length };
}

test("a new policy takes the request's zone, else the Square main location's, else UTC; a Square failure does not stop it", async (t) => {
  const unreachable = () => Promise.reject(new Error('Square was not to be asked'));
  t.like(await firstPolicy(unreachable, 'Asia/Tokyo'), { timeZone: 'Asia/Tokyo', warnings: [], stored: 1 });
  t.like(await firstPolicy(async () => located('America/Chicago')), { timeZone: 'America/Chicago', warnings: [] });
  t.like(await firstPolicy(() => Promise.reject(ConnectionUnavailable.because('not_connected'))), { timeZone: 'UTC', warnings: [] });
  const noZone = await firstPolicy(async () => located(null));
  t.like(noZone, { timeZone: 'UTC', stored: 1 });
  t.regex(noZone.warnings[0] ?? '', /Square gives no time zone/);
  const failing = await firstPolicy(() => Promise.reject(new SquareRequestFailed("Square did not list the merchant's locations (listLocations: 503)", '503')));
  t.like(failing, { timeZone: 'UTC', stored: 1 });
  t.regex(failing.warnings[0] ?? '', /could not be read from Square \(Square did not list the merchant's locations/);
});

test('a Square that does not answer holds the save at most ZONE_LOOKUP_LIMIT_MS, then the policy keeps its zone, with a warning', async (t) => {
  const { ZONE_LOOKUP_LIMIT_MS } = await import('../../domain/program/service.ts');
  const started = Date.now();
  const silent = await firstPolicy(() => new Promise<MerchantLocations>(() => undefined));
  t.like(silent, { timeZone: 'UTC', stored: 1 });
  t.regex(silent.warnings[0] ?? '', /Square did not answer within 5 s/);
  t.true(Date.now() - started < ZONE_LOOKUP_LIMIT_MS + 2_000);
});

test('a change that counts existing points from now, after a policy that expired them, says so: none expires before its first deadline', async (t) => {
  const store = new InMemoryEventStore();
  let now = '2026-01-20T10:00:00.000Z';
  const program = programService({ store, runtime: { now: () => new Date(now), newId: uuid }, commands: testCommandPath(), merchantLocations: () => Promise.reject(new Error('not asked')) });
  const put = async (change: Partial<ExpiryPolicyRequest>) => (await program.setExpiryPolicy('t1', { ...request, timeZone: 'UTC', ...change }, 'u1', {})).warnings;
  t.deepEqual(await put({}), [], 'a first policy: points earned before it count from now, as README says, nothing to warn of');
  now = '2026-06-20T10:00:00.000Z';
  // Shortened to 6 months: points due on 1 July under 12 months now count from 20 June, valid through December.
  const [shortened, ...more] = await put({ earnedMonths: 6 });
  t.deepEqual(more, []);
  t.regex(shortened ?? '', /^Points earned before this change count from now \(applyToExistingPoints is false\): none of them expires before 2027-01-01T00:00:00\.000Z/);
  // Adding an inactivity rule restarts the clock the same way; its shorter term gives the date.
  now = '2026-07-01T10:00:00.000Z';
  t.regex((await put({ earnedMonths: 12, inactivityMonths: 3 }))[0] ?? '', /before 2026-11-01T00:00:00\.000Z/);
  t.deepEqual(await put({ earnedMonths: 12, inactivityMonths: 3, timeZone: 'America/New_York' }), [], 'a zone alone keeps the clock');
  t.deepEqual(await put({ earnedMonths: 12, inactivityMonths: 3, timeZone: 'America/New_York' }), [], 'nothing changed');
  now = '2026-08-01T10:00:00.000Z';
  t.deepEqual(await put({ earnedMonths: 6, applyToExistingPoints: true }), [], 'applied to existing points: they count from when they were earned');
  now = '2026-08-02T10:00:00.000Z';
  t.deepEqual(await put({ earnedMonths: null }), [], 'a policy that expires nothing');
  now = '2026-08-03T10:00:00.000Z';
  t.deepEqual(await put({ earnedMonths: 6 }), [], 'after a policy that expired nothing, as a first policy');
});
