/** README's migration table (Operations → Routine tasks) lists every file of migrations/, in the order they apply. */
import test from 'ava';
import { readdir, readFile } from 'node:fs/promises';

test('README lists every migration, in the order they apply', async (t) => {
  const files = (await readdir(new URL('../../migrations/', import.meta.url))).filter((f) => f.endsWith('.sql')).sort();
  const readme = await readFile(new URL('../../README.md', import.meta.url), 'utf8');
  const listed = [...readme.matchAll(/^ {2}\| `(\d{4}_[a-z0-9-]+\.sql)` \|/gm)].map((m) => m[1]!);
  t.true(files.length > 20);
  t.deepEqual(listed, files);
});
