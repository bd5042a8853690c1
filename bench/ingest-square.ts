/**
 * The local Square stand-in (tests/support/square-server.ts) in a process of its own for bench/ingest.ts:
 * Square is another service, so answering Tally's customer look-ups must not take CPU from Tally's own
 * event loop. Scripted over IPC by the parent: `{ id, op, args }` in, `{ id, result }` or `{ id, error }` out.
 *
 *   node --import=tsx bench/ingest-square.ts [--square-delay-ms=<n>]
 *
 * Square answers a customer look-up in 100–300 ms in real life; the test server answers at once. A small
 * proxy in front of it (this process, only its public API used) holds every `/v2/customers` request for
 * `--square-delay-ms` (default 100) before forwarding it, and counts them: `lookups` answers how many
 * customers were looked up (one per GET /v2/customers/{id}, one per id of a POST /v2/customers/bulk-retrieve), in
 * how many calls, and how many requests in all have reached Square so far.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { startSquareServer, type TestCustomer, type TestMerchant } from '../tests/support/square-server.ts';

type Request =
  | { id: number; op: 'addMerchants'; args: TestMerchant[] }
  | { id: number; op: 'addCustomers'; args: { merchantId: string; customer: TestCustomer }[] }
  | { id: number; op: 'issueCode'; args: string }
  | { id: number; op: 'lookups'; args?: undefined }
  | { id: number; op: 'stop'; args?: undefined };

export interface SquareCounts {
  /** Customers looked up: one per GET /v2/customers/{id}, one per id of a POST /v2/customers/bulk-retrieve. */
  customerLookups: number;
  /** The calls that looked them up (GETs and bulk retrieves). */
  customerCalls: number;
  /** Every request that reached the stand-in. */
  requests: number;
}

if (!process.send) throw new Error('bench/ingest-square.ts is started by bench/ingest.ts with an IPC channel');

const delayArg = process.argv.slice(2).find((a) => a.startsWith('--square-delay-ms='));
const delayMs = delayArg === undefined ? 100 : Number(delayArg.slice('--square-delay-ms='.length));
if (!Number.isInteger(delayMs) || delayMs < 0) throw new Error('--square-delay-ms must be a whole number of milliseconds');

const square = await startSquareServer();
const upstream = new URL(square.url);
const agent = new http.Agent({ keepAlive: true, maxSockets: 256 });
const counts: SquareCounts = { customerLookups: 0, customerCalls: 0, requests: 0 };

const proxy = http.createServer((request, response) => {
  const path = request.url ?? '/';
  counts.requests++;
  const isCustomer = path.startsWith('/v2/customers');
  const bulk = isCustomer && request.method === 'POST' && path === '/v2/customers/bulk-retrieve';
  if (isCustomer && request.method === 'GET' && /^\/v2\/customers\/[^/?]+/.test(path)) {
    counts.customerLookups++;
    counts.customerCalls++;
  }
  // A bulk retrieve's body is read here to count its ids, then sent on as it came.
  const chunks: Buffer[] = [];
  if (bulk) request.on('data', (chunk: Buffer) => chunks.push(chunk));
  const bodyRead = bulk ? new Promise<void>((resolve) => request.on('end', () => resolve())) : Promise.resolve();
  const forward = async () => {
    await bodyRead;
    if (bulk) {
      counts.customerCalls++;
      try {
        const ids: unknown = (JSON.parse(Buffer.concat(chunks).toString('utf8')) as { customer_ids?: unknown }).customer_ids;
        counts.customerLookups += Array.isArray(ids) ? ids.length : 0;
      } catch {
        // Not JSON: Square answers it 400; nothing looked up.
      }
    }
    const outgoing = http.request(
      { host: upstream.hostname, port: upstream.port, method: request.method, path, headers: { ...request.headers, host: upstream.host }, agent },
      (answer) => {
        response.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.pipe(response);
      },
    );
    outgoing.on('error', (error) => {
      if (!response.headersSent) response.writeHead(502, { 'content-type': 'application/json' });
      response.end(JSON.stringify({ errors: [{ category: 'API_ERROR', code: 'BAD_GATEWAY', detail: error.message }] }));
    });
    if (bulk) outgoing.end(Buffer.concat(chunks));
    else request.pipe(outgoing);
  };
  if (isCustomer && delayMs > 0) setTimeout(() => void forward(), delayMs);
  else void forward();
});
proxy.keepAliveTimeout = 60_000;
await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve));
const url = `http://127.0.0.1:${(proxy.address() as AddressInfo).port}`;

const send = (message: unknown) => process.send!(message);
const stop = async () => {
  const closed = new Promise<void>((resolve) => proxy.close(() => resolve()));
  proxy.closeAllConnections();
  await closed;
  agent.destroy();
  await square.stop();
};

process.on('message', async (message: Request) => {
  try {
    switch (message.op) {
      case 'addMerchants':
        for (const merchant of message.args) square.addMerchant(merchant);
        return send({ id: message.id, result: null });
      case 'addCustomers':
        for (const { merchantId, customer } of message.args) square.addCustomer(merchantId, customer);
        return send({ id: message.id, result: null });
      case 'issueCode':
        return send({ id: message.id, result: square.issueCode(message.args) });
      case 'lookups':
        return send({ id: message.id, result: { ...counts } });
      case 'stop':
        await stop();
        send({ id: message.id, result: null });
        process.disconnect();
        return;
    }
  } catch (error) {
    send({ id: message.id, error: error instanceof Error ? error.message : String(error) });
  }
});
process.on('disconnect', () => {
  void stop().finally(() => process.exit(0));
});
send({ ready: true, url, delayMs });
