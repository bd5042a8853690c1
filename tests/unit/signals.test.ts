/**
 * One Ctrl-C is heard once (`onceAPress`): the terminal's SIGINT and the one `npm` forwards arrive within
 * milliseconds and were taken as two presses, the second "exit at once" (found in review, 2026-12-08).
 */
import test from 'ava';
import { onceAPress } from '../../wiring/lifecycle.ts';

test('the same signal twice at once is one press; another signal is another', (t) => {
  const heard: string[] = [];
  const handler = onceAPress((signal) => heard.push(signal));
  handler('SIGINT');
  handler('SIGINT');
  t.deepEqual(heard, ['SIGINT']);
  handler('SIGTERM');
  t.deepEqual(heard, ['SIGINT', 'SIGTERM']);
});
