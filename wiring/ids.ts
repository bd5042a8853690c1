/** Ids derived from other ids (uuid v5), so that doing a thing twice gives the same id. */
import { v5 as uuidv5 } from 'uuid';

/** Namespace for tenant ids derived from the owning user's id: provisioning twice gives one tenant. */
const TENANT_NAMESPACE = '6f1c1f3e-3f0b-4a8e-9a4c-7d2b9e0c5a11';
/** Namespace for wallet ids: one wallet per consumer per tenant, the same id however the credit arrives. */
const WALLET_NAMESPACE = 'b3a4c2d1-8e7f-4a6b-9c5d-2e1f0a9b8c7d';

export const tenantIdFor = (userId: string) => uuidv5(userId, TENANT_NAMESPACE);
export const walletIdFor = (tenantId: string, consumerId: string) => uuidv5(`${tenantId}:${consumerId}`, WALLET_NAMESPACE);
