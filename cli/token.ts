/**
 * `npm run token -- --sub <id> --email <email> [--ttl 1h]`: mints a development bearer token signed with the
 * configured AUTH_JWT_SECRET (the generated development secret when none is set), and prints it.
 */
import { parseArgs } from 'node:util';
import { SignJWT } from 'jose';
import { ConfigError, loadConfig } from '../adapters/config.ts';

const usage = 'Usage: npm run token -- --sub <user id> --email <email> [--ttl 1h] (ttl: e.g. 30m, 1h, 7d)';

async function main(): Promise<void> {
  let values: { sub?: string | undefined; email?: string | undefined; ttl?: string | undefined; help?: boolean | undefined };
  try {
    ({ values } = parseArgs({
      options: { sub: { type: 'string' }, email: { type: 'string' }, ttl: { type: 'string', default: '1h' }, help: { type: 'boolean' } },
      strict: true,
    }));
  } catch (error) {
    // An unknown option or a missing value: a usage error, as in the other commands.
    process.stderr.write(`${error instanceof Error ? error.message : String(error)}\n${usage}\n`);
    process.exit(2);
  }
  if (values.help || !values.sub || !values.email) {
    process.stderr.write(`${usage}\n`);
    process.exit(values.help ? 0 : 2);
  }
  if (!/^\d+[smhd]$/.test(values.ttl ?? '')) {
    process.stderr.write(`--ttl must be a number followed by s, m, h or d (e.g. 1h)\n${usage}\n`);
    process.exit(2);
  }
  const config = await loadConfig();
  if (!config.AUTH_JWT_SECRET) {
    process.stderr.write('AUTH_JWT_SECRET is not set (the service verifies tokens with AUTH_JWKS_URL): mint tokens with your identity provider.\n');
    process.exit(2);
  }
  // The development identity provider vouches for the email it is given, as a real one does after confirmation.
  let jwt = new SignJWT({ email: values.email, email_verified: true, role: 'authenticated' })
    .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
    .setSubject(values.sub)
    .setIssuedAt()
    .setExpirationTime(values.ttl!);
  if (config.AUTH_JWT_ISSUER) jwt = jwt.setIssuer(config.AUTH_JWT_ISSUER);
  if (config.AUTH_JWT_AUDIENCE) jwt = jwt.setAudience(config.AUTH_JWT_AUDIENCE);
  process.stdout.write(`${await jwt.sign(new TextEncoder().encode(config.AUTH_JWT_SECRET))}\n`);
}

main().catch((error) => {
  process.stderr.write(`${error instanceof ConfigError ? error.message : String(error)}\n`);
  process.exit(1);
});
