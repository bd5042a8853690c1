/**
 * The local Square stand-in (tests/support/square-server.ts) in a process of its own for bench/ingest.ts:
 * Square is another service, so answering Tally's customer look-ups must not take CPU from Tally's own
 * event loop. Scripted over IPC by the parent: `{ id, op, args }` in, `{ id, result }` or `{ id, error }` out.
 *
 *   node --import=tsx bench/ingest-square.ts [--square-delay-ms=<n>]
 *
 * Square answers a customer look-up in 100–300 ms in real life; the test server answers at once unless told
 * otherwise: here it handles every `/v2/customers` request `--square-delay-ms` (default 100) after it arrived. `lookups`
 * answers, from the simulator's log of requests, how many customers were looked up (one per GET /v2/customers/{id},
 * one per id of a POST /v2/customers/bulk-retrieve), in how many calls, and how many requests in all have reached
 * Square so far.
 */
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

// Held in the simulator's own server, not by a proxy in front of it: a proxy was a second HTTP hop for every call,
// and the stand-in took 0.2–0.4 of the machine's 2 cores while a burst was acknowledged (per-process CPU sampled from
// /proc each second), CPU that Square's own servers would not take from Tally's machine.
const square = await startSquareServer({ latencyMs: (_method, path) => (path.startsWith('/v2/customers') ? delayMs : 0) });
const url = square.url;

/** Counted from the simulator's log of requests: a bulk retrieve counts its ids (a body that is not JSON, none). */
function counts(): SquareCounts {
  const out: SquareCounts = { customerLookups: 0, customerCalls: 0, requests: square.requests.length };
  for (const { method, path, body } of square.requests) {
    if (method === 'GET' && /^\/v2\/customers\/[^/]+$/.test(path)) {
      out.customerLookups++;
      out.customerCalls++;
    } else if (method === 'POST' && path === '/v2/customers/bulk-retrieve') {
      const ids = body !== null && typeof body === 'object' && 'customer_ids' in body ? body.customer_ids : undefined;
      out.customerLookups += Array.isArray(ids) ? ids.length : 0;
      out.customerCalls++;
    }
  }
  return out;
}

const send = (message: unknown) => process.send!(message);
const stop = () => square.stop();

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
        return send({ id: message.id, result: counts() });
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
