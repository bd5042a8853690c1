import test from 'ava';
import { cp, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { README, regenerate } from '../../bench/tables.ts';
import { RESULTS_DIR } from '../../bench/support.ts';

test("README's benchmark tables are what bench:tables makes of the committed result files", async (t) => {
  const readme = await readFile(README, 'utf8');
  const { text, names } = await regenerate(readme);
  for (const name of ['store', 'audit', 'reads', 'rebuild', 'reconcile']) t.true(names.includes(name), `README has the ${name} table (found: ${names.join(', ')})`);
  // On a difference, run `npm run bench:tables` and commit README with the result files.
  t.is(text, readme);
});

test('a figure changed in a result file changes its README table', async (t) => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'tally-bench-tables-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  await cp(RESULTS_DIR, dir, { recursive: true, dereference: true }); // a link to bench/results when compiled in .build/
  const file = path.join(dir, 'rebuild.json');
  const rebuild = JSON.parse(await readFile(file, 'utf8')) as { results: { tally: number; ratio: number }[] };
  rebuild.results[0]!.tally = 123_456;
  await writeFile(file, JSON.stringify(rebuild));
  const readme = await readFile(README, 'utf8');
  const { text } = await regenerate(readme, dir);
  t.not(text, readme);
  t.regex(text, /<!-- bench:rebuild -->[\s\S]*123,456 events\/s[\s\S]*<!-- \/bench:rebuild -->/);
});

test('a table whose result file is missing names the benchmark to run', async (t) => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'tally-bench-tables-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const error = await t.throwsAsync(regenerate('<!-- bench:reconcile -->\n<!-- /bench:reconcile -->\n', dir));
  t.regex(error?.message ?? '', /npm run bench:reconcile/);
});
