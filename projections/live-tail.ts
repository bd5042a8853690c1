/**
 * The live tail of the global feed, for `GET /api/v1/admin/events/stream`: one subscription to the store, shared by
 * every connected client (fan-out in process), started at the head when the first client joins. A client that
 * resumes catches up from the store itself (`readAll`) up to the position it joined at, so neither path repeats
 * or skips an event. Slow clients are the route's concern: the tail never waits for a listener.
 */
import type { Logger } from 'pino';
import type { EventStore, Position, RecordedEvent, Subscription } from '../domain/ports/event-store.ts';

export type TailListener = (event: RecordedEvent) => void;

export interface TailMembership {
  /** The last position delivered to listeners when this one joined: everything after it reaches the listener. */
  joinedAt: Position | undefined;
  leave(): void;
}

export class LiveTail {
  private readonly listeners = new Map<TailListener, (reason: string) => void>();
  private subscription: Subscription | undefined;
  private started: Promise<void> | undefined;
  private position: Position | undefined;

  constructor(
    private readonly store: EventStore,
    private readonly log: Logger,
  ) {}

  /** Adds a listener; `onEnd` is called if the tail itself stops (the store failed, or shutdown). */
  async join(listener: TailListener, onEnd: (reason: string) => void): Promise<TailMembership> {
    await (this.started ??= this.start());
    this.listeners.set(listener, onEnd);
    return { joinedAt: this.position, leave: () => this.listeners.delete(listener) };
  }

  get clients(): number {
    return this.listeners.size;
  }

  private async start(): Promise<void> {
    this.position = await this.store.headPosition();
    const subscription = this.store.subscribeToAll(this.position ? { from: this.position } : {});
    this.subscription = subscription;
    void (async () => {
      try {
        for await (const item of subscription) {
          if (item.kind !== 'event') continue;
          this.position = item.event.position;
          for (const listener of this.listeners.keys()) listener(item.event);
        }
        this.end('the event tail stopped');
      } catch (error) {
        this.log.warn({ err: error }, 'event tail: the store subscription failed; clients are disconnected and may resume');
        this.end('the event store subscription failed');
      }
    })();
  }

  /** Disconnects everyone; the next join starts a new subscription at the head. */
  private end(reason: string): void {
    const ends = [...this.listeners.values()];
    this.listeners.clear();
    this.started = undefined;
    this.subscription = undefined;
    for (const onEnd of ends) onEnd(reason);
  }

  async stop(): Promise<void> {
    const subscription = this.subscription;
    this.end('shutting down');
    await subscription?.stop();
  }
}
