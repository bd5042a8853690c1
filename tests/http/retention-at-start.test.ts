/**
 * The retention runs (`WEBHOOK_BODY_RETENTION_DAYS`, `AUDIT_RETENTION_DAYS`) run soon after start, then hourly.
 * Found in review (2026-12-08): they ran only an hour after start, so a service restarted more often than hourly
 * (a crash loop, autoscaling, frequent deploys) never emptied a body, and bodies naming people were kept for good.
 */
import test from 'ava';
import { v4 as uuid } from 'uuid';
import { startSecondInstance, startTestService, type SecondInstance, type TestService } from '../support/service.ts';
import { TEST_JWT_SECRET } from '../support/http.ts';
import { eventually } from '../support/eventually.ts';

const ENV = { AUTH_JWT_SECRET: TEST_JWT_SECRET, AUDIT_RETENTION_DAYS: '30' };
let service: TestService;
let restarted: SecondInstance | undefined;

test.before(async () => {
  // This one runs nothing within the test: the run the test sees is the restarted instance's.
  service = await startTestService(ENV, { retention: { firstAfterMs: 3_600_000, jitterMs: 0 } });
});
test.after.always(async () => {
  await restarted?.stop();
  await service?.stop();
});

test('a started service empties an old processed body and deletes old audit rows soon after start, not an hour later', async (t) => {
  const eventId = `evt-old-${uuid()}`;
  const auditEventId = uuid();
  await service.database.pool.query(
    `INSERT INTO pos_webhook_events_raw (id, merchant_id, event_type, raw_body, headers, received_at, processed, processed_at, outcome)
     VALUES ($1, 'M-RET', 'payment.updated', '{"buyer_email_address":"jane@example.com"}', '{}', now() - interval '32 days', true, now() - interval '31 days', 'stored_anonymous')`,
    [eventId],
  );
  await service.database.pool.query(
    `INSERT INTO audit_events (seq, event_id, position, stream, revision, type, recorded_at, late, tenant_id, data)
     VALUES (900000000001, $1, '900000000001.0', 'wallet-w-ret', 0, 'PointsCredited', now() - interval '40 days', false, 't-ret', '{}')`,
    [auditEventId],
  );
  // An instance started now (the first run soon after start: a tenth of a second here, 10–60 s by default).
  restarted = await startSecondInstance(service, ENV, { retention: { firstAfterMs: 100, jitterMs: 100 } });
  const reading = await eventually(
    async () => {
      const body = await service.database.pool.query<{ raw_body: string }>(`SELECT raw_body FROM pos_webhook_events_raw WHERE id = $1`, [eventId]);
      const audit = await service.database.pool.query(`SELECT 1 FROM audit_events WHERE event_id = $1`, [auditEventId]);
      return { body: body.rows[0]?.raw_body, auditRows: audit.rowCount };
    },
    (r) => r.body === '' && r.auditRows === 0,
    { timeoutMs: 15_000 },
  );
  t.deepEqual(reading, { body: '', auditRows: 0 });
  t.true(restarted.logs.some((line) => line.includes('raw webhook bodies past their retention emptied')), 'the instance just started emptied it');
});
