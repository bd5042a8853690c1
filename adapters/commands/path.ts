/**
 * The production command path: the PostgreSQL snapshot store, retries that really wait, `Math.random` jitter.
 * Five attempts with pauses below 10, 20, 40 and 80 ms: the queue already serialises this process's commands
 * on a stream, so a conflict means another process wrote, and a short random pause lets one of them through.
 */
import type pg from 'pg';
import { createCommandPath, type CommandPath, type CommandPathOptions } from '../../domain/shared/command-path.ts';
import { postgresSnapshotStore } from '../postgres/snapshot-store.ts';

export const DEFAULT_RETRY = { attempts: 5, baseDelayMs: 10, maxDelayMs: 200 } as const;

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

export function provideCommandPath(pool: pg.Pool, options: Partial<Omit<CommandPathOptions, 'snapshots' | 'retry'>> = {}): CommandPath {
  return createCommandPath({
    ...options,
    snapshots: postgresSnapshotStore(pool),
    retry: { ...DEFAULT_RETRY, random: Math.random, sleep },
  });
}
