/**
 * Migrations against a server that accepts the connection and never answers (a wrong port behind a proxy, a hung
 * server): start-up and `npm run migrate` fail within the connect timeout, with an error, rather than hang.
 */
import test from 'ava';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import { MIGRATION_CONNECT_TIMEOUT_MS, runMigrations } from '../../adapters/postgres/migrate.ts';

test('a database that accepts and never answers fails the migrations within the connect timeout', async (t) => {
  const sockets = new Set<net.Socket>();
  const silent = net.createServer((socket) => sockets.add(socket));
  await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
  t.teardown(() => {
    for (const socket of sockets) socket.destroy();
    silent.close();
  });
  const started = Date.now();
  const error = await t.throwsAsync(runMigrations(`postgres://u:p@127.0.0.1:${(silent.address() as AddressInfo).port}/x`));
  const tookMs = Date.now() - started;
  t.regex(String(error?.message), /timeout/i);
  t.true(tookMs >= MIGRATION_CONNECT_TIMEOUT_MS - 500 && tookMs < MIGRATION_CONNECT_TIMEOUT_MS + 5_000, `${tookMs} ms`);
  t.true(sockets.size >= 1, 'it did connect, and then waited for an answer');
});
