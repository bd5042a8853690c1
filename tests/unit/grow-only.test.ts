/** Append-only collections with shared storage: every version keeps seeing exactly what it saw. */
import test from 'ava';
import { GrowOnlyMap, GrowOnlySet, GrowOnlyTally } from '../../domain/shared/grow-only.ts';

test('adding to the newest version leaves older versions as they were', (t) => {
  const empty = GrowOnlySet.empty<string>();
  const one = empty.add('a');
  const two = one.add('b');
  t.false(empty.has('a'));
  t.true(one.has('a'));
  t.false(one.has('b'));
  t.deepEqual(two.values(), ['a', 'b']);
  t.is(two.add('a'), two, 'adding a member changes nothing');
});

test('two versions grown from the same one do not see each other', (t) => {
  const base = GrowOnlySet.from(['a']);
  const left = base.add('l');
  const right = base.add('r');
  t.deepEqual(left.values(), ['a', 'l']);
  t.deepEqual(right.values(), ['a', 'r']);
  t.false(left.has('r'));
  t.false(right.has('l'));
  t.deepEqual(left.add('x').values(), ['a', 'l', 'x']);
});

test('a map keeps each version\'s values; setting a key it has forks without changing the original', (t) => {
  const first = GrowOnlyMap.from([['k', 1]]);
  const changed = first.set('k', 2);
  t.is(first.get('k'), 1);
  t.is(changed.get('k'), 2);
  const grown = first.set('j', 3);
  t.deepEqual(grown.entries(), [['k', 1], ['j', 3]]);
  t.is(changed.get('j'), undefined);
});

test('an empty version lends its storage to nobody: streams folded from one initial state hold only their own entries', (t) => {
  const initial = GrowOnlySet.empty<string>();
  const first = initial.add('a').add('b');
  const second = initial.add('c');
  t.deepEqual(first.values(), ['a', 'b']);
  t.deepEqual(second.values(), ['c']);
  t.is(initial.size, 0);
  t.deepEqual(initial.values(), []);
});

test('a tally keeps each version\'s totals: adding to an older version forks without changing the newer one', (t) => {
  const initial = GrowOnlyTally.empty<string>();
  const one = initial.add('p1', 30);
  const two = one.add('p1', -10).add('p2', 5);
  t.is(initial.get('p1'), 0);
  t.is(one.get('p1'), 30);
  t.is(two.get('p1'), 20);
  t.is(one.get('p2'), 0, 'an older version does not see what was added after it');
  const fork = one.add('p1', 1);
  t.is(fork.get('p1'), 31);
  t.is(two.get('p1'), 20, 'the fork changed nothing the newer version sees');
  t.deepEqual(two.add('p2', -5).entries(), [['p1', 20]], 'a total of 0 is left out');
  t.deepEqual(GrowOnlyTally.from(two.entries()).entries(), two.entries());
  t.is(initial.add('x', 1).get('x'), 1);
  t.is(initial.add('y', 1).get('x'), 0, 'an empty version lends its storage to nobody');
  t.deepEqual([...GrowOnlyMap.from([[1, 'a'], [2, 'b'], [3, 'c']]).set(4, 'd').valuesNewestFirst()], ['d', 'c', 'b', 'a']);
});
