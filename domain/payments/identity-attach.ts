/**
 * A barista adds a customer's email or phone in Square after the sale: Square sends `customer.created` or
 * `customer.updated`, and that identity is attached to the customer's purchases whose points are still held for
 * nobody within the claim window (issue 15). A registered consumer with that verified identity is then credited
 * by the claims reactor; a later registration claims them. Each purchase decides for itself (`AttachIdentity`),
 * so a repeated webhook attaches nothing twice.
 */
import type { EventMetadata } from '../ports/event-store.ts';
import type { IdentityHasher } from '../ports/identity.ts';
import { handleCommand } from '../shared/command-handler.ts';
import type { CommandPath } from '../shared/command-path.ts';
import type { SquareCustomerChange } from '../square/webhook.ts';
import { identityHashes, type Workspace } from './ingestion.ts';
import { paymentDecider, paymentStream } from './payment.ts';

export interface IdentityAttachDependencies {
  hasher: IdentityHasher;
  store: Parameters<typeof handleCommand>[0];
  commands: CommandPath;
  newId(): string;
  now(): Date;
  workspace(tenantId: string): Workspace;
  /** The tenant's purchases of this Square customer whose points are held for nobody (a read model: candidates only). */
  heldPurchasesOf(tenantId: string, customerId: string): Promise<string[]>;
  /**
   * Keeps the customers' new identities (hashes) for the purchases the read model does not list yet (committed just
   * now, or being decided by another batch with the contacts from before the change): the claims reactor attaches
   * them when it meets such a purchase.
   */
  recordContacts(tenantId: string, customerIds: readonly string[], identityHashes: readonly string[]): Promise<void>;
}

/**
 * Attaches the customer's contacts to its held purchases, and to those of the customers merged into it (a merge in
 * the Square Dashboard deletes them: their purchases would otherwise wait for nobody); answers how many purchases
 * took a new identity.
 */
export async function attachCustomerIdentity(deps: IdentityAttachDependencies, tenantId: string, change: SquareCustomerChange, source: string, metadata: EventMetadata): Promise<number> {
  const hashes = identityHashes(deps.hasher, [change.email], change.phone, deps.workspace(tenantId).country);
  // Before reading the held purchases: a purchase the read model has not listed by then meets this record later.
  await deps.recordContacts(tenantId, [change.customerId, ...change.mergedFrom], hashes);
  if (!hashes.length) return 0;
  let attached = 0;
  for (const customerId of [change.customerId, ...change.mergedFrom]) {
    for (const paymentId of await deps.heldPurchasesOf(tenantId, customerId)) {
      const result = await handleCommand(
        deps.store,
        paymentStream(paymentId),
        paymentDecider,
        // The purchase's own customer: a merged-away one for purchases made under it.
        { type: 'AttachIdentity', customerId, identityHashes: hashes, now: deps.now().toISOString(), source },
        { newId: deps.newId, metadata, path: deps.commands },
      );
      if (result.events.length) attached++;
    }
  }
  return attached;
}
