/**
 * The ledger export on 1,000,000 lines: `GET /api/v1/client/ledger.csv` streams every line of the workspace
 * (a header, one row per line, in time order) while the service's resident memory, sampled from /proc during
 * the download, grows by less than 128 MiB: the rows go out a page of 1,000 at a time, as they are read.
 * In the fault tier (a child process, whose memory is its own; a million rows take a while).
 */
import test from 'ava';
import { readFile, mkdtemp } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { ChildProcess } from 'node:child_process';
import { v4 as uuid } from 'uuid';
import { freePort } from '../../adapters/postgres/embedded.ts';
import { createTestDatabase, type TestDatabase } from '../support/database.ts';
import { startSquareServer, type SquareTestServer } from '../support/square-server.ts';
import { api, tokenFor } from '../support/http.ts';
import { killService, serviceEnv, startService } from './support.ts';

const LINES = 1_000_000;
const LIMIT_MIB = 128;

let database: TestDatabase;
let square: SquareTestServer;
let child: ChildProcess | undefined;
let url: string;

test.before(async () => {
  database = await createTestDatabase();
  square = await startSquareServer();
  const port = await freePort();
  url = `http://127.0.0.1:${port}`;
  const env = serviceEnv({
    port,
    databaseUrl: database.url,
    dataDir: await mkdtemp(path.join(os.tmpdir(), 'tally-export-')),
    square,
    webhookSignatureKey: 'export-key',
    apiBaseUrl: url,
    adminEmail: 'ops@export.test',
  });
  child = await startService(url, env);
});
test.after.always(async () => {
  await killService(child);
  await square?.stop();
  await database?.drop();
});

async function residentMiB(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  const kib = Number(/VmRSS:\s+(\d+) kB/.exec(status)?.[1] ?? Number.NaN);
  return kib / 1024;
}

test(`a ledger of ${LINES.toLocaleString('en-US')} lines streams as CSV in under ${LIMIT_MIB} MiB of memory`, async (t) => {
  const call = api(url);
  const admin = await tokenFor(uuid(), 'ops@export.test');
  await call('POST', '/api/v1/me/register', { token: admin, body: { role: 'consumer' } });
  const ownerId = uuid();
  const owner = await tokenFor(ownerId, 'owner@export.test');
  await call('POST', '/api/v1/me/register', { token: owner, body: { role: 'client', businessName: 'Export Cafe' } });
  const tenantId = (await call('PATCH', `/api/v1/admin/users/${ownerId}/approve`, { token: admin })).body.user.tenantId as string;

  // A year of ledger lines of 10,000 wallets, written straight into the read model (the export reads only it).
  await database.pool.query(
    `INSERT INTO wallets (id, tenant_id, consumer_id, points_balance, lifetime_earned, lifetime_redeemed, created_at, updated_at)
     SELECT 'w-' || w, $1, 'c-' || w, 0, 0, 0, now(), now() FROM generate_series(1, 10000) w`,
    [tenantId],
  );
  await database.pool.query(
    `INSERT INTO wallet_ledger (id, wallet_id, tenant_id, entry_type, kind, points, balance_after, payment_id, reason, position, revision, created_at)
     SELECT 'line-' || i, 'w-' || (i % 10000 + 1), $1, 'credit', 'earn', (i % 50) + 1, i % 1000, 'pay-' || i,
            CASE WHEN i % 1000 = 0 THEN 'note, with "quotes"' END, i::text, i / 10000,
            timestamptz '2025-01-01' + make_interval(secs => i * 31.5)
       FROM generate_series(1, ${LINES}) i`,
    [tenantId],
  );
  const pid = child!.pid!;
  const before = await residentMiB(pid);
  let peak = before;
  const sampler = setInterval(() => {
    residentMiB(pid).then((mib) => (peak = Math.max(peak, mib)), () => undefined);
  }, 50);
  const started = Date.now();
  let rows = 0;
  let bytes = 0;
  let header = '';
  const curve: string[] = [];
  try {
    const response = await fetch(`${url}/api/v1/client/ledger.csv`, { headers: { authorization: `Bearer ${owner}` } });
    t.is(response.status, 200);
    const reader = response.body!.getReader();
    let carry = '';
    const decoder = new TextDecoder();
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      bytes += value.byteLength;
      const text = carry + decoder.decode(value, { stream: true });
      const lines = text.split('\r\n');
      carry = lines.pop() ?? '';
      if (!header && lines.length) header = lines[0]!;
      const before100k = Math.floor(rows / 100_000);
      rows += lines.length;
      if (Math.floor(rows / 100_000) !== before100k) curve.push(`${Math.floor(rows / 1000)}k:${(await residentMiB(pid)).toFixed(0)}`);
    }
    t.is(carry, '', 'the last row ends with CRLF');
  } finally {
    clearInterval(sampler);
  }
  const seconds = (Date.now() - started) / 1000;
  t.regex(header, /^time,line_id,wallet_id,consumer_id,kind,points/);
  t.is(rows, LINES + 1, 'a header and one row per line');
  const grown = peak - before;
  t.log(`RSS (MiB) as the rows arrived: ${curve.join(' ')}`);
  t.log(`${rows.toLocaleString('en-US')} rows, ${(bytes / 2 ** 20).toFixed(0)} MiB in ${seconds.toFixed(1)} s; service RSS ${before.toFixed(0)} → peak ${peak.toFixed(0)} MiB (+${grown.toFixed(0)} MiB)`);
  t.true(grown < LIMIT_MIB, `the service's memory grew by ${grown.toFixed(0)} MiB`);
});
