/**
 * Webhooks as the acknowledgement parsed them, held for the worker of the same thread: the body it leases from
 * the inbox is the very text that was parsed (a row is stored once per event id, and only a stored webhook is
 * held), so parsing it again (JSON and the zod schemas) would give the same event. Bounded: past `capacity` the
 * oldest go, and a webhook not held (another instance stored it, a retry, a restart) is parsed from its body.
 */
import type { SquareWebhookEvent } from '../../domain/square/webhook.ts';

export class AcknowledgedWebhooks {
  private readonly held = new Map<string, SquareWebhookEvent>();

  constructor(private readonly capacity = 10_000) {}

  /** A webhook was stored (not a repeated delivery): keep what the acknowledgement parsed. */
  keep(event: SquareWebhookEvent): void {
    if (this.held.size >= this.capacity) {
      const oldest = this.held.keys().next();
      if (!oldest.done) this.held.delete(oldest.value);
    }
    this.held.set(event.eventId, event);
  }

  /** The parsed webhook, once: an attempt that fails parses the body again on its retry. */
  take(eventId: string): SquareWebhookEvent | undefined {
    const event = this.held.get(eventId);
    if (event) this.held.delete(eventId);
    return event;
  }

  get size(): number {
    return this.held.size;
  }
}
