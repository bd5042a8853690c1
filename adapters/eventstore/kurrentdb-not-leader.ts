/**
 * KurrentDB 25.1's not-leader answer on the v2 API (a multi-stream append sent to a follower): gRPC
 * FAILED_PRECONDITION with a `google.rpc.Status` in the `grpc-status-details-bin` trailer whose details hold a
 * `kurrent.rpc.NotLeaderNodeErrorDetails` naming the leader, after a `google.rpc.ErrorInfo`. There is no
 * `exception: not-leader` trailer, so the client (1.3) reports an `UnknownError` and does not reconnect.
 *
 * The client's copy of `google.rpc.Status` has a single `details` field and its decoder is not exported, so the
 * few fields needed are read here from the protobuf wire format.
 */

/** A KurrentDB node, as the server names it. */
export interface Endpoint {
  host: string;
  port: number;
}

const FAILED_PRECONDITION = 9;
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
  const node = fields(details).find((field) => field.number === 1);
  if (!node) return undefined;
  const info = fields(bytesOf(node));
  const host = info.find((field) => field.number === 1);
  const port = info.find((field) => field.number === 2);
  if (!host || !port || typeof port.value !== 'number') return undefined;
  return { host: text(bytesOf(host)), port: port.value };
}

interface Field {
  number: number;
  value: number | Uint8Array;
}

const text = (bytes: Uint8Array) => Buffer.from(bytes).toString('utf8');

function bytesOf(field: Field): Uint8Array {
  if (typeof field.value === 'number') throw new TypeError(`field ${field.number} is not length-delimited`);
  return field.value;
}

/** The top-level fields of a protobuf message: varints as numbers, length-delimited fields as bytes. */
function fields(message: Uint8Array): Field[] {
  const read: Field[] = [];
  let at = 0;
  const varint = (): number => {
    let value = 0;
    for (let shift = 0; ; shift += 7) {
      if (at >= message.length || shift > 63) throw new RangeError('truncated varint');
      const byte = message[at++]!;
      value += (byte & 0x7f) * 2 ** shift;
      if (byte < 0x80) return value;
    }
  };
  while (at < message.length) {
    const key = varint();
    const number = Math.floor(key / 8);
    switch (key % 8) {
      case 0:
        read.push({ number, value: varint() });
        break;
      case 2: {
        const length = varint();
        if (at + length > message.length) throw new RangeError('truncated field');
        read.push({ number, value: message.subarray(at, at + length) });
        at += length;
        break;
      }
      case 1:
        at += 8;
        break;
      case 5:
        at += 4;
        break;
      default:
        throw new RangeError(`unsupported wire type ${key % 8}`);
    }
  }
  return read;
}
