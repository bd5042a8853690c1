/**
 * An answer that fails after its status went out (a streamed body: the ledger CSV read page by page) can only be cut
 * short; the operator must still learn why. Found in review (2026-12-08): the download stopped mid-file while the
 * log said nothing but a 200 request line and the metrics counted a 200.
 */
import test from 'ava';
import { v4 as uuid } from 'uuid';
import { startTestService, type TestService } from '../support/service.ts';
import { api, registeredAdmin, tokenFor, TEST_JWT_SECRET } from '../support/http.ts';
import { until } from '../support/eventually.ts';

const LINES = 60_000;
let service: TestService;

test.before(async () => {
  service = await startTestService({ AUTH_JWT_SECRET: TEST_JWT_SECRET, ADMIN_EMAILS: 'ops@streamed.test' });
});
test.after.always(async () => {
  await service?.stop();
});

test('a ledger CSV whose later page fails is cut short, and the failure is logged with its reason and counted', async (t) => {
  const call = api(service.url);
  const admin = await registeredAdmin(service.url, 'ops@streamed.test');
  const ownerId = uuid();
  const owner = await tokenFor(ownerId, 'owner@streamed.test');
  await call('POST', '/api/v1/me/register', { token: owner, body: { role: 'client', businessName: 'Streamed Cafe' } });
  const tenantId = (await call('PATCH', `/api/v1/admin/users/${ownerId}/approve`, { token: admin })).body.user.tenantId as string;
  // Far more lines than the socket's buffers hold (pages of 1,000, about 7 MB): later pages are read as the client reads.
  await service.database.pool.query(
    `INSERT INTO wallet_ledger (id, wallet_id, tenant_id, entry_type, kind, points, balance_after, payment_id, reason, position, revision, created_at)
     SELECT 'line-' || i, 'w-1', $1, 'credit', 'earn', 1, i, 'pay-' || i, NULL, i::text, i, timestamptz '2025-01-01' + make_interval(secs => i)
       FROM generate_series(1, ${LINES}) i`,
    [tenantId],
  );
  const response = await fetch(`${service.url}/api/v1/client/ledger.csv`, { headers: { authorization: `Bearer ${owner}` } });
  t.is(response.status, 200);
  const reader = response.body!.getReader();
  let bytes = (await reader.read()).value?.byteLength ?? 0;
  // The read model goes away under the export: its next page fails.
  await service.database.pool.query('ALTER TABLE wallet_ledger RENAME TO wallet_ledger_gone');
  const cut = await (async () => {
    try {
      for (;;) {
        const { done, value } = await reader.read();
        if (done) return false;
        bytes += value.byteLength;
      }
    } catch {
      return true;
    }
  })();
  t.true(cut, `the download is cut short (${bytes} bytes read), not ended as if complete`);
  const line = await until(
    async () => service.logs.find((l) => l.includes('the answer failed after its status was sent')),
    (found) => found !== undefined,
    { timeoutMs: 5_000 },
  );
  t.regex(line!, /wallet_ledger/, 'the log line carries the reason');
  t.regex(line!, /"path":"\/api\/v1\/client\/ledger.csv"/);
  const metrics = await (await fetch(`${service.url}/metrics`)).text();
  t.regex(metrics, /^tally_http_answers_cut_total\{method="GET",route="\/api\/v1\/client\/ledger.csv",cause="failed"\} 1$/m);
});
