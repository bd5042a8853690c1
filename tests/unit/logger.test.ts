/** Log format: readable lines for people in a terminal, JSON for machines, LOG_FORMAT overriding both; secrets masked either way. */
import test from 'ava';
import { spawn } from 'node:child_process';
import { chooseLogFormat } from '../../adapters/logger.ts';

test('a terminal outside production gets readable lines; production, pipes and files get JSON; LOG_FORMAT wins', (t) => {
  t.is(chooseLogFormat({ configured: undefined, nodeEnv: 'development', isTTY: true }), 'pretty');
  t.is(chooseLogFormat({ configured: undefined, nodeEnv: 'test', isTTY: true }), 'pretty');
  t.is(chooseLogFormat({ configured: undefined, nodeEnv: 'production', isTTY: true }), 'json');
  t.is(chooseLogFormat({ configured: undefined, nodeEnv: 'development', isTTY: false }), 'json');
  t.is(chooseLogFormat({ configured: 'json', nodeEnv: 'development', isTTY: true }), 'json');
  t.is(chooseLogFormat({ configured: 'pretty', nodeEnv: 'production', isTTY: false }), 'pretty');
});

function logOnce(format: 'json' | 'pretty', lines = `log.info({ merchantId: 'M1' }, 'token exchange failed for sq0csp-a-secret-value');`): Promise<string> {
  const script = `import('./adapters/logger.ts').then(({ createLogger }) => {
    const log = createLogger({ level: 'info', secrets: ['sq0csp-a-secret-value'], format: '${format}' });
    ${lines}
  });`;
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['--import=tsx', '-e', script], { stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (c) => (output += String(c)));
    child.stderr.on('data', (c) => (output += String(c)));
    child.on('exit', () => resolve(output));
  });
}

test('pretty lines are readable and still masked; JSON lines parse', async (t) => {
  const pretty = await logOnce('pretty');
  t.regex(pretty, /INFO.*token exchange failed for \[REDACTED\]/);
  t.regex(pretty, /merchantId: "M1"/);
  t.false(pretty.includes('sq0csp-a-secret-value'));
  t.false(pretty.trimStart().startsWith('{'), 'not JSON');

  const json = JSON.parse((await logOnce('json')).trim());
  t.like(json, { level: 'info', msg: 'token exchange failed for [REDACTED]', merchantId: 'M1' });
});

test('stdout gets every line, in order, whole, across batches and at exit, with an ISO time', async (t) => {
  // 3,000 lines of about 150 bytes: several batches of 64 KiB, then the rest written at exit.
  const output = await logOnce('json', `for (let i = 0; i < 3000; i++) log.info({ i, note: 'café ☕ sq0csp-a-secret-value' }, 'line');`);
  const lines = output.trim().split('\n').map((l) => JSON.parse(l) as { i: number; note: string; time: string });
  t.deepEqual(
    lines.map((l) => l.i),
    Array.from({ length: 3000 }, (_, i) => i),
  );
  t.true(lines.every((l) => l.note === 'café ☕ [REDACTED]'));
  const time = lines[0]!.time;
  t.is(new Date(time).toISOString(), time, 'the time as toISOString writes it');
  t.true(Math.abs(Date.parse(time) - Date.now()) < 60_000);
});

test('an error carrying node-postgres\'s client is logged with its code and message, without the client', async (t) => {
  const line = await logOnce(
    'json',
    `const error = Object.assign(new Error('terminating connection due to administrator command'), { code: '57P01', client: { connectionParameters: { host: 'db' }, parsedStatements: { s1: 'SELECT secret_plan' } } });
    log.warn({ err: error }, 'idle database connection lost');`,
  );
  const json = JSON.parse(line.trim());
  t.like(json.err, { message: 'terminating connection due to administrator command', code: '57P01' });
  t.false('client' in json.err);
  t.false(line.includes('SELECT secret_plan'));
});
