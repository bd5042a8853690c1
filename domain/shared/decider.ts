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
}

export function fold<Event extends DomainEvent, State>(decider: Pick<Decider<unknown, Event, State>, 'evolve' | 'initialState'>, events: readonly Event[]): State {
  return events.reduce(decider.evolve, decider.initialState);
}

/** Exhaustiveness check for switches over unions. */
export function assertNever(value: never): never {
  throw new Error(`Unexpected value: ${JSON.stringify(value)}`);
}
