/**
 * README statements a new user acts on literally: the admin console's token is the quick start's administrator, and
 * the disk table names the settings that delete rows (found in review, 2026-12-08).
 */
import test from 'ava';
import { readFile } from 'node:fs/promises';

const readme = () => readFile(new URL('../../README.md', import.meta.url), 'utf8');
/** The `--sub … --email …` of a `npm run … token` command in `text`, after `from`. */
const tokenFlags = (text: string, from: number) => /npm run -?s? ?token -- --sub (\S+) --email ([^\s`)]+)/.exec(text.slice(from))?.slice(1, 3);

test("the admin console's token is the quick start's administrator: another sub with the admin email is not registered", async (t) => {
  const text = await readme();
  const quickStart = tokenFlags(text, text.indexOf('ADMIN=$(npm run'));
  const consoleToken = tokenFlags(text, text.indexOf('## Admin console'));
  t.truthy(quickStart);
  // Until 2026-12-08: `--sub ops --email <admin email>`, a 403 USER_NOT_REGISTERED after the quick start.
  t.deepEqual(consoleToken, quickStart);
});

test("the disk table names the settings that delete a table's rows", async (t) => {
  const text = await readme();
  const row = (table: string) => new RegExp(`^ {2}\\| \`${table}\`[^\\n]*$`, 'm').exec(text)?.[0] ?? '';
  // wiring/audit.ts deletes audit rows after AUDIT_RETENTION_DAYS; until 2026-12-08 the table said "nothing".
  t.regex(row('audit_events'), /\| rows after `AUDIT_RETENTION_DAYS`/);
  t.regex(row('pos_webhook_events_raw'), /\| rows after `WEBHOOK_ROW_RETENTION_DAYS`/);
  t.false(text.includes('Only the webhook inbox is trimmed'));
});
