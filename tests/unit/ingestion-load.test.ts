/**
 * Ingestion's load (adapters/workers/acknowledgements.ts): what background read models give way to. Busy while a
 * webhook waits for its answer, a batch is being decided or the last lease came back full; calm only once none of
 * that happened for `calmAfterMs`.
 */
import test from 'ava';
import { IngestionLoad } from '../../adapters/workers/acknowledgements.ts';
import { eventually } from '../support/eventually.ts';

test('busy while an acknowledgement is pending, a batch is decided or the worker has a backlog; calm otherwise', (t) => {
  const load = new IngestionLoad(0);
  t.false(load.busy, 'nothing under way');
  load.acknowledgements.received();
  t.true(load.busy, 'a webhook waits for its answer');
  load.acknowledgements.answered();
  t.false(load.busy);
  load.batchStarted();
  load.batchStarted();
  t.true(load.busy, 'batches being decided');
  load.batchEnded();
  t.true(load.busy, 'one still is');
  load.batchEnded();
  t.false(load.busy);
  load.leased(true);
  t.true(load.busy, 'the last lease was full: more is due');
  load.leased(false);
  t.false(load.busy, 'a partial lease: the backlog is done');
});

test('a moment without work between two webhooks is not calm: calm comes calmAfterMs after the last work', async (t) => {
  const load = new IngestionLoad(80);
  load.acknowledgements.received();
  load.acknowledgements.answered();
  const answeredAt = Date.now();
  t.true(load.busy, 'right after an answer');
  t.false(await eventually(async () => load.busy, (busy) => !busy, { timeoutMs: 5_000, intervalMs: 5 }));
  t.true(Date.now() - answeredAt >= 80, 'not before calmAfterMs');
  load.batchStarted();
  load.batchEnded();
  t.true(load.busy, 'right after a batch');
});
