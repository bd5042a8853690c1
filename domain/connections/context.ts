/**
 * What the connection use cases share: their dependencies, the clock, and the two streams they work on.
 * Internal to `domain/connections/`; `service.ts` is the public face.
 */
import { handleCommand, loadState, type CommandContext } from '../shared/command-handler.ts';
import type { CommandPath } from '../shared/command-path.ts';
import type { EventMetadata, EventStore } from '../ports/event-store.ts';
import type { Runtime } from '../ports/identity.ts';
import type { OAuthStates } from '../ports/oauth-state.ts';
import type { SquareGateway } from '../ports/square.ts';
import type { TokenVault } from '../ports/token-vault.ts';
import { squareConnectionDecider, type SquareConnectionCommand } from './decider.ts';
import { ConfigurationMissing } from './errors.ts';
import { connectionStream, type ConnectionStatus } from './events.ts';
import { pollEvents, pollStream, type PollRecord, type QuietPolls } from './poll-log.ts';
import { merchantReservationDecider, merchantReservationStream, type MerchantReservationCommand } from './merchant-reservation.ts';

/** The Square app's credentials are configured (a gateway exists), or which settings are missing. */
export type SquareAccess = { configured: true; gateway: SquareGateway } | { configured: false; missing: readonly string[] };

export interface SquareConnectionsDependencies {
  store: EventStore;
  vault: TokenVault;
  oauthStates: OAuthStates;
  square: SquareAccess;
  runtime: Runtime;
  /** This process's command path (queue, recent states, snapshots, retries). */
  commands: CommandPath;
  /** `<API_BASE_URL>/api/v1/oauth/square/callback`, sent on authorize and repeated on the code exchange. */
  redirectUri: string;
  /** `<API_BASE_URL>/api/v1/oauth/square/start`: where the browser begins the flow (binds it to itself). */
  startUrl: string;
  /**
   * Tenants the read model lists with one of these statuses. Only candidates: each is confirmed on its own
   * stream before anything is done, so a lagging read model can delay a connection, never misuse one.
   */
  tenantsWithStatus(statuses: readonly ConnectionStatus[]): Promise<string[]>;
  /** The last poll of each tenant that found nothing new: such polls append nothing to the event store. */
  quietPolls: QuietPolls;
  /** How many of the tenant's reward rule versions are not retired: while any is, the workspace currency stays. */
  unretiredRules(tenantId: string): Promise<number>;
  /**
   * Whether the account that began a connect flow (`user:<id>` or `admin:<id>`) may still connect this workspace:
   * approved, and its owner (or an administrator). Asked again at each step: a flow outlives its first request by
   * up to 15 minutes (the ticket's 5, the state's 10), and a merchant suspended meanwhile must not finish it.
   */
  mayConnect(actor: string, tenantId: string): Promise<boolean>;
  /**
   * A connection stopped working until someone acts (the merchant connects again, an operator restores the key):
   * told once, when the event that turned it is recorded (a refresh Square refused for good, a call of a poll or a
   * look-up refused for the grant, a token that no longer decrypts), not on each use of the stopped connection.
   */
  onConnectionStopped?(stopped: ConnectionStopped): void;
}

/** What `onConnectionStopped` hears. */
export interface ConnectionStopped {
  tenantId: string;
  merchantId: string;
  status: 'needs_reconnect' | 'token_undecryptable';
  /** Why, as recorded: Square's code and detail, or ours. */
  code: string | undefined;
  detail: string | undefined;
  /** The command that recorded it (`RecordRefreshFailure`, `RecordAccessRefused`, `RecordDecryptionFailure`). */
  recordedBy: SquareConnectionCommand['type'];
}

export function connectionsContext(deps: SquareConnectionsDependencies) {
  const { store, runtime } = deps;
  const commandContext = (metadata: EventMetadata): CommandContext => ({ newId: runtime.newId, metadata, path: deps.commands });
  return {
    deps,
    now: () => runtime.now().toISOString(),
    gateway(): SquareGateway {
      if (!deps.square.configured) throw new ConfigurationMissing(deps.square.missing);
      return deps.square.gateway;
    },
    loadConnection: async (tenantId: string) => (await loadState(store, connectionStream(tenantId), squareConnectionDecider, deps.commands)).state,
    loadReservation: async (merchantId: string) => (await loadState(store, merchantReservationStream(merchantId), merchantReservationDecider)).state,
    /** The tenant's last poll record, read backwards: one event however long the poll stream is. */
    lastPoll: async (tenantId: string): Promise<PollRecord | undefined> => {
      const [last] = await store.readStream(pollStream(tenantId), { direction: 'backwards', limit: 1 });
      return last ? pollEvents.decode(last).data : undefined;
    },
    /** Polls are facts that do not depend on one another: appended whatever the stream holds. */
    appendPoll: (record: PollRecord, metadata: EventMetadata) =>
      store.append(pollStream(record.tenantId), [pollEvents.encode({ type: 'SquarePaymentsPolled', data: record }, runtime.newId(), metadata)], 'any'),
    onConnection: async (tenantId: string, command: SquareConnectionCommand, metadata: EventMetadata) => {
      const result = await handleCommand(store, connectionStream(tenantId), squareConnectionDecider, command, commandContext(metadata));
      // Only an active connection turns to either status (the decider records it once): events mean it just did.
      const { state } = result;
      if (result.events.length > 0 && (state.status === 'needs_reconnect' || state.status === 'token_undecryptable')) {
        const { merchantId, lastError } = state;
        deps.onConnectionStopped?.({ tenantId, merchantId, status: state.status, code: lastError?.code, detail: lastError?.detail, recordedBy: command.type });
      }
      return result;
    },
    onReservation: (merchantId: string, command: MerchantReservationCommand, metadata: EventMetadata) =>
      handleCommand(store, merchantReservationStream(merchantId), merchantReservationDecider, command, commandContext(metadata)),
  };
}

export type ConnectionsContext = ReturnType<typeof connectionsContext>;
