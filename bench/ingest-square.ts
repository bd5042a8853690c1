/**
 * The local Square stand-in (tests/support/square-server.ts) in a process of its own for bench/ingest.ts:
 * Square is another service, so answering Tally's customer look-ups must not take CPU from Tally's own
 * event loop. Scripted over IPC by the parent: `{ id, op, args }` in, `{ id, result }` or `{ id, error }` out.
 */
import { startSquareServer, type TestCustomer, type TestMerchant } from '../tests/support/square-server.ts';

type Request =
  | { id: number; op: 'addMerchants'; args: TestMerchant[] }
  | { id: number; op: 'addCustomers'; args: { merchantId: string; customer: TestCustomer }[] }
  | { id: number; op: 'issueCode'; args: string }
  | { id: number; op: 'requestCount'; args?: undefined }
  | { id: number; op: 'stop'; args?: undefined };

if (!process.send) throw new Error('bench/ingest-square.ts is started by bench/ingest.ts with an IPC channel');

const square = await startSquareServer();
const send = (message: unknown) => process.send!(message);

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
      case 'requestCount':
        return send({ id: message.id, result: square.requests.length });
      case 'stop':
        await square.stop();
        send({ id: message.id, result: null });
        process.disconnect();
        return;
    }
  } catch (error) {
    send({ id: message.id, error: error instanceof Error ? error.message : String(error) });
  }
});
process.on('disconnect', () => {
  void square.stop().finally(() => process.exit(0));
});
send({ ready: true, url: square.url });
