/** Append-only collections with shared storage: every version keeps seeing exactly what it saw. */
import test from 'ava';
import { GrowOnlyMap, GrowOnlySet } from '../../domain/shared/grow-only.ts';

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
