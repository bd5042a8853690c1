/**
 * This worker's name on the webhook inbox's leases, and the proof that it is alive: a session-level advisory lock
 * (`pg_advisory_lock(LEASE_LOCK_CLASS, key)`) held on a connection of its own for as long as the worker runs.
 * PostgreSQL releases the lock when that connection closes, which it does when the process dies however it dies,
 * so another worker (or this service started again) can tell the leases of a dead worker from those of a live one
 * and take them back at once (`releaseDeadLeases` in webhook-inbox.ts, migration 0300) instead of waiting them out.
 *
 * When the connection is lost while the process lives (PostgreSQL restarted), the key is dropped, so the leases
 * taken under it count as dead, and a new lock under a new key is taken once PostgreSQL answers again. Until then
 * `key` is null and leases carry no holder: they run out as before, never taken back early. A restart fails the
 * batches under way with their connections; but when only this connection is lost (an operator's
 * `pg_terminate_backend` on `tally-lease-holder`, a NAT dropping it), a batch under way goes on while another
 * worker takes its rows back and decides them again. That costs work, not points: the late batch's settlement
 * matches no row (`attempts` moved on) and its appends conflict on the streams' revisions, so it is decided again
 * (README "Leases of a dead worker").
 *
 * The connection is never idle for long: a `SELECT 1` every `pingMs` (60 s) keeps a server's `idle_session_timeout`
 * from ending it (and the lock with it), and TCP keepalives find a connection the network silently dropped.
 */
import { randomInt } from 'node:crypto';
import pg from 'pg';
import type { Logger } from 'pino';

/**
 * The advisory locks' first key for lease holders (the second is the holder's key). Not 31249 (the feed's appending
 * transactions, migration 0050: a holder there would block appends and hold the feed back) nor 31250 (the streams'
 * append locks, migration 0150).
 */
export const LEASE_LOCK_CLASS = 31251;
/** A positive int4: `pg_locks.objid` is an oid, so the key reads back as itself. */
const newKey = () => randomInt(1, 2 ** 31 - 1);

export class LeaseHolder {
  private client: pg.Client | undefined;
  private held: number | null = null;
  private stopped = false;
  private retry: NodeJS.Timeout | undefined;
  private ping: NodeJS.Timeout | undefined;
  private connecting: Promise<void> | undefined;
  /** Failed attempts since the lock was last held: the first is logged as a warning, the rest at debug. */
  private failures = 0;

  constructor(
    private readonly connectionString: string,
    private readonly log: Logger,
    private readonly retryMs = 1000,
    private readonly pingMs = 60_000,
  ) {}

  /** The key this worker's leases carry; null while it holds no lock. */
  get key(): number | null {
    return this.held;
  }

  /** Takes the lock; never throws: a failure is logged and retried every `retryMs`. */
  start(): Promise<void> {
    this.stopped = false;
    return (this.connecting ??= this.connect().finally(() => (this.connecting = undefined)));
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.retry);
    clearInterval(this.ping);
    await this.connecting;
    const client = this.client;
    this.client = undefined;
    this.held = null;
    await client?.end().catch(() => undefined);
  }

  private async connect(): Promise<void> {
    const client = new pg.Client({
      connectionString: this.connectionString,
      application_name: 'tally-lease-holder',
      connectionTimeoutMillis: 5000,
      keepAlive: true,
      keepAliveInitialDelayMillis: 10_000,
    });
    client.on('error', (error) => this.lost(client, error));
    client.on('end', () => this.lost(client));
    try {
      await client.connect();
      let key = newKey();
      // Another live worker drew the same key (one chance in two billion): draw again rather than share it.
      while (!(await client.query<{ locked: boolean }>('SELECT pg_try_advisory_lock($1, $2) AS locked', [LEASE_LOCK_CLASS, key])).rows[0]?.locked) key = newKey();
      if (this.stopped) {
        await client.end();
        return;
      }
      this.client = client;
      this.held = key;
      clearInterval(this.ping);
      // A failed ping ends the connection: 'error', then `lost`.
      this.ping = setInterval(() => void client.query('SELECT 1').catch(() => undefined), this.pingMs);
      this.ping.unref();
      if (this.failures) this.log.info('the webhook lease lock is held again');
      this.failures = 0;
    } catch (error) {
      const level = this.failures++ === 0 ? 'warn' : 'debug';
      this.log[level]({ err: error }, 'could not take the webhook lease lock; leases carry no holder until it is taken (retried every second)');
      await client.end().catch(() => undefined);
      this.scheduleRetry();
    }
  }

  private lost(client: pg.Client, error?: Error): void {
    if (client !== this.client) return;
    this.client = undefined;
    this.held = null;
    clearInterval(this.ping);
    if (this.stopped) return;
    this.log.warn({ err: error }, 'the webhook lease lock was lost with its connection: its leases will be taken back; taking a new one');
    this.scheduleRetry();
  }

  private scheduleRetry(): void {
    if (this.stopped) return;
    clearTimeout(this.retry);
    this.retry = setTimeout(() => void this.start(), this.retryMs);
    this.retry.unref();
  }
}
