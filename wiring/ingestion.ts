/**
 * Payment ingestion: webhooks and polls become purchase commands through one path, decided in batches on state held
 * in memory (connections, merchant reservations, rules), with Square customers cached. Webhooks are acknowledged
 * from their own pool and processed by the batched worker from the inbox.
 */
import type pg from 'pg';
import type { Metrics } from '../adapters/metrics.ts';
import { withPollMetrics } from '../adapters/metrics-hooks.ts';
import { exclusivePollRun } from '../adapters/postgres/poll-run-lock.ts';
import { PostgresEventStore } from '../adapters/eventstore/postgres.ts';
import { Acknowledgements, type AcknowledgementsPending } from '../adapters/workers/acknowledgements.ts';
import { AcknowledgedWebhooks } from '../adapters/workers/acknowledged-webhooks.ts';
import { completeManyStatement, groupedRecorder, webhookInbox, type WebhookInbox } from '../adapters/postgres/webhook-inbox.ts';
import { LeaseHolder } from '../adapters/postgres/lease-holder.ts';
import { z } from 'zod';
import { WebhookProcessor, type InboxCommit } from '../adapters/workers/webhook-processor.ts';
import type { Config } from '../adapters/config.ts';
import { withoutRedaction } from '../adapters/logger.ts';
import { ConcurrencyConflict, MultiStreamConflict, type EventStore } from '../domain/ports/event-store.ts';
import type { IdentityHasher } from '../domain/ports/identity.ts';
import type { SquareConnectionsService } from '../domain/connections/service.ts';
import { ingestionService } from '../domain/payments/ingestion.ts';
import { webhookHandler } from '../domain/payments/webhook-handler.ts';
import type { SquareWebhookEvent } from '../domain/square/webhook.ts';
import { pollService } from '../domain/payments/poll.ts';
import { IngestionState } from '../domain/payments/ingestion-state.ts';
import { customerCache, customerChanges, customerToLookUp, lookupsInBulk, type CustomerContacts, type CustomerOfMerchant } from '../domain/payments/customer-cache.ts';
import { MAX_BULK_CUSTOMERS } from '../domain/ports/square.ts';
import { orderLookup } from '../domain/payments/order-lookup.ts';
import { squareApis } from '../domain/payments/square-apis.ts';
import { attachCustomerIdentity } from '../domain/payments/identity-attach.ts';
import { CLAIM_WINDOW_DAYS } from '../domain/payments/payment.ts';
import { consumersByIdentity, verifiedEmailsOf } from '../projections/read/accounts.ts';
import { heldPurchasesOf } from '../projections/read/held-purchases.ts';
import { recordCustomerContacts } from '../adapters/postgres/customer-contacts.ts';
import { customerChangesOf, recordCustomerChange } from '../adapters/postgres/customer-changes.ts';
import { findWebhook } from '../projections/read/webhooks.ts';
import type { ProjectionRunner } from '../projections/runner.ts';
import { ingestionRoutes } from '../http/routes/ingestion.ts';
import { webhookRoutes } from '../http/routes/webhooks.ts';
import type { FailureLimiter } from '../http/rate-limit.ts';
import type { SquareSettings } from '../adapters/square/settings.ts';
import type { Infrastructure } from './infrastructure.ts';
import { runPeriodically, type Cleanups, type Schedule } from './lifecycle.ts';
import { startWebhookThread, type Settlement, type WebhookWorkerReports } from './webhook-thread.ts';
import { walletIdFor } from './ids.ts';

/**
 * How the webhook worker writes a batch: on PostgreSQL the events and the inbox rows' outcomes commit in one
 * statement (one round trip); elsewhere the events are appended first and the rows settled after (a crash in
 * between only means the batch is decided again, and finds its effects already recorded).
 */
function inboxCommit(rawStore: EventStore, store: EventStore, inbox: WebhookInbox, metrics: Pick<WebhookWorkerReports, 'appended' | 'conflict'>): InboxCommit {
  if (rawStore instanceof PostgresEventStore) {
    return async (requests, settlements) => {
      // Durable before anything goes on from it: the worker's ingestion view and the command path's wallet states take
      // this batch as written once it commits. A commit that did not wait for the WAL flush could be lost by a
      // PostgreSQL crash while this process runs on: a webhook decided again would find its wallet credited in memory
      // and credit nothing (tests/faults/database-crash.test.ts).
      const result = await rawStore.appendMany(requests, { alongside: completeManyStatement(settlements) }).catch((error: unknown) => {
        // The raw store is not the instrumented one: count its conflicts here (the batch re-decides them).
        if (error instanceof MultiStreamConflict) for (const c of error.conflicts) metrics.conflict(c.stream);
        else if (error instanceof ConcurrencyConflict) metrics.conflict(error.stream);
        throw error;
      });
      for (const { stream, events } of requests) metrics.appended(stream, events.length);
      return { position: result.position, settled: new Set(result.alongside.map((row) => settledRow.parse(row).event_id)) };
    };
  }
  return async (requests, settlements) => {
    const position = requests.length ? (await store.appendMany(requests)).position : undefined;
    return { position, settled: await inbox.completeMany(settlements) };
  };
}

const settledRow = z.object({ event_id: z.string() });

/** Merchants whose customers the look-ahead asks Square for in one turn of the event loop. */
const LOOK_AHEAD_MERCHANTS_A_TURN = 8;

/** The look-ahead brings the ingestion view up to date for a merchant it does not know at most this often. */
const LOOK_AHEAD_CATCH_UP_EVERY_MS = 1000;

/** Most look-aheads kept waiting for one catch-up of the ingestion view (a burst's first moment). */
const MAX_WAITING_LOOK_AHEADS = 10_000;

/**
 * Queues items and hands them over together: after the turn of the event loop that queued them (`setImmediate`: after
 * the turn's I/O); while acknowledgements queue (a burst), once they stop or after `maxHoldMs` (0: nothing is held;
 * `WEBHOOK_LOOK_AHEAD_HOLD_MS`, by default as long as the worker defers its leases to them). A burst's look-ups then go
 * to Square in bulk, a call per merchant for many customers, when the worker is about to need them, and neither
 * their requests nor their answers take the thread from the acknowledgements. The cost: a customer first seen
 * while acknowledgements queue for a moment at a steady rate is asked for when the worker leases its webhook, and
 * that batch waits for Square.
 */
function handedOverTogether<T>(acknowledgements: AcknowledgementsPending, maxHoldMs: number, handle: (items: T[]) => void): (item: T) => void {
  let queued: T[] = [];
  const handOver = () => {
    const items = queued;
    queued = [];
    handle(items);
  };
  return (item) => {
    if (queued.push(item) > 1) return;
    setImmediate(() => {
      if (maxHoldMs > 0 && acknowledgements.queueing()) void acknowledgements.whenQuiet(maxHoldMs).then(handOver);
      else handOver();
    });
  };
}

/** Who waits for a webhook's processing (the simulator's trigger), by event id. */
class SettlementWaiters {
  private readonly waiters = new Map<string, ((settlement: Settlement) => void)[]>();

  settled(eventId: string, settlement: Settlement): void {
    for (const resolve of this.waiters.get(eventId) ?? []) resolve(settlement);
    this.waiters.delete(eventId);
  }

  /** Resolves with the settlement, or undefined after `ms`. */
  async wait(eventId: string, ms: number, already: () => Promise<Settlement | undefined>): Promise<Settlement | undefined> {
    let waiter: ((settlement: Settlement) => void) | undefined;
    let timer: NodeJS.Timeout | undefined;
    const settledNow = new Promise<Settlement | undefined>((resolve) => {
      timer = setTimeout(() => resolve(undefined), ms);
      waiter = resolve;
      this.waiters.set(eventId, [...(this.waiters.get(eventId) ?? []), resolve]);
    });
    const settlement = (await already()) ?? (await settledNow);
    clearTimeout(timer);
    const others = (this.waiters.get(eventId) ?? []).filter((w) => w !== waiter);
    if (others.length) this.waiters.set(eventId, others);
    else this.waiters.delete(eventId);
    return settlement;
  }
}

export interface IngestionDependencies {
  metrics: Metrics;
  hasher: IdentityHasher;
  connections: SquareConnectionsService;
  settings: SquareSettings;
  /** The Square configuration in use (the simulator's in development). */
  squareConfig: Config;
  inbox: WebhookInbox;
  /** Acknowledging a webhook is one insert Square waits for: its own pool, never queued behind the worker. */
  ackPool: pg.Pool;
  runner: ProjectionRunner;
  failures: FailureLimiter;
  /**
   * Whether the webhook worker runs on a thread of its own (`WEBHOOK_WORKER_THREAD`; not with a test clock, which
   * cannot cross threads). Otherwise it shares the thread that answers requests, and defers to acknowledgements.
   */
  threaded: boolean;
  /** When body retention runs (soon after start, then hourly: `RETENTION_SCHEDULE`). */
  retention: Schedule;
}

/** What deciding payments needs: the in-memory state, Square's customers and orders cached, the ingestion service. */
export async function provideIngestionCore(infrastructure: Infrastructure, deps: { hasher: IdentityHasher; connections: SquareConnectionsService }) {
  const { config, log, pool, store, runtime } = infrastructure;
  const { connections } = deps;
  const ingestionState = new IngestionState(store);
  const apis = squareApis({ connection: (tenantId) => ingestionState.connection(tenantId), make: async (tenantId) => (await connections.apiFor(tenantId)).api });
  const contacts = customerCache(
    lookupsInBulk<CustomerContacts | null>(async (tenantId, customerIds) => {
      const contactsOf = new Map<string, CustomerContacts | null | Error>();
      for (const [id, customer] of await (await apis.apiFor(tenantId)).getCustomers(customerIds)) {
        contactsOf.set(id, customer instanceof Error || customer === null ? customer : { email: customer.emailAddress, phone: customer.phoneNumber });
      }
      return contactsOf;
    }, MAX_BULK_CUSTOMERS),
    { ttlMs: config.CUSTOMER_CACHE_TTL_SECONDS * 1000, maxEntries: config.CUSTOMER_CACHE_MAX_ENTRIES, now: () => Date.now() },
  );
  // Customer webhooks handled by any instance drop this instance's entries before its next batch decides on them.
  const changes = customerChanges(
    contacts,
    { record: (tenantId, customerId) => recordCustomerChange(pool, tenantId, customerId), changesOf: (customers) => customerChangesOf(pool, customers) },
    config.CUSTOMER_CACHE_MAX_ENTRIES,
  );
  const orders = orderLookup(
    { apiFor: (tenantId) => apis.apiFor(tenantId), scopes: (tenantId) => {
        const connection = ingestionState.connection(tenantId);
        return connection.status === 'not_connected' ? [] : connection.scopes;
      } },
    { ttlMs: config.ORDER_CACHE_TTL_SECONDS * 1000, maxEntries: config.ORDER_CACHE_MAX_ENTRIES, now: () => Date.now() },
  );
  const inlineWalletEffects = await store.supportsAtomicMultiStream();
  if (!inlineWalletEffects) log.warn('the event store cannot append to several streams atomically: wallet credits go through the wallet-credits reactor');
  const ingestion = ingestionService({
    store,
    runtime,
    hasher: deps.hasher,
    catchUp: () => ingestionState.catchUp(),
    tenantForMerchant: (merchantId) => ingestionState.tenantForMerchant(merchantId),
    ruleSet: (tenantId) => ingestionState.ruleSet(tenantId),
    workspace: (tenantId) => ingestionState.workspace(tenantId),
    promotions: (tenantId) => ingestionState.promotions(tenantId),
    customerContacts: (tenantId, customerId) => contacts.get(tenantId, customerId),
    dropChangedCustomers: (customers) => changes.dropChanged(customers),
    purchaseOrder: (tenantId, orderId, withCategories) => orders.get(tenantId, orderId, withCategories),
    consumersByIdentity: (hashSets) => consumersByIdentity(pool, hashSets),
    verifiedEmailsOf: (consumerIds) => verifiedEmailsOf(pool, consumerIds),
    walletIdFor,
    inlineWalletEffects,
    wallets: infrastructure.commands,
  });
  /**
   * Starts the customers' lookups into the cache, a few merchants a turn of the event loop (a merchant's customers in
   * one bulk call), so that a burst's hundreds of calls leave the thread to acknowledgements in between. Answers the
   * customers of merchants the view knows no active connection to.
   */
  const lookUpAhead = (customers: readonly CustomerOfMerchant[]): CustomerOfMerchant[] => {
    const unknown: CustomerOfMerchant[] = [];
    const byTenant = new Map<string, string[]>();
    for (const customer of customers) {
      const tenantId = ingestionState.tenantForMerchant(customer.merchantId);
      if (tenantId === undefined) {
        unknown.push(customer);
        continue;
      }
      const ids = byTenant.get(tenantId);
      if (ids) ids.push(customer.customerId);
      else byTenant.set(tenantId, [customer.customerId]);
    }
    const tenants = [...byTenant];
    const startSome = () => {
      for (const [tenantId, ids] of tenants.splice(0, LOOK_AHEAD_MERCHANTS_A_TURN)) for (const id of ids) contacts.get(tenantId, id).catch(() => undefined);
      if (tenants.length) setImmediate(startSome);
    };
    startSome();
    return unknown;
  };
  /** Customers of merchants the view did not know, waiting for the catch-up under way; undefined when none is. */
  let afterCatchUp: CustomerOfMerchant[] | undefined;
  let caughtUpAt = -Infinity;
  /** Brings the view up to date, then looks up the customers that waited for it. */
  const catchUpThenLookUp = async () => {
    try {
      await ingestionState.catchUp();
      lookUpAhead(afterCatchUp ?? []);
    } catch (error) {
      log.warn({ err: error }, 'the look-ahead could not bring the ingestion view up to date; the batches will');
    } finally {
      caughtUpAt = performance.now();
      afterCatchUp = undefined;
    }
  };
  /**
   * Looks up, into the cache, the Square customers of payments just stored: by the time their batch is decided the
   * answer is there (Square takes 100–300 ms). One lookup per customer at most, as for the batch's own; a failure
   * is left for the batch to meet and retry. The view is brought up to date by the batches; a merchant it does not
   * know (connected since the last batch, or since this process started: a burst's first second) makes it catch up
   * first, at most once a second, and a merchant still unknown then (not connected here) is skipped.
   */
  const lookAhead = (customers: readonly CustomerOfMerchant[]) => {
    const unknown = lookUpAhead(customers);
    if (unknown.length === 0) return;
    if (afterCatchUp) {
      if (afterCatchUp.length < MAX_WAITING_LOOK_AHEADS) afterCatchUp.push(...unknown);
      return;
    }
    if (performance.now() - caughtUpAt < LOOK_AHEAD_CATCH_UP_EVERY_MS) return;
    afterCatchUp = unknown;
    void catchUpThenLookUp();
  };
  return { ingestionState, contacts, changes, ingestion, inlineWalletEffects, lookAhead };
}

export type IngestionCore = Awaited<ReturnType<typeof provideIngestionCore>>;

/**
 * The batched webhook worker over the inbox, on the ingestion core of the thread it runs on: the service's own
 * thread, or the worker thread (wiring/webhook-thread.ts). Not started.
 */
export function provideWebhookProcessor(
  infrastructure: Infrastructure,
  core: IngestionCore,
  deps: {
    hasher: IdentityHasher;
    connections: SquareConnectionsService;
    reports: WebhookWorkerReports;
    acknowledgements?: AcknowledgementsPending;
    /** Webhooks as this thread's acknowledgements parsed them (the worker on the service's thread). */
    acknowledged?: AcknowledgedWebhooks;
  },
): WebhookProcessor {
  const { config, log, pool, store, rawStore, runtime } = infrastructure;
  const { ingestionState, ingestion } = core;
  const { connections, reports } = deps;
  const inbox = webhookInbox(pool);
  return new WebhookProcessor(
    inbox,
    webhookHandler({
      ingestion,
      ...(deps.acknowledged ? { parsedAtAcknowledgement: (eventId: string) => deps.acknowledged?.take(eventId) } : {}),
      catchUp: () => ingestionState.catchUp(),
      tenantForMerchant: (merchantId) => ingestionState.tenantForMerchant(merchantId),
      markRevoked: async (merchantId, revocation, metadata) => {
        const marked = await connections.markRevokedByWebhook(merchantId, revocation, metadata);
        return marked && { tenantId: marked.tenantId, outdated: marked.outdated };
      },
      forgetCustomer: async (tenantId, customerId) => {
        await core.changes.changed(tenantId, customerId);
        reports.customerChanged(tenantId, customerId);
      },
      attachIdentity: (tenantId, change, source, metadata) =>
        attachCustomerIdentity(
          {
            hasher: deps.hasher,
            store,
            commands: infrastructure.commands,
            newId: runtime.newId,
            now: runtime.now,
            workspace: (id) => ingestionState.workspace(id),
            heldPurchasesOf: (id, customerId) => heldPurchasesOf(pool, id, customerId, runtime.now(), CLAIM_WINDOW_DAYS),
            recordContacts: (id, customerIds, hashes) => recordCustomerContacts(pool, id, customerIds, hashes),
          },
          tenantId,
          change,
          source,
          metadata,
        ),
    }),
    log.child({ component: 'webhooks' }),
    inboxCommit(rawStore, store, inbox, reports),
    {
      outcomeLog: withoutRedaction(log).child({ component: 'webhooks' }),
      batchSize: config.WEBHOOK_BATCH_SIZE,
      batchesInFlight: config.WEBHOOK_BATCHES_IN_FLIGHT,
      onOutcome: (outcome) => reports.outcome(outcome),
      onSettled: (eventId, settlement) => reports.settled(eventId, settlement),
      // Acknowledgements first: while they queue, the next batch is leased once they stop (or after the bound); a
      // worker on a thread of its own follows the service's acknowledgements by message.
      ...(deps.acknowledgements ? { acknowledgements: deps.acknowledgements, ackPriorityMs: config.WEBHOOK_ACK_PRIORITY_MS } : { ackPriorityMs: 0 }),
      // Longer than the slowest webhook: its Square customer lookup may take the whole SQUARE_TIMEOUT_SECONDS.
      leaseMs: Math.max(30_000, config.SQUARE_TIMEOUT_SECONDS * 2000),
      // A dead worker's leases are taken back at once rather than waited out (migration 0300).
      leaseHolder: new LeaseHolder(infrastructure.databaseUrl, log.child({ component: 'webhooks' })),
      onLeasesTakenBack: (count) => reports.leasesTakenBack(count),
    },
  );
}

// Over 80 lines because it wires the whole context in one place: the core, the worker (inline or on its thread),
// the simulator's wait, body retention, the poll and the routes.
export async function provideIngestion(infrastructure: Infrastructure, deps: IngestionDependencies, cleanups: Cleanups) {
  const { config, log, pool, runtime, store } = infrastructure;
  const { metrics, connections } = deps;
  const inbox = deps.inbox;
  // The service's own core: the poll decides on it, and so does the webhook worker when it shares this thread.
  const core = await provideIngestionCore(infrastructure, deps);
  const { ingestion, inlineWalletEffects } = core;
  const waiters = new SettlementWaiters();
  const acknowledgements = new Acknowledgements({ queueing: config.WEBHOOK_ACK_PRIORITY_PENDING });
  const countBurstEnds = acknowledgements.onChange((queueing) => (queueing ? undefined : metrics.acknowledgementBurstEnded()));
  cleanups.add(async () => countBurstEnds());
  metrics.observeInbox(() => inbox.reading());
  const reports: WebhookWorkerReports = {
    outcome: (outcome) => metrics.webhookOutcome(outcome),
    appended: (stream, events) => metrics.appended(stream, events),
    settled: (eventId, settlement) => waiters.settled(eventId, settlement),
    // The worker thread's cache dropped it; so does this thread's (the poll's). Inline, they are one cache.
    customerChanged: (tenantId, customerId) => (deps.threaded ? core.contacts.forget(tenantId, customerId) : undefined),
    conflict: (stream) => metrics.concurrencyConflict(stream),
    leasesTakenBack: (count) => metrics.leasesTakenBack(count),
  };
  let worker: { wake(): void; lookAhead(customers: readonly CustomerOfMerchant[]): void; stored(event: SquareWebhookEvent): void };
  if (deps.threaded) {
    const thread = await startWebhookThread({ config: deps.squareConfig, env: infrastructure.env, databaseUrl: infrastructure.databaseUrl, log, reports });
    cleanups.add(() => thread.stop());
    const unfollow = acknowledgements.onChange((queueing) => thread.acknowledgements(queueing));
    cleanups.add(async () => unfollow());
    worker = { wake: () => thread.wake(), lookAhead: (customers) => thread.lookAhead(customers), stored: () => undefined };
  } else {
    // The worker shares this thread: it takes the webhooks as their acknowledgement parsed them.
    const acknowledged = new AcknowledgedWebhooks();
    const processor = provideWebhookProcessor(infrastructure, core, { hasher: deps.hasher, connections, reports, acknowledgements, acknowledged });
    processor.start();
    cleanups.add(() => processor.stop());
    worker = { wake: () => processor.wake(), lookAhead: core.lookAhead, stored: (event) => acknowledged.keep(event) };
  }
  // The customers of the webhooks stored in one turn of the event loop, looked up after that turn's answers are
  // written; in a burst, those stored while acknowledgements queue, once they stop (or the hold's bound is up).
  const lookAheadHoldMs = config.WEBHOOK_LOOK_AHEAD_HOLD_MS ?? config.WEBHOOK_ACK_PRIORITY_MS;
  const lookAhead = handedOverTogether<CustomerOfMerchant>(acknowledgements, lookAheadHoldMs, (customers) => worker.lookAhead(customers));

  /**
   * The simulator's `trigger` answers once Tally has processed its webhook (the batched worker's onSettled) and the
   * read models caught up. The inbox row answers when the webhook was settled before the wait began.
   */
  const awaitProcessed = async (eventId: string): Promise<string> => {
    const deadline = Date.now() + 15_000;
    const settlement = await waiters.wait(eventId, 15_000, async () => {
      const stored = await findWebhook(pool, eventId);
      return stored?.processed && stored.outcome !== 'failed' ? { outcome: stored.outcome ?? 'processed' } : stored?.error ? { error: stored.error } : undefined;
    });
    if (!settlement) return 'not processed within 15 s';
    if ('error' in settlement) return `failed: ${settlement.error}`;
    // Twice: reactors append in turn (a refund's reversal on the wallet) once they have passed the first head.
    for (let round = 0; round < 2; round++) {
      const head = await store.headPosition();
      if (!head || !(await deps.runner.waitForPosition(head, Math.max(0, deadline - Date.now())))) break;
    }
    return settlement.outcome;
  };

  /** Shutdown (`stopping`) ends a run after the slice under way; the next run goes on from there. */
  const pruneWebhookBodies = async (stopping?: AbortSignal) => {
    const redacted = await inbox.redactProcessedBefore(new Date(runtime.now().getTime() - config.WEBHOOK_BODY_RETENTION_DAYS * 86_400_000), undefined, stopping);
    if (redacted) log.info({ redacted, retentionDays: config.WEBHOOK_BODY_RETENTION_DAYS }, 'raw webhook bodies past their retention emptied');
    if (config.WEBHOOK_ROW_RETENTION_DAYS > 0 && !stopping?.aborted) {
      const deleted = await inbox.deleteProcessedReceivedBefore(new Date(runtime.now().getTime() - config.WEBHOOK_ROW_RETENTION_DAYS * 86_400_000), undefined, stopping);
      if (deleted) log.info({ deleted, retentionDays: config.WEBHOOK_ROW_RETENTION_DAYS }, 'processed webhook rows past their retention deleted');
    }
    return redacted;
  };
  // Soon after start, then hourly, in every instance: the UPDATEs are idempotent, so instances running them together do no harm.
  runPeriodically(pruneWebhookBodies, deps.retention, cleanups, (error) => log.warn({ err: error }, 'webhook body retention failed; retried next hour'));

  const poll = withPollMetrics(
    pollService({
      ingestion,
      activeConnections: () => connections.activeConnections(),
      apiFor: (tenantId) => connections.apiFor(tenantId),
      recordPoll: async (tenantId, result, metadata) => {
        await connections.recordPoll(tenantId, result, metadata);
      },
      recordQuietPoll: (tenantId, quiet) => connections.recordQuietPoll(tenantId, quiet),
      recordFailed: (error, { tenantId, merchantId }) => log.warn({ err: error, tenantId, merchantId }, 'poll: a connection’s run could not be recorded; the other connections go on'),
      now: runtime.now,
      sleep: (ms) => new Promise((resolve) => setTimeout(resolve, ms)),
    }),
    metrics,
  );
  // Webhooks arriving while every acknowledgement connection is busy are stored together (group commit).
  const recorder = groupedRecorder(webhookInbox(deps.ackPool), { maxBatch: config.WEBHOOK_ACK_BATCH_SIZE, maxInFlight: config.WEBHOOK_POOL_SIZE });
  /** Not ready while webhooks wait over 2 s to be stored: a load balancer sends them to another instance. */
  const acknowledgementsReadiness = {
    name: 'webhookAcknowledgements',
    check: async () => {
      const waiting = recorder.waiting();
      return { ok: waiting.oldestMs < 2_000, detail: waiting.count ? { waiting: waiting.count, oldestWaitingMs: waiting.oldestMs } : undefined };
    },
  };
  const routes = [
    ...webhookRoutes({
      inbox: recorder,
      signatureKey: deps.squareConfig.SQUARE_WEBHOOK_SIGNATURE_KEY,
      notificationUrl: deps.settings.webhookNotificationUrl,
      onStored: (event) => {
        worker.stored(event);
        worker.wake();
        const customer = customerToLookUp(event);
        if (customer) lookAhead(customer);
      },
      failures: deps.failures,
      onSignatureFailure: () => metrics.webhookSignatureFailure(),
      onRefused: (reason) => metrics.webhookRefused(reason),
      onReceived: () => acknowledgements.received(),
      onAnswered: () => acknowledgements.answered(),
    }),
    // One run at a time across instances: a tick while a run goes on (its request cut by a proxy) polls nothing.
    ...ingestionRoutes({ pool, inbox, wakeProcessor: () => worker.wake(), poll: { runExclusively: () => exclusivePollRun(pool, () => poll.pollAll(), (error) => log.warn({ err: error }, 'poll run: the connection holding its lock was lost; another run may start beside this one')) } }),
  ];
  return { awaitProcessed, pruneWebhookBodies, inlineWalletEffects, routes, readiness: [acknowledgementsReadiness] };
}
