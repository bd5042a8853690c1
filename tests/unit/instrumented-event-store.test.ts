/**
 * The instrumented store counts what appendMany wrote and which streams conflicted, by stream category, and is
 * otherwise the store it wraps (results, errors and the capability pass through unchanged).
 */
import test from 'ava';
import { v4 as uuid } from 'uuid';
import { instrumentEventStore } from '../../adapters/eventstore/instrumented.ts';
import { createMetrics } from '../../adapters/metrics.ts';
import { MultiStreamConflict, type NewEvent } from '../../domain/ports/event-store.ts';
import { paymentStream } from '../../domain/payments/payment.ts';
import { walletStream } from '../../domain/wallets/wallet.ts';
import { InMemoryEventStore } from '../support/memory-event-store.ts';

const event = (): NewEvent => ({ id: uuid(), type: 'Probed', data: {} });

async function counter(metrics: ReturnType<typeof createMetrics>, name: string, category: string): Promise<number> {
  const line = (await metrics.exposition()).split('\n').find((l) => l.startsWith(`${name}{category="${category}"}`));
  return line ? Number(line.split(' ').at(-1)) : 0;
}

test('appendMany is counted per stream; a conflict counts the conflicting streams and nothing appended', async (t) => {
  const metrics = createMetrics();
  const inner = new InMemoryEventStore();
  const store = instrumentEventStore(inner, metrics);
  const [payment, wallet] = [paymentStream(uuid()), walletStream(uuid())];

  const result = await store.appendMany([
    { stream: payment, events: [event(), event()], expected: 'no_stream' },
    { stream: wallet, events: [event()], expected: 'no_stream' },
  ]);
  t.deepEqual(result.streams.map((s) => s.nextExpectedRevision), [1, 0]);
  t.is(await counter(metrics, 'tally_eventstore_events_appended_total', 'payment'), 2);
  t.is(await counter(metrics, 'tally_eventstore_events_appended_total', 'wallet'), 1);

  await t.throwsAsync(
    store.appendMany([
      { stream: payment, events: [event()], expected: 'no_stream' },
      { stream: wallet, events: [event()], expected: 0 },
    ]),
    { instanceOf: MultiStreamConflict },
  );
  t.is(await counter(metrics, 'tally_eventstore_concurrency_conflicts_total', 'payment'), 1);
  t.is(await counter(metrics, 'tally_eventstore_concurrency_conflicts_total', 'wallet'), 0);
  t.is(await counter(metrics, 'tally_eventstore_events_appended_total', 'payment'), 2, 'nothing more was appended');

  t.true(await store.supportsAtomicMultiStream());
  t.deepEqual(await store.readStreams([payment, wallet]), await inner.readStreams([payment, wallet]));
});
