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

  /** The values, the last added first: a walk back from the newest that stops early costs only what it reads. */
  *valuesNewestFirst(): Generator<V> {
    for (let at = this.size - 1; at >= 0; at--) yield this.#shared.values[at] as V;
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

/**
 * A running total per key (the points a payment's refunds took back): `add` records the key's new total, in O(1) on
 * the newest version, and every older version still reads the totals it had. A `GrowOnlyMap` cannot hold these: a
 * total changes, and setting a key it has copies the map.
 */
export class GrowOnlyTally<K> {
  readonly #shared: { log: { key: K; total: number }[]; positions: Map<K, number[]> };
  readonly size: number;

  private constructor(shared: { log: { key: K; total: number }[]; positions: Map<K, number[]> }, size: number) {
    this.#shared = shared;
    this.size = size;
  }

  static empty<K>(): GrowOnlyTally<K> {
    return new GrowOnlyTally<K>({ log: [], positions: new Map() }, 0);
  }

  static from<K>(entries: Iterable<readonly [K, number]>): GrowOnlyTally<K> {
    let tally = GrowOnlyTally.empty<K>();
    for (const [key, total] of entries) tally = tally.add(key, total - tally.get(key));
    return tally;
  }

  /** The key's total (0 for a key never added to). */
  get(key: K): number {
    const positions = this.#shared.positions.get(key);
    if (!positions) return 0;
    // The newest of the key's totals this version saw: usually the last one.
    for (let i = positions.length - 1; i >= 0; i--) {
      const at = positions[i]!;
      if (at < this.size) return this.#shared.log[at]!.total;
    }
    return 0;
  }

  add(key: K, amount: number): GrowOnlyTally<K> {
    if (amount === 0) return this;
    const total = this.get(key) + amount;
    // An empty version (an initial state, shared by every stream) never lends its store; an older one copies its own.
    if (this.size === 0) return new GrowOnlyTally<K>({ log: [], positions: new Map() }, 0).#append(key, total);
    if (this.size !== this.#shared.log.length) return GrowOnlyTally.from(this.entries()).#append(key, total);
    return this.#append(key, total);
  }

  #append(key: K, total: number): GrowOnlyTally<K> {
    const { log, positions } = this.#shared;
    log.push({ key, total });
    const at = positions.get(key);
    if (at) at.push(this.size);
    else positions.set(key, [this.size]);
    return new GrowOnlyTally(this.#shared, this.size + 1);
  }

  /** Each key's total, keys in the order first added to, those whose total is 0 left out. */
  entries(): [K, number][] {
    const entries: [K, number][] = [];
    for (const key of this.#shared.positions.keys()) {
      const total = this.get(key);
      if (total !== 0) entries.push([key, total]);
    }
    return entries;
  }
}
