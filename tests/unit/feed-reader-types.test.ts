/**
 * What each projection and reactor reads, held to a committed snapshot (tests/fixtures/feed-readers.json), so that
 * an event type added to one is a decision and not a line slipped into its codec. During a rolling deploy the
 * instances of the previous release own the projections and reactors until they stop; their filtered subscriptions
 * never hand over a type they do not know and their checkpoints move past it. A projection gets it back only by a
 * raised version (rebuilt from the log at start-up); a reactor has no version and is never rebuilt. Until 2026-12-08
 * `UserEmailChanged` was added to `users` and `held_points` without either, and the email changes the new instances
 * wrote were lost from both for good.
 */
import { readFileSync } from 'node:fs';
import test from 'ava';
import { allProjections } from '../../projections/index.ts';
import { isReactor, type FeedReader } from '../../projections/projection.ts';
import { testCommandPath } from '../support/command-path.ts';
import { InMemoryEventStore } from '../support/memory-event-store.ts';

const SNAPSHOT = new URL('../fixtures/feed-readers.json', import.meta.url);

/** A projection's version and types; a reactor's types alone (it has no version). */
interface Declared {
  version?: number;
  eventTypes: readonly string[] | 'all';
}

const declared = (reader: FeedReader): Declared => {
  const eventTypes = reader.eventTypes === 'all' ? 'all' : [...reader.eventTypes].sort();
  return isReactor(reader) ? { eventTypes } : { version: reader.version, eventTypes };
};

const typesOf = (types: Declared['eventTypes']) => new Set(types === 'all' ? ['(all)'] : types);
const difference = (a: Set<string>, b: Set<string>) => [...a].filter((type) => !b.has(type));

/** What is wrong with one reader against its snapshot, in words saying what to do; undefined when they agree. */
function readerMismatch(name: string, reactor: boolean, now: Declared, snapshot: Declared | undefined): string | undefined {
  if (!snapshot) return `${name} is not in the snapshot: add it`;
  const added = difference(typesOf(now.eventTypes), typesOf(snapshot.eventTypes));
  const removed = difference(typesOf(snapshot.eventTypes), typesOf(now.eventTypes));
  const changes = [added.length ? `added ${added.join(', ')}` : '', removed.length ? `removed ${removed.join(', ')}` : ''].filter(Boolean).join('; ');
  if (reactor) {
    if (!changes) return undefined;
    return (
      `${name} (a reactor) ${changes}. A reactor has no version and is never rebuilt: it handles a type it gains only from its checkpoint on. ` +
      'Events of that type already in the log are never handed to it, and during a rolling deploy the instances of the previous release, ' +
      'which own it, pass over those the new instances write. So ship the type in a release deployed by stopping every old instance before ' +
      'the first new one starts (say so in README, Upgrading, for that release), and give past events the effect another way if they need it; ' +
      'then update the snapshot'
    );
  }
  if (changes && now.version === snapshot.version) {
    return (
      `${name} ${changes} at version ${now.version}: adding an event type to a projection needs its version raised ` +
      '(rolling deploys skip it otherwise); update the snapshot with the raised version'
    );
  }
  if (now.version !== snapshot.version || changes) return `${name} is at version ${now.version} (snapshot: ${snapshot.version}): update the snapshot`;
  return undefined;
}

test('every projection and reactor reads what the snapshot holds; a projection whose types changed has its version raised', (t) => {
  const readers = allProjections({ store: new InMemoryEventStore(), newId: () => 'id', walletIdFor: (tenant, consumer) => `${tenant}:${consumer}`, commands: testCommandPath() });
  const snapshot = JSON.parse(readFileSync(SNAPSHOT, 'utf8')) as Record<string, Declared>;
  const now = Object.fromEntries(readers.map((reader) => [reader.name, declared(reader)]));
  const differing = readers
    .map((reader) => ({ name: reader.name, mismatch: readerMismatch(reader.name, isReactor(reader), declared(reader), snapshot[reader.name]) }))
    .filter((reader) => reader.mismatch !== undefined);
  const mismatches = [
    ...differing.map((reader) => reader.mismatch),
    ...Object.keys(snapshot)
      .filter((name) => !(name in now))
      .map((name) => `${name} is in the snapshot but no longer fed: remove it`),
  ];
  const entries = Object.fromEntries(differing.map((reader) => [reader.name, now[reader.name]]));
  t.deepEqual(mismatches, [], `their entries in tests/fixtures/feed-readers.json as the code declares them now (raise the version first where needed): ${JSON.stringify(entries)}`);
});

test('a projection that gains a type at the same version, or a reactor that gains one, is refused saying what to do', (t) => {
  const before = { version: 2, eventTypes: ['UserRegistered'] };
  const gained = { version: 2, eventTypes: ['UserEmailChanged', 'UserRegistered'] };
  t.regex(readerMismatch('users', false, gained, before) ?? '', /added UserEmailChanged at version 2: adding an event type to a projection needs its version raised/);
  t.regex(readerMismatch('users', false, { ...gained, version: 3 }, before) ?? '', /version 3 \(snapshot: 2\): update the snapshot/);
  t.is(readerMismatch('users', false, { ...gained, version: 3 }, { ...gained, version: 3 }), undefined);
  t.regex(readerMismatch('claims', true, { eventTypes: gained.eventTypes }, { eventTypes: before.eventTypes }) ?? '', /reactor\) added UserEmailChanged\. A reactor has no version.*stopping every old instance/);
});
