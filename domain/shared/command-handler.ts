/**
 * The one command handler: read the stream, fold it, decide, append with the exact expected revision.
 * A concurrent writer makes the append conflict; the command is then decided again on the fresh state.
 * What is read is decoded through the decider's codec (a stored event that does not decode stops the command
 * with `EventDecodeFailed`: nothing is decided on it); what is appended carries its type's current version.
 */
import { ConcurrencyConflict, type EventMetadata, type EventStore, type Position, type RecordedEvent } from '../ports/event-store.ts';
import type { Decider, DomainEvent } from './decider.ts';
import type { EventCodec } from './codec.ts';

export interface CommandContext {
  /** Makes event ids (uuids); passed in so the domain has no randomness of its own. */
  newId(): string;
  metadata: EventMetadata;
}

export interface CommandResult<Event extends DomainEvent, State> {
  /** Events this command appended (empty when the decision was a no-op). */
  events: Event[];
  state: State;
  /** Position of the last appended event, for read-your-writes. */
  position: Position | undefined;
}

/** Each round of a race lets at least one writer through, so this bounds contention of about as many writers. */
const MAX_ATTEMPTS = 50;

/**
 * `loaded`: the stream as the caller just read it (`loadState`), to decide on without reading it again. The
 * append still expects that exact revision, so a write in between is a conflict and the retry reads afresh.
 */
export async function handleCommand<Command, Event extends DomainEvent, State>(
  store: EventStore,
  stream: string,
  decider: Decider<Command, Event, State>,
  command: Command,
  context: CommandContext,
  loaded?: { state: State; revision: number | undefined },
): Promise<CommandResult<Event, State>> {
  for (let attempt = 1; ; attempt++) {
    let state: State;
    let revision: number | undefined;
    if (attempt === 1 && loaded) {
      ({ state, revision } = loaded);
    } else {
      ({ state, revision } = await loadState(store, stream, decider));
    }
    const events = decider.decide(command, state);
    if (events.length === 0) return { events, state, position: undefined };
    const expected = revision === undefined ? 'no_stream' : revision;
    try {
      const result = await store.append(
        stream,
        events.map((e) => decider.codec.encode(e, context.newId(), context.metadata)),
        expected,
      );
      return { events, state: events.reduce(decider.evolve, state), position: result.position };
    } catch (error) {
      if (!(error instanceof ConcurrencyConflict) || attempt >= MAX_ATTEMPTS) throw error;
    }
  }
}

/** Reads a stream and folds it, for queries that need the write model's current state. */
export async function loadState<Event extends DomainEvent, State>(
  store: EventStore,
  stream: string,
  decider: Pick<Decider<unknown, Event, State>, 'codec' | 'evolve' | 'initialState'>,
): Promise<{ state: State; revision: number | undefined }> {
  const recorded = await store.readStream(stream);
  return { state: foldDecoded(decider, recorded), revision: recorded.at(-1)?.revision };
}

/** Folds recorded events, each decoded once; throws `EventDecodeFailed` at the first that does not decode. */
export function foldDecoded<Event extends DomainEvent, State>(
  decider: { codec: EventCodec<Event>; evolve(state: State, event: Event): State; initialState: State },
  recorded: readonly RecordedEvent[],
): State {
  let state = decider.initialState;
  for (const event of recorded) state = decider.evolve(state, decider.codec.decode(event));
  return state;
}
