/** Schemas shared by several routes: ids and names in requests, common shapes in answers. */
import { z } from 'zod';
import { timestamp } from '../projections/read/views.ts';

export { timestamp };

const MAX_TYPES = 20;

/** An id in a path or query; `name` is what the message calls it. */
export const id = (name: string) =>
  z
    .string({ error: `${name} must be given once, as an id` })
    .min(1, `${name} must not be empty`)
    .max(200, `${name} must be at most 200 characters`)
    .regex(/^[A-Za-z0-9._:@|-]+$/, `${name} must be an id (letters, digits, . _ : @ | -)`);

/**
 * A uuid the service made (wallets, rewards, jobs), in any case, as lower case: the form it is stored and looked up
 * in. `z.uuid()` takes upper case, and `3F2C…` passed validation only to find nothing (404).
 */
export const uuid = (error: string) => z.uuid({ error }).transform((value) => value.toLowerCase());

/**
 * A user's id: the `sub` of their token as the identity provider wrote it (http/auth.ts takes any of 1 to 200
 * characters: `auth0|5f…`, `+`, `/`, `=` and spaces included), URL-encoded in a path (the router decodes it). An
 * `id` would have refused some of the ids registration accepts, and such a user could never be approved or suspended.
 */
export const userId = (name: string, max = MAX_SUBJECT) =>
  z
    .string({ error: `${name} must be given once, as a user id` })
    .min(1, `${name} must not be empty`)
    .max(max, `${name} must be at most ${max} characters`);

/** The longest token subject (`sub`) accepted, so the longest user id. */
export const MAX_SUBJECT = 200;

/**
 * An administrator's `?tenantId=` on a `tenant` route whose query refuses unknown parameters: the access check reads
 * and checks it (http/access.ts); the schema only lets it through.
 */
export const adminTenantId = z.string().optional().meta({ description: 'Administrators only, and required of them: the workspace (tenant) acted on.' });

export const streamName = z
  .string({ error: 'stream must be given once, as a stream name such as wallet-<walletId>' })
  .min(1, 'stream must not be empty')
  .max(300, 'stream must be at most 300 characters')
  .regex(/^[^\u0000-\u001f\u007f]+$/, 'stream must be a stream name such as wallet-<walletId>')
  // A wallet's id is a uuid the service made, taken in either case (as the wallet routes take it).
  .transform((name) => (/^wallet-[0-9a-f-]{36}$/i.test(name) ? name.toLowerCase() : name));

/** `type=A&type=B`, `type=A,B` or a mix of both. */
export const eventTypes = z
  .union([z.string(), z.array(z.string())], { error: 'type must be an event type name, e.g. type=PointsCredited' })
  .transform((value) => [...new Set((Array.isArray(value) ? value : [value]).flatMap((v) => v.split(',')).map((v) => v.trim()).filter(Boolean))])
  .pipe(
    z
      .array(z.string().regex(/^[A-Za-z][A-Za-z0-9_.-]{0,99}$/, 'type must be an event type name, e.g. PointsCredited'))
      .min(1, 'type must name at least one event type')
      .max(MAX_TYPES, `type may name at most ${MAX_TYPES} event types`),
  );

/**
 * `limit` of a paged list: a whole number from 1 to `max` in decimal digits, `fallback` when not given or blank.
 * Not `z.coerce.number()`, which took `1e1`, `0x10` and `+5`, read `?limit=` as 0 ("at least 1") and a repeated
 * `?limit=1&limit=2` as not a number.
 */
export const pageLimit = (max: number, fallback: number) => {
  const range = `limit must be a whole number from 1 to ${max}, in decimal digits`;
  return z
    .string({ error: (issue) => (Array.isArray(issue.input) ? 'limit must be given once' : range) })
    .trim()
    .regex(/^\d*$/, range)
    .transform((digits) => (digits === '' ? fallback : Number(digits)))
    .pipe(z.number().min(1, 'limit must be at least 1').max(max, `limit must be at most ${max}`))
    .default(fallback)
    // /openapi.json shows the input, a string of digits: the range and the default are said here.
    .meta({ description: `How many items a page holds: a whole number from 1 to ${max}; ${fallback} when not given or blank.`, default: String(fallback) });
};

/**
 * `cursor` of a paged list: the `nextCursor` of the previous page, unchanged, given once. Blank (`?cursor=`) is the
 * first page, as a blank `limit` takes its default (the ledger refused it as too short, the audit trail said it was
 * given more than once). `max` bounds what is decoded.
 */
export const pageCursor = (max: number) =>
  z
    .string({ error: (issue) => (Array.isArray(issue.input) ? 'cursor must be given once' : 'cursor must be the nextCursor of the previous page') })
    .max(max, 'cursor is not valid: pass the nextCursor of the previous page unchanged')
    .optional()
    .transform((cursor) => cursor || undefined)
    .meta({ description: 'The nextCursor of the previous page, unchanged; not given or blank: the first page.' });

/** The event-store position of a write; null when the command changed nothing. */
export const position = z.string().nullable();

/** Every error answer (http/errors.ts): a code, a message saying what to fix (4xx), the request id (5xx). */
export const errorAnswer = z
  .object({
    error: z
      .object({
        code: z.string(),
        message: z.string(),
        issues: z.array(z.object({ path: z.string(), message: z.string() })).optional(),
        details: z.record(z.string(), z.unknown()).optional(),
        requestId: z.string().optional(),
      })
      .strict(),
  })
  .strict();

/**
 * `idempotencyKey` of a create (a reward, a promotion, a reward rule), or the `Idempotency-Key` header: optional.
 * A retry with the same key answers as the first call did (200, `Idempotent-Replayed: true`); another body, a 422.
 */
export const createIdempotencyKey = z
  .string({ error: 'idempotencyKey must be a string (1-200 characters): the same for every retry of one create' })
  .min(1, 'idempotencyKey must not be empty')
  .max(200, 'idempotencyKey must be at most 200 characters')
  .optional();
