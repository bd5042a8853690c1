/**
 * Every stream family's events, as declared by its bounded context. A stored event of any type is decoded by
 * the codec of its family; the README's event catalogue is generated from this list (npm run catalogue).
 */
import { connectionEvents } from './connections/events.ts';
import { merchantReservationEvents } from './connections/merchant-reservation.ts';
import { pollEvents } from './connections/poll-log.ts';
import { paymentEvents } from './payments/events.ts';
import { orderVisitEvents } from './payments/order-visit.ts';
import { ruleSetEvents } from './rewards/events.ts';
import { promotionEvents, promotionUseEvents } from './promotions/events.ts';
import { rewardCatalogEvents } from './rewards/catalog-events.ts';
import { programEvents } from './program/events.ts';
import { adminBindingEvents } from './users/admin-binding.ts';
import { userEvents } from './users/events.ts';
import { walletEvents } from './wallets/events.ts';
import { workspaceEvents } from './workspaces/events.ts';

export const eventFamilies = [
  userEvents,
  adminBindingEvents,
  workspaceEvents,
  ruleSetEvents,
  promotionEvents,
  rewardCatalogEvents,
  programEvents,
  connectionEvents,
  pollEvents,
  merchantReservationEvents,
  paymentEvents,
  orderVisitEvents,
  promotionUseEvents,
  walletEvents,
] as const;
