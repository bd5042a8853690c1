/**
 * The failure limiter's own bookkeeping (http/rate-limit.ts): a source past its limit is refused until its window
 * ends, expired windows are forgotten, and a flood of distinct addresses holds at most `maxSources` windows, the
 * oldest forgotten first (the HTTP behaviour: tests/http/rate-limit.test.ts).
 */
import test from 'ava';
import { failureLimiter } from '../../http/rate-limit.ts';

function limiter(maxSources?: number) {
  let clock = 1_000_000;
  const limits = failureLimiter({ limit: 2, windowMs: 60_000, now: () => clock, ...(maxSources ? { maxSources } : {}) });
  return { limits, advance: (ms: number) => (clock += ms), refused: (source: string) => t429(() => limits.fail(source, 'bearer')) };
}
const t429 = (f: () => void) => {
  try {
    f();
    return false;
  } catch (error) {
    if ((error as { code?: string }).code === 'RATE_LIMITED') return true;
    throw error;
  }
};

test('a source is refused past its limit until its window ends; kinds count apart', (t) => {
  const { limits, advance, refused } = limiter();
  t.deepEqual([refused('10.0.0.1'), refused('10.0.0.1'), refused('10.0.0.1')], [false, false, true]);
  t.notThrows(() => limits.fail('10.0.0.1', 'webhook'), 'another kind of credential has its own count');
  advance(59_999);
  t.true(refused('10.0.0.1'));
  advance(1);
  t.false(refused('10.0.0.1'), 'a new window');
});

test('expired windows are forgotten as new ones open; a flood of addresses holds at most maxSources windows', (t) => {
  const { limits, advance, refused } = limiter(1_000);
  for (let i = 0; i < 5_000; i++) refused(`2001:db8::${i.toString(16)}`);
  t.is(limits.tracked(), 1_000, 'bounded, the oldest forgotten first');
  t.false(refused('2001:db8::0'), 'the first address was forgotten: a fresh window');
  t.deepEqual([refused('2001:db8::1387'), refused('2001:db8::1387')], [false, true], 'the last one is still counted: its second failure, then refused');
  advance(60_000);
  refused('192.0.2.7');
  t.is(limits.tracked(), 1, 'every expired window dropped when the next one opened');
});
