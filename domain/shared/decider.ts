import type { JsonValue } from '../ports/event-store.ts';
import type { DomainEvent, EventCodec } from './codec.ts';

export type { DomainEvent } from './codec.ts';

/**
 * The decider pattern (emmett, oskardudycz): `decide` turns a command and the current state into new events
 * (or throws a DomainError); `evolve` folds one event into the state. Both are pure. `codec` declares the
 * stream's event types: the command handler decodes what it reads and stamps what it writes through it.
 */
export interface Decider<Command, Event extends DomainEvent, State> {
  codec: EventCodec<Event>;
  decide(command: Command, state: State): Event[];
  evolve(state: State, event: Event): State;
  initialState: State;
  /** How the state is stored as a snapshot, for deciders whose streams grow long (wallet, connection, user). */
  snapshots?: StateSnapshots<State>;
}

/**
 * A decider's state to and from JSON (sets and maps become arrays). Snapshots are stored under `version`
 * combined with a fingerprint of `evolve`'s code, so a changed `evolve` never reads an old snapshot; bump
 * `version` when the state changes through anything else (a helper `evolve` calls, a new field's meaning).
 */
export interface StateSnapshots<State> {
  version: number;
  toJson(state: State): JsonValue;
  /** Parses a stored snapshot; throws when it does not fit (the stream is then folded from its start). */
  fromJson(json: JsonValue): State;
}

export function fold<Event extends DomainEvent, State>(decider: Pick<Decider<unknown, Event, State>, 'evolve' | 'initialState'>, events: readonly Event[]): State {
  return events.reduce(decider.evolve, decider.initialState);
}

/** Exhaustiveness check for switches over unions. */
export function assertNever(value: never): never {
  throw new Error(`Unexpected value: ${JSON.stringify(value)}`);
}
