/** The README's event catalogue is the one the codec declarations generate, and it lists every feed reader. */
import { readFileSync } from 'node:fs';
import test from 'ava';
import { eventCatalogue, feedReaders } from '../../projections/catalogue.ts';
import { allProjections } from '../../projections/index.ts';
import { testCommandPath } from '../support/command-path.ts';
import { InMemoryEventStore } from '../support/memory-event-store.ts';

test('README shows the generated event catalogue (npm run catalogue)', (t) => {
  const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');
  const table = /<!-- event-catalogue:start -->\n([\s\S]*?)\n<!-- event-catalogue:end -->/.exec(readme)?.[1];
  t.is(table, eventCatalogue(), 'run `npm run catalogue` and paste its output between the markers in README');
});

test('the catalogue names every projection and reactor the runner feeds, by the event types it handles', (t) => {
  const fed = allProjections({ store: new InMemoryEventStore(), newId: () => 'id', walletIdFor: (tenant, consumer) => `${tenant}:${consumer}`, commands: testCommandPath() });
  t.deepEqual(
    feedReaders.map((r) => [r.name, r.eventTypes]),
    fed.map((p) => [p.name, p.eventTypes]),
  );
});
