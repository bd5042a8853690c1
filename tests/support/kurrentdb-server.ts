/**
 * An in-process KurrentDB stand-in that speaks the v1 gRPC protocol well enough for the real
 * `@kurrent/kurrentdb-client` (and the native `@kurrent/bridge` it uses for reads), plus the v2
 * `StreamsService/AppendSession` behind the client's `multiStreamAppend` (KurrentDB 25.1 and later). No KurrentDB server can
 * run on the build machines, so the adapter is exercised through the real client against this server.
 * The rules it follows are in /work/shared/kurrentdb/PROTOCOL.md.
 *
 * Test code only: events live in memory, there are no ACLs, stream metadata, links or projections.
 */
import { createRequire } from 'node:module';
import { randomUUID } from 'node:crypto';
import * as grpc from '@grpc/grpc-js';
import type * as AnyPb from 'google-protobuf/google/protobuf/any_pb.js';
import type * as EmptyPb from 'google-protobuf/google/protobuf/empty_pb.js';
import type * as CodePb from '@kurrent/kurrentdb-client/generated/kurrentdb/protocols/v1/code_pb.js';
import type * as FeaturesGrpc from '@kurrent/kurrentdb-client/generated/kurrentdb/protocols/v1/serverfeatures_grpc_pb.js';
import type * as FeaturesPb from '@kurrent/kurrentdb-client/generated/kurrentdb/protocols/v1/serverfeatures_pb.js';
import type * as SharedPb from '@kurrent/kurrentdb-client/generated/kurrentdb/protocols/v1/shared_pb.js';
import type * as StatusPb from '@kurrent/kurrentdb-client/generated/kurrentdb/protocols/v1/status_pb.js';
import type * as StreamsGrpc from '@kurrent/kurrentdb-client/generated/kurrentdb/protocols/v1/streams_grpc_pb.js';
import type * as StreamsPb from '@kurrent/kurrentdb-client/generated/kurrentdb/protocols/v1/streams_pb.js';
import type * as V2StreamsGrpc from '@kurrent/kurrentdb-client/generated/kurrentdb/protocols/v2/streams/streams_grpc_pb.js';
import type * as V2StreamsPb from '@kurrent/kurrentdb-client/generated/kurrentdb/protocols/v2/streams/streams_pb.js';
import type * as V2ErrorsPb from '@kurrent/kurrentdb-client/generated/kurrentdb/protocols/v2/streams/errors_pb.js';
import type * as RpcErrorsPb from '@kurrent/kurrentdb-client/generated/kurrentdb/protocols/v2/errors_pb.js';

// Responses must be built from the client's own generated classes (its serializers check `instanceof`), and
// well-known types from the google-protobuf copy those classes load: hence a require anchored in the client.
const requireFromClient = createRequire(
  createRequire(import.meta.url).resolve('@kurrent/kurrentdb-client/package.json'),
);
const generated = './generated/kurrentdb/protocols/v1';
const anyPb: typeof AnyPb = requireFromClient('google-protobuf/google/protobuf/any_pb.js');
const emptyPb: typeof EmptyPb = requireFromClient('google-protobuf/google/protobuf/empty_pb.js');
const codePb: typeof CodePb = requireFromClient(`${generated}/code_pb.js`);
const featuresGrpc: typeof FeaturesGrpc = requireFromClient(`${generated}/serverfeatures_grpc_pb.js`);
const featuresPb: typeof FeaturesPb = requireFromClient(`${generated}/serverfeatures_pb.js`);
const sharedPb: typeof SharedPb = requireFromClient(`${generated}/shared_pb.js`);
const statusPb: typeof StatusPb = requireFromClient(`${generated}/status_pb.js`);
const streamsGrpc: typeof StreamsGrpc = requireFromClient(`${generated}/streams_grpc_pb.js`);
const streamsPb: typeof StreamsPb = requireFromClient(`${generated}/streams_pb.js`);
const generatedV2 = './generated/kurrentdb/protocols/v2/streams';
const v2StreamsGrpc: typeof V2StreamsGrpc = requireFromClient(`${generatedV2}/streams_grpc_pb.js`);
const v2StreamsPb: typeof V2StreamsPb = requireFromClient(`${generatedV2}/streams_pb.js`);
const v2ErrorsPb: typeof V2ErrorsPb = requireFromClient(`${generatedV2}/errors_pb.js`);
const rpcErrorsPb: typeof RpcErrorsPb = requireFromClient('./generated/kurrentdb/protocols/v2/errors_pb.js');

const { ReadReq, ReadResp, AppendReq, AppendResp, BatchAppendReq, BatchAppendResp } = streamsPb;
const ReadOptions = ReadReq.Options;

/**
 * Why KurrentDB 25.1.0 did not handle an append (`NotHandled` in `Streams.BatchAppend`): it answers that
 * append's correlation id with a `google.rpc.Status` whose message is the reason's text and whose detail is
 * an empty message (`google.protobuf.Empty`), and keeps the call open.
 */
export type NotHandledReason = 'not-ready' | 'busy' | 'no-leader-info';
export type FailureKind = 'unavailable' | 'not-leader' | NotHandledReason;

const NOT_HANDLED: Record<NotHandledReason, string> = {
  'not-ready': 'Server Is Not Ready',
  busy: 'Server Is Busy',
  'no-leader-info': 'No leader info available in response',
};
const isNotHandled = (kind: FailureKind): kind is NotHandledReason => kind in NOT_HANDLED;

export interface KurrentDbTestServerOptions {
  /**
   * Whether GetSupportedMethods lists `Streams/BatchAppend`. Real servers 21.10+ do, and the client then appends
   * through it; `false` makes the client fall back to `Streams/Append`. Defaults to true.
   */
  advertiseBatchAppend?: boolean;
  /**
   * Whether the server offers the v2 `StreamsService/AppendSession` (the client's `multiStreamAppend`), as
   * KurrentDB 25.1 and later do. `false` stands for an older server: the service is absent and not advertised.
   * Defaults to true.
   */
  multiStreamAppend?: boolean;
  /** After every this many appends, write a `$statsCollected` system event as real servers do; 0 never. */
  systemEventEvery?: number;
}

export interface KurrentDbTestServer {
  connectionString: string;
  port: number;
  stop(): Promise<void>;
  /**
   * The next Streams call (read, subscription, append, batch-append request or v2 append session) fails with this
   * error. A `NotHandledReason` is an answer of `Streams/BatchAppend` only: the next batch append gets it.
   * A not-leader answer names `leader` (this server by default): in the v1 trailers, or, from the v2 append
   * session, as KurrentDB 25.1.0 does (FAILED_PRECONDITION with a `NotLeaderNodeErrorDetails`, no trailer).
   */
  failNext(kind: FailureKind, options?: { leader?: { host: string; port: number } }): void;
  /** Ends every open subscription with UNAVAILABLE, as a server restart or leader change would. */
  dropSubscriptions(): void;
  /** Appends served so far, per RPC: shows which append path the client took. */
  readonly appendsServed: { append: number; batchAppend: number; appendSession: number };
}

interface LogPosition {
  commit: bigint;
  prepare: bigint;
}

interface StoredEvent extends LogPosition {
  id: string;
  stream: string;
  revision: number;
  type: string;
  contentType: string;
  data: Uint8Array;
  customMetadata: Uint8Array;
  /** 100 ns ticks since the Unix epoch, what the server puts in the `created` metadata entry. */
  created: bigint;
}

interface ProposedEvent {
  id: string;
  type: string;
  contentType: string;
  data: Uint8Array;
  customMetadata: Uint8Array;
}

type Expectation =
  | { kind: 'any' }
  | { kind: 'no_stream' }
  | { kind: 'stream_exists' }
  | { kind: 'revision'; revision: number };

type AppendOutcome =
  | { ok: true; revision: number; position: LogPosition }
  | { ok: false; current: number | 'no_stream' };

/** One stream's part of a multi-stream transaction. */
interface TransactionPart {
  stream: string;
  proposed: readonly ProposedEvent[];
  expected: Expectation;
}

type TransactionOutcome =
  | { ok: true; revisions: number[]; commit: bigint }
  /** The first part, in request order, whose expectation does not hold (what the real server reports). */
  | { ok: false; index: number; current: number | 'no_stream' };

const comparePositions = (a: LogPosition, b: LogPosition): number =>
  a.commit === b.commit ? (a.prepare === b.prepare ? 0 : a.prepare < b.prepare ? -1 : 1) : a.commit < b.commit ? -1 : 1;

const holds = (expected: Expectation, current: number | 'no_stream') =>
  expected.kind === 'any' ||
  (expected.kind === 'no_stream' && current === 'no_stream') ||
  (expected.kind === 'stream_exists' && current !== 'no_stream') ||
  (expected.kind === 'revision' && current === expected.revision);

/** The event log: `$all` in commit order plus an index per stream. */
class EventLog {
  readonly all: StoredEvent[] = [];
  private readonly streams = new Map<string, StoredEvent[]>();
  /** Log offsets start past a header and grow by record size, so positions look like a real server's. */
  private nextOffset = 4_096n;
  private readonly listeners = new Set<(events: readonly StoredEvent[]) => void>();

  stream(name: string): readonly StoredEvent[] | undefined {
    return this.streams.get(name);
  }

  /** `$all` read order from a point: forwards includes a given position, backwards excludes it. */
  read(from: LogPosition | 'start' | 'end', forwards: boolean): StoredEvent[] {
    if (forwards) {
      if (from === 'end') return [];
      return from === 'start' ? [...this.all] : this.all.filter((event) => comparePositions(event, from) >= 0);
    }
    if (from === 'start') return [];
    return (from === 'end' ? [...this.all] : this.all.filter((event) => comparePositions(event, from) < 0)).reverse();
  }

  /** A subscription's history: everything after its start position. */
  after(from: LogPosition | 'start' | 'end'): StoredEvent[] {
    if (from === 'end') return [];
    return from === 'start' ? [...this.all] : this.all.filter((event) => comparePositions(event, from) > 0);
  }

  onAppended(listener: (events: readonly StoredEvent[]) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  append(stream: string, proposed: readonly ProposedEvent[], expected: Expectation): AppendOutcome {
    const existing = this.streams.get(stream) ?? [];
    const current = existing.length === 0 ? 'no_stream' : existing.length - 1;

    const retried = this.alreadyWritten(existing, proposed, expected);
    if (retried) return retried;

    if (!holds(expected, current)) return { ok: false, current };
    if (proposed.length === 0) return { ok: true, revision: existing.length - 1, position: this.headPosition() };

    const written = this.write(stream, proposed);
    const last = written.at(-1)!;
    return { ok: true, revision: last.revision, position: { commit: last.commit, prepare: last.prepare } };
  }

  /**
   * A multi-stream append: every expectation is checked first, then all the events are written as one
   * transaction (one commit record, contiguous in `$all`), or nothing is. Parts already written (a retry with
   * the same event ids) are not written again.
   */
  appendTransaction(parts: readonly TransactionPart[]): TransactionOutcome {
    const retried = parts.map((part) => this.alreadyWritten(this.streams.get(part.stream) ?? [], part.proposed, part.expected));
    for (const [index, part] of parts.entries()) {
      if (retried[index]) continue;
      const existing = this.streams.get(part.stream) ?? [];
      const current = existing.length === 0 ? 'no_stream' : existing.length - 1;
      if (!holds(part.expected, current)) return { ok: false, index, current };
    }
    const toWrite = parts.filter((_, index) => !retried[index]);
    const written = toWrite.length ? this.writeTransaction(toWrite) : [];
    const revisions = parts.map((part, index) => {
      const outcome = retried[index];
      if (outcome?.ok) return outcome.revision;
      return this.streams.get(part.stream)!.length - 1;
    });
    const commit = written.at(-1)?.commit ?? this.headPosition().commit;
    return { ok: true, revisions, commit };
  }

  /** Writes events unconditionally (system events) and tells live subscribers. */
  write(stream: string, proposed: readonly ProposedEvent[]): StoredEvent[] {
    return this.writeTransaction([{ stream, proposed }]);
  }

  private writeTransaction(parts: readonly Pick<TransactionPart, 'stream' | 'proposed'>[]): StoredEvent[] {
    // Events of one transaction share the commit record's position and differ in their prepare positions,
    // so comparing positions has to look at both halves.
    const prepares = parts.map(({ proposed }) =>
      proposed.map((event) => {
        const offset = this.nextOffset;
        this.nextOffset += BigInt(96 + event.data.length + event.customMetadata.length);
        return offset;
      }),
    );
    const commit = this.nextOffset;
    this.nextOffset += 48n;
    const created = BigInt(Date.now()) * 10_000n;
    const written: StoredEvent[] = [];
    for (const [index, { stream, proposed }] of parts.entries()) {
      const events = this.streams.get(stream) ?? [];
      this.streams.set(stream, events);
      const part = proposed.map((event, i) => ({
        ...event,
        stream,
        revision: events.length + i,
        commit,
        prepare: prepares[index]![i]!,
        created,
      }));
      events.push(...part);
      written.push(...part);
    }
    this.all.push(...written);
    for (const listener of this.listeners) listener(written);
    return written;
  }

  /**
   * Idempotent retries: when the same event ids already sit in the stream where this append would put them,
   * the append succeeds again without writing (the real server does this on a best-effort basis).
   */
  private alreadyWritten(
    existing: readonly StoredEvent[],
    proposed: readonly ProposedEvent[],
    expected: Expectation,
  ): AppendOutcome | undefined {
    if (proposed.length === 0) return undefined;
    const firstId = proposed[0]!.id;
    const start =
      expected.kind === 'revision'
        ? expected.revision + 1
        : expected.kind === 'no_stream'
          ? 0
          : existing.findIndex((event) => event.id === firstId);
    if (start < 0 || start + proposed.length > existing.length) return undefined;
    if (!proposed.every((event, i) => existing[start + i]!.id === event.id)) return undefined;
    const last = existing[start + proposed.length - 1]!;
    return { ok: true, revision: last.revision, position: { commit: last.commit, prepare: last.prepare } };
  }

  private headPosition(): LogPosition {
    const last = this.all.at(-1);
    return last ? { commit: last.commit, prepare: last.prepare } : { commit: 0n, prepare: 0n };
  }
}

const systemEvent = (type: string, data: Record<string, unknown>): ProposedEvent => ({
  id: randomUUID(),
  type,
  contentType: 'application/json',
  data: Buffer.from(JSON.stringify(data)),
  customMetadata: new Uint8Array(),
});

/** What a fresh real node has written to `$all` before any client connects. */
function seedSystemEvents(log: EventLog): void {
  log.write('$epochs', [systemEvent('$epoch-information', { epochNumber: 0 })]);
  log.write('$users', [systemEvent('$User', { loginName: 'admin' })]);
  log.write('$user-admin', [systemEvent('$user', { loginName: 'admin', fullName: 'KurrentDB Administrator' })]);
  log.write('$settings', [systemEvent('$settings', { $userStreamAcl: {}, $systemStreamAcl: {} })]);
  log.write('$projections-$all', [systemEvent('$ProjectionsInitialized', {})]);
}

type UuidMessage = InstanceType<typeof sharedPb.UUID>;

function uuidToString(uuid: UuidMessage | undefined): string {
  if (!uuid) throw new Error('message without a UUID');
  if (uuid.getValueCase() === sharedPb.UUID.ValueCase.STRING) return uuid.getString();
  const structured = uuid.getStructured()!;
  const hex = (bits: string) => BigInt.asUintN(64, BigInt(bits)).toString(16).padStart(16, '0');
  const ms = hex(structured.getMostSignificantBits());
  const ls = hex(structured.getLeastSignificantBits());
  return `${ms.slice(0, 8)}-${ms.slice(8, 12)}-${ms.slice(12)}-${ls.slice(0, 4)}-${ls.slice(4)}`;
}

function uuidMessage(id: string, structured: boolean): UuidMessage {
  const uuid = new sharedPb.UUID();
  if (!structured) return uuid.setString(id);
  const hex = id.replaceAll('-', '');
  const bits = (part: string) => BigInt.asIntN(64, BigInt(`0x${part}`)).toString();
  const value = new sharedPb.UUID.Structured();
  value.setMostSignificantBits(bits(hex.slice(0, 16)));
  value.setLeastSignificantBits(bits(hex.slice(16)));
  return uuid.setStructured(value);
}

function streamIdentifier(name: string) {
  return new sharedPb.StreamIdentifier().setStreamName(Buffer.from(name, 'utf8'));
}

function streamName(identifier: InstanceType<typeof sharedPb.StreamIdentifier> | undefined): string {
  return Buffer.from(identifier?.getStreamName_asU8() ?? new Uint8Array()).toString('utf8');
}

type ProposedMessage = StreamsPb.AppendReq.ProposedMessage | StreamsPb.BatchAppendReq.ProposedMessage;

function proposedEvent(message: ProposedMessage): ProposedEvent {
  const metadata = message.getMetadataMap();
  return {
    id: uuidToString(message.getId()),
    type: metadata.get('type') ?? '',
    contentType: metadata.get('content-type') ?? 'application/octet-stream',
    data: message.getData_asU8(),
    customMetadata: message.getCustomMetadata_asU8(),
  };
}

function eventResponse(event: StoredEvent, structuredIds: boolean): StreamsPb.ReadResp {
  const recorded = new ReadResp.ReadEvent.RecordedEvent()
    .setId(uuidMessage(event.id, structuredIds))
    .setStreamIdentifier(streamIdentifier(event.stream))
    .setStreamRevision(String(event.revision))
    .setCommitPosition(event.commit.toString())
    .setPreparePosition(event.prepare.toString())
    .setCustomMetadata(event.customMetadata)
    .setData(event.data);
  recorded
    .getMetadataMap()
    .set('type', event.type)
    .set('content-type', event.contentType)
    .set('created', event.created.toString());
  const read = new ReadResp.ReadEvent().setEvent(recorded).setCommitPosition(event.commit.toString());
  return new ReadResp().setEvent(read);
}

interface EventFilter {
  matches(event: StoredEvent): boolean;
  /** Send a checkpoint after this many considered events (subscriptions only). */
  checkpointEvery: number;
}

function eventFilter(options: StreamsPb.ReadReq.Options): EventFilter | undefined {
  if (options.getFilterOptionCase() !== ReadOptions.FilterOptionCase.FILTER) return undefined;
  const filter = options.getFilter()!;
  const onStream = filter.getFilterCase() === ReadOptions.FilterOptions.FilterCase.STREAM_IDENTIFIER;
  const expression = onStream ? filter.getStreamIdentifier() : filter.getEventType();
  const prefixes = expression?.getPrefixList() ?? [];
  const regex = expression?.getRegex() ? new RegExp(expression.getRegex()) : undefined;
  return {
    // Like the server: prefixes win over a regex when both are given.
    matches: (event) => {
      const value = onStream ? event.stream : event.type;
      if (prefixes.length > 0) return prefixes.some((prefix) => value.startsWith(prefix));
      return regex ? regex.test(value) : true;
    },
    checkpointEvery: Math.max(1, filter.getCheckpointintervalmultiplier()) * 32,
  };
}

/** A uint64 count; the client sends up to 2^64 - 1 for "all", which as a number still compares correctly. */
const countOf = (options: StreamsPb.ReadReq.Options): number =>
  options.getCountOptionCase() === ReadOptions.CountOptionCase.COUNT
    ? Number(options.getCount())
    : Number.POSITIVE_INFINITY;

function readPosition(options: StreamsPb.ReadReq.Options.AllOptions): LogPosition | 'start' | 'end' {
  switch (options.getAllOptionCase()) {
    case ReadOptions.AllOptions.AllOptionCase.POSITION: {
      const position = options.getPosition()!;
      return { commit: BigInt(position.getCommitPosition()), prepare: BigInt(position.getPreparePosition()) };
    }
    case ReadOptions.AllOptions.AllOptionCase.END:
      return 'end';
    default:
      return 'start';
  }
}

/** A filtered `$all` read counts matching events only, like the server's. */
function readAll(log: EventLog, options: StreamsPb.ReadReq.Options): StoredEvent[] {
  const forwards = options.getReadDirection() === ReadOptions.ReadDirection.FORWARDS;
  const filter = eventFilter(options);
  const count = countOf(options);
  const selected: StoredEvent[] = [];
  for (const event of log.read(readPosition(options.getAll()!), forwards)) {
    if (selected.length >= count) break;
    if (!filter || filter.matches(event)) selected.push(event);
  }
  return selected;
}

/** Stream read: both directions include the start revision. */
function readStream(events: readonly StoredEvent[], request: StreamsPb.ReadReq.Options): StoredEvent[] {
  const options = request.getStream()!;
  const forwards = request.getReadDirection() === ReadOptions.ReadDirection.FORWARDS;
  const count = countOf(request);
  const last = events.length - 1;
  const { RevisionOptionCase } = ReadOptions.StreamOptions;
  const start =
    options.getRevisionOptionCase() === RevisionOptionCase.REVISION
      ? Number(options.getRevision())
      : options.getRevisionOptionCase() === RevisionOptionCase.END
        ? forwards
          ? last + 1
          : last
        : 0;
  const selected = forwards ? events.slice(start) : events.slice(0, Math.min(start, last) + 1).reverse();
  return selected.slice(0, count);
}

type Leader = { host: string; port: number };

const injectedError = (kind: FailureKind, leader: Leader, v2: boolean): grpc.ServiceError => {
  if (kind === 'not-leader' && v2) return notLeaderNodeError(leader);
  const metadata = new grpc.Metadata();
  if (kind === 'unavailable') {
    return Object.assign(new Error('Server is unavailable (injected)'), {
      code: grpc.status.UNAVAILABLE,
      details: 'Server is unavailable (injected)',
      metadata,
    });
  }
  // A follower answers a leader-only call with NOT_FOUND and the leader's endpoint in the trailers;
  // pointing back at this server (the default) lets the client reconnect here.
  metadata.set('exception', 'not-leader');
  metadata.set('leader-endpoint-host', leader.host);
  metadata.set('leader-endpoint-port', String(leader.port));
  return Object.assign(new Error('Leader info available (injected)'), {
    code: grpc.status.NOT_FOUND,
    details: 'Leader info available (injected)',
    metadata,
  });
};

export async function startKurrentDbTestServer(options: KurrentDbTestServerOptions = {}): Promise<KurrentDbTestServer> {
  const advertiseBatchAppend = options.advertiseBatchAppend ?? true;
  const offersMultiStreamAppend = options.multiStreamAppend ?? true;
  const systemEventEvery = options.systemEventEvery ?? 10;
  const log = new EventLog();
  seedSystemEvents(log);

  let pendingFailure: FailureKind | undefined;
  let pendingLeader: Leader | undefined;
  let port = 0;
  /** `v2`: the answer of the v2 append session, whose not-leader answer has its own shape. */
  const takeFailure = (v2 = false): grpc.ServiceError | undefined => {
    const kind = pendingFailure;
    if (!kind || isNotHandled(kind)) return undefined;
    pendingFailure = undefined;
    return injectedError(kind, pendingLeader ?? { host: '127.0.0.1', port }, v2);
  };
  const takeNotHandled = (): NotHandledReason | undefined => {
    const kind = pendingFailure;
    if (!kind || !isNotHandled(kind)) return undefined;
    pendingFailure = undefined;
    return kind;
  };
  const subscriptions = new Set<{ drop(): void }>();
  const appendsServed = { append: 0, batchAppend: 0, appendSession: 0 };

  let appends = 0;
  const countAppend = () => {
    if (systemEventEvery > 0 && ++appends % systemEventEvery === 0) {
      log.write('$stats-127.0.0.1:2113', [systemEvent('$statsCollected', { 'proc-cpu': 0.5 })]);
    }
  };
  const append = (stream: string, events: readonly ProposedEvent[], expected: Expectation): AppendOutcome => {
    const outcome = log.append(stream, events, expected);
    if (outcome.ok) countAppend();
    return outcome;
  };

  const features: FeaturesGrpc.IServerFeaturesServer = {
    getSupportedMethods(_call, callback) {
      const method = (service: string, name: string) =>
        new featuresPb.SupportedMethod().setServiceName(service).setMethodName(name);
      const streams = 'event_store.client.streams.streams';
      const methods = [
        method(streams, 'read'),
        method(streams, 'append'),
        method(streams, 'delete'),
        method(streams, 'tombstone'),
        ...(advertiseBatchAppend ? [method(streams, 'batchappend')] : []),
        ...(offersMultiStreamAppend ? [method('kurrentdb.protocol.v2.streams.streamsservice', 'appendsession')] : []),
        method('event_store.client.server_features.serverfeatures', 'getsupportedmethods'),
      ];
      const version = offersMultiStreamAppend ? '25.1.0' : '25.0.0';
      callback(null, new featuresPb.SupportedMethods().setEventStoreServerVersion(version).setMethodsList(methods));
    },
  };

  const streams: StreamsGrpc.IStreamsServer = {
    read(call) {
      const failure = takeFailure();
      if (failure) return void call.emit('error', failure);
      const request = call.request.getOptions();
      if (!request) return void call.emit('error', { code: grpc.status.INVALID_ARGUMENT, details: 'no options' });
      const structuredIds = request.getUuidOption()?.getContentCase() === ReadOptions.UUIDOption.ContentCase.STRUCTURED;
      const send = (event: StoredEvent) => call.write(eventResponse(event, structuredIds));
      const subscription = request.getCountOptionCase() === ReadOptions.CountOptionCase.SUBSCRIPTION;

      if (request.getStreamOptionCase() === ReadOptions.StreamOptionCase.STREAM) {
        const options = request.getStream()!;
        const name = streamName(options.getStreamIdentifier());
        if (subscription) {
          return subscribe(call, send, (event) => event.stream === name, historyOfStream(name, options));
        }
        const events = log.stream(name);
        if (!events) {
          const notFound = new ReadResp.StreamNotFound().setStreamIdentifier(streamIdentifier(name));
          call.write(new ReadResp().setStreamNotFound(notFound));
          return void call.end();
        }
        for (const event of readStream(events, request)) send(event);
        return void call.end();
      }

      if (subscription) {
        const history = log.after(readPosition(request.getAll()!));
        return subscribe(call, send, () => true, history, eventFilter(request));
      }
      for (const event of readAll(log, request)) send(event);
      call.end();
    },

    append(call, callback) {
      let options: StreamsPb.AppendReq.Options | undefined;
      const proposed: ProposedEvent[] = [];
      call.on('data', (request: StreamsPb.AppendReq) => {
        if (request.getContentCase() === AppendReq.ContentCase.OPTIONS) options = request.getOptions();
        else proposed.push(proposedEvent(request.getProposedMessage()!));
      });
      call.on('end', () => {
        const failure = takeFailure();
        if (failure) return callback(failure);
        if (!options) return callback({ code: grpc.status.INVALID_ARGUMENT, details: 'append without options' });
        appendsServed.append++;
        const outcome = append(streamName(options.getStreamIdentifier()), proposed, appendExpectation(options));
        callback(null, appendResponse(outcome, options));
      });
    },

    batchAppend(call) {
      // One long-lived call carries many appends, each under its own correlation id, possibly in chunks.
      const pending = new Map<string, { options: StreamsPb.BatchAppendReq.Options; events: ProposedEvent[] }>();
      call.on('data', (request: StreamsPb.BatchAppendReq) => {
        const failure = takeFailure();
        if (failure) return void call.emit('error', failure);
        const correlation = uuidToString(request.getCorrelationId());
        const batch = pending.get(correlation) ?? { options: request.getOptions()!, events: [] };
        pending.set(correlation, batch);
        batch.events.push(...request.getProposedMessagesList().map(proposedEvent));
        if (!request.getIsFinal()) return;
        pending.delete(correlation);
        const notHandled = takeNotHandled();
        if (notHandled) return void call.write(notHandledResponse(notHandled, batch.options, request.getCorrelationId()!));
        appendsServed.batchAppend++;
        const stream = streamName(batch.options.getStreamIdentifier());
        const outcome = append(stream, batch.events, batchExpectation(batch.options));
        call.write(batchAppendResponse(outcome, stream, request.getCorrelationId()!, batch.options));
      });
      // Only the client ends this call; the server keeps it open for the next append.
      call.on('end', () => call.end());
      call.on('error', () => pending.clear());
    },

    delete(_call, callback) {
      callback({ code: grpc.status.UNIMPLEMENTED, details: 'not supported by the test server' });
    },
    tombstone(_call, callback) {
      callback({ code: grpc.status.UNIMPLEMENTED, details: 'not supported by the test server' });
    },
  };

  const streamsV2: V2StreamsGrpc.IStreamsServiceServer = {
    // One AppendRequest per stream, then end; one answer for the whole transaction.
    appendSession(call, callback) {
      const requests: V2StreamsPb.AppendRequest[] = [];
      call.on('data', (request: V2StreamsPb.AppendRequest) => requests.push(request));
      call.on('end', () => {
        const failure = takeFailure(true);
        if (failure) return callback(failure);
        if (requests.length === 0) {
          return callback(statusError(grpc.status.INVALID_ARGUMENT, 'Append session has no requests'));
        }
        const seen = new Set<string>();
        for (const request of requests) {
          const stream = request.getStream().toLowerCase();
          if (seen.has(stream)) {
            const details = new v2ErrorsPb.StreamAlreadyInAppendSessionErrorDetails().setStream(request.getStream());
            return callback(
              statusError(grpc.status.ABORTED, `Stream ${request.getStream()} is already in the append session`, {
                typeName: 'kurrentdb.protocol.v2.streams.errors.StreamAlreadyInAppendSessionErrorDetails',
                bytes: details.serializeBinary(),
              }),
            );
          }
          seen.add(stream);
        }
        const outcome = log.appendTransaction(
          requests.map((request) => ({
            stream: request.getStream(),
            proposed: request.getRecordsList().map(proposedRecord),
            expected: v2Expectation(request),
          })),
        );
        if (!outcome.ok) {
          const request = requests[outcome.index]!;
          const details = new v2ErrorsPb.StreamRevisionConflictErrorDetails()
            .setStream(request.getStream())
            .setExpectedRevision(request.getExpectedRevision() ?? '-2')
            .setActualRevision(outcome.current === 'no_stream' ? '-1' : String(outcome.current));
          return callback(
            statusError(grpc.status.FAILED_PRECONDITION, `Stream ${request.getStream()}: wrong expected revision`, {
              typeName: 'kurrentdb.protocol.v2.streams.errors.StreamRevisionConflictErrorDetails',
              bytes: details.serializeBinary(),
            }),
          );
        }
        appendsServed.appendSession++;
        countAppend();
        const output = requests.map((request, i) =>
          new v2StreamsPb.AppendResponse().setStream(request.getStream()).setStreamRevision(String(outcome.revisions[i])),
        );
        callback(null, new v2StreamsPb.AppendSessionResponse().setOutputList(output).setPosition(outcome.commit.toString()));
      });
    },
    appendRecords(_call, callback) {
      callback({ code: grpc.status.UNIMPLEMENTED, details: 'AppendRecords (KurrentDB 26.1) is not served by the test server' });
    },
  };

  function historyOfStream(name: string, options: StreamsPb.ReadReq.Options.StreamOptions): StoredEvent[] {
    const events = log.stream(name) ?? [];
    const { RevisionOptionCase } = ReadOptions.StreamOptions;
    switch (options.getRevisionOptionCase()) {
      case RevisionOptionCase.END:
        return [];
      case RevisionOptionCase.REVISION:
        // A stream subscription from a revision excludes that revision.
        return events.slice(Number(options.getRevision()) + 1);
      default:
        return [...events];
    }
  }

  /**
   * Catch-up then live: confirmation, history, caught_up, live events. A filtered subscription also gets a
   * checkpoint after every `checkpointEvery` events considered, filtered-out ones included.
   */
  function subscribe(
    call: grpc.ServerWritableStream<StreamsPb.ReadReq, StreamsPb.ReadResp>,
    send: (event: StoredEvent) => void,
    inScope: (event: StoredEvent) => boolean,
    history: readonly StoredEvent[],
    filter?: EventFilter,
  ): void {
    let considered = 0;
    const deliver = (event: StoredEvent) => {
      if (!inScope(event)) return;
      if (!filter || filter.matches(event)) send(event);
      if (filter && ++considered % filter.checkpointEvery === 0) {
        const checkpoint = new ReadResp.Checkpoint()
          .setCommitPosition(event.commit.toString())
          .setPreparePosition(event.prepare.toString());
        call.write(new ReadResp().setCheckpoint(checkpoint));
      }
    };
    const confirmation = new ReadResp.SubscriptionConfirmation().setSubscriptionId(randomUUID());
    call.write(new ReadResp().setConfirmation(confirmation));
    for (const event of history) deliver(event);
    call.write(new ReadResp().setCaughtUp(new ReadResp.CaughtUp()));

    // History and registration happen in one tick, so no append can slip between them.
    const unsubscribe = log.onAppended((events) => events.forEach(deliver));
    const handle = {
      drop() {
        close();
        call.emit('error', { code: grpc.status.UNAVAILABLE, details: 'subscription dropped (injected)' });
      },
    };
    const close = () => {
      unsubscribe();
      subscriptions.delete(handle);
    };
    subscriptions.add(handle);
    call.on('cancelled', close);
    call.on('close', close);
  }

  const server = new grpc.Server();
  server.addService(featuresGrpc.ServerFeaturesService, features);
  server.addService(streamsGrpc.StreamsService, streams);
  if (offersMultiStreamAppend) server.addService(v2StreamsGrpc.StreamsServiceService, streamsV2);
  port = await new Promise<number>((resolve, reject) =>
    server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (error, bound) =>
      error ? reject(error) : resolve(bound),
    ),
  );

  return {
    connectionString: `kurrentdb://127.0.0.1:${port}?tls=false`,
    port,
    async stop() {
      for (const subscription of [...subscriptions]) subscription.drop();
      server.forceShutdown();
    },
    failNext(kind, { leader } = {}) {
      pendingFailure = kind;
      pendingLeader = leader;
    },
    dropSubscriptions() {
      for (const subscription of [...subscriptions]) subscription.drop();
    },
    appendsServed,
  };
}

/**
 * A gRPC error the way KurrentDB's v2 API sends it: the status, and a `google.rpc.Status` in the
 * `grpc-status-details-bin` trailer carrying one packed detail message, which the client decodes by type name.
 */
function statusError(code: grpc.status, message: string, detail?: { typeName: string; bytes: Uint8Array }): grpc.ServiceError {
  const metadata = new grpc.Metadata();
  // google.rpc.Code and gRPC status codes are the same numbers.
  const status = new statusPb.Status().setCode(code as number as CodePb.Code).setMessage(message);
  if (detail) {
    const any = new anyPb.Any();
    any.pack(detail.bytes, detail.typeName);
    status.setDetails(any);
  }
  metadata.set('grpc-status-details-bin', Buffer.from(status.serializeBinary()));
  return Object.assign(new Error(message), { code, details: message, metadata });
}

/**
 * KurrentDB 25.1.0's answer to a v2 call on a follower: FAILED_PRECONDITION and a `google.rpc.Status` whose
 * (repeated) details are a `google.rpc.ErrorInfo` and a `kurrent.rpc.NotLeaderNodeErrorDetails` naming the leader;
 * no `exception` trailer. The client's `Status` class has a single `details` field, so the repeated field is
 * written as two serialised parts, which on the wire is the same message.
 */
function notLeaderNodeError(leader: Leader): grpc.ServiceError {
  const message = 'The server is not the leader node and cannot handle the request.';
  const errorInfo = new anyPb.Any();
  // google.rpc.ErrorInfo { reason = 1: "NOT_LEADER_NODE" }
  errorInfo.pack(Buffer.concat([Buffer.from([0x0a, 15]), Buffer.from('NOT_LEADER_NODE')]), 'google.rpc.ErrorInfo');
  const node = new rpcErrorsPb.NotLeaderNodeErrorDetails.NodeInfo().setHost(leader.host).setPort(leader.port);
  const notLeader = new anyPb.Any();
  notLeader.pack(
    new rpcErrorsPb.NotLeaderNodeErrorDetails().setCurrentLeader(node).serializeBinary(),
    'kurrent.rpc.NotLeaderNodeErrorDetails',
  );
  const code = grpc.status.FAILED_PRECONDITION as number as CodePb.Code;
  const status = Buffer.concat([
    new statusPb.Status().setCode(code).setMessage(message).setDetails(errorInfo).serializeBinary(),
    new statusPb.Status().setDetails(notLeader).serializeBinary(),
  ]);
  const metadata = new grpc.Metadata();
  metadata.set('grpc-status-details-bin', status);
  return Object.assign(new Error(message), { code: grpc.status.FAILED_PRECONDITION, details: message, metadata });
}

/** v2 expected revisions: -1 no stream, -2 any (also when absent), -4 stream exists, else the revision. */
function v2Expectation(request: V2StreamsPb.AppendRequest): Expectation {
  const expected = Number(request.getExpectedRevision() ?? '-2');
  if (expected === -1) return { kind: 'no_stream' };
  if (expected === -4) return { kind: 'stream_exists' };
  if (expected < 0) return { kind: 'any' };
  return { kind: 'revision', revision: expected };
}

/**
 * A v2 record as the server stores it: the schema name is the event type, and the record's properties become
 * the event's metadata, which v1 readers receive as a JSON object of the properties plus two keys the server
 * adds (KurrentDB 25.1.0, `EventRecord.SynthesizeMetadataFromProperties`): `$schema.name`, the event type, and
 * `$schema.format`, `Json` for JSON records.
 */
function proposedRecord(record: V2StreamsPb.AppendRecord): ProposedEvent {
  const properties: Record<string, unknown> = {};
  record.getPropertiesMap().forEach((value, key) => (properties[key] = value.toJavaScript()));
  const json = record.getSchema()?.getFormat() === v2StreamsPb.SchemaFormat.SCHEMA_FORMAT_JSON;
  properties['$schema.name'] = record.getSchema()?.getName() ?? '';
  if (json) properties['$schema.format'] = 'Json';
  return {
    id: record.getRecordId() ?? randomUUID(),
    type: record.getSchema()?.getName() ?? '',
    contentType: json ? 'application/json' : 'application/octet-stream',
    data: record.getData_asU8(),
    customMetadata: Buffer.from(JSON.stringify(properties)),
  };
}

function appendExpectation(options: StreamsPb.AppendReq.Options): Expectation {
  const { ExpectedStreamRevisionCase } = AppendReq.Options;
  switch (options.getExpectedStreamRevisionCase()) {
    case ExpectedStreamRevisionCase.REVISION:
      return { kind: 'revision', revision: Number(options.getRevision()) };
    case ExpectedStreamRevisionCase.NO_STREAM:
      return { kind: 'no_stream' };
    case ExpectedStreamRevisionCase.STREAM_EXISTS:
      return { kind: 'stream_exists' };
    default:
      return { kind: 'any' };
  }
}

function batchExpectation(options: StreamsPb.BatchAppendReq.Options): Expectation {
  const { ExpectedStreamPositionCase } = BatchAppendReq.Options;
  switch (options.getExpectedStreamPositionCase()) {
    case ExpectedStreamPositionCase.STREAM_POSITION:
      return { kind: 'revision', revision: Number(options.getStreamPosition()) };
    case ExpectedStreamPositionCase.NO_STREAM:
      return { kind: 'no_stream' };
    case ExpectedStreamPositionCase.STREAM_EXISTS:
      return { kind: 'stream_exists' };
    default:
      return { kind: 'any' };
  }
}

/** `Streams/Append` reports a wrong expected version as a normal payload, not a gRPC error. */
function appendResponse(outcome: AppendOutcome, options: StreamsPb.AppendReq.Options): StreamsPb.AppendResp {
  if (outcome.ok) {
    const position = new AppendResp.Position()
      .setCommitPosition(outcome.position.commit.toString())
      .setPreparePosition(outcome.position.prepare.toString());
    const success = new AppendResp.Success().setPosition(position);
    if (outcome.revision < 0) success.setNoStream(new sharedPb.Empty());
    else success.setCurrentRevision(String(outcome.revision));
    return new AppendResp().setSuccess(success);
  }
  const wrong = new AppendResp.WrongExpectedVersion();
  if (outcome.current === 'no_stream') wrong.setCurrentNoStream(new sharedPb.Empty());
  else wrong.setCurrentRevision(String(outcome.current));
  const expected = appendExpectation(options);
  if (expected.kind === 'revision') wrong.setExpectedRevision(String(expected.revision));
  else if (expected.kind === 'no_stream') wrong.setExpectedNoStream(new sharedPb.Empty());
  else if (expected.kind === 'stream_exists') wrong.setExpectedStreamExists(new sharedPb.Empty());
  else wrong.setExpectedAny(new sharedPb.Empty());
  return new AppendResp().setWrongExpectedVersion(wrong);
}

/** A batch append the server did not handle, as KurrentDB 25.1.0 answers it (see `NotHandledReason`). */
function notHandledResponse(
  reason: NotHandledReason,
  options: StreamsPb.BatchAppendReq.Options,
  correlationId: UuidMessage,
): StreamsPb.BatchAppendResp {
  const details = new anyPb.Any();
  details.pack(new emptyPb.Empty().serializeBinary(), 'google.protobuf.Empty');
  const status = new statusPb.Status().setMessage(NOT_HANDLED[reason]).setDetails(details);
  return new BatchAppendResp()
    .setCorrelationId(correlationId)
    .setStreamIdentifier(options.getStreamIdentifier())
    .setError(status);
}

/** `Streams/BatchAppend` reports a wrong expected version as a google.rpc.Status carrying a packed detail. */
function batchAppendResponse(
  outcome: AppendOutcome,
  stream: string,
  correlationId: UuidMessage,
  options: StreamsPb.BatchAppendReq.Options,
): StreamsPb.BatchAppendResp {
  const response = new BatchAppendResp().setCorrelationId(correlationId).setStreamIdentifier(streamIdentifier(stream));
  const expected = batchExpectation(options);
  const empty = () => new emptyPb.Empty();
  if (expected.kind === 'revision') response.setStreamPosition(String(expected.revision));
  else if (expected.kind === 'no_stream') response.setNoStream(empty());
  else if (expected.kind === 'stream_exists') response.setStreamExists(empty());
  else response.setAny(empty());

  if (outcome.ok) {
    const position = new sharedPb.AllStreamPosition()
      .setCommitPosition(outcome.position.commit.toString())
      .setPreparePosition(outcome.position.prepare.toString());
    const success = new BatchAppendResp.Success().setPosition(position);
    if (outcome.revision < 0) success.setNoStream(empty());
    else success.setCurrentRevision(String(outcome.revision));
    return response.setSuccess(success);
  }
  const wrong = new sharedPb.WrongExpectedVersion();
  if (outcome.current === 'no_stream') wrong.setCurrentNoStream(empty());
  else wrong.setCurrentStreamRevision(String(outcome.current));
  if (expected.kind === 'revision') wrong.setExpectedStreamPosition(String(expected.revision));
  else if (expected.kind === 'no_stream') wrong.setExpectedNoStream(empty());
  else if (expected.kind === 'stream_exists') wrong.setExpectedStreamExists(empty());
  else wrong.setExpectedAny(empty());
  const details = new anyPb.Any();
  details.pack(wrong.serializeBinary(), 'event_store.client.WrongExpectedVersion');
  const status = new statusPb.Status()
    .setCode(codePb.Code.FAILED_PRECONDITION)
    .setMessage('WrongExpectedVersion')
    .setDetails(details);
  return response.setError(status);
}
