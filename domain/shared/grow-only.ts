/**
 * Immutable append-only collections for decider state that grows with its stream (a wallet's credited payments,
 * its idempotency keys). A `new Set(old).add(x)` in `evolve` costs the whole set on every event, so folding a
 * stream of n events costs n²/2 and each new event costs n: long streams would cost more than short ones.
 *
 * Here versions share one store. Each version sees the first `size` entries. Adding to the newest version
 * appends in place and hands out a version one larger, in O(1); the older version still sees exactly what it
 * saw. Adding to an older version (a fork, rare: deciding twice on one state) copies its own entries first.
 */
interface Shared<K, V> {
  /** Each key's position; a Map keeps insertion order, and a key is never moved or removed, so it also orders the keys. */
  index: Map<K, number>;
  values: V[];
}

/** An append-only map; `set` on a key the version already has is a fork (copies), since it must not change history. */
export class GrowOnlyMap<K, V> {
  readonly #shared: Shared<K, V>;
  readonly size: number;

  private constructor(shared: Shared<K, V>, size: number) {
    this.#shared = shared;
    this.size = size;
  }

  static empty<K, V>(): GrowOnlyMap<K, V> {
    return new GrowOnlyMap<K, V>({ index: new Map(), values: [] }, 0);
  }

  static from<K, V>(entries: Iterable<readonly [K, V]>): GrowOnlyMap<K, V> {
    let map = GrowOnlyMap.empty<K, V>();
    for (const [key, value] of entries) map = map.set(key, value);
    return map;
  }

  #position(key: K): number | undefined {
    const at = this.#shared.index.get(key);
    return at !== undefined && at < this.size ? at : undefined;
  }

  has(key: K): boolean {
    return this.#position(key) !== undefined;
  }

  get(key: K): V | undefined {
    const at = this.#position(key);
    return at === undefined ? undefined : this.#shared.values[at];
  }

  set(key: K, value: V): GrowOnlyMap<K, V> {
    // An empty version (an initial state, shared by every stream) never lends its store: each stream grows its own.
    const shared = this.size === 0 ? { index: new Map<K, number>(), values: [] } : this.#shared;
    if (this.size === shared.values.length && !shared.index.has(key)) {
      shared.index.set(key, this.size);
      shared.values.push(value);
      return new GrowOnlyMap(shared, this.size + 1);
    }
    const copy: Shared<K, V> = { index: new Map(), values: [] };
    for (const [k, v] of this.entries()) {
      copy.index.set(k, copy.values.length);
      copy.values.push(k === key ? value : v);
    }
    if (!copy.index.has(key)) {
      copy.index.set(key, copy.values.length);
      copy.values.push(value);
    }
    return new GrowOnlyMap(copy, copy.values.length);
  }

  /** The entries in insertion order. */
  entries(): [K, V][] {
    const entries: [K, V][] = [];
    for (const [key, at] of this.#shared.index) {
      if (at >= this.size) break;
      entries.push([key, this.#shared.values[at] as V]);
    }
    return entries;
  }
}

/** An append-only set, built on `GrowOnlyMap`. */
export class GrowOnlySet<T> {
  readonly #map: GrowOnlyMap<T, true>;

  private constructor(map: GrowOnlyMap<T, true>) {
    this.#map = map;
  }

  static empty<T>(): GrowOnlySet<T> {
    return new GrowOnlySet(GrowOnlyMap.empty<T, true>());
  }

  static from<T>(values: Iterable<T>): GrowOnlySet<T> {
    let set = GrowOnlySet.empty<T>();
    for (const value of values) set = set.add(value);
    return set;
  }

  get size(): number {
    return this.#map.size;
  }

  has(value: T): boolean {
    return this.#map.has(value);
  }

  add(value: T): GrowOnlySet<T> {
    return this.has(value) ? this : new GrowOnlySet(this.#map.set(value, true));
  }

  /** The values in insertion order. */
  values(): T[] {
    return this.#map.entries().map(([value]) => value);
  }
}
