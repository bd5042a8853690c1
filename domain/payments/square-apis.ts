/**
 * Square API clients for ingestion, one per tenant, kept while the tenant's connection stays as it was. Making
 * one reads the connection stream and the token vault (two round trips); a batch of webhooks asks for the
 * tenant's client once per customer it does not know yet, so the client is kept and made again only when the
 * connection changes (a refresh, a revocation, a reconnect: a new state in the ingestion state). A failure is
 * not kept.
 */
import type { SquareApi } from '../ports/square.ts';

export function squareApis<ConnectionState>(deps: {
  /** The tenant's connection as the ingestion state holds it now: a new value whenever it changed. */
  connection(tenantId: string): ConnectionState;
  make(tenantId: string): Promise<SquareApi>;
}) {
  const clients = new Map<string, { state: ConnectionState; api: Promise<SquareApi> }>();
  return {
    apiFor(tenantId: string): Promise<SquareApi> {
      const state = deps.connection(tenantId);
      const kept = clients.get(tenantId);
      if (kept && kept.state === state) return kept.api;
      const api = deps.make(tenantId);
      clients.set(tenantId, { state, api });
      api.catch(() => {
        if (clients.get(tenantId)?.api === api) clients.delete(tenantId);
      });
      return api;
    },
  };
}
