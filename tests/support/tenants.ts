/**
 * Builds the actors of a scenario through the public API: users registered with their own tokens, merchants
 * approved by an admin with an active reward rule, and Square connected through the real OAuth flow against the
 * local Square server.
 */
import { v4 as uuid } from 'uuid';
import { api, openConnectUrl, tokenFor } from './http.ts';
import type { SquareTestServer } from './square-server.ts';
import type { TestService } from './service.ts';

export interface Actor {
  id: string;
  token: string;
}

export interface Merchant extends Actor {
  tenantId: string;
}

export function scenario(service: TestService, square: SquareTestServer) {
  const call = api(service.url);

  /**
   * Waits until every event appended so far is projected (read models are eventually consistent), including what
   * reactors append in answer (a credit follows its purchase): until the head stops moving once reached.
   */
  async function settle(): Promise<void> {
    for (let round = 0; round < 20; round++) {
      const head = await service.tally.store.headPosition();
      if (!head) return;
      await service.tally.runner.waitForPosition(head, 30_000);
      if ((await service.tally.store.headPosition()) === head) return;
    }
  }

  async function register(role: 'client' | 'consumer', email: string, extra: Record<string, unknown> = {}): Promise<Actor> {
    const id = uuid();
    const token = await tokenFor(id, email);
    const response = await call('POST', '/api/v1/me/register', { token, body: { role, ...extra } });
    if (response.status !== 201 && response.status !== 200) throw new Error(`register ${email}: ${response.status} ${JSON.stringify(response.body)}`);
    if (response.body.position) await service.tally.runner.waitForPosition(response.body.position, 15_000);
    return { id, token };
  }

  /** A merchant approved by `admin`, with the rule `points` per `per` cents of the amount active. */
  async function merchant(admin: Actor, email: string, rule = { kind: 'spend', points: 1, per: 100, basis: 'amount' }): Promise<Merchant> {
    const user = await register('client', email, { businessName: email });
    const approval = await call('PATCH', `/api/v1/admin/users/${user.id}/approve`, { token: admin.token });
    if (approval.status !== 200) throw new Error(`approve ${email}: ${approval.status} ${JSON.stringify(approval.body)}`);
    const created = await call('POST', '/api/v1/client/reward-rules', { token: user.token, body: rule });
    const activated = await call('POST', `/api/v1/client/reward-rules/${created.body.ruleId}/activate`, { token: user.token });
    if (activated.status !== 200) throw new Error(`activate rule: ${activated.status} ${JSON.stringify(activated.body)}`);
    return { ...user, tenantId: approval.body.user.tenantId as string };
  }

  /** Connects the merchant's workspace to a Square merchant through the OAuth flow (`scopes`: what the merchant grants). */
  async function connect(owner: Actor, squareMerchantId: string, grant: { scopes?: readonly string[] } = {}): Promise<void> {
    const started = await call('GET', '/api/v1/client/pos/square/connect', { token: owner.token });
    const browser = await openConnectUrl(service.url, started);
    const state = browser.authorizeUrl.searchParams.get('state')!;
    const code = square.issueCode(squareMerchantId, grant);
    const callback = await call('GET', `/api/v1/oauth/square/callback?code=${encodeURIComponent(code)}&state=${encodeURIComponent(state)}`, {
      headers: { cookie: browser.cookie },
    });
    if (callback.status !== 302 || !callback.headers.get('location')?.includes('connected=square')) {
      throw new Error(`connect failed: ${callback.status} ${callback.headers.get('location')}`);
    }
  }

  /** The consumer's balance at each tenant, once everything appended so far is projected. */
  async function balances(consumer: Actor): Promise<Record<string, number>> {
    await settle();
    const wallets = await call('GET', '/api/v1/me/wallets', { token: consumer.token });
    return Object.fromEntries((wallets.body as { tenantId: string; balance: number }[]).map((w) => [w.tenantId, w.balance]));
  }

  return { call, settle, register, merchant, connect, balances };
}
