/**
 * KurrentDB 25.1's not-leader answer on the v2 API (a multi-stream append sent to a follower): gRPC
 * FAILED_PRECONDITION with a `google.rpc.Status` in the `grpc-status-details-bin` trailer whose details hold a
 * `kurrent.rpc.NotLeaderNodeErrorDetails` naming the leader, after a `google.rpc.ErrorInfo`. There is no
 * `exception: not-leader` trailer, so the client (1.3) reports an `UnknownError` and does not reconnect.
 *
 * The client's copy of `google.rpc.Status` has a single `details` field and its decoder is not exported, so the
 * few fields needed are read with google-protobuf's `BinaryReader` (the protobuf runtime the client itself uses).
 */
import protobuf from 'google-protobuf';

/** A KurrentDB node, as the server names it. */
export interface Endpoint {
  host: string;
  port: number;
}

const FAILED_PRECONDITION = 9;
/** Protobuf wire types (google-protobuf's `BinaryConstants` is not in its runtime exports). */
const VARINT = 0;
const DELIMITED = 2;
const DETAILS_TRAILER = 'grpc-status-details-bin';
const NOT_LEADER_DETAILS = '/kurrent.rpc.NotLeaderNodeErrorDetails';

interface MetadataLike {
  get(key: string): unknown[];
}

interface ServiceErrorLike {
  code?: unknown;
  metadata?: unknown;
}

const hasMetadata = (metadata: unknown): metadata is MetadataLike =>
  typeof metadata === 'object' && metadata !== null && typeof (metadata as MetadataLike).get === 'function';

/**
 * The leader a v2 not-leader answer names (`leader` undefined when it names none), or undefined for any other
 * error. Takes the client's error (an `UnknownError` keeping the gRPC error as `_raw`) or the gRPC error itself.
 */
export function notLeaderNode(error: unknown): { leader: Endpoint | undefined } | undefined {
  if (typeof error !== 'object' || error === null) return undefined;
  const raw = ((error as { _raw?: unknown })._raw ?? error) as ServiceErrorLike;
  if (raw.code !== FAILED_PRECONDITION || !hasMetadata(raw.metadata)) return undefined;
  const [trailer] = raw.metadata.get(DETAILS_TRAILER);
  if (!(trailer instanceof Uint8Array)) return undefined;
  try {
    for (const detail of fields(trailer).filter((field) => field.number === 3)) {
      const any = fields(bytesOf(detail));
      const typeUrl = any.find((field) => field.number === 1);
      if (!typeUrl || !text(bytesOf(typeUrl)).endsWith(NOT_LEADER_DETAILS)) continue;
      const value = any.find((field) => field.number === 2);
      return { leader: value && leaderOf(bytesOf(value)) };
    }
  } catch {
    // Not a Status after all: not this answer.
  }
  return undefined;
}

/** `NotLeaderNodeErrorDetails { NodeInfo current_leader = 1 }`, `NodeInfo { string host = 1; int32 port = 2 }`. */
function leaderOf(details: Uint8Array): Endpoint | undefined {
  const [node] = fields(details).filter((field) => field.number === 1);
  if (!node) return undefined;
  let host: string | undefined;
  let port: number | undefined;
  const reader = new protobuf.BinaryReader(bytesOf(node));
  while (reader.nextField() && !reader.isEndGroup()) {
    if (reader.getFieldNumber() === 1 && reader.getWireType() === DELIMITED) host = reader.readString();
    else if (reader.getFieldNumber() === 2 && reader.getWireType() === VARINT) port = reader.readInt32();
    else reader.skipField();
  }
  return host !== undefined && port !== undefined ? { host, port } : undefined;
}

interface Field {
  number: number;
  value: Uint8Array | undefined;
}

const text = (bytes: Uint8Array) => Buffer.from(bytes).toString('utf8');

function bytesOf(field: Field): Uint8Array {
  if (!field.value) throw new TypeError(`field ${field.number} is not length-delimited`);
  return field.value;
}

/** The top-level fields of a protobuf message, the length-delimited ones with their bytes. Throws on bytes that are no message. */
function fields(message: Uint8Array): Field[] {
  const read: Field[] = [];
  const reader = new protobuf.BinaryReader(message);
  while (reader.nextField() && !reader.isEndGroup()) {
    const number = reader.getFieldNumber();
    if (reader.getWireType() === DELIMITED) read.push({ number, value: reader.readBytes() });
    else {
      reader.skipField();
      read.push({ number, value: undefined });
    }
  }
  if (reader.getError()) throw new RangeError('not a protobuf message');
  return read;
}
