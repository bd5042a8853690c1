/** The codec of a tenant's reward rules stream (`reward-rules-<tenantId>`), built from its event types (event-types.ts). */
import { familyCodec, type EventsOf } from '../shared/codec.ts';
import * as ruleSetEventTypes from './event-types.ts';

export * from './event-types.ts';

export const ruleSetEvents = familyCodec({ stream: 'reward-rules-<tenantId>', writtenBy: 'ruleSetDecider' }, ruleSetEventTypes);

export type RuleSetEvent = EventsOf<typeof ruleSetEvents>;
