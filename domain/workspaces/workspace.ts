import type { Decider } from '../shared/decider.ts';
import { workspaceEvents, type WorkspaceEvent } from './events.ts';

export type { WorkspaceEvent } from './events.ts';

/** A merchant's workspace: the tenant that owns connections, rules and wallets. Stream `workspace-<tenantId>`. */
export type WorkspaceState =
  | { status: 'none' }
  | { status: 'provisioned'; tenantId: string; ownerUserId: string; businessName: string; provisionedAt: string };

export type WorkspaceCommand = {
  type: 'ProvisionWorkspace';
  tenantId: string;
  ownerUserId: string;
  businessName: string;
  by: string;
  now: string;
};

export const workspaceStream = (tenantId: string) => `workspace-${tenantId}`;

export const workspaceDecider: Decider<WorkspaceCommand, WorkspaceEvent, WorkspaceState> = {
  codec: workspaceEvents,
  initialState: { status: 'none' },
  // Provisioning is idempotent: approving a merchant twice never makes a second workspace.
  decide: (command, state) =>
    state.status === 'provisioned'
      ? []
      : [
          {
            type: 'WorkspaceProvisioned',
            data: {
              tenantId: command.tenantId,
              ownerUserId: command.ownerUserId,
              businessName: command.businessName,
              provisionedBy: command.by,
              provisionedAt: command.now,
            },
          },
        ],
  evolve: (_state, event) => ({
    status: 'provisioned',
    tenantId: event.data.tenantId,
    ownerUserId: event.data.ownerUserId,
    businessName: event.data.businessName,
    provisionedAt: event.data.provisionedAt,
  }),
};
