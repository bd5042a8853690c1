/**
 * The audit trail: every event of the global feed, as recorded, with the columns operators filter on copied
 * out of it (tenant, wallet, payment, actor, correlation). Events hold no raw personal data or secrets
 * (identities travel as keyed hashes, tokens live in the vault), so the data is kept as it is.
 *
 * A batch is written by one INSERT: `seq` continues the table's highest in feed order, and an event already
 * present is skipped (`ON CONFLICT (event_id) DO NOTHING`), so applying a batch twice changes nothing.
 */
import type { JsonValue, RecordedEvent } from '../domain/ports/event-store.ts';
import { named } from '../adapters/postgres/named.ts';
import { recordsetFrom, recordsetParameter } from '../adapters/postgres/recordset.ts';
import type { Projection } from './projection.ts';

/** The columns of one `audit_events` row that are derived from the event (`seq` and `late` come from the table). */
export interface AuditColumns {
  event_id: string;
  position: string;
  stream: string;
  revision: number;
  type: string;
  recorded_at: Date;
  actor: string | null;
  tenant_id: string | null;
  wallet_id: string | null;
  payment_id: string | null;
  correlation_id: string | null;
  causation_id: string | null;
  data: JsonValue;
}

/** Streams named after the tenant they belong to: their events' tenant even if an old schema did not carry it. */
const TENANT_STREAM_PREFIXES = ['workspace-', 'reward-rules-', 'square-connection-', 'square-poll-'];

const text = (value: JsonValue | undefined): string | null => (typeof value === 'string' && value.length > 0 ? value : null);

function field(data: JsonValue, name: string): string | null {
  return data !== null && typeof data === 'object' && !Array.isArray(data) ? text(data[name]) : null;
}

function suffixAfter(stream: string, prefixes: readonly string[]): string | null {
  const prefix = prefixes.find((p) => stream.startsWith(p) && stream.length > p.length);
  return prefix ? stream.slice(prefix.length) : null;
}

/**
 * The denormalised columns of an event. The tenant is `data.tenantId`, else the tenant a tenant-named stream
 * belongs to; a user's stream (`user-*`) has none unless its event names one (a merchant's approval does).
 */
export function auditColumns(event: RecordedEvent): AuditColumns {
  const { data, metadata } = event;
  return {
    event_id: event.id,
    position: event.position,
    stream: event.stream,
    revision: event.revision,
    type: event.type,
    recorded_at: event.recordedAt,
    actor: text(metadata.actor),
    tenant_id: field(data, 'tenantId') ?? suffixAfter(event.stream, TENANT_STREAM_PREFIXES),
    wallet_id: field(data, 'walletId') ?? suffixAfter(event.stream, ['wallet-']),
    payment_id: field(data, 'paymentId') ?? suffixAfter(event.stream, ['payment-']),
    correlation_id: text(metadata.correlationId),
    causation_id: text(metadata.causationId),
    data,
  };
}

const COLUMNS = [
  ['event_id', 'uuid'],
  ['position', 'text'],
  ['stream', 'text'],
  ['revision', 'bigint'],
  ['type', 'text'],
  ['recorded_at', 'timestamptz'],
  ['actor', 'text'],
  ['tenant_id', 'text'],
  ['wallet_id', 'text'],
  ['payment_id', 'text'],
  ['correlation_id', 'text'],
  ['causation_id', 'text'],
  ['data', 'jsonb'],
] as const satisfies readonly (readonly [keyof AuditColumns, string])[];

/**
 * One statement per batch. `late` marks an event recorded before the latest one already in the trail (its
 * transaction committed after a later-recorded one): the read side turns time bounds into seq bounds over the
 * rows that are not late (see migrations/0006_audit.sql). The latest in-order row is found by its index.
 */
function insertSql(table: string): string {
  const names = COLUMNS.map(([name]) => name).join(', ');
  return `
    WITH batch AS (
      SELECT * FROM ${recordsetFrom(COLUMNS, 1, 'b')}
    ), head AS (
      SELECT (SELECT COALESCE(max(seq), 0) FROM ${table}) AS seq,
             (SELECT recorded_at FROM ${table} WHERE NOT late ORDER BY recorded_at DESC, seq DESC LIMIT 1) AS recorded_at
    )
    INSERT INTO ${table} (seq, late, ${names})
    SELECT head.seq + b.ord,
           COALESCE(b.recorded_at < GREATEST(head.recorded_at, max(b.recorded_at) OVER (ORDER BY b.ord ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING)), false),
           ${COLUMNS.map(([name]) => `b.${name}`).join(', ')}
      FROM batch b CROSS JOIN head
     ORDER BY b.ord
    ON CONFLICT (event_id) DO NOTHING`;
}

/**
 * The `audit` projection, owning `audit_events` (migrations/0006_audit.sql). It keeps every event as stored,
 * whatever its type or version, so it does not decode: it only copies out fields it finds, as text.
 */
export const auditProjection: Projection = {
  name: 'audit',
  version: 1,
  tables: ['audit_events'],
  eventTypes: 'all',
  async apply(events, { db, table }) {
    if (events.length === 0) return;
    await db.query(named(insertSql(table('audit_events'))), [recordsetParameter(events.map(auditColumns))]);
  },
};
