/**
 * Where payment polls are recorded: their own stream per tenant (`square-poll-<tenantId>`), not the connection's.
 * A poll runs every few minutes, so its records would otherwise grow the connection stream without bound, and every
 * webhook that looks up a customer reads that stream. The next poll reads only the last record (backwards, one).
 *
 * Older deployments recorded `SquarePaymentsPolled` on the connection stream; the connection state still folds
 * those, and its `pollCursor` is used until the first record lands here.
 */
import type { JsonObject } from '../ports/event-store.ts';
import { eventCodec } from '../shared/codec.ts';
import { ConnectionUnavailable } from './errors.ts';
import { squarePaymentsPolled, type PollRecord, type SquareConnectionState } from './events.ts';

export const POLL_STREAM_PREFIX = 'square-poll-';
export const pollStream = (tenantId: string) => `${POLL_STREAM_PREFIX}${tenantId}`;

export const pollEvents = eventCodec({ stream: 'square-poll-<tenantId>', writtenBy: 'connections (appendPoll)', readBy: 'connections (lastPoll)' }, squarePaymentsPolled);

export type { PollRecord } from './events.ts';

/** When a poll that found nothing new ran, and for which merchant: such a poll appends no record (see poll.ts). */
export interface QuietPoll {
  merchantId: string;
  polledAt: string;
}

/** The last quiet poll of each tenant, kept outside the event store (one row per tenant, overwritten). */
export interface QuietPolls {
  record(tenantId: string, poll: QuietPoll): Promise<void>;
  last(tenantId: string): Promise<QuietPoll | undefined>;
}

/** The record of a finished poll. A poll that ends after a revocation still happened: its cursor is kept for a reconnect. */
export function pollRecordFor(state: SquareConnectionState, poll: { cursor: string | null; polledAt: string; summary: JsonObject }): PollRecord {
  if (state.status === 'not_connected') throw new ConnectionUnavailable('not_connected', 'This workspace has no Square connection to record a poll for');
  return { tenantId: state.tenantId, merchantId: state.merchantId, cursor: poll.cursor, polledAt: poll.polledAt, summary: poll.summary };
}

/**
 * Whether a poll record is of this connection: of its merchant, and not from before the workspace (re)connected that
 * merchant after another (A, then B, then A again: the first A's records are not the new one's).
 */
const ofConnection = (state: Exclude<SquareConnectionState, { status: 'not_connected' }>, record: { merchantId: string; polledAt: string }) =>
  record.merchantId === state.merchantId && Date.parse(record.polledAt) >= Date.parse(state.connectedSince);

/** Where the next poll of the connection's merchant resumes: the last record's cursor if it was of this connection. */
export function pollCursorFor(state: Exclude<SquareConnectionState, { status: 'not_connected' }>, last: PollRecord | undefined): string | null {
  if (!last) return state.pollCursor;
  return ofConnection(state, last) ? last.cursor : null;
}

/**
 * The connection state with its poll fields taken from the poll log (the connection stream no longer has them).
 * The log's last record counts only if it polled the connection's merchant: after a switch, the previous
 * merchant's poll is not this connection's (its merchant was never polled yet). `lastPolledAt` is the later of that
 * record and the last quiet poll of the same merchant (which recorded nothing in the log).
 */
export function withLastPoll(state: SquareConnectionState, last: PollRecord | undefined, quiet?: QuietPoll): SquareConnectionState {
  if (state.status === 'not_connected') return state;
  const recorded = last ? { ...state, pollCursor: pollCursorFor(state, last), lastPolledAt: ofConnection(state, last) ? last.polledAt : null } : state;
  if (!quiet || !ofConnection(state, quiet)) return recorded;
  const lastPolledAt = recorded.lastPolledAt && Date.parse(recorded.lastPolledAt) >= Date.parse(quiet.polledAt) ? recorded.lastPolledAt : quiet.polledAt;
  return { ...recorded, lastPolledAt };
}
