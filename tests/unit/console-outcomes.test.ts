/**
 * The admin console's webhook outcome filter offers every outcome the API's list takes (`location_excluded` was
 * missing: webhooks of rules limited to locations could not be listed by their outcome from the console).
 */
import test from 'ava';
import { readFile } from 'node:fs/promises';
import { OUTCOMES } from '../../http/routes/ingestion.ts';

test("the console's outcome filter lists exactly the outcomes the webhook list takes", async (t) => {
  const app = await readFile(new URL('../../http/admin/app.js', import.meta.url), 'utf8');
  const list = /const OUTCOMES = \[([^\]]*)\]/.exec(app)?.[1];
  t.truthy(list, 'app.js declares its OUTCOMES');
  const offered = [...list!.matchAll(/'([a-z_]+)'/g)].map((m) => m[1]);
  t.deepEqual([...offered].sort(), [...OUTCOMES].sort());
});

test("the merchants' webhooks view explains every outcome in a sentence", async (t) => {
  const app = await readFile(new URL('../../http/admin/app.js', import.meta.url), 'utf8');
  const table = /const OUTCOME_MEANING = \{([\s\S]*?)\n\};/.exec(app)?.[1];
  t.truthy(table, 'app.js declares its OUTCOME_MEANING');
  const explained = [...table!.matchAll(/^\s+([a-z_]+):/gm)].map((m) => m[1]);
  t.deepEqual([...explained].sort(), [...OUTCOMES].sort());
});
