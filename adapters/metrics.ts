/**
 * Prometheus metrics: one registry per running app (tests start several in one process), every metric
 * definition, and the recording calls the rest of the app makes. Only this module imports prom-client.
 *
 * Labels carry only bounded, non-personal values: route templates (never raw paths), statuses, outcomes,
 * projection names and stream categories. No id, token, email or secret ever becomes a label.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { Position } from '../domain/ports/event-store.ts';
import { userStream } from '../domain/users/events.ts';
import { walletStream } from '../domain/wallets/wallet.ts';
import { workspaceStream } from '../domain/workspaces/workspace.ts';
import { ruleSetStream } from '../domain/rewards/rule-set.ts';
import { paymentStream } from '../domain/payments/payment.ts';
import { connectionStream } from '../domain/connections/events.ts';
import { merchantReservationStream } from '../domain/connections/merchant-reservation.ts';

/** What the projection gauges read at scrape time. */
export interface ProjectionsProbe {
  /** `eventTypes`: what the projection's subscription is filtered to; its lag counts only those. */
  status(): readonly { name: string; state: string; position: Position | undefined; eventTypes?: readonly string[] | 'all' }[];
  headPosition(): Promise<Position | undefined>;
  isAfter(a: Position, b: Position): boolean;
  /**
   * Events in the feed after `position` (from the start when undefined), counted up to a cap, and when the
   * checkpoint's event was recorded. Omitted for a store that cannot tell cheaply.
   */
  checkpoint?(position: Position | undefined, eventTypes?: readonly string[] | 'all'): Promise<{ eventsAfter: number; recordedAt: Date | undefined }>;
}

/** One poll of one connection, as the poll reports it. */
export interface PolledConnection {
  status: string;
  credited: number;
  duplicate: number;
  stored_anonymous: number;
  no_rule_no_credit: number;
  other: number;
}

/** Everything the app records into metrics, and the exposition that shows it. */
export interface Metrics {
  /** The exposition's Content-Type. */
  readonly contentType: string;
  /** The text Prometheus scrapes. */
  exposition(): Promise<string>;
  /** One HTTP request; `route` is the route template (or `unmatched`), never the raw path. */
  httpRequest(request: { method: string; route: string; status: number; seconds: number }): void;
  httpAnswerCut(answer: { method: string; route: string; cause: 'client_left' | 'dropped' | 'failed' }): void;
  webhookOutcome(outcome: string): void;
  webhookSignatureFailure(): void;
  /** A signed webhook refused with 400, by reason: `invalid_json` (not UTF-8 or not JSON), `invalid_shape`, `unstorable_text`. */
  webhookRefused(reason: 'invalid_json' | 'invalid_shape' | 'unstorable_text'): void;
  /** Acknowledgements stopped queueing: the end of a burst as the webhook worker sees it (it leases again). */
  acknowledgementBurstEnded(): void;
  /** Webhooks whose lease a worker took back from a dead one (its lease lock gone): processed at once. */
  leasesTakenBack(count: number): void;
  appended(stream: string, events: number): void;
  concurrencyConflict(stream: string): void;
  /** One run of the payments poll, every connection it looked at. */
  pollRun(connections: readonly PolledConnection[]): void;
  /** A token refresh that did not succeed: `failed`, `needs_reconnect` or `token_undecryptable`. */
  tokenRefreshFailure(outcome: string): void;
  /** How far a projection rebuild is (0 to 1); null once it is over, to remove the series. */
  rebuildProgress(projection: string, ratio: number | null): void;
  /** Starts reporting the projections' state, checkpoint and lag, read on every scrape. */
  observeProjections(probe: ProjectionsProbe): void;
  /** Starts reporting the age of the oldest append in progress (the feed's horizon), read on every scrape. */
  observeFeedHorizon(probe: () => Promise<{ ageSeconds: number } | undefined>): void;
  /** Starts reporting the webhook inbox (backlog, oldest due, given up), read at most once a second. */
  observeInbox(probe: () => Promise<InboxReading>): void;
}

/** The webhook inbox as an operator alerts on it. */
export interface InboxReading {
  /** Rows not yet processed (acknowledged, waiting, leased, or waiting for a retry). */
  unprocessed: number;
  /** How long the oldest due row has been due (0 when none is): rising, nothing is working the inbox. */
  oldestDueAgeSeconds: number;
  /** Rows settled as `failed` after their last attempt: each needs an operator's re-drive. */
  failed: number;
}

/** Options of `createMetrics`. */
export interface MetricsOptions {
  /** Hears about a scrape-time read that failed (the projection gauges are then left out of that scrape). */
  onCollectError?: (error: unknown) => void;
}

const METHODS = new Set(['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS']);
const PROJECTION_STATES = ['starting', 'running', 'standby', 'stopped', 'failed', 'superseded'];
/** Lag is counted up to this many events: beyond it the number matters less than the cost of counting. */
export const LAG_COUNT_CAP = 100_000;

/** A reading of the database that failed this scrape (told apart from "nothing observed"). */
const FAILED: unique symbol = Symbol('failed');

/** Stream categories, longest prefix first; a stream of none of them counts as `other`. */
const STREAM_CATEGORIES = [userStream, walletStream, workspaceStream, ruleSetStream, paymentStream, connectionStream, merchantReservationStream]
  .map((stream) => stream(''))
  .sort((a, b) => b.length - a.length);

/** The kind of stream (`wallet`, `reward-rules`…) a metric may carry as a label, never the stream's id. */
export function streamCategory(stream: string): string {
  const prefix = STREAM_CATEGORIES.find((p) => stream.startsWith(p));
  return prefix ? prefix.slice(0, -1) : 'other';
}

interface ProjectionReading {
  name: string;
  state: string;
  caughtUp: boolean | undefined;
  lagEvents: number | undefined;
  checkpointRecordedAt: Date | undefined;
}

async function readProjections(probe: ProjectionsProbe): Promise<ProjectionReading[]> {
  const head = await probe.headPosition();
  const checkpoints = new Map<string, ReturnType<NonNullable<ProjectionsProbe['checkpoint']>>>();
  const checkpointOf = (position: Position | undefined, eventTypes: readonly string[] | 'all') => {
    const key = `${position ?? ''}|${eventTypes === 'all' ? '*' : eventTypes.join(',')}`;
    if (!checkpoints.has(key)) checkpoints.set(key, probe.checkpoint!(position, eventTypes));
    return checkpoints.get(key)!;
  };
  return Promise.all(
    probe.status().map(async ({ name, state, position, eventTypes = 'all' }) => {
      // A standby projection is reported by the instance that owns it; a starting one has no checkpoint yet.
      if (state !== 'running' && state !== 'failed') return { name, state, caughtUp: undefined, lagEvents: undefined, checkpointRecordedAt: undefined };
      const checkpoint = probe.checkpoint ? await checkpointOf(position, eventTypes) : undefined;
      // Nothing of its types after its checkpoint: caught up, even if the feed has moved on with other types.
      const caughtUp = checkpoint ? checkpoint.eventsAfter === 0 : head === undefined || (position !== undefined && !probe.isAfter(head, position));
      return { name, state, caughtUp, lagEvents: checkpoint?.eventsAfter, checkpointRecordedAt: checkpoint?.recordedAt };
    }),
  );
}

/** Creates a registry with every metric of the app, and Node's process metrics. */
export function createMetrics(options: MetricsOptions = {}): Metrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  const registers = [registry];
  const counter = <L extends string = never>(name: string, help: string, ...labelNames: L[]) => new Counter<L>({ name, help, labelNames, registers });

  const httpRequests = counter('tally_http_requests_total', 'HTTP requests by method, route template and status.', 'method', 'route', 'status');
  const httpAnswersCut = counter(
    'tally_http_answers_cut_total',
    'Answers cut short after their status was sent (a streamed body such as the ledger CSV), by cause: client_left, dropped (the server ended it: an event tail it let go), or failed (the reason is logged).',
    'method',
    'route',
    'cause',
  );
  const httpDuration = new Histogram({
    name: 'tally_http_request_duration_seconds',
    help: 'HTTP request latency by method, route template and status.',
    labelNames: ['method', 'route', 'status'] as const,
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers,
  });
  const webhooks = counter('tally_webhooks_processed_total', 'Square webhooks processed from the inbox, by outcome (failed: an attempt that will be retried or re-driven).', 'outcome');
  const signatureFailures = counter('tally_webhook_signature_failures_total', 'Webhook deliveries refused because the signature was missing or wrong.');
  const refusedWebhooks = counter(
    'tally_webhooks_refused_total',
    'Signed webhooks refused with 400, by reason (invalid_json: not UTF-8 or not JSON; invalid_shape: not a Square event Tally reads; unstorable_text): Square delivers each again for 24 hours, then drops it; the warn line "a signed webhook was refused" names it and the problems.',
    'reason',
  );
  // Each series from 0, so that the first refusal is an increase `increase()` and `rate()` see.
  for (const reason of ['invalid_json', 'invalid_shape', 'unstorable_text']) refusedWebhooks.inc({ reason }, 0);
  const ackBurstEnds = counter(
    'tally_webhook_ack_bursts_ended_total',
    'Times webhook acknowledgements stopped queueing and the worker, which defers to them, leased again: one per burst; many per burst means the sender paused within it.',
  );
  const leasesTakenBack = counter(
    'tally_webhook_leases_taken_back_total',
    'Webhooks whose lease was taken back from a worker that died (its lease lock gone), so processed at once rather than when the lease ran out: a rise means a process was killed mid-batch.',
  );
  const appends = counter('tally_eventstore_appends_total', 'Successful appends to the event store, by stream category.', 'category');
  const appendedEvents = counter('tally_eventstore_events_appended_total', 'Events appended to the event store, by stream category.', 'category');
  const conflicts = counter('tally_eventstore_concurrency_conflicts_total', 'Appends refused because the stream changed since it was read (the caller retries or reports 409).', 'category');
  const pollRuns = counter('tally_poll_runs_total', 'Runs of the Square payments poll.');
  const pollConnections = counter('tally_poll_connections_total', 'Connections polled, by result (ok, partial, failed).', 'status');
  const pollPayments = counter('tally_poll_payments_total', 'Payments and refunds the poll fed to ingestion, by outcome.', 'outcome');
  const pollLastRun = new Gauge({ name: 'tally_poll_last_run_timestamp_seconds', help: 'When the last poll run finished (Unix time).', registers });
  const refreshFailures = counter('tally_square_token_refresh_failures_total', 'Square token refreshes that did not succeed, by outcome (failed, needs_reconnect, token_undecryptable).', 'outcome');
  const rebuild = new Gauge({
    name: 'tally_projection_rebuild_progress_ratio',
    help: 'Progress of a running projection rebuild, from 0 to 1.',
    labelNames: ['projection'] as const,
    registers,
  });

  const readFailures = counter(
    'tally_metrics_read_failures_total',
    'Scrapes whose reading of the database failed, by reading (projections, inbox, feed): the gauges read from it show NaN (one value) or nothing (one per projection) for that scrape, not 0. A comparison with NaN is false in PromQL, so an alert on such a gauge clears as well: alert on this counter rising.',
    'reading',
  );
  // Each series from 0, so that the first failure is an increase `increase()` and `rate()` see.
  for (const reading of ['projections', 'inbox', 'feed']) readFailures.inc({ reading }, 0);
  /**
   * One read per scrape, shared by the gauges that collect from it (each collects on its own): a read answers every
   * collect within a second; a failed read is reported (`failed`), counted and answers nothing.
   */
  const sharedRead = <T>(what: string) => {
    let read: (() => Promise<T>) | undefined;
    let reading: { at: number; value: Promise<T | typeof FAILED> } | undefined;
    return {
      observe(next: () => Promise<T>) {
        read = next;
        reading = undefined;
      },
      /** The reading; undefined when nothing is observed, `FAILED` when the read failed. */
      get(): Promise<T | typeof FAILED | undefined> {
        if (!read) return Promise.resolve(undefined);
        if (!reading || Date.now() - reading.at > 1000) {
          reading = {
            at: Date.now(),
            value: read().catch((error: unknown) => {
              readFailures.inc({ reading: what });
              options.onCollectError?.(error);
              return FAILED;
            }),
          };
        }
        return reading.value;
      },
    };
  };
  const projectionsRead = sharedRead<ProjectionReading[]>('projections');
  const projections = async () => {
    const readings = await projectionsRead.get();
    return readings === FAILED ? undefined : readings;
  };

  new Gauge({
    name: 'tally_projection_state',
    help: 'State of each projection in this instance (1 for the current state).',
    labelNames: ['projection', 'state'] as const,
    registers,
    async collect() {
      const readings = await projections();
      this.reset();
      for (const r of readings ?? []) for (const state of PROJECTION_STATES) this.set({ projection: r.name, state }, r.state === state ? 1 : 0);
    },
  });
  /** A gauge with one value per projection, from the shared readings; a projection whose `value` is undefined has none. */
  const projectionGauge = (name: string, help: string, value: (reading: ProjectionReading) => number | undefined) =>
    new Gauge({
      name,
      help,
      labelNames: ['projection'] as const,
      registers,
      async collect() {
        const readings = await projections();
        this.reset();
        for (const r of readings ?? []) {
          const v = value(r);
          if (v !== undefined) this.set({ projection: r.name }, v);
        }
      },
    });
  projectionGauge('tally_projection_caught_up', "1 when the projection's checkpoint is the newest event of the feed.", (r) =>
    r.caughtUp === undefined ? undefined : r.caughtUp ? 1 : 0,
  );
  projectionGauge('tally_projection_lag_events', `Events in the feed after the projection's checkpoint (counted up to ${LAG_COUNT_CAP}).`, (r) => r.lagEvents);
  projectionGauge('tally_projection_checkpoint_timestamp_seconds', "When the event at the projection's checkpoint was recorded (Unix time).", (r) =>
    r.checkpointRecordedAt ? r.checkpointRecordedAt.getTime() / 1000 : undefined,
  );

  let feedHorizon: (() => Promise<{ ageSeconds: number } | undefined>) | undefined;
  new Gauge({
    name: 'tally_event_feed_horizon_age_seconds',
    help: 'How long the oldest append still in progress has been open: the event feed stops before it (0 when none).',
    registers,
    async collect() {
      if (!feedHorizon) return;
      const oldest = await feedHorizon().catch((error: unknown): typeof FAILED => {
        readFailures.inc({ reading: 'feed' });
        options.onCollectError?.(error);
        return FAILED;
      });
      // Unknown is NaN: a gauge without labels reset reads 0, which would clear a "feed held back" alert.
      this.set(oldest === FAILED ? Number.NaN : (oldest?.ageSeconds ?? 0));
    },
  });

  const inboxRead = sharedRead<InboxReading>('inbox');
  const inboxGauge = (name: string, help: string, value: (reading: InboxReading) => number) =>
    new Gauge({
      name,
      help,
      registers,
      async collect() {
        const reading = await inboxRead.get();
        // A failed read is NaN, not 0: a gauge without labels reset reads 0, and a backlog alert would clear while
        // the database is down, the backlog unknown.
        if (reading === FAILED) this.set(Number.NaN);
        else if (reading) this.set(value(reading));
        else this.reset();
      },
    });
  inboxGauge('tally_webhook_inbox_unprocessed', 'Webhooks acknowledged and not processed yet (waiting, leased, or waiting for a retry).', (r) => r.unprocessed);
  inboxGauge('tally_webhook_inbox_oldest_due_age_seconds', 'How long the oldest due webhook has been due (0 when none is): rising, no worker is processing the inbox.', (r) => r.oldestDueAgeSeconds);
  inboxGauge('tally_webhooks_failed', 'Webhooks settled as failed after their last attempt: each needs a re-drive (POST /api/v1/admin/webhooks/<eventId>/retry).', (r) => r.failed);

  return {
    contentType: registry.contentType,
    exposition: () => registry.metrics(),
    httpRequest({ method, route, status, seconds }) {
      const labels = { method: METHODS.has(method) ? method : 'OTHER', route, status: String(status) };
      httpRequests.inc(labels);
      httpDuration.observe(labels, seconds);
    },
    httpAnswerCut({ method, route, cause }) {
      httpAnswersCut.inc({ method: METHODS.has(method) ? method : 'OTHER', route, cause });
    },
    webhookOutcome: (outcome) => webhooks.inc({ outcome }),
    webhookSignatureFailure: () => signatureFailures.inc(),
    webhookRefused: (reason) => refusedWebhooks.inc({ reason }),
    acknowledgementBurstEnded: () => ackBurstEnds.inc(),
    leasesTakenBack: (count) => leasesTakenBack.inc(count),
    appended(stream, events) {
      const category = streamCategory(stream);
      appends.inc({ category });
      appendedEvents.inc({ category }, events);
    },
    concurrencyConflict: (stream) => conflicts.inc({ category: streamCategory(stream) }),
    pollRun(connections) {
      pollRuns.inc();
      for (const c of connections) {
        pollConnections.inc({ status: c.status });
        for (const outcome of ['credited', 'duplicate', 'stored_anonymous', 'no_rule_no_credit', 'other'] as const) {
          if (c[outcome] > 0) pollPayments.inc({ outcome }, c[outcome]);
        }
      }
      pollLastRun.setToCurrentTime();
    },
    tokenRefreshFailure: (outcome) => refreshFailures.inc({ outcome }),
    rebuildProgress(projection, ratio) {
      if (ratio === null) rebuild.remove({ projection });
      else rebuild.set({ projection }, Math.min(1, Math.max(0, ratio)));
    },
    observeProjections(next) {
      projectionsRead.observe(() => readProjections(next));
    },
    observeFeedHorizon(next) {
      feedHorizon = next;
    },
    observeInbox(next) {
      inboxRead.observe(next);
    },
  };
}
