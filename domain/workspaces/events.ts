/** The event types of a merchant's workspace (stream `workspace-<tenantId>`), declared once. */
import { z } from 'zod';
import { EventType, eventCodec, type EventsOf } from '../shared/codec.ts';

export const workspaceProvisioned = EventType.define(
  'WorkspaceProvisioned',
  z.object({ tenantId: z.string(), ownerUserId: z.string(), businessName: z.string(), provisionedBy: z.string(), provisionedAt: z.string() }),
);

export const workspaceEvents = eventCodec({ stream: 'workspace-<tenantId>', writtenBy: 'workspaceDecider' }, workspaceProvisioned);

export type WorkspaceEvent = EventsOf<typeof workspaceEvents>;
