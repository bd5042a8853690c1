/** The codec of a payment's stream (`payment-<paymentId>`), built from its event types (event-types.ts). */
import { familyCodec, type EventsOf } from '../shared/codec.ts';
import * as paymentEventTypes from './event-types.ts';

export * from './event-types.ts';

export const paymentEvents = familyCodec({ stream: 'payment-<paymentId>', writtenBy: 'paymentDecider' }, paymentEventTypes);

export type PaymentEvent = EventsOf<typeof paymentEvents>;
