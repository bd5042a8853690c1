/**
 * Advisory lock namespaces do not collide: the lease holders' first key (lease-holder.ts) is used by no other lock of
 * the schema or the adapters. A holder under the feed's 31249 would block appends and hold the feed back while it
 * lives (migration 0050); under the streams' 31250 it would block a stream's appends.
 */
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import test from 'ava';
import { LEASE_LOCK_CLASS } from '../../adapters/postgres/lease-holder.ts';

async function sources(dir: string, ending: RegExp): Promise<string[]> {
  return (await readdir(dir, { recursive: true })).filter((name) => ending.test(name)).map((name) => path.join(dir, name));
}

test("the lease holders' advisory lock class is no other lock's", async (t) => {
  const files = [...(await sources('migrations', /\.sql$/)), ...(await sources('adapters', /\.ts$/))].filter((f) => !f.endsWith('lease-holder.ts'));
  const classes = new Map<number, string[]>();
  for (const file of files) {
    // Code only: comments may name a lock class (migration 0300 names the lease holders').
    const code = (await readFile(file, 'utf8'))
      .split('\n')
      .filter((line) => !/^\s*(--|\/\/|\*|\/\*)/.test(line))
      .join('\n');
    for (const match of code.matchAll(/pg_(?:try_)?advisory_(?:xact_)?lock(?:_shared)?\(\s*(\d+)\s*,/g)) {
      const n = Number(match[1]);
      classes.set(n, [...(classes.get(n) ?? []), file]);
    }
  }
  t.true(classes.has(31249) && classes.has(31250), `the scan finds the feed's and the streams' lock classes: ${JSON.stringify([...classes.keys()])}`);
  t.false(classes.has(LEASE_LOCK_CLASS), `${LEASE_LOCK_CLASS} is also used in ${classes.get(LEASE_LOCK_CLASS)?.join(', ')}`);
});
