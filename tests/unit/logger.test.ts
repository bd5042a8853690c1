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

function logOnce(format: 'json' | 'pretty'): Promise<string> {
  const script = `import('./adapters/logger.ts').then(({ createLogger }) => {
    const log = createLogger({ level: 'info', secrets: ['sq0csp-a-secret-value'], format: '${format}' });
    log.info({ merchantId: 'M1' }, 'token exchange failed for sq0csp-a-secret-value');
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
