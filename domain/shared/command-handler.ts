/**
 * The one command handler: read the stream, fold it, decide, append with the exact expected revision.
 *
 * Commands on one stream within a process run one at a time (the path's keyed queue), so they never race each
 * other. A concurrent writer in another process makes the append conflict; the command is then decided again
 * on the fresh state after a jittered, growing pause, a bounded number of times, and then fails with
 * `StreamContended` (nothing appended). A stream is read from the newest state the process holds or its
 * stored snapshot, plus the events after it, so a long stream costs no more than a short one.
 * What is read is decoded through the decider's codec (a stored event that does not decode stops the command
 * with `EventDecodeFailed`: nothing is decided on it); what is appended carries its type's current version.
 */
import { ConcurrencyConflict, type EventMetadata, type EventStore, type Position, type RecordedEvent } from '../ports/event-store.ts';
import type { CommandPath, FoldedStream } from './command-path.ts';
import type { Decider, DomainEvent } from './decider.ts';
import type { EventCodec } from './codec.ts';
import { StreamContended } from './errors.ts';

export interface CommandContext {
  /** Makes event ids (uuids); passed in so the domain has no randomness of its own. */
  newId(): string;
  metadata: EventMetadata;
  /** This process's queue, recent states, snapshots and retry policy. */
  path: CommandPath;
}

export interface CommandResult<Event extends DomainEvent, State> {
  /** Events this command appended (empty when the decision was a no-op). */
  events: Event[];
  state: State;
  /** Position of the last appended event, for read-your-writes. */
  position: Position | undefined;
}

/** A stream as a caller read it (`loadState`); without `snapshotRevision`, a long stream gets a snapshot after the command. */
export type LoadedStream<State> = { state: State; revision: number | undefined; snapshotRevision?: number };

type Folding<Event extends DomainEvent, State> = Pick<Decider<unknown, Event, State>, 'codec' | 'evolve' | 'initialState' | 'snapshots'>;

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
  loaded?: LoadedStream<State>,
): Promise<CommandResult<Event, State>> {
  return context.path.queue.run(stream, () => decideAndAppend(store, stream, decider, command, context, loaded));
}

async function decideAndAppend<Command, Event extends DomainEvent, State>(
  store: EventStore,
  stream: string,
  decider: Decider<Command, Event, State>,
  command: Command,
  context: CommandContext,
  loaded: LoadedStream<State> | undefined,
): Promise<CommandResult<Event, State>> {
  const { path } = context;
  const { retry } = path;
  for (let attempt = 1; ; attempt++) {
    const current =
      attempt === 1 && loaded ? { snapshotRevision: -1, ...loaded } : await loadWithSnapshot(store, path, stream, decider);
    const events = decider.decide(command, current.state);
    if (events.length === 0) return { events, state: current.state, position: undefined };
    const expected = current.revision === undefined ? 'no_stream' : current.revision;
    let result;
    try {
      result = await store.append(
        stream,
        events.map((e) => decider.codec.encode(e, context.newId(), context.metadata)),
        expected,
      );
    } catch (error) {
      if (!(error instanceof ConcurrencyConflict)) throw error;
      // The store behind what this process holds (a database crash lost commits it had taken as written): the state
      // held is ahead of the stream, and reading the events after it would find none. Fold from storage instead.
      if (error.actual === 'no_stream' || (typeof expected === 'number' && error.actual < expected)) path.recent.delete(stream);
      if (attempt >= retry.attempts) throw new StreamContended(attempt);
      await retry.sleep(retry.random() * Math.min(retry.maxDelayMs, retry.baseDelayMs * 2 ** (attempt - 1)));
      continue;
    }
    const state = events.reduce(decider.evolve, current.state);
    await remember(path, stream, decider, { state, revision: result.nextExpectedRevision, snapshotRevision: current.snapshotRevision });
    return { events, state, position: result.position };
  }
}

/**
 * Reads a stream and folds it, for queries that need the write model's current state. With `path`, through
 * `loadWithSnapshot`, in the stream's queue, shared by the callers waiting at the same time: a hundred requests
 * arriving at once read the stream twice, not a hundred times. (Never call it from inside a command on that stream.)
 */
export async function loadState<Event extends DomainEvent, State>(
  store: EventStore,
  stream: string,
  decider: Folding<Event, State>,
  path?: CommandPath,
): Promise<LoadedStream<State>> {
  if (path) return path.queue.shared(stream, () => loadWithSnapshot(store, path, stream, decider));
  const recorded = await store.readStream(stream);
  return { state: foldDecoded(decider, recorded), revision: recorded.at(-1)?.revision };
}

/**
 * The stream's current state: the newest state this process holds for it, else its stored snapshot, else the
 * initial state; then the events after that revision, folded.
 */
export async function loadWithSnapshot<Event extends DomainEvent, State>(
  store: EventStore,
  path: CommandPath,
  stream: string,
  decider: Folding<Event, State>,
): Promise<FoldedStream<State>> {
  const start: FoldedStream<State> = path.recent.get<State>(stream, decider.evolve) ??
    (await storedSnapshot(path, stream, decider)) ?? { state: decider.initialState, revision: undefined, snapshotRevision: -1 };
  const tail = await store.readStream(stream, start.revision === undefined ? undefined : { fromRevision: start.revision + 1 });
  const folded = { state: foldDecoded(decider, tail, start.state), revision: tail.at(-1)?.revision ?? start.revision, snapshotRevision: start.snapshotRevision };
  if (folded.revision !== undefined) path.recent.set(stream, decider.evolve, folded);
  return folded;
}

/**
 * The one fold of recorded events into a state (from `start`, the initial state by default), each event decoded
 * once through the decider's codec; throws `EventDecodeFailed` at the first that does not decode.
 */
export function foldDecoded<Event extends DomainEvent, State>(
  decider: { codec: EventCodec<Event>; evolve(state: State, event: Event): State; initialState: State },
  recorded: readonly RecordedEvent[],
  start: State = decider.initialState,
): State {
  let state = start;
  for (const event of recorded) state = decider.evolve(state, decider.codec.decode(event));
  return state;
}

/**
 * Snapshots are stored under the decider's version and a fingerprint of its `evolve` code and of its codec's
 * event types and current versions (see `StateSnapshots`): a new event version, whose upcast may give older
 * events a different shape, never reads a snapshot folded before it.
 */
export function snapshotVersion(decider: Pick<Folding<never, unknown>, 'evolve' | 'snapshots'> & { codec: Pick<EventCodec, 'definitions'> }): string | undefined {
  if (!decider.snapshots) return undefined;
  let byCodec = fingerprints.get(decider.evolve);
  if (byCodec === undefined) fingerprints.set(decider.evolve, (byCodec = new WeakMap()));
  let fingerprint = byCodec.get(decider.codec);
  if (fingerprint === undefined) {
    // FNV-1a of the function's source text and the codec's types, by name (a family's codec lists them in the order
    // of their modules' export names, which a rename may change): the same code gives the same fingerprint in every process.
    const types = decider.codec.definitions.map((d) => `|${d.type}@${d.version}`).sort();
    const code = String(decider.evolve) + types.join('');
    let hash = 0x811c9dc5;
    for (let i = 0; i < code.length; i++) hash = Math.imul(hash ^ code.charCodeAt(i), 0x01000193) >>> 0;
    fingerprint = hash.toString(16).padStart(8, '0');
    byCodec.set(decider.codec, fingerprint);
  }
  return `${decider.snapshots.version}.${fingerprint}`;
}

/** Fingerprints by `evolve` function and codec (a cache of a pure computation, not state). */
const fingerprints = new WeakMap<object, WeakMap<object, string>>();

async function storedSnapshot<Event extends DomainEvent, State>(path: CommandPath, stream: string, decider: Folding<Event, State>): Promise<FoldedStream<State> | undefined> {
  const version = snapshotVersion(decider);
  if (!decider.snapshots || version === undefined) return undefined;
  try {
    const snapshot = await path.snapshots.read(stream, version);
    if (!snapshot) return undefined;
    return { state: decider.snapshots.fromJson(snapshot.state), revision: snapshot.revision, snapshotRevision: snapshot.revision };
  } catch (error) {
    // A cache that cannot be read is a cache miss: the stream is folded from its start.
    path.onSnapshotError(stream, error);
    return undefined;
  }
}

/**
 * Keeps the state decided on for the next command, and stores a snapshot once the stream has grown past its
 * last one by `snapshotEvery` events or a tenth of its length, whichever is more: writing a snapshot costs the
 * state's size, so spacing them in proportion keeps the cost per command flat however long the stream grows.
 */
async function remember<Event extends DomainEvent, State>(path: CommandPath, stream: string, decider: Folding<Event, State>, folded: FoldedStream<State> & { revision: number }) {
  path.recent.set(stream, decider.evolve, folded);
  const version = snapshotVersion(decider);
  if (!decider.snapshots || version === undefined) return;
  if (folded.revision - folded.snapshotRevision < Math.max(path.snapshotEvery, Math.floor(folded.revision / 10))) return;
  try {
    await path.snapshots.write({ stream, revision: folded.revision, version, state: decider.snapshots.toJson(folded.state) });
    folded.snapshotRevision = folded.revision;
  } catch (error) {
    path.onSnapshotError(stream, error);
  }
}
