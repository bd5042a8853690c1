/**
 * The expiry run (`POST /api/v1/internal/cron/expire-points`): for every workspace with a policy, each wallet's
 * points that have expired are taken, once per wallet and UTC day; issued rewards past their time give their
 * points back. Running it twice, or twice at once, expires once: the wallet decider refuses a second expiry
 * for the same day, and a concurrent write makes the losing run decide again on the fresh state.
 *
 * One wallet or issued reward that cannot be expired (a stored event that does not decode, a stream contended past
 * its retries, a wallet that kept moving) is counted, reported and passed over: the run carries on with the others,
 * and the next run tries it again.
 */
import type { EventMetadata } from '../ports/event-store.ts';
import type { WalletsService } from '../wallets/service.ts';
import { periodOf } from '../wallets/expiry.ts';
import type { ProgramService } from './service.ts';
import { expires } from './program.ts';

export interface ExpiryRunDependencies {
  wallets: WalletsService;
  program: ProgramService;
  /** Workspaces whose policy expires points (read model; the policy itself is read from the write model). */
  tenantsWithPolicy(): Promise<string[]>;
  /** Wallets of a workspace that hold points, in pages after `afterWalletId`. */
  walletsWithPoints(tenantId: string, afterWalletId: string | null, limit: number): Promise<string[]>;
  /** Issued rewards still issued whose time ran out by `asOf`, in pages by id after `afterIssuedRewardId`. */
  rewardsDue(asOf: Date, afterIssuedRewardId: string | null, limit: number): Promise<{ walletId: string; issuedRewardId: string }[]>;
  /** Told of each wallet or reward passed over (the wiring logs it). */
  onFailure?(failure: ExpiryRunFailure, error: unknown): void;
  /** Told of each workspace whose policy could not be read (the wiring logs it). */
  onWorkspaceFailure?(tenantId: string, error: unknown): void;
}

/** A wallet whose points, or an issued reward (`issuedRewardId`), the run could not expire, and the error's code. */
export interface ExpiryRunFailure {
  walletId: string;
  issuedRewardId: string | null;
  code: string;
}

export interface ExpiryRunReport {
  period: string;
  asOf: string;
  workspaces: number;
  walletsChecked: number;
  walletsExpired: number;
  pointsExpired: number;
  rewardsExpired: number;
  /** Wallets whose points could not be expired; issued rewards that could not be expired. */
  walletsFailed: number;
  rewardsFailed: number;
  /** The first `MAX_FAILURES_LISTED` of them (the counts above count them all). */
  failures: ExpiryRunFailure[];
  /** Workspaces whose expiry policy could not be read (none of their wallets was checked), and the first of them. */
  workspacesFailed: number;
  workspaceFailures: { tenantId: string; code: string }[];
}

const PAGE = 500;
export const MAX_FAILURES_LISTED = 100;

/** The code of an error the run passes over: a domain error's or a decode failure's own, else `INTERNAL`. */
function codeOf(error: unknown): string {
  const code = error instanceof Error && 'code' in error ? (error as { code: unknown }).code : undefined;
  return typeof code === 'string' ? code : 'INTERNAL';
}

export function expiryRun(deps: ExpiryRunDependencies) {
  return async function run(asOf: Date, metadata: EventMetadata): Promise<ExpiryRunReport> {
    const report: ExpiryRunReport = {
      period: periodOf(asOf),
      asOf: asOf.toISOString(),
      workspaces: 0,
      walletsChecked: 0,
      walletsExpired: 0,
      pointsExpired: 0,
      rewardsExpired: 0,
      walletsFailed: 0,
      rewardsFailed: 0,
      failures: [],
      workspacesFailed: 0,
      workspaceFailures: [],
    };
    const failed = (walletId: string, issuedRewardId: string | null, error: unknown) => {
      const failure = { walletId, issuedRewardId, code: codeOf(error) };
      if (issuedRewardId === null) report.walletsFailed++;
      else report.rewardsFailed++;
      if (report.failures.length < MAX_FAILURES_LISTED) report.failures.push(failure);
      deps.onFailure?.(failure, error);
    };
    // Rewards first: their points become available, and so can expire in the same run if they are due.
    for (let after: string | null = null; ; ) {
      const due = await deps.rewardsDue(asOf, after, PAGE);
      for (const reward of due) {
        try {
          if (await deps.wallets.expireReward(reward.walletId, reward.issuedRewardId, asOf, metadata)) report.rewardsExpired++;
        } catch (error) {
          failed(reward.walletId, reward.issuedRewardId, error);
        }
      }
      if (due.length < PAGE) break;
      after = due.at(-1)?.issuedRewardId ?? null;
    }
    for (const tenantId of await deps.tenantsWithPolicy()) {
      // A workspace whose policy cannot be read (a stream that does not decode) is passed over like a wallet.
      let policy: Awaited<ReturnType<ExpiryRunDependencies['program']['current']>>['policy'];
      try {
        ({ policy } = await deps.program.current(tenantId));
      } catch (error) {
        report.workspacesFailed++;
        if (report.workspaceFailures.length < MAX_FAILURES_LISTED) report.workspaceFailures.push({ tenantId, code: codeOf(error) });
        deps.onWorkspaceFailure?.(tenantId, error);
        continue;
      }
      if (!expires(policy)) continue;
      report.workspaces++;
      for (let after: string | null = null; ; ) {
        const page = await deps.walletsWithPoints(tenantId, after, PAGE);
        for (const walletId of page) {
          report.walletsChecked++;
          let points: number;
          try {
            points = await deps.wallets.expirePoints(walletId, policy, asOf, metadata);
          } catch (error) {
            failed(walletId, null, error);
            continue;
          }
          if (points > 0) {
            report.walletsExpired++;
            report.pointsExpired += points;
          }
        }
        if (page.length < PAGE) break;
        after = page.at(-1) ?? null;
      }
    }
    return report;
  };
}
