/**
 * docker-compose.yml's api service gets the whole configuration README documents. There is no Docker engine on our
 * build machines, so the file is read as text: the api service's block, its env_file and its environment's keys.
 */
import test from 'ava';
import { readFile } from 'node:fs/promises';
import { VARIABLE_NAMES } from '../../adapters/config.ts';

const compose = await readFile(new URL('../../docker-compose.yml', import.meta.url), 'utf8');
const readme = await readFile(new URL('../../README.md', import.meta.url), 'utf8');

/** The lines of one service, up to the next service or top-level key. */
function service(name: string): string {
  const start = compose.indexOf(`\n  ${name}:\n`);
  if (start < 0) throw new Error(`docker-compose.yml has no service ${name}`);
  const rest = compose.slice(start + 1);
  const end = rest.slice(1).search(/\n {0,2}[a-z]/);
  return end < 0 ? rest : rest.slice(0, end + 1);
}

/** The keys of a service's `environment:` map (six spaces in: `NAME: value`). */
function environment(block: string): Map<string, string> {
  const start = block.indexOf('\n    environment:\n');
  if (start < 0) throw new Error('the service has no environment map');
  const lines = block.slice(start + '\n    environment:\n'.length).split('\n');
  const entries = new Map<string, string>();
  for (const line of lines) {
    if (/^ {6}#/.test(line) || line.trim() === '') continue;
    const entry = /^ {6}([A-Z][A-Z0-9_]*): ?(.*)$/.exec(line);
    if (!entry) break;
    entries.set(entry[1]!, entry[2]!);
  }
  return entries;
}

/** The names README's Configuration table lists in its first column (one row may name several). */
function documented(): string[] {
  const table = readme.slice(readme.indexOf('## Configuration'), readme.indexOf('## API'));
  const names = new Set<string>();
  for (const row of table.matchAll(/^\| ([^|]+) \|/gm)) for (const name of row[1]!.matchAll(/`([A-Z][A-Z0-9_]+)`/g)) names.add(name[1]!);
  return [...names];
}

test("every variable README's Configuration section documents reaches the api service, and .env is passed through when there is one", (t) => {
  const api = service('api');
  const env = environment(api);
  const names = new Set([...documented(), ...VARIABLE_NAMES]);
  t.true(names.size > 50, `${names.size} names found`);
  for (const name of names) t.true(env.has(name), `docker-compose.yml's api service does not pass ${name}`);
  t.regex(api, /\n {4}env_file:\n {6}- path: \.env\n {8}required: false\n/, 'the .env file next to it, optional');
});

test('docker-compose: tokens need AUTH_JWT_SECRET or AUTH_JWKS_URL, not the secret alone; the OAuth callback lands on Tally\'s own /pos page by default', (t) => {
  const env = environment(service('api'));
  t.is(env.get('AUTH_JWT_SECRET'), '${AUTH_JWT_SECRET:-}', 'not required by compose: AUTH_JWKS_URL may stand for it');
  t.is(env.get('AUTH_JWKS_URL'), '${AUTH_JWKS_URL:-}');
  t.is(env.get('FRONTEND_URL'), '${FRONTEND_URL:-${API_BASE_URL:-http://localhost:3000}}', 'the API serves /pos (and the console at /admin)');
  t.is(env.get('API_BASE_URL'), '${API_BASE_URL:-http://localhost:3000}');
  t.is(env.get('NODE_ENV'), 'production');
});
