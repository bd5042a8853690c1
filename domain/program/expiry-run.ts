/**
 * The expiry run (`POST /api/v1/internal/cron/expire-points`): for every workspace with a policy, each wallet's
 * points that have expired are taken, once per wallet and UTC day; issued rewards past their time give their
 * points back. Running it twice, or twice at once, expires once: the wallet decider refuses a second expiry
 * for the same day, and a concurrent write makes the losing run decide again on the fresh state.
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
}

export interface ExpiryRunReport {
  period: string;
  asOf: string;
  workspaces: number;
  walletsChecked: number;
  walletsExpired: number;
  pointsExpired: number;
  rewardsExpired: number;
}

const PAGE = 500;

export function expiryRun(deps: ExpiryRunDependencies) {
  return async function run(asOf: Date, metadata: EventMetadata): Promise<ExpiryRunReport> {
    const report: ExpiryRunReport = { period: periodOf(asOf), asOf: asOf.toISOString(), workspaces: 0, walletsChecked: 0, walletsExpired: 0, pointsExpired: 0, rewardsExpired: 0 };
    // Rewards first: their points become available, and so can expire in the same run if they are due.
    for (let after: string | null = null; ; ) {
      const due = await deps.rewardsDue(asOf, after, PAGE);
      for (const reward of due) {
        if (await deps.wallets.expireReward(reward.walletId, reward.issuedRewardId, asOf, metadata)) report.rewardsExpired++;
      }
      if (due.length < PAGE) break;
      after = due.at(-1)?.issuedRewardId ?? null;
    }
    for (const tenantId of await deps.tenantsWithPolicy()) {
      const { policy } = await deps.program.current(tenantId);
      if (!expires(policy)) continue;
      report.workspaces++;
      for (let after: string | null = null; ; ) {
        const page = await deps.walletsWithPoints(tenantId, after, PAGE);
        for (const walletId of page) {
          report.walletsChecked++;
          const points = await deps.wallets.expirePoints(walletId, policy, asOf, metadata);
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
