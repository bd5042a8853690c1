/** The per-stream queue: one task at a time per key, keys independent, nothing kept for idle keys, reads shared while waiting. */
import test from 'ava';
import { KeyedQueue } from '../../domain/shared/keyed-queue.ts';
import { gate } from '../support/gate.ts';

test('tasks of one key run one after another, in order; another key does not wait', async (t) => {
  const queue = new KeyedQueue();
  const log: string[] = [];
  const first = gate();
  const a1 = queue.run('a', async () => (log.push('a1 start'), await first.opened, log.push('a1 end')));
  const a2 = queue.run('a', async () => void log.push('a2'));
  await queue.run('b', async () => void log.push('b'));
  t.deepEqual(log, ['a1 start', 'b'], 'b ran while a1 was still running; a2 waited');
  first.open();
  await Promise.all([a1, a2]);
  t.deepEqual(log, ['a1 start', 'b', 'a1 end', 'a2']);
  t.is(queue.activeKeys, 0, 'no entry left for idle keys');
});

test('a failing task does not stop the ones queued after it', async (t) => {
  const queue = new KeyedQueue();
  const failed = queue.run('a', async () => {
    throw new Error('boom');
  });
  const next = queue.run('a', async () => 'ran');
  await t.throwsAsync(failed, { message: 'boom' });
  t.is(await next, 'ran');
});

test('reads waiting for their turn at the same time share one read; a read that has started is not shared with later callers', async (t) => {
  const queue = new KeyedQueue();
  const command = gate();
  let reads = 0;
  const read = async () => ++reads;
  const running = queue.run('s', () => command.opened);
  const waiting = [queue.shared('s', read), queue.shared('s', read), queue.shared('s', read)];
  command.open();
  await running;
  t.deepEqual(await Promise.all(waiting), [1, 1, 1], 'three callers, one read');
  t.is(await queue.shared('s', read), 2, 'a caller after that read started gets a read of its own');
  t.is(queue.activeKeys, 0);
});
