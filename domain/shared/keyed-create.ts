/**
 * Creating a thing under a client's idempotency key (a reward, a promotion, a reward rule): its id is derived from
 * (tenant, key), so a retry of the same request finds the thing already there and answers as the first did; the
 * same key with another request is IDEMPOTENCY_KEY_REUSED. Without a key, a new id each time, as before.
 */
import type { EventStore, Position } from '../ports/event-store.ts';
import type { KeyedRuntime } from '../ports/identity.ts';
import type { Decider, DomainEvent } from './decider.ts';
import { DomainError } from './errors.ts';

/** The id of the thing a tenant creates under `key` (the runtime's `keyedId` in the kind's namespace); no key: `newId()`. */
export function createdId(namespace: string, tenantId: string, key: string | undefined, runtime: Pick<KeyedRuntime, 'newId' | 'keyedId'>): string {
  return key === undefined ? runtime.newId() : runtime.keyedId(namespace, `${tenantId}:${key}`);
}

/** Key order and absent fields aside, the same JSON: a stored definition against the request that asks it again. */
export function sameFields(stored: unknown, requested: unknown): boolean {
  return canonical(stored) === canonical(requested);
}

function canonical(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) =>
    v && typeof v === 'object' && !Array.isArray(v) ? Object.fromEntries(Object.entries(v).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) : v,
  );
}

/** A decider's answer to a create whose id already exists: a replay (nothing to record) if the request is the same. */
export function replayOrRefuse(same: boolean): [] {
  if (!same) throw new DomainError('IDEMPOTENCY_KEY_REUSED', 'This idempotencyKey was used with a different request; use a new key');
  return [];
}

/**
 * The stream's state just after the event that created the thing, and that event's position: what the first
 * request answered, for a replay to answer again (later changes, a retirement say, are not the first answer).
 */
export async function firstCreated<Event extends DomainEvent, State>(
  store: EventStore,
  stream: string,
  decider: Pick<Decider<unknown, Event, State>, 'codec' | 'evolve' | 'initialState'>,
  isCreation: (event: Event) => boolean,
): Promise<{ state: State; position: Position }> {
  let state = decider.initialState;
  for (const recorded of await store.readStream(stream)) {
    const event = decider.codec.decode(recorded);
    state = decider.evolve(state, event);
    if (isCreation(event)) return { state, position: recorded.position };
  }
  throw new Error(`${stream}: a create was decided as a replay, but no event of the first request is in the stream`);
}
