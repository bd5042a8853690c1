import { familyCodec, type EventsOf } from '../shared/codec.ts';
import * as walletEventTypes from './event-types.ts';

export * from './event-types.ts';

export const walletEvents = familyCodec({ stream: 'wallet-<walletId>', writtenBy: 'walletDecider' }, walletEventTypes);

export type WalletEvent = EventsOf<typeof walletEvents>;

/**
 * The types that are ledger lines (they change the balance or the locked points; reconciliation replays them);
 * `PointsCreditRefused` changes nothing.
 */
export const walletBalanceEvents = walletEvents.without('PointsCreditRefused');

export type WalletBalanceEvent = EventsOf<typeof walletBalanceEvents>;
