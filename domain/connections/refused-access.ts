import { SquareApiError, type SquareApi } from '../ports/square.ts';

/**
 * Wraps a merchant's API client so that a call Square refuses because the merchant's grant is gone
 * (`SquareApiError.needsReconnect`: revoked, unauthorized, scopes narrowed) is reported through `onRefused`
 * before the error reaches the caller. The caller still sees the original error; the report is what turns the
 * connection to `needs_reconnect`, so the poll stops using a dead token and the merchant is told to reconnect.
 */
export function reportingRefusedAccess(api: SquareApi, onRefused: (error: SquareApiError) => Promise<void>): SquareApi {
  const check = async (error: unknown): Promise<never> => {
    // A failure to record is not the caller's error: the next refused call records it again.
    if (error instanceof SquareApiError && error.needsReconnect) await onRefused(error).catch(() => undefined);
    throw error;
  };
  async function* iterate<T>(items: AsyncIterable<T>): AsyncIterable<T> {
    try {
      yield* items;
    } catch (error) {
      await check(error);
    }
  }
  return {
    getMerchant: () => api.getMerchant().catch(check),
    listLocations: () => api.listLocations().catch(check),
    getCustomer: (customerId) => api.getCustomer(customerId).catch(check),
    getCustomers: (customerIds) => api.getCustomers(customerIds).catch(check),
    listPayments: (query) => iterate(api.listPayments(query)),
    listRefunds: (query) => iterate(api.listRefunds(query)),
    grantedScopes: () => api.grantedScopes().catch(check),
    getPayment: (paymentId) => api.getPayment(paymentId).catch(check),
    getOrder: (orderId) => api.getOrder(orderId).catch(check),
    getCatalogObjects: (ids, options) => api.getCatalogObjects(ids, options).catch(check),
  };
}
