/** A user's state as a snapshot (plain JSON already); parsed back with its schema. */
import { z } from 'zod';
import type { JsonValue } from '../ports/event-store.ts';
import type { StateSnapshots } from '../shared/decider.ts';
import type { UserState } from './events.ts';

const userStateSchema = z.discriminatedUnion('status', [
  z.object({ status: z.literal('unregistered') }),
  z.object({
    status: z.enum(['pending', 'approved', 'suspended']),
    userId: z.string(),
    role: z.enum(['admin', 'client', 'consumer']),
    tenantId: z.string().nullable(),
    businessName: z.string().nullable(),
    emailHash: z.string(),
    phoneHash: z.string().nullable(),
    registeredAt: z.string(),
    statusBeforeSuspension: z.enum(['pending', 'approved']).nullable(),
    erased: z.boolean(),
  }),
]);

/** Bump `version` when `UserState` changes (a field added by evolveUser changes its fingerprint, so that is covered too). */
export const userSnapshots: StateSnapshots<UserState> = {
  version: 1,
  toJson: (state) => ({ ...state }) satisfies Record<string, JsonValue>,
  fromJson: (json): UserState => userStateSchema.parse(json),
};
