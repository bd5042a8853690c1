/**
 * An ADMIN_EMAILS address belongs to the first user (token `sub`) that registers with it verified, for good:
 * a later `sub` presenting the same email (a new account at the identity provider, a re-created user) is not
 * made an admin by it. One stream per email hash (`admin-email-<emailHash>`), so two first registrations
 * racing each other cannot both win.
 */
import { unreachable } from '../shared/exhaustive.ts';
import { z } from 'zod';
import type { Decider } from '../shared/decider.ts';
import { EventType, eventCodec, type EventsOf } from '../shared/codec.ts';

export const adminEmailBound = EventType.define('AdminEmailBound', z.object({ emailHash: z.string(), userId: z.string(), boundAt: z.string() }));

export const adminBindingEvents = eventCodec({ stream: 'admin-email-<emailHash>', writtenBy: 'adminBindingDecider' }, adminEmailBound);

export type AdminBindingEvent = EventsOf<typeof adminBindingEvents>;

export type AdminBindingState = { status: 'unbound' } | { status: 'bound'; userId: string };

export type AdminBindingCommand = { type: 'BindAdminEmail'; emailHash: string; userId: string; now: string };

export const adminBindingStream = (emailHash: string) => `admin-email-${emailHash}`;

function evolve(state: AdminBindingState, event: AdminBindingEvent): AdminBindingState {
  switch (event.type) {
    case 'AdminEmailBound':
      return state.status === 'bound' ? state : { status: 'bound', userId: event.data.userId };
    default:
      return unreachable(event.type);
  }
}

function decide(command: AdminBindingCommand, state: AdminBindingState): AdminBindingEvent[] {
  // Bound already (to this user or another): nothing changes; the caller reads who holds it from the state.
  if (state.status === 'bound') return [];
  return [{ type: 'AdminEmailBound', data: { emailHash: command.emailHash, userId: command.userId, boundAt: command.now } }];
}

export const adminBindingDecider: Decider<AdminBindingCommand, AdminBindingEvent, AdminBindingState> = {
  codec: adminBindingEvents,
  decide,
  evolve,
  initialState: { status: 'unbound' },
};
