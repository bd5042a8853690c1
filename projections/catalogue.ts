/**
 * The event catalogue (README, architecture): every event type, its version, where it is written, who writes it
 * and who reads it, generated from the codec declarations so it cannot drift (`npm run catalogue`; a test holds
 * README to it). Readers are each stream family's own reader (a decider's fold), every projection and reactor by
 * the types it handles, and reconciliation.
 */
import { eventFamilies } from '../domain/event-catalogue.ts';
import { walletBalanceEvents } from '../domain/wallets/events.ts';
import { readModels } from './index.ts';
import { claimsEvents } from './reactors/claims.ts';
import { walletCreditsEvents } from './reactors/wallet-credits.ts';

export interface EventReader {
  name: string;
  eventTypes: readonly string[] | 'all';
}

/** The projections and reactors of `allProjections()` by what they read (a test holds the two lists together). */
export const feedReaders: readonly EventReader[] = [
  ...readModels,
  { name: 'wallet_credits', eventTypes: walletCreditsEvents.types },
  { name: 'claims', eventTypes: claimsEvents.types },
].map(({ name, eventTypes }) => ({ name, eventTypes }));

const otherReaders: readonly EventReader[] = [{ name: 'reconciliation', eventTypes: walletBalanceEvents.types }];

interface Row {
  type: string;
  version: number;
  streams: string[];
  writers: string[];
  readers: string[];
}

const unique = (values: string[]) => [...new Set(values)];

/** The catalogue as a markdown table, in the order the families are declared. */
export function eventCatalogue(): string {
  const rows = new Map<string, Row>();
  for (const codec of eventFamilies) {
    const family = codec.family;
    if (!family) continue;
    for (const definition of codec.definitions) {
      const row = rows.get(definition.type) ?? { type: definition.type, version: definition.version, streams: [], writers: [], readers: [] };
      const legacy = family.legacy?.includes(definition.type) ?? false;
      row.streams.push(legacy ? `${family.stream} (older deployments)` : family.stream);
      if (!legacy) row.writers.push(family.writtenBy);
      row.readers.push(family.readBy ?? `${family.writtenBy} (fold)`);
      rows.set(definition.type, row);
    }
  }
  for (const reader of [...feedReaders, ...otherReaders]) {
    for (const row of rows.values()) {
      if (reader.eventTypes === 'all' || reader.eventTypes.includes(row.type)) row.readers.push(reader.name);
    }
  }
  const lines = ['| Event | Version | Stream | Written by | Read by |', '| --- | --- | --- | --- | --- |'];
  for (const row of rows.values()) {
    const cells = [`\`${row.type}\``, String(row.version), unique(row.streams).map((s) => `\`${s}\``).join(', '), unique(row.writers).join(', '), unique(row.readers).join(', ')];
    lines.push(`| ${cells.join(' | ')} |`);
  }
  return lines.join('\n');
}
