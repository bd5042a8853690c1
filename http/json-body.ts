/**
 * A JSON request body: decompressed (gzip, deflate, br), at most `limit` once decompressed, decoded as strict UTF-8,
 * parsed. Read here rather than by @koa/bodyparser, whose reader (co-body) decodes leniently: bytes that were not
 * UTF-8 became U+FFFD, so two different idempotency keys could read as one and the second write was replayed.
 */
import type { IncomingMessage } from 'node:http';
import { pipeline, type Readable } from 'node:stream';
import { createBrotliDecompress, createUnzip } from 'node:zlib';
import getRawBody from 'raw-body';
import { HttpError } from './errors.ts';
import { utf8Text } from './text.ts';

/** The Content-Encodings of a request body undone here. */
export const BODY_ENCODINGS = 'gzip, deflate or br';

/** The request's body stream, its Content-Encoding undone; undefined for an encoding not undone here. */
function decoded(request: IncomingMessage, encoding: string): Readable | undefined {
  if (encoding === 'identity') return request;
  const decompression = encoding === 'gzip' || encoding === 'deflate' ? createUnzip() : encoding === 'br' ? createBrotliDecompress() : undefined;
  // A request that fails (aborted) fails its decompression too, and so the read: `pipe` would leave it waiting.
  return decompression && pipeline(request, decompression, () => {});
}

/** Keys that would reach an object's prototype once the body is spread or merged: refused, as co-body refused them. */
const prototypeKey = (key: string, value: unknown) =>
  key === '__proto__' || (key === 'constructor' && typeof value === 'object' && value !== null && 'prototype' in value);

/**
 * The most values (array elements, keys and strings, counted by a single pass over the text) and nesting levels a
 * body may hold. The largest request a route takes holds under 1,000 values; 1 MB of `[0,0,…]` holds 500,000, and
 * parsing and checking them took seconds of the event loop (before any route or sign-in check: every request waited).
 */
export const MAX_JSON_VALUES = 10_000;
export const MAX_JSON_DEPTH = 32;

/** Refuses a body beyond `MAX_JSON_VALUES` or `MAX_JSON_DEPTH`, reading its characters once (strings skipped). */
function requireBoundedStructure(text: string): void {
  let depth = 0;
  let values = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x22) {
      // A string (or key): skip to its closing quote, past escapes.
      values++;
      for (i++; i < text.length && text.charCodeAt(i) !== 0x22; i++) if (text.charCodeAt(i) === 0x5c) i++;
    } else if (c === 0x5b || c === 0x7b) {
      values++;
      if (++depth > MAX_JSON_DEPTH) throw new HttpError('INVALID_JSON', `The body nests arrays and objects more than ${MAX_JSON_DEPTH} levels deep`);
    } else if (c === 0x5d || c === 0x7d) depth--;
    else if (c === 0x2c) values++;
    if (values > MAX_JSON_VALUES) throw new HttpError('PAYLOAD_TOO_LARGE', `The body holds more than ${MAX_JSON_VALUES.toLocaleString('en-US')} values`);
  }
}

function parse(text: string): unknown {
  // An empty body is an empty object; anything else must be an object or an array (co-body's strict mode).
  if (!/\S/.test(text)) return {};
  if (!/^[\x20\x09\x0a\x0d]*[[{]/.test(text)) throw new HttpError('INVALID_JSON', 'The body is not valid JSON: it must be an object or an array');
  requireBoundedStructure(text);
  try {
    // The reviver, which slows parsing down, only when such a key could be there (written plainly or with `\u` escapes).
    if (!/__proto__|constructor|\\u/.test(text)) return JSON.parse(text);
    return JSON.parse(text, (key, value) => {
      if (prototypeKey(key, value)) throw new HttpError('INVALID_JSON', `The body is not valid JSON: the key ${key} is not accepted`);
      return value;
    });
  } catch (error) {
    if (error instanceof HttpError) throw error;
    throw new HttpError('INVALID_JSON', `The body is not valid JSON: ${(error as Error).message}`);
  }
}

/** The parsed body of a JSON request; every failure is the caller's to fix (400, 413 or 415 naming what). */
export async function readJsonBody(request: IncomingMessage, limit: string): Promise<unknown> {
  const encoding = (request.headers['content-encoding'] ?? 'identity').trim().toLowerCase() || 'identity';
  const stream = decoded(request, encoding);
  if (!stream) {
    throw new HttpError('UNSUPPORTED_MEDIA_TYPE', `Unsupported Content-Encoding: ${encoding}: send the body uncompressed or with Content-Encoding ${BODY_ENCODINGS}`);
  }
  let bytes: Buffer;
  try {
    const length = encoding === 'identity' ? request.headers['content-length'] : undefined;
    bytes = await getRawBody(stream, { limit, ...(length ? { length } : {}) });
  } catch (error) {
    if ((error as { type?: unknown }).type === 'entity.too.large') throw new HttpError('PAYLOAD_TOO_LARGE', `The body is larger than the ${limit} limit`);
    throw new HttpError('INVALID_JSON', `The body could not be read: ${(error as Error).message}`);
  }
  const text = utf8Text(bytes);
  if (text === undefined) throw new HttpError('INVALID_JSON', 'The body is not valid UTF-8 (JSON is sent in UTF-8)');
  return parse(text);
}
