/**
 * Shared by the fault tests: the service (`main.ts`) as a child process, and a merchant with an active reward
 * rule, registered consumers and a Square connection made through OAuth against the Square test server.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { api, openConnectUrl, tokenFor, TEST_JWT_SECRET } from '../support/http.ts';
import { TEST_APP_ID, TEST_APP_SECRET, type SquareTestServer } from '../support/square-server.ts';
import { v4 as uuid } from 'uuid';
import { eventually } from '../support/eventually.ts';

export interface ServiceEnvOptions {
  port: number;
  databaseUrl: string;
  dataDir: string;
  square: SquareTestServer;
  webhookSignatureKey: string;
  apiBaseUrl: string;
  adminEmail: string;
}

/** The environment of the service under test: quiet logs, the test JWT secret, Square pointed at the test server. */
export function serviceEnv(options: ServiceEnvOptions): NodeJS.ProcessEnv {
  return {
    ...process.env,
    NODE_ENV: 'test',
    PORT: String(options.port),
    HOST: '127.0.0.1',
    LOG_LEVEL: 'warn',
    DATA_DIR: options.dataDir,
    DATABASE_URL: options.databaseUrl,
    AUTH_JWT_SECRET: TEST_JWT_SECRET,
    ADMIN_EMAILS: options.adminEmail,
    SQUARE_BASE_URL: options.square.url,
    SQUARE_APP_ID: TEST_APP_ID,
    SQUARE_APP_SECRET: TEST_APP_SECRET,
    SQUARE_WEBHOOK_SIGNATURE_KEY: options.webhookSignatureKey,
    API_BASE_URL: options.apiBaseUrl,
    AUTH_FAILURE_LIMIT_PER_MINUTE: '1000000',
  };
}

/**
 * Resolves once the service at `url` answers `/readyz` with 200 (within `timeoutMs`); rejects, with the end of its
 * output, if the process exits first or never gets ready.
 */
export async function waitUntilReady(url: string, child: ChildProcess, output: () => string, timeoutMs: number): Promise<void> {
  const state = await eventually(
    async () => {
      if (child.exitCode !== null || child.signalCode !== null) return 'exited';
      try {
        return (await fetch(`${url}/readyz`)).status === 200 ? 'ready' : 'starting';
      } catch {
        return 'starting'; // not listening yet
      }
    },
    (s) => s !== 'starting',
    { timeoutMs },
  );
  if (state === 'exited') throw new Error(`the service exited (${child.exitCode}): ${output().slice(-3000)}`);
  if (state !== 'ready') throw new Error(`the service did not become ready in ${timeoutMs / 1000} s: ${output().slice(-3000)}`);
}

/**
 * The service as these tests run: compiled in .build/ beside them (`npm run test:faults` through tests/run.ts), or
 * the source through tsx. The compiled start costs a restart about half the CPU (the SIGKILL test restarts 20 times).
 */
const SERVICE = import.meta.url.endsWith('.js') ? ['--enable-source-maps', fileURLToPath(new URL('../../main.js', import.meta.url))] : ['--import=tsx', 'main.ts'];

/** Spawns `main.ts` and resolves once `/readyz` answers 200 (30 s at most); rejects if the process exits first. */
export async function startService(url: string, env: NodeJS.ProcessEnv): Promise<ChildProcess> {
  const child = spawn(process.execPath, SERVICE, { env, stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr?.on('data', (chunk) => (stderr += String(chunk)));
  await waitUntilReady(url, child, () => stderr, 30_000);
  return child;
}

/** SIGKILLs the service (no graceful shutdown) and resolves once it has exited. */
export function killService(child: ChildProcess | undefined): Promise<void> {
  if (!child || child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    child.once('exit', () => resolve());
    child.kill('SIGKILL');
  });
}

export interface MerchantOptions {
  /** The merchant's id at Square. */
  squareMerchantId: string;
  businessName: string;
  /** Mail domain of the admin (`ops@`), the merchant's owner (`owner@`) and the consumers (`c0@`, `c1@`, ...). */
  domain: string;
  /** Registered consumers, each with a Square customer `cust-N` of the same email. */
  consumers: number;
}

export interface ConnectedMerchant {
  adminToken: string;
  merchantToken: string;
  tenantId: string;
  consumerTokens: string[];
  /** The `Location` of the OAuth callback's redirect (says `connected=square` on success). */
  connectedLocation: string;
}

/**
 * An admin, an approved merchant with an active spend rule (1 point per 100 of amount), registered consumers
 * known to Square as customers, and the merchant's Square account connected through OAuth.
 */
export async function connectMerchant(url: string, square: SquareTestServer, options: MerchantOptions): Promise<ConnectedMerchant> {
  const { squareMerchantId, businessName, domain } = options;
  square.addMerchant({ merchantId: squareMerchantId, businessName, locations: [{ id: 'L1', name: 'Main' }] });
  for (let c = 0; c < options.consumers; c++) square.addCustomer(squareMerchantId, { id: `cust-${c}`, email: `c${c}@${domain}` });
  const call = api(url);
  const adminToken = await tokenFor(uuid(), `ops@${domain}`);
  await call('POST', '/api/v1/me/register', { token: adminToken, body: { role: 'consumer' } });
  const merchantId = uuid();
  const merchantToken = await tokenFor(merchantId, `owner@${domain}`);
  await call('POST', '/api/v1/me/register', { token: merchantToken, body: { role: 'client', businessName } });
  const tenantId = (await call('PATCH', `/api/v1/admin/users/${merchantId}/approve`, { token: adminToken })).body.user.tenantId as string;
  const rule = await call('POST', '/api/v1/client/reward-rules', { token: merchantToken, body: { kind: 'spend', points: 1, per: 100, basis: 'amount' } });
  await call('POST', `/api/v1/client/reward-rules/${rule.body.ruleId}/activate`, { token: merchantToken });
  const consumerTokens: string[] = [];
  for (let c = 0; c < options.consumers; c++) {
    const token = await tokenFor(uuid(), `c${c}@${domain}`);
    await call('POST', '/api/v1/me/register', { token, body: { role: 'consumer' } });
    consumerTokens.push(token);
  }
  const started = await call('GET', '/api/v1/client/pos/square/connect', { token: merchantToken });
  const browser = await openConnectUrl(url, started);
  const state = browser.authorizeUrl.searchParams.get('state');
  if (!state) throw new Error(`the authorize URL has no state: ${browser.authorizeUrl}`);
  const connected = await call('GET', `/api/v1/oauth/square/callback?code=${square.issueCode(squareMerchantId)}&state=${encodeURIComponent(state)}`, {
    headers: { cookie: browser.cookie },
  });
  return { adminToken, merchantToken, tenantId, consumerTokens, connectedLocation: connected.headers.get('location') ?? '' };
}

/** Points the spend rule of `connectMerchant` gives for an amount: 1 per 100. */
export const pointsFor = (amount: number) => Math.floor(amount / 100);
