/**
 * Queries over the audit trail (`audit_events`, projection `audit`). Every list is a keyset scan on `seq`
 * (feed order) through an index that starts with the filtered column; rows are parsed with zod on the way out.
 */
import type pg from 'pg';
import { z } from 'zod';
import { DomainError } from '../../domain/shared/errors.ts';
import { cursorPage, timestamp, timestampColumn } from './views.ts';
import { inSlices } from '../../adapters/postgres/slices.ts';

/** What the admin filters the trail by; every field narrows it (AND), several types widen within `type` (OR). */
export interface AuditFilter {
  tenantId?: string | undefined;
  stream?: string | undefined;
  /** Event types; an event of any of them matches. */
  types?: readonly string[] | undefined;
  actor?: string | undefined;
  walletId?: string | undefined;
  paymentId?: string | undefined;
  /** Recorded at or after (inclusive). */
  from?: Date | undefined;
  /** Recorded before (exclusive). */
  to?: Date | undefined;
}

/** One event as the audit trail shows it. Identities inside `data` are keyed hashes, never raw values. */
export const auditItem = z.object({
  eventId: z.string(),
  position: z.string(),
  stream: z.string(),
  revision: z.number().int(),
  type: z.string(),
  recordedAt: timestamp,
  actor: z.string().nullable(),
  tenantId: z.string().nullable(),
  walletId: z.string().nullable(),
  paymentId: z.string().nullable(),
  correlationId: z.string().nullable(),
  causationId: z.string().nullable(),
  data: z.unknown(),
});
export type AuditItem = z.infer<typeof auditItem>;

/** A page of the trail; pass `nextCursor` back unchanged for the next one (null: this was the last). */
export const auditPageView = cursorPage(auditItem);
export type AuditPage = z.infer<typeof auditPageView>;

/** Which page: after `cursor` (none: the first), at most `limit` items. */
export interface PageRequest {
  cursor?: string | undefined;
  limit: number;
}

type Order = 'newest' | 'oldest';

const count = z.union([z.string(), z.number()]).transform(Number).pipe(z.number().int().nonnegative());

/** An item as the statements below return it: `seq` for the cursor, bigints as text, the time a `Date`. */
const auditRow = auditItem.extend({
  seq: z.string().regex(/^\d+$/),
  revision: count,
  recordedAt: timestampColumn,
});

// Named as the item's fields. bigint and uuid arrive as strings from pg; no casts here, or ORDER BY seq would sort the cast text.
const COLUMNS =
  'seq, event_id AS "eventId", position, stream, revision, type, recorded_at AS "recordedAt", actor, tenant_id AS "tenantId", wallet_id AS "walletId", ' +
  'payment_id AS "paymentId", correlation_id AS "correlationId", causation_id AS "causationId", data';

const cursorSchema = z
  .object({ o: z.enum(['newest', 'oldest']), s: z.string().regex(/^\d{1,19}$/).refine((s) => BigInt(s) <= 9_223_372_036_854_775_807n, 'beyond bigint') })
  .strict();

/** A cursor continuing `order` after the row `seq`. Opaque to clients; exported for the benchmark's deep pages. */
export function encodeAuditCursor(order: Order, seq: string): string {
  return Buffer.from(JSON.stringify({ o: order, s: seq })).toString('base64url');
}

function decodeCursor(cursor: string, order: Order): string {
  let parsed: z.infer<typeof cursorSchema>;
  try {
    parsed = cursorSchema.parse(JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8')));
  } catch {
    throw new DomainError('VALIDATION_FAILED', 'cursor is not valid: pass the nextCursor of the previous page unchanged, or omit it for the first page');
  }
  if (parsed.o !== order) throw new DomainError('VALIDATION_FAILED', 'cursor belongs to another listing: pass the nextCursor this listing returned');
  return parsed.s;
}

function toPage(rows: unknown[], limit: number, order: Order): AuditPage {
  const parsed = rows.map((raw) => auditRow.parse(raw));
  const hasMore = parsed.length > limit;
  const shown = hasMore ? parsed.slice(0, limit) : parsed;
  const last = shown.at(-1);
  return {
    items: shown.map(({ seq: _seq, ...item }) => item),
    nextCursor: hasMore && last ? encodeAuditCursor(order, last.seq) : null,
  };
}

/** Collects conditions and their parameters; `$n` placeholders are numbered as values are added. */
class Conditions {
  constructor(
    readonly params: unknown[] = [],
    readonly clauses: string[] = [],
  ) {}

  /** Adds `template` with each `?` replaced by the next parameter. */
  add(template: string, ...values: unknown[]): this {
    let i = 0;
    this.clauses.push(
      template.replace(/\?/g, () => {
        this.params.push(values[i++]);
        return `$${this.params.length}`;
      }),
    );
    return this;
  }

  /** A copy sharing the parameter list, so branches of one statement number their parameters consistently. */
  fork(): Conditions {
    return new Conditions(this.params, [...this.clauses]);
  }

  get where(): string {
    return this.clauses.length ? `WHERE ${this.clauses.join(' AND ')}` : '';
  }
}

/**
 * Time bounds as seq bounds. Rows not marked `late` have recorded_at non-decreasing in seq, so the first of them
 * recorded at or after a time is where that time starts in feed order (one probe of audit_events_in_order):
 * - every row recorded at or after `from` has seq >= fromSeq (null: no row is that recent);
 * - every row with seq < toSeq was recorded before `to`; after toSeq only late rows can be (null: all rows are).
 */
async function seqBounds(db: pg.Pool, from: Date | undefined, to: Date | undefined): Promise<{ fromSeq: string | null; toSeq: string | null }> {
  const probe = (param: string) => `(SELECT seq FROM audit_events WHERE NOT late AND recorded_at >= ${param} ORDER BY recorded_at, seq LIMIT 1)`;
  const { rows } = await db.query<{ from_seq: string | null; to_seq: string | null }>(
    `SELECT ${from ? probe('$1') : 'NULL'} AS from_seq, ${to ? probe(from ? '$2' : '$1') : 'NULL'} AS to_seq`,
    [from, to].filter((d): d is Date => d !== undefined),
  );
  return { fromSeq: rows[0]?.from_seq ?? null, toSeq: rows[0]?.to_seq ?? null };
}

/**
 * `AUDIT_RETENTION_DAYS`: deletes the trail's rows recorded before `cutoff`, `slice` rows a statement (each a short
 * transaction), and answers how many. The rows in feed order before the first one recorded at or after the cutoff
 * are a seq range (`seqBounds`), read on the primary key from its low end, so a run that finds nothing old reads
 * nothing; the few late rows past that point (stored after a later-recorded one) are looked up on their own index.
 * Once `stopping` is aborted (shutdown) no further statement starts; the next run deletes what is left.
 * The events stay in the log: `npm run rebuild -- audit` brings every row back.
 */
export async function deleteAuditRecordedBefore(db: pg.Pool, cutoff: Date, slice = 5_000, stopping?: AbortSignal): Promise<number> {
  const { toSeq } = await seqBounds(db, undefined, cutoff);
  const bound = toSeq === null ? '' : 'AND seq < $2::bigint';
  let deleted = await inSlices(
    slice,
    () => db.query(`DELETE FROM audit_events WHERE seq IN (SELECT seq FROM audit_events WHERE true ${bound} ORDER BY seq LIMIT $1)`, toSeq === null ? [slice] : [slice, toSeq]),
    stopping,
  );
  if (toSeq !== null && !stopping?.aborted) {
    const { rowCount } = await db.query('DELETE FROM audit_events WHERE late AND seq >= $1::bigint AND recorded_at < $2', [toSeq, cutoff]);
    deleted += rowCount ?? 0;
  }
  return deleted;
}

/**
 * A page of the trail, newest first. The statement is a UNION ALL of index-ordered parts (one per type, and
 * for `to` one more for the late rows), each stopping after `limit + 1` rows, so a page costs about the same
 * however deep the cursor and however many events there are.
 */
export async function auditPage(db: pg.Pool, filter: AuditFilter, page: PageRequest): Promise<AuditPage> {
  const after = page.cursor ? decodeCursor(page.cursor, 'newest') : undefined;
  const bounds = filter.from || filter.to ? await seqBounds(db, filter.from, filter.to) : { fromSeq: null, toSeq: null };
  if (filter.from && bounds.fromSeq === null) return { items: [], nextCursor: null };

  const base = new Conditions();
  if (filter.tenantId !== undefined) base.add('tenant_id = ?', filter.tenantId);
  if (filter.stream !== undefined) base.add('stream = ?', filter.stream);
  if (filter.actor !== undefined) base.add('actor = ?', filter.actor);
  if (filter.walletId !== undefined) base.add('wallet_id = ?', filter.walletId);
  if (filter.paymentId !== undefined) base.add('payment_id = ?', filter.paymentId);
  if (after !== undefined) base.add('seq < ?::bigint', after);
  if (filter.from && bounds.fromSeq !== null) base.add('seq >= ?::bigint', bounds.fromSeq).add('recorded_at >= ?', filter.from);

  let branches = [base];
  if (filter.to && bounds.toSeq !== null) {
    const inOrder = base.fork().add('seq < ?::bigint', bounds.toSeq);
    const late = base.fork().add('late').add('seq >= ?::bigint', bounds.toSeq).add('recorded_at < ?', filter.to);
    branches = [inOrder, late];
  }
  const types = [...new Set(filter.types ?? [])];
  const parts = types.length ? branches.flatMap((branch) => types.map((type) => branch.fork().add('type = ?', type))) : branches;

  base.params.push(page.limit + 1);
  const limit = `$${base.params.length}`;
  const select = (c: Conditions) => `SELECT ${COLUMNS} FROM audit_events ${c.where} ORDER BY seq DESC LIMIT ${limit}`;
  const sql = parts.length === 1 ? select(parts[0]!) : `${parts.map((p) => `(${select(p)})`).join(' UNION ALL ')} ORDER BY seq DESC LIMIT ${limit}`;
  const { rows } = await db.query(sql, base.params);
  return toPage(rows, page.limit, 'newest');
}

async function oldestFirst(db: pg.Pool, column: 'stream' | 'correlation_id', value: string, page: PageRequest): Promise<AuditPage> {
  const after = page.cursor ? decodeCursor(page.cursor, 'oldest') : undefined;
  const { rows } = await db.query(
    `SELECT ${COLUMNS} FROM audit_events WHERE ${column} = $1 ${after ? 'AND seq > $3::bigint' : ''} ORDER BY seq LIMIT $2`,
    after ? [value, page.limit + 1, after] : [value, page.limit + 1],
  );
  return toPage(rows, page.limit, 'oldest');
}

/** One stream's history in order (oldest first), in pages. */
export function streamHistory(db: pg.Pool, stream: string, page: PageRequest): Promise<AuditPage> {
  return oldestFirst(db, 'stream', stream, page);
}

/** Everything one request, webhook or process run caused (its correlation id), in feed order, in pages. */
export function correlationHistory(db: pg.Pool, correlationId: string, page: PageRequest): Promise<AuditPage> {
  return oldestFirst(db, 'correlation_id', correlationId, page);
}
