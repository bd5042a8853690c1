/**
 * The event codec: every event type declared once (name, version, zod schema of its data), decoded at the edge.
 *
 * Stored events are forever. A reader never casts what it reads: it decodes it through the codec of the types it
 * handles, which validates the data against the schema of the version it was written in (`schemaVersion` in its
 * metadata, 1 when absent) and upcasts it step by step to the current version. A stored event that does not decode
 * stops the reader with an `EventDecodeFailed` naming its stream, revision and position: nothing is decided or
 * projected on data that is not what the code believes it is. Writers stamp the current version (`encode`).
 *
 * Changing an event's shape: declare the next version with `.next(schema, upcast)`, where `upcast` turns data of
 * the previous version into the new one; keep the fixture of every older version (tests/fixtures/events/).
 */
import type { z } from 'zod';
import type { EventMetadata, JsonObject, NewEvent, RecordedEvent } from '../ports/event-store.ts';

/** A domain event before it is stored: a past-tense type and its JSON data. */
export interface DomainEvent<Type extends string = string, Data extends JsonObject = JsonObject> {
  type: Type;
  data: Data;
}

/** A stored event the reader cannot use as it is: the reader stops here rather than guess. */
export class EventDecodeFailed extends Error {
  readonly code = 'EVENT_UNDECODABLE';
  constructor(
    readonly stream: string,
    readonly revision: number,
    readonly position: string,
    readonly eventType: string,
    readonly schemaVersion: number,
    readonly reason: string,
    /**
     * The event is of a version newer than this code declares, or of a type it does not declare: written by newer
     * code (a rolling deploy), not damaged. A projection or reactor retries from its checkpoint rather than record a
     * failure that the newer code, which decodes it, would inherit. A command fails all the same (nothing is decided
     * on a stream holding an event the code cannot read).
     */
    readonly writtenByNewerCode = false,
  ) {
    super(`Stored event ${eventType} v${schemaVersion} at ${stream} revision ${revision} (position ${position}) does not decode: ${reason}`);
    this.name = 'EventDecodeFailed';
  }
}

/** Built only when decoding fails: a replay decodes a million events, and a closure per event is garbage. */
const decodeFailed = (recorded: RecordedEvent, version: number, reason: string, writtenByNewerCode = false) =>
  new EventDecodeFailed(recorded.stream, recorded.revision, recorded.position, recorded.type, version, reason, writtenByNewerCode);

/** Why data did not decode, in one line: `path: message` per issue. */
class InvalidData extends Error {}

type Decode<Data> = (data: unknown) => Data;

function parser<Schema extends z.ZodType>(schema: Schema): Decode<z.output<Schema>> {
  return (data) => {
    const result = schema.safeParse(data);
    if (result.success) return result.data;
    throw new InvalidData(result.error.issues.map((i) => `${i.path.join('.') || 'data'}: ${i.message}`).join('; '));
  };
}

/**
 * One event type: its name, its current version and the schema of its data. Each older version keeps its own
 * schema and the upcast to the version after it, so data of any version decodes to the current shape.
 */
export class EventType<Type extends string = string, Data extends JsonObject = JsonObject> {
  private constructor(
    readonly type: Type,
    readonly version: number,
    /** The current version's schema. */
    readonly schema: z.ZodType,
    /** Per stored version: parse with that version's schema, then upcast to the current one. */
    private readonly decoders: ReadonlyMap<number, Decode<Data>>,
  ) {}

  /** Version 1 of an event type. */
  static define<const Type extends string, Schema extends z.ZodType<JsonObject>>(type: Type, schema: Schema): EventType<Type, z.output<Schema>> {
    return new EventType<Type, z.output<Schema>>(type, 1, schema, new Map([[1, parser(schema)]]));
  }

  /** The next version: `schema` describes the data from now on; `upcast` turns the current version's data into it. */
  next<Schema extends z.ZodType<JsonObject>>(schema: Schema, upcast: (previous: Data) => z.output<Schema>): EventType<Type, z.output<Schema>> {
    const decoders = new Map<number, Decode<z.output<Schema>>>();
    for (const [version, decode] of this.decoders) decoders.set(version, (data) => upcast(decode(data)));
    decoders.set(this.version + 1, parser(schema));
    return new EventType<Type, z.output<Schema>>(this.type, this.version + 1, schema, decoders);
  }

  /**
   * Decoded data by the stored data it came from. The shared feed hands the same recorded events to every
   * projection and reactor, and each decoded them again: zod's validation of one event three or four times over
   * was 9 % of what the ingestion benchmark's burst allocated in the service. The decoded data is frozen, so a
   * reader that changed it would fail loudly instead of changing what the next reader sees.
   */
  private readonly decodedFrom = new WeakMap<object, { version: number; data: Data }>();

  /** The data of a stored event of `version`, in the current shape; throws `InvalidData`. */
  decodeData(data: unknown, version: number): Data {
    const stored = typeof data === 'object' && data !== null ? data : undefined;
    const known = stored && this.decodedFrom.get(stored);
    if (known && known.version === version) return known.data;
    const decode = this.decoders.get(version);
    if (!decode) {
      throw new InvalidData(version > this.version ? `version ${version} is newer than this code knows (${this.version})` : `no version ${version} was ever declared`);
    }
    const decoded = Object.freeze(decode(data));
    if (stored) this.decodedFrom.set(stored, { version, data: decoded });
    return decoded;
  }

  /** Every version this type has had, oldest first. */
  versions(): number[] {
    return [...this.decoders.keys()].sort((a, b) => a - b);
  }
}

/** The domain event an `EventType` describes. */
export type EventOf<T> = T extends EventType<infer Type, infer Data> ? DomainEvent<Type, Data> : never;

/** The events a codec decodes. */
export type EventsOf<C> = C extends EventCodec<infer E> ? E : never;

/** A recorded event whose type and data are one of `E`, decoded. */
export type Decoded<E extends DomainEvent> = E extends DomainEvent ? Omit<RecordedEvent, 'type' | 'data'> & E : never;

/** Where a family of events is written, for the catalogue (README). */
export interface FamilyInfo {
  /** Stream name pattern, e.g. `wallet-<walletId>`. */
  stream: string;
  /** Who appends them, e.g. `walletDecider`. */
  writtenBy: string;
  /** Who reads the stream itself (a decider's fold, a lookup); defaults to `writtenBy`. */
  readBy?: string;
  /** Types still read on this stream (written by older deployments) but no longer written to it. */
  legacy?: readonly string[];
}

/** Decodes and encodes the events of a set of types (a stream family, or what one reader handles). */
export class EventCodec<E extends DomainEvent = DomainEvent> {
  private readonly byType: ReadonlyMap<string, EventType>;

  constructor(
    readonly definitions: readonly EventType[],
    readonly family?: FamilyInfo,
  ) {
    this.byType = new Map(definitions.map((d) => [d.type, d]));
    if (this.byType.size !== definitions.length) throw new Error(`an event type is declared twice: ${definitions.map((d) => d.type).join(', ')}`);
  }

  /** The event types handled, as a subscription filter takes them. */
  get types(): readonly E['type'][] {
    return [...this.byType.keys()] as E['type'][];
  }

  handles(type: string): type is E['type'] {
    return this.byType.has(type);
  }

  /** The current version of a type: what writers stamp. */
  versionOf(type: E['type']): number {
    const definition = this.byType.get(type);
    if (!definition) throw new Error(`${type} is not an event type of this codec`);
    return definition.version;
  }

  /** The recorded event with its data decoded to the current version; `EventDecodeFailed` if it cannot be. */
  decode(recorded: RecordedEvent): Decoded<E> {
    const version = recorded.metadata.schemaVersion ?? 1;
    const definition = this.byType.get(recorded.type);
    // A type this code does not declare here is taken for one a newer release added (a rolling deploy), as a newer
    // version is: a stream's fold reading it still fails, a subscription retries instead of recording a failure.
    if (!definition) throw decodeFailed(recorded, version, `not an event type this reader handles (${this.types.join(', ')})`, true);
    try {
      // The definition of `recorded.type` decodes to that type's data: the pairing is what the map holds.
      const data: JsonObject = definition.decodeData(recorded.data, version);
      return { ...recorded, data } as Decoded<E>;
    } catch (error) {
      if (error instanceof InvalidData) throw decodeFailed(recorded, version, error.message, version > definition.version);
      throw decodeFailed(recorded, version, error instanceof Error ? `upcast failed: ${error.message}` : String(error));
    }
  }

  /** The events among `recorded` of the types this codec handles, decoded (others are passed over). */
  decodeHandled(recorded: readonly RecordedEvent[]): Decoded<E>[] {
    const decoded: Decoded<E>[] = [];
    for (const event of recorded) if (this.byType.has(event.type)) decoded.push(this.decode(event));
    return decoded;
  }

  /** A codec of these types but `types` (a reader of all but a few of a family's events). */
  without<const Type extends E['type']>(...types: Type[]): EventCodec<Exclude<E, { type: Type }>> {
    const excluded = new Set<string>(types);
    return new EventCodec(this.definitions.filter((d) => !excluded.has(d.type)));
  }

  /** The event to append: the writer's metadata with the type's current version stamped. */
  encode(event: E, id: string, metadata: EventMetadata): NewEvent {
    return { id, type: event.type, data: event.data, metadata: { ...metadata, schemaVersion: this.versionOf(event.type) } };
  }
}

/** The codec of a set of event types; `family` says where they are written (for the catalogue). */
export function eventCodec<const Types extends readonly EventType<string, JsonObject>[]>(family: FamilyInfo | undefined, ...types: Types): EventCodec<EventOf<Types[number]>> {
  return new EventCodec(types, family);
}

/**
 * The codec of a stream family from the module that declares its types (`import * as types from './event-types.ts'`):
 * every `EventType` the module exports (a module namespace lists them by export name), so no list of the family's
 * types is written out to keep in step with their declarations. Other exports (schemas, fragments) are left out.
 */
export function familyCodec<const Module extends object>(family: FamilyInfo, types: Module): EventCodec<EventOf<Extract<Module[keyof Module], EventType>>> {
  return new EventCodec(
    Object.values(types).filter((value): value is EventType => value instanceof EventType),
    family,
  );
}

/** A codec of what several codecs handle (a reader of events of more than one family). */
export function mergeCodecs<A extends DomainEvent, B extends DomainEvent>(a: EventCodec<A>, b: EventCodec<B>): EventCodec<A | B> {
  return new EventCodec([...a.definitions, ...b.definitions.filter((d) => !a.handles(d.type))]);
}
