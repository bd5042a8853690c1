/**
 * Actors for loyalty program tests, through the public API: an admin, approved merchants, consumers, and
 * wallets credited the way ingestion credits them (a PointsCredited on the wallet's stream).
 */
import { v4 as uuid } from 'uuid';
import type { Position } from '../../domain/ports/event-store.ts';
import { walletStream, type WalletEvent } from '../../domain/wallets/wallet.ts';
import { api, tokenFor } from './http.ts';
import type { TestService } from './service.ts';

export interface LoyaltyWallet {
  walletId: string;
  tenantId: string;
  consumerId: string;
}

export function loyalty(service: TestService, adminEmail: string) {
  const call = api(service.url);
  let admin: Promise<{ id: string; token: string; email: string }> | undefined;

  async function register(role: 'client' | 'consumer', email: string, extra: Record<string, unknown> = {}) {
    const id = uuid();
    const token = await tokenFor(id, email);
    const response = await call('POST', '/api/v1/me/register', { token, body: { role, ...extra } });
    if (response.status !== 201) throw new Error(`registration failed: ${JSON.stringify(response.body)}`);
    return { id, token, email };
  }

  /** The one administrator (registered once, however many tests ask at the same time). */
  function adminActor() {
    admin ??= register('consumer', adminEmail);
    return admin;
  }

  async function merchant() {
    const businessName = `Cafe ${uuid().slice(0, 6)}`;
    const client = await register('client', `owner-${uuid().slice(0, 8)}@cafe.test`, { businessName });
    const approval = await call('PATCH', `/api/v1/admin/users/${client.id}/approve`, { token: (await adminActor()).token });
    return { ...client, businessName, tenantId: approval.body.user.tenantId as string };
  }

  const consumer = () => register('consumer', `shopper.${uuid().slice(0, 8)}@example.com`);

  /** Points credited as ingestion credits them; answers the position of the credit. */
  async function credit(wallet: LoyaltyWallet, points: number): Promise<Position> {
    const event: WalletEvent = {
      type: 'PointsCredited',
      data: { ...wallet, paymentId: `pay-${uuid()}`, points, ruleId: 'rule-1', ruleVersion: 1, basis: 'amount', basisAmountMinor: points * 100, via: 'purchase' },
    };
    const result = await service.tally.store.append(walletStream(wallet.walletId), [{ id: uuid(), ...event, metadata: { actor: 'system:test' } }], 'any');
    return result.position;
  }

  /** Waits until the read models include `position`. */
  async function settled(position: Position | string): Promise<void> {
    if (!(await service.tally.runner.waitForPosition(position as Position, 10_000))) throw new Error('the read models did not catch up');
  }

  /** A merchant, a consumer and a wallet of theirs credited with `points`, projected. */
  async function walletWith(points: number, m?: Awaited<ReturnType<typeof merchant>>) {
    const owner = m ?? (await merchant());
    const c = await consumer();
    const wallet = { walletId: uuid(), tenantId: owner.tenantId, consumerId: c.id };
    await settled(await credit(wallet, points));
    return { merchant: owner, consumer: c, wallet, walletId: wallet.walletId };
  }

  async function reward(m: { token: string }, body: Record<string, unknown>) {
    const response = await call('POST', '/api/v1/client/rewards', { token: m.token, body });
    if (response.status !== 201) throw new Error(`reward not defined: ${JSON.stringify(response.body)}`);
    return response.body as { rewardId: string; points: number; name: string };
  }

  const streamOf = async (walletId: string) => service.tally.store.readStream(walletStream(walletId));

  return { call, register, admin: adminActor, merchant, consumer, credit, settled, walletWith, reward, streamOf };
}
