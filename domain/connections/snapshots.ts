/** A connection's state as a snapshot (plain JSON already); parsed back with its schema. */
import type { JsonValue } from '../ports/event-store.ts';
import type { StateSnapshots } from '../shared/decider.ts';
import { connectionState, type SquareConnectionState } from './events.ts';

/** Bump `version` when `SquareConnectionState` changes through a helper of evolveConnection (its own code is fingerprinted). */
export const connectionSnapshots: StateSnapshots<SquareConnectionState> = {
  // Version 2: the state carries the merchant's currency and country.
  version: 2,
  toJson: (state) => JSON.parse(JSON.stringify(state)) as JsonValue,
  fromJson: (json): SquareConnectionState => connectionState.parse(json),
};
