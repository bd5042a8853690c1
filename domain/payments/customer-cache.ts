/**
 * Square customer contacts by (tenant, customer), kept for a bounded time and a bounded number of entries.
 * Square answers a customer lookup in 100–300 ms; a regular customer pays many times, so most webhooks find
 * their contacts here. At most one lookup per customer is in flight: concurrent webhooks for one customer share
 * it. A `customer.created`, `customer.updated` or `customer.deleted` webhook naming the customer drops the entry on
 * every instance before its next batch decides on the customer (`customerChanges` below), so that payment reads the
 * contacts afresh.
 */
import DataLoader from 'dataloader';
import type { SquareWebhookEvent } from '../square/webhook.ts';

export interface CustomerContacts {
  email: string | null;
  phone: string | null;
}

export interface CustomerCacheOptions {
  /** How long an answer is kept (ms). */
  ttlMs: number;
  /** Most entries kept; the least recently used goes first. */
  maxEntries: number;
  now(): number;
}

export interface CustomerCacheStats {
  hits: number;
  misses: number;
  /** Lookups that joined one already in flight. */
  shared: number;
  size: number;
}

type Entry<V> = { value: V; expiresAt: number };

/** The customer cache: contacts by (tenant, customer id). */
export const customerCache = (lookup: (tenantId: string, customerId: string) => Promise<CustomerContacts | null>, options: CustomerCacheOptions) =>
  boundedCache<CustomerContacts | null>(lookup, options);

/**
 * Answers by (tenant, key), kept for a bounded time and number, one lookup in flight per key, failures not kept:
 * the customer contacts above, and Square orders (`order-lookup.ts`).
 */
export function boundedCache<V>(lookup: (tenantId: string, key: string) => Promise<V>, options: CustomerCacheOptions) {
  // A Map iterates in insertion order: re-inserting on use makes the first key the least recently used.
  const entries = new Map<string, Entry<V>>();
  const inFlight = new Map<string, Promise<V>>();
  /** Bumped by `forget`, so a lookup that started before the customer changed does not store its old answer. */
  const generations = new Map<string, number>();
  const stats = { hits: 0, misses: 0, shared: 0 };
  const keyOf = (tenantId: string, customerId: string) => `${tenantId}\u0000${customerId}`;

  function store(key: string, value: V): void {
    entries.delete(key);
    entries.set(key, { value, expiresAt: options.now() + options.ttlMs });
    while (entries.size > options.maxEntries) {
      const oldest = entries.keys().next().value;
      if (oldest === undefined) break;
      entries.delete(oldest);
    }
  }

  return {
    async get(tenantId: string, customerId: string): Promise<V> {
      const key = keyOf(tenantId, customerId);
      const entry = entries.get(key);
      if (entry && entry.expiresAt > options.now()) {
        stats.hits += 1;
        entries.delete(key);
        entries.set(key, entry);
        return entry.value;
      }
      if (entry) entries.delete(key);
      const pending = inFlight.get(key);
      if (pending) {
        stats.shared += 1;
        return pending;
      }
      stats.misses += 1;
      const generation = generations.get(key) ?? 0;
      const request = lookup(tenantId, customerId).then(
        (value) => {
          if ((generations.get(key) ?? 0) === generation) store(key, value);
          return value;
        },
        // A failed lookup is not cached: the webhook fails and is retried, and so is the lookup.
      );
      inFlight.set(key, request);
      try {
        return await request;
      } finally {
        // Unless `forget` dropped it and a newer look-up took its place.
        if (inFlight.get(key) === request) inFlight.delete(key);
      }
    },

    /** The customer changed or was deleted at Square. */
    forget(tenantId: string, customerId: string): void {
      const key = keyOf(tenantId, customerId);
      entries.delete(key);
      // A look-up in flight may have read Square before the change: later gets ask again rather than join it.
      inFlight.delete(key);
      generations.set(key, (generations.get(key) ?? 0) + 1);
      if (generations.size > options.maxEntries) generations.clear();
    },

    stats(): CustomerCacheStats {
      return { ...stats, size: entries.size };
    },
  };
}

export type CustomerCache = ReturnType<typeof customerCache>;

/**
 * One look-up at a time, asked for by the cache, sent to Square in bulk: the look-ups of one merchant (tenant) asked
 * for in the same turn of the event loop go in one call of at most `maxBatch` ids (DataLoader's batching, without
 * its cache: the cache above keeps the answers). The customers of the webhooks stored in one turn (`lookAhead` in
 * wiring/ingestion.ts), or of one batch, cost one call instead of one each. `bulk` answers each id, or an Error for
 * an id Square refused alone; a call that fails fails the look-ups it carried, which the cache does not keep.
 */
export function lookupsInBulk<V>(bulk: (tenantId: string, ids: readonly string[]) => Promise<Map<string, V | Error>>, maxBatch: number): (tenantId: string, id: string) => Promise<V> {
  const loaders = new Map<string, DataLoader<string, V>>();
  return (tenantId, id) => {
    let loader = loaders.get(tenantId);
    if (!loader) {
      loader = new DataLoader<string, V>(
        async (ids) => {
          const answers = await bulk(tenantId, ids);
          return ids.map((one) => (answers.has(one) ? (answers.get(one) as V | Error) : new Error(`no answer for ${one}`)));
        },
        { cache: false, maxBatchSize: maxBatch },
      );
      loaders.set(tenantId, loader);
    }
    return loader.load(id);
  };
}

/** A Square customer of a merchant, named by a webhook. */
export interface CustomerOfMerchant {
  merchantId: string;
  customerId: string;
}

/**
 * The Square customer whose contacts deciding this webhook will ask for: a payment that completes, with a customer
 * (what `ingestBatch` looks up). Looked up as soon as the webhook is stored (`lookAhead` in wiring/ingestion.ts),
 * the answer is in the cache by the time the webhook's batch needs it, instead of the batch waiting for Square.
 */
export function customerToLookUp(event: SquareWebhookEvent): CustomerOfMerchant | undefined {
  if (event.kind !== 'payment' || event.object.status !== 'COMPLETED' || !event.object.customerId) return undefined;
  return { merchantId: event.merchantId, customerId: event.object.customerId };
}

/** A Square customer of a tenant. */
export interface CustomerRef {
  tenantId: string;
  customerId: string;
}

/** The last change of a customer recorded by any instance: `change` grows with each (migration 0340). */
export interface CustomerChange extends CustomerRef {
  change: string;
}

/**
 * Customer changes shared by every instance through the database. The instance handling a customer webhook records
 * the change (`changed`) and drops its own entry; every instance reads the changes of a batch's customers before
 * deciding the batch (`dropChanged`: one read for the batch) and drops the entry of a customer whose last change it
 * has not met yet. A change first met after this instance cached the customer afresh costs one needless lookup;
 * `seen` is bounded like the cache, and a change it forgot is met again as new (a lookup, never a stale answer).
 */
export function customerChanges(
  cache: Pick<CustomerCache, 'forget'>,
  store: { record(tenantId: string, customerId: string): Promise<string>; changesOf(customers: readonly CustomerRef[]): Promise<CustomerChange[]> },
  maxEntries: number,
) {
  const seen = new Map<string, string>();
  const keyOf = (tenantId: string, customerId: string) => `${tenantId}\u0000${customerId}`;
  const note = (key: string, change: string) => {
    if (seen.size >= maxEntries && !seen.has(key)) seen.clear();
    seen.set(key, change);
  };
  return {
    /** A customer webhook for this customer: recorded for every instance (before the webhook settles), dropped here. */
    async changed(tenantId: string, customerId: string): Promise<void> {
      cache.forget(tenantId, customerId);
      note(keyOf(tenantId, customerId), await store.record(tenantId, customerId));
    },
    /** Drops the entries of these customers changed (on any instance) since this instance last looked. */
    async dropChanged(customers: readonly CustomerRef[]): Promise<void> {
      const unique = new Map(customers.map((c) => [keyOf(c.tenantId, c.customerId), c]));
      if (!unique.size) return;
      for (const { tenantId, customerId, change } of await store.changesOf([...unique.values()])) {
        const key = keyOf(tenantId, customerId);
        if (seen.get(key) === change) continue;
        cache.forget(tenantId, customerId);
        note(key, change);
      }
    },
  };
}

export type CustomerChanges = ReturnType<typeof customerChanges>;
