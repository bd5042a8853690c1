/** Queries over the wallets read model. Rows are parsed with zod on the way out; points are integers. */
import type pg from 'pg';
import { z } from 'zod';
import { named } from '../../adapters/postgres/named.ts';
import type { IdentityHasher } from '../../domain/ports/identity.ts';
import { tryNormaliseEmail, tryNormalisePhone } from '../../domain/identity/normalise.ts';
import { DomainError } from '../../domain/shared/errors.ts';
import { cursorPage, timestamp, timestampColumn } from './views.ts';
import { EXPIRING_SOON_DAYS, expiringBy, expiryPolicy, lessReversals, type ExpiryPolicy } from '../../domain/wallets/expiry.ts';
import { walletOwner } from '../../domain/wallets/events.ts';

/** PostgreSQL returns bigint as text; a balance beyond 2^53 would be a bug, not a value to round. */
const points = z.union([z.string(), z.number()]).transform(Number).pipe(z.number().int().refine(Number.isSafeInteger, 'not a safe integer'));

const walletRow = z.object({
  id: z.string(),
  tenant_id: z.string(),
  consumer_id: z.string(),
  points_balance: points,
  lifetime_earned: points,
  lifetime_redeemed: points,
  locked_points: points,
  lifetime_expired: points,
  created_at: z.date(),
  updated_at: z.date(),
});

/** A wallet as the API shows it. */
export const walletView = z.object({
  ...walletOwner,
  /** Every point held, locked ones included. */
  balance: z.number().int(),
  /** What can be redeemed or locked now: the balance less `locked`. */
  available: z.number().int(),
  /** Points locked by issued rewards not yet redeemed, voided or expired. */
  locked: z.number().int(),
  /** Points the workspace's expiry policy will take within 30 days if nothing changes, and the earliest date. */
  expiringSoon: z.object({ points: z.number().int(), at: timestamp.nullable() }),
  lifetimeEarned: z.number().int(),
  lifetimeRedeemed: z.number().int(),
  lifetimeExpired: z.number().int(),
  createdAt: timestamp,
  updatedAt: timestamp,
});
export type WalletView = z.infer<typeof walletView>;

/** A consumer's wallet, with the name of the merchant it is held at. */
export const consumerWalletView = walletView.extend({ businessName: z.string().nullable() });
export type ConsumerWalletView = z.infer<typeof consumerWalletView>;

const WALLET_COLUMNS =
  'w.id, w.tenant_id, w.consumer_id, w.points_balance, w.lifetime_earned, w.lifetime_redeemed, w.locked_points, w.lifetime_expired, w.created_at, w.updated_at';

function toWalletView(r: z.infer<typeof walletRow>): WalletView {
  return {
    walletId: r.id,
    tenantId: r.tenant_id,
    consumerId: r.consumer_id,
    balance: r.points_balance,
    available: r.points_balance - r.locked_points,
    locked: r.locked_points,
    expiringSoon: { points: 0, at: null },
    lifetimeEarned: r.lifetime_earned,
    lifetimeRedeemed: r.lifetime_redeemed,
    lifetimeExpired: r.lifetime_expired,
    createdAt: r.created_at.toISOString(),
    updatedAt: r.updated_at.toISOString(),
  };
}

const toWallet = (raw: unknown): WalletView => toWalletView(walletRow.parse(raw));

/** A workspace's policy in a row: `POLICY_COLUMNS` name the columns of `program_settings` (alias `ps`) as its fields. */
const policyRow = expiryPolicy.extend({ tenantId: z.string(), effectiveFrom: timestampColumn });
const POLICY_COLUMNS = `ps.tenant_id AS "tenantId", ps.policy_version AS version, ps.earned_months AS "earnedMonths",
            ps.inactivity_months AS "inactivityMonths", ps.retroactive, ps.effective_from AS "effectiveFrom", ps.time_zone AS "timeZone"`;

function policyEntry(raw: unknown): [tenantId: string, policy: ExpiryPolicy] {
  const { tenantId, ...policy } = policyRow.parse(raw);
  return [tenantId, policy];
}

// The statements of the reads below, named once (adapters/postgres/named.ts): parsed once per connection.
const EXPIRY_POLICIES = named(`SELECT ${POLICY_COLUMNS} FROM program_settings ps
      WHERE ps.tenant_id = ANY($1) AND (ps.earned_months IS NOT NULL OR ps.inactivity_months IS NOT NULL)`);

/** The expiry policies in force for these workspaces (those with none are absent). */
export async function expiryPolicies(pool: pg.Pool, tenantIds: readonly string[]): Promise<Map<string, ExpiryPolicy>> {
  if (tenantIds.length === 0) return new Map();
  const { rows } = await pool.query(
    EXPIRY_POLICIES,
    [[...new Set(tenantIds)]],
  );
  return new Map(rows.map(policyEntry));
}

/** Ledger kinds that add earned points (credits of positive adjustments count as earned), and the customer's own activity. */
const EARNING_KINDS = ['earn', 'claim', 'adjustment', 'merchant_adjustment'];
const ACTIVITY_KINDS = ['earn', 'claim', 'redemption', 'reward_redeemed'];
const creditRow = z.object({ points, created_at: z.date(), revision: z.coerce.number().int(), payment_id: z.string().nullable(), kind: z.string() });
/** Earning credits and the refunds' reversals (a reversal comes after its credit, so reading newest first meets it first). */
const EARNING_CREDITS = named(`SELECT points, created_at, revision, payment_id, kind FROM wallet_ledger
        WHERE wallet_id = $1 AND revision < $2 AND ((entry_type = 'credit' AND points > 0 AND kind = ANY($3)) OR kind = 'reversal')
        ORDER BY revision DESC LIMIT 200`);
/** The customer's activity, or points added by an adjustment (as `timelineOf` counts it). */
const LAST_ACTIVITY = named(`SELECT created_at FROM wallet_ledger
        WHERE wallet_id = $1 AND (kind = ANY($2) OR (kind IN ('adjustment', 'merchant_adjustment') AND points > 0))
        ORDER BY revision DESC LIMIT 1`);

/** Issued rewards still locking points whose time runs out by `$2`: the expiry run gives their points back first. */
const REWARDS_ENDING = named(`SELECT points, expires_at FROM issued_rewards WHERE wallet_id = $1 AND status = 'issued' AND expires_at <= $2`);
const endingRow = z.object({ points, expires_at: z.date() });

/**
 * `expiringSoon` of a wallet, from its ledger: spending takes the oldest points first, so what remains is the
 * newest credits covering the balance, read newest first until they do (a few rows for most wallets); a refund
 * takes back its own purchase's points (`lessReversals`), as the expiry run counts them.
 */
async function expiringSoonOf(pool: pg.Pool, wallet: WalletView, policy: ExpiryPolicy, now: Date): Promise<WalletView['expiringSoon']> {
  const reversed = new Map<string, number>();
  const read: { at: Date; points: number; paymentId: string | null }[] = [];
  let credits: { at: Date; points: number }[] = [];
  let before = Number.MAX_SAFE_INTEGER;
  while (wallet.balance > 0) {
    const { rows } = await pool.query(
      EARNING_CREDITS,
      [wallet.walletId, before, EARNING_KINDS],
    );
    const page = rows.map((raw) => creditRow.parse(raw));
    for (const r of page) {
      before = r.revision;
      if (r.kind !== 'reversal') read.unshift({ at: r.created_at, points: r.points, paymentId: r.payment_id });
      else if (r.payment_id) reversed.set(r.payment_id, (reversed.get(r.payment_id) ?? 0) + r.points);
    }
    credits = lessReversals(read, reversed);
    if (rows.length < 200 || credits.reduce((sum, c) => sum + c.points, 0) >= wallet.balance) break;
  }
  const { rows: activity } = await pool.query(
    LAST_ACTIVITY,
    [wallet.walletId, ACTIVITY_KINDS],
  );
  const lastActivityAt = activity[0] ? z.date().parse(activity[0].created_at) : null;
  const until = new Date(now.getTime() + EXPIRING_SOON_DAYS * 86_400_000);
  // Points locked by a reward that expires within the window are not safe: the run that expires it takes those due.
  const ending = wallet.locked > 0 ? (await pool.query(REWARDS_ENDING, [wallet.walletId, until])).rows.map((raw) => endingRow.parse(raw)) : [];
  const rewards = ending.map((r) => ({ points: r.points, expiresAt: r.expires_at.toISOString() }));
  return expiringBy({ credits, balance: wallet.balance, locked: wallet.locked, lastActivityAt }, policy, until, rewards, now);
}

/**
 * The wallets with `expiringSoon` filled in from their workspaces' policies, as of `now`; `policies`, when the
 * caller read them with the wallets, saves the look-up.
 */
export async function withExpiringSoon<W extends WalletView>(pool: pg.Pool, wallets: W[], now: Date, policies?: Map<string, ExpiryPolicy>): Promise<W[]> {
  policies ??= await expiryPolicies(pool, wallets.map((w) => w.tenantId));
  // No workspace of these wallets expires points (the common case): nothing to look up, no promise per wallet.
  if (policies.size === 0) return wallets;
  return Promise.all(
    wallets.map(async (wallet) => {
      const policy = policies.get(wallet.tenantId);
      return policy && wallet.balance > 0 ? { ...wallet, expiringSoon: await expiringSoonOf(pool, wallet, policy, now) } : wallet;
    }),
  );
}
const consumerWalletRow = walletRow.extend({
  business_name: z.string().nullable(),
  // The workspace's expiry policy is in `POLICY_COLUMNS` (parsed by `policyEntry`) when it has one; NULL without.
  version: z.number().int().nullable(),
});

const WALLETS_OF_CONSUMER = named(`SELECT ${WALLET_COLUMNS}, ws.business_name,
            ${POLICY_COLUMNS}
       FROM wallets w LEFT JOIN workspaces ws ON ws.tenant_id = w.tenant_id
       LEFT JOIN program_settings ps ON ps.tenant_id = w.tenant_id AND (ps.earned_months IS NOT NULL OR ps.inactivity_months IS NOT NULL)
      WHERE w.consumer_id = $1
      ORDER BY w.updated_at DESC, w.id`);
const TENANT_WALLET = named(`SELECT ${WALLET_COLUMNS} FROM wallets w WHERE w.id = $1 AND w.tenant_id = $2`);
const CONSUMER_WALLET = named(`SELECT ${WALLET_COLUMNS} FROM wallets w WHERE w.id = $1 AND w.consumer_id = $2`);

/**
 * Every wallet of a consumer, most recently active first, with each merchant's business name, and the expiry
 * policies of their workspaces (those with none are absent): one statement, the policies joined, so that
 * `GET /api/v1/me/wallets` makes one round trip when no wallet has points to expire.
 */
export async function walletsOfConsumer(pool: pg.Pool, consumerId: string): Promise<{ wallets: ConsumerWalletView[]; policies: Map<string, ExpiryPolicy> }> {
  const { rows } = await pool.query(WALLETS_OF_CONSUMER, [consumerId]);
  const policies = new Map<string, ExpiryPolicy>();
  const wallets = rows.map((raw) => {
    const r = consumerWalletRow.parse(raw);
    if (r.version !== null) policies.set(...policyEntry(raw));
    return { ...toWalletView(r), businessName: r.business_name };
  });
  return { wallets, policies };
}

/** One wallet, only if it belongs to the tenant (another tenant's wallet reads as missing). */
export async function findTenantWallet(pool: pg.Pool, tenantId: string, walletId: string): Promise<WalletView | undefined> {
  const { rows } = await pool.query(TENANT_WALLET, [walletId, tenantId]);
  return rows[0] ? toWallet(rows[0]) : undefined;
}

/** One wallet, only if it belongs to the consumer. */
export async function findConsumerWallet(pool: pg.Pool, consumerId: string, walletId: string): Promise<WalletView | undefined> {
  const { rows } = await pool.query(CONSUMER_WALLET, [walletId, consumerId]);
  return rows[0] ? toWallet(rows[0]) : undefined;
}

const SEARCH_LIMIT = 50;

/**
 * Wallets in the tenant of the consumer whose email or phone is `q`, in any format a person would type it
 * (`+1-212-555-4240` finds `+12125554240`). Matched by keyed hash, and only through an identity the consumer
 * verified and owns now (`identity_owners`, as purchases are matched): a phone or email someone merely typed into
 * their profile finds nothing, so a counter correction cannot be steered to them. A person whose personal data was
 * erased is no longer found by it.
 */
export async function searchWallets(pool: pg.Pool, hasher: IdentityHasher, tenantId: string, q: string): Promise<WalletView[]> {
  const email = tryNormaliseEmail(q);
  // A national number is read in the workspace's country (its Square merchant's), as its customers' phones are.
  const region = email ? null : ((await pool.query<{ country: string | null }>('SELECT country FROM pos_connections WHERE tenant_id = $1', [tenantId])).rows[0]?.country ?? null);
  const phone = email ? null : tryNormalisePhone(q, region);
  if (!email && !phone) {
    throw new DomainError('VALIDATION_FAILED', 'q must be an email address or a phone number (such as +12125551234)');
  }
  const { rows } = await pool.query(
    `SELECT ${WALLET_COLUMNS}
       FROM wallets w JOIN users u ON u.id = w.consumer_id
      WHERE w.tenant_id = $1
        AND w.consumer_id IN (SELECT o.consumer_id FROM identity_owners o WHERE o.identity_hash = $2 OR o.identity_hash = $3)
        AND NOT u.erased
        AND EXISTS (SELECT 1 FROM personal_data p WHERE p.user_id = u.id)
      ORDER BY w.updated_at DESC, w.id
      LIMIT ${SEARCH_LIMIT}`,
    [tenantId, email ? hasher.hashEmail(email) : null, phone ? hasher.hashPhone(phone) : null],
  );
  return rows.map(toWallet);
}


/**
 * One line of a wallet's ledger. `entryType` is `credit` or `debit`; `kind` what the line is (`earn`, `claim`,
 * `reversal`, `redemption`, `adjustment`, expiry, reward lines, …); `points` is signed (debits negative);
 * `balanceAfter` is the balance once it applied.
 */
export const ledgerItem = z.object({
  id: z.string(),
  entryType: z.enum(['credit', 'debit']),
  kind: z.string(),
  points: z.number().int(),
  balanceAfter: z.number().int(),
  /** How the line moved the points locked by issued rewards (reward lines only). */
  lockedChange: z.number().int(),
  rewardId: z.string().nullable(),
  issuedRewardId: z.string().nullable(),
  paymentId: z.string().nullable(),
  refundId: z.string().nullable(),
  adminId: z.string().nullable(),
  reason: z.string().nullable(),
  reference: z.string().nullable(),
  idempotencyKey: z.string().nullable(),
  position: z.string(),
  createdAt: timestamp,
});
export type LedgerItem = z.infer<typeof ledgerItem>;

/** A page of a ledger, newest first; `nextCursor` is null on the last page. */
export const ledgerPageView = cursorPage(ledgerItem);
export type LedgerPage = z.infer<typeof ledgerPageView>;

/**
 * A ledger line as its customer reads it (`/api/v1/me/…/ledger`): without the staff member's identity-provider
 * subject (`adminId`) and the client's idempotency key, which are the workspace's business. `reason` stays: an
 * adjustment's reason is shown to the customer (the adjust forms say so).
 */
export const consumerLedgerItem = ledgerItem.omit({ adminId: true, idempotencyKey: true });
export const consumerLedgerPageView = cursorPage(consumerLedgerItem);

/** A ledger page with its lines as the customer reads them. */
export function forConsumer(page: LedgerPage): z.infer<typeof consumerLedgerPageView> {
  return { items: page.items.map(({ adminId: _adminId, idempotencyKey: _idempotencyKey, ...line }) => line), nextCursor: page.nextCursor };
}

/** A line as the ledger statement returns it (columns named as the fields, points signed): the revision for the cursor. */
const ledgerRow = ledgerItem.extend({
  points,
  balanceAfter: points,
  lockedChange: points,
  revision: z.coerce.number().int().nonnegative(),
  createdAt: timestampColumn,
});

/** The cursor is the revision of the page's last line, opaque to the caller. */
const cursorSchema = z.object({ before: z.number().int().nonnegative() }).strict();

const encodeCursor = (revision: number) => Buffer.from(JSON.stringify({ before: revision })).toString('base64url');

function decodeCursor(cursor: string): number {
  try {
    return cursorSchema.parse(JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'))).before;
  } catch {
    throw new DomainError('VALIDATION_FAILED', 'cursor is not valid: pass the nextCursor of the previous page unchanged, or omit it for the first page');
  }
}

/** A ledger page's statement: the first page's, or a later one's (`revision < $3`, the cursor's bound). */
const ledgerPageSql = (after: boolean) =>
  named(`SELECT id, entry_type AS "entryType", kind, CASE entry_type WHEN 'debit' THEN -points ELSE points END AS points, balance_after AS "balanceAfter",
            locked_change AS "lockedChange", reward_id AS "rewardId", issued_reward_id AS "issuedRewardId", payment_id AS "paymentId",
            refund_id AS "refundId", admin_id AS "adminId", reason, reference, idempotency_key AS "idempotencyKey", position, revision,
            created_at AS "createdAt"
       FROM wallet_ledger
      WHERE wallet_id = $1 ${after ? 'AND revision < $3' : ''}
      ORDER BY revision DESC
      LIMIT $2`);
const LEDGER_PAGE = { first: ledgerPageSql(false), after: ledgerPageSql(true) };

/** One page of the wallet's ledger, newest first (in the wallet stream's order), after `cursor` (keyset on the revision). */
export async function ledgerPage(pool: pg.Pool, walletId: string, page: { cursor?: string | undefined; limit: number }): Promise<LedgerPage> {
  const before = page.cursor === undefined ? undefined : decodeCursor(page.cursor);
  const params: unknown[] = [walletId, page.limit + 1];
  if (before !== undefined) params.push(before);
  const { rows } = await pool.query(before === undefined ? LEDGER_PAGE.first : LEDGER_PAGE.after, params);
  const parsed = rows.map((raw) => ledgerRow.parse(raw));
  const hasMore = parsed.length > page.limit;
  const shown = hasMore ? parsed.slice(0, page.limit) : parsed;
  const last = shown.at(-1);
  return {
    items: shown.map(({ revision: _revision, ...item }) => item),
    nextCursor: hasMore && last ? encodeCursor(last.revision) : null,
  };
}
