/**
 * `npm run square -- <command>`: drives the built-in Square simulator of a running `npm start` over HTTP (its
 * control endpoints under /square-simulator/simulator), the way `stripe trigger` drives Stripe. Each command prints
 * what it did and the webhooks Square would have sent (event id, Tally's answer, and what Tally made of it).
 * `send` works against any Tally: it signs a payload file with a signature key and posts it to a webhook URL.
 * Usage errors name the flag and exit 2; a refusal by the simulator (Square's error shape) or Tally exits 1.
 */
import { readFile } from 'node:fs/promises';
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { SIMULATOR_PATH } from '../adapters/square/simulator/development.ts';
import { deliverWebhook, type Delivery } from '../adapters/square/simulator/webhooks.ts';
import { formatMinor } from './money.ts';

const USAGE = `Usage: npm run square -- <command> [flags]

  trigger payment --merchant <id> (--amount <minor units> | --item <variation id>[:<quantity>]...) [--tip <minor units>]
                  [--email <email> | --phone <phone> | --anonymous] [--location <id>]
                  [--status COMPLETED|APPROVED|PENDING|CANCELED|FAILED]
  trigger refund  --payment <id> --amount <minor units>
  trigger revoke  --merchant <id>
  customers add   --merchant <id> (--email <email> | --phone <phone>) [--given-name <name>] [--family-name <name>]
  merchants add   --name <business name> [--currency USD] [--country US] [--id <merchant id>] [--timezone America/New_York]
  list merchants
  list payments   [--merchant <id>]
  send <payload.json> --url <Tally webhook URL> --key <signature key>

Every command but send talks to the simulator of a running \`npm start\` (development, no SQUARE_APP_ID):
--simulator <url>, or SQUARE_SIMULATOR_URL, default http://localhost:$PORT${SIMULATOR_PATH} (PORT defaults to 3000).
--json prints the simulator's answer as JSON instead of lines.`;

class UsageError extends Error {}
const PAYMENT_STATUSES = ['COMPLETED', 'APPROVED', 'PENDING', 'CANCELED', 'FAILED'];
class Refused extends Error {}

const common = { simulator: { type: 'string' }, json: { type: 'boolean' }, help: { type: 'boolean' } } as const;

function flags<O extends NonNullable<ParseArgsConfig['options']>>(args: string[], options: O, positionals = 0) {
  let parsed;
  try {
    parsed = parseArgs({ args, options: { ...common, ...options }, strict: true, allowPositionals: positionals > 0 });
  } catch (error) {
    // node names the flag: "Unknown option '--amout'", "Option '--amount <value>' argument missing".
    throw new UsageError(error instanceof Error ? error.message.split('\n')[0]! : String(error));
  }
  if (parsed.positionals.length > positionals) throw new UsageError(`unexpected argument: ${parsed.positionals[positionals]}`);
  return parsed;
}

function required(values: Record<string, unknown>, name: string): string {
  const value = values[name];
  if (typeof value !== 'string' || value.trim() === '') throw new UsageError(`--${name} is required`);
  return value;
}

function amount(values: Record<string, unknown>, name: string, { min, optional }: { min: number; optional?: boolean }): number | undefined {
  const value = values[name];
  if (value === undefined && optional) return undefined;
  const text = required(values, name);
  if (!/^\d+$/.test(text) || !Number.isSafeInteger(Number(text)) || Number(text) < min) {
    throw new UsageError(`--${name} must be a whole number of minor units (cents) of at least ${min}, e.g. 1099 for $10.99; got ${text}`);
  }
  return Number(text);
}

function simulatorUrl(values: { simulator?: string | undefined }): string {
  const url = values.simulator ?? process.env.SQUARE_SIMULATOR_URL ?? `http://localhost:${process.env.PORT || 3000}${SIMULATOR_PATH}`;
  try {
    new URL(url);
  } catch {
    throw new UsageError(`--simulator must be a URL, e.g. http://localhost:3000${SIMULATOR_PATH}; got ${url}`);
  }
  return url.replace(/\/+$/, '');
}

async function control(base: string, method: 'GET' | 'POST', path: string, body?: unknown): Promise<any> {
  let response: Response;
  try {
    response = await fetch(`${base}${path}`, {
      method,
      headers: body === undefined ? {} : { 'content-type': 'application/json' },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      signal: AbortSignal.timeout(60_000),
    });
  } catch (error) {
    const why = error instanceof Error && error.cause instanceof Error ? error.cause.message : String(error);
    throw new Refused(`cannot reach the Square simulator at ${base} (${why}). Is \`npm start\` running in development without SQUARE_APP_ID?`);
  }
  const text = await response.text();
  let json: any;
  try {
    json = JSON.parse(text);
  } catch {
    throw new Refused(`${base}${path} answered ${response.status} with something that is not the simulator: ${text.slice(0, 200)}`);
  }
  if (!response.ok) {
    const errors = Array.isArray(json?.errors) ? json.errors : [];
    const detail = errors.map((e: any) => `${e.code}${e.field ? ` (${e.field})` : ''}: ${e.detail}`).join('; ');
    throw new Refused(`Square simulator refused (${response.status}): ${detail || text.slice(0, 200)}`);
  }
  return json;
}

const money = (m: { amount: number; currency: string } | undefined) => (m ? formatMinor(m.amount, m.currency) : '-');

function printWebhooks(webhooks: (Delivery & { processed?: string })[]): boolean {
  let ok = true;
  for (const w of webhooks) {
    const answered = w.status === null ? `not delivered: ${w.answer}` : `Tally answered ${w.status}`;
    // Not delivered (Tally not reachable) or not accepted: the command fails, whatever Square's part did.
    if (w.status === null || w.status < 200 || w.status >= 300) ok = false;
    process.stdout.write(`  webhook ${w.type} event_id ${w.eventId}: ${answered}${w.processed ? `; processed: ${w.processed}` : ''}\n`);
  }
  return ok;
}

async function run(argv: string[]): Promise<number> {
  const [command, subcommand, ...rest] = argv;
  if (!command || command === 'help' || command === '--help' || command === '-h') {
    process.stdout.write(`${USAGE}\n`);
    return command ? 0 : 2;
  }
  const print = (json: boolean | undefined, answer: unknown, lines: () => boolean | void): number => {
    if (json) {
      process.stdout.write(`${JSON.stringify(answer, null, 2)}\n`);
      return 0;
    }
    return lines() === false ? 1 : 0;
  };

  if (command === 'trigger' && subcommand === 'payment') {
    const { values } = flags(rest, {
      merchant: { type: 'string' },
      amount: { type: 'string' },
      tip: { type: 'string' },
      email: { type: 'string' },
      phone: { type: 'string' },
      anonymous: { type: 'boolean' },
      location: { type: 'string' },
      status: { type: 'string' },
      item: { type: 'string', multiple: true },
    });
    // `--item VARLATTE:2`: a line of the merchant's catalog; the payment is for the order they make.
    const items = (values.item ?? []).map((text) => {
      const match = /^([A-Za-z0-9_-]+)(?::(\d+(?:\.\d{1,5})?))?$/.exec(text);
      if (!match) throw new UsageError(`--item must be a catalog item variation id, optionally with :<quantity> (VARLATTE:2); got ${text}`);
      return { catalog_object_id: match[1], quantity: match[2] ?? '1' };
    });
    if (items.length && values.amount !== undefined) throw new UsageError('--amount and --item cannot be used together: the items make the amount');
    const who = (['email', 'phone', 'anonymous'] as const).filter((name) => values[name] !== undefined);
    if (who.length > 1) throw new UsageError(`--${who[0]} and --${who[1]} cannot be used together: a payment has one customer, or none (--anonymous)`);
    const status = values.status?.toUpperCase();
    if (status !== undefined && !PAYMENT_STATUSES.includes(status)) throw new UsageError(`--status must be one of ${PAYMENT_STATUSES.join(', ')}; got ${values.status}`);
    const answer = await control(simulatorUrl(values), 'POST', '/simulator/payments', {
      merchant_id: required(values, 'merchant'),
      ...(items.length ? { line_items: items } : { amount: amount(values, 'amount', { min: 1 }) }),
      ...(values.tip !== undefined ? { tip: amount(values, 'tip', { min: 0 }) } : {}),
      ...(values.email ? { email: values.email } : {}),
      ...(values.phone ? { phone: values.phone } : {}),
      ...(values.location ? { location_id: values.location } : {}),
      ...(status ? { status } : {}),
    });
    return print(values.json, answer, () => {
      const p = answer.payment;
      process.stdout.write(
        `payment ${p.id} ${p.status}: ${money(p.amount_money)}${p.tip_money ? ` + tip ${money(p.tip_money)}` : ''} at ${values.merchant} location ${p.location_id}` +
          `${p.customer_id ? `, customer ${p.customer_id}` : ', no customer'}\n`,
      );
      return printWebhooks(answer.webhooks);
    });
  }
  if (command === 'trigger' && subcommand === 'refund') {
    const { values } = flags(rest, { payment: { type: 'string' }, amount: { type: 'string' } });
    const answer = await control(simulatorUrl(values), 'POST', '/simulator/refunds', {
      payment_id: required(values, 'payment'),
      amount: amount(values, 'amount', { min: 1 }),
    });
    return print(values.json, answer, () => {
      process.stdout.write(`refund ${answer.refund.id} ${answer.refund.status}: ${money(answer.refund.amount_money)} of payment ${answer.refund.payment_id}\n`);
      return printWebhooks(answer.webhooks);
    });
  }
  if (command === 'trigger' && subcommand === 'revoke') {
    const { values } = flags(rest, { merchant: { type: 'string' } });
    const answer = await control(simulatorUrl(values), 'POST', '/simulator/revocations', { merchant_id: required(values, 'merchant') });
    return print(values.json, answer, () => {
      process.stdout.write(`merchant ${answer.merchant_id} revoked Tally's access at ${answer.revoked_at}\n`);
      return printWebhooks(answer.webhooks);
    });
  }
  if (command === 'customers' && subcommand === 'add') {
    const { values } = flags(rest, {
      merchant: { type: 'string' },
      email: { type: 'string' },
      phone: { type: 'string' },
      'given-name': { type: 'string' },
      'family-name': { type: 'string' },
    });
    const merchantId = required(values, 'merchant');
    if (!values.email && !values.phone) throw new UsageError('--email or --phone is required: a customer needs one to be matched to a wallet');
    const answer = await control(simulatorUrl(values), 'POST', '/simulator/customers', {
      merchant_id: merchantId,
      ...(values.email ? { email: values.email } : {}),
      ...(values.phone ? { phone: values.phone } : {}),
      ...(values['given-name'] ? { given_name: values['given-name'] } : {}),
      ...(values['family-name'] ? { family_name: values['family-name'] } : {}),
    });
    return print(values.json, answer, () => {
      const c = answer.customer;
      process.stdout.write(`customer ${c.id} of ${merchantId}: ${[c.given_name, c.family_name].join(' ')} ${c.email_address ?? ''} ${c.phone_number ?? ''}\n`);
      if (!answer.webhooks.length) process.stdout.write('  (already a customer: nothing sent)\n');
      return printWebhooks(answer.webhooks);
    });
  }
  if (command === 'merchants' && subcommand === 'add') {
    const { values } = flags(rest, { name: { type: 'string' }, currency: { type: 'string' }, country: { type: 'string' }, id: { type: 'string' }, timezone: { type: 'string' } });
    const answer = await control(simulatorUrl(values), 'POST', '/simulator/merchants', {
      name: required(values, 'name'),
      ...(values.currency ? { currency: values.currency } : {}),
      ...(values.country ? { country: values.country } : {}),
      ...(values.id ? { id: values.id } : {}),
      ...(values.timezone ? { timezone: values.timezone } : {}),
    });
    return print(values.json, answer, () => {
      const m = answer.merchant;
      process.stdout.write(`merchant ${m.id} "${m.business_name}" (${m.country}, ${m.currency}), main location ${m.main_location_id}\n`);
    });
  }
  if (command === 'list' && subcommand === 'merchants') {
    const { values } = flags(rest, {});
    const answer = await control(simulatorUrl(values), 'GET', '/simulator');
    return print(values.json, answer, () => {
      for (const m of answer.merchants) process.stdout.write(`${m.id}  ${m.business_name}  ${m.country} ${m.currency}  main location ${m.main_location_id}\n`);
      process.stdout.write(`webhooks go to ${answer.webhooks?.notification_url ?? '(none)'}\n`);
    });
  }
  if (command === 'list' && subcommand === 'payments') {
    const { values } = flags(rest, { merchant: { type: 'string' } });
    const answer = await control(simulatorUrl(values), 'GET', `/simulator/payments${values.merchant ? `?merchant_id=${encodeURIComponent(values.merchant)}` : ''}`);
    return print(values.json, answer, () => {
      if (!answer.payments.length) process.stdout.write('no payments\n');
      for (const p of answer.payments) {
        const refunded = p.refunds.reduce((sum: number, r: any) => sum + r.amount_money.amount, 0);
        process.stdout.write(
          `${p.id}  ${p.merchant_id}  ${p.status}  ${money(p.amount_money)}${p.tip_money ? ` + tip ${money(p.tip_money)}` : ''}` +
            `${refunded ? `  refunded ${money({ amount: refunded, currency: p.total_money.currency })}` : ''}  ${p.customer_id ?? 'no customer'}  ${p.created_at}\n`,
        );
      }
    });
  }
  if (command === 'send') {
    const { values, positionals } = flags(argv.slice(1), { url: { type: 'string' }, key: { type: 'string' } }, 1);
    const file = positionals[0];
    if (!file) throw new UsageError('send needs a payload file: npm run square -- send <payload.json> --url <url> --key <key>');
    const url = required(values, 'url');
    try {
      new URL(url);
    } catch {
      throw new UsageError(`--url must be the webhook notification URL exactly as registered with Square; got ${url}`);
    }
    const key = required(values, 'key');
    let body: string;
    try {
      body = await readFile(file, 'utf8');
    } catch (error) {
      throw new UsageError(`cannot read ${file}: ${error instanceof Error ? error.message : String(error)}`);
    }
    const delivery = await deliverWebhook({ notificationUrl: url, signatureKey: key, body });
    if (values.json) {
      process.stdout.write(`${JSON.stringify(delivery, null, 2)}\n`);
    } else {
      process.stdout.write(`sent ${file} (${delivery.type ?? 'no type'}, event_id ${delivery.eventId ?? 'none'}) to ${url}\n`);
      process.stdout.write(delivery.status === null ? `  not delivered: ${delivery.answer}\n` : `  answered ${delivery.status}: ${delivery.answer.slice(0, 500)}\n`);
    }
    return delivery.status !== null && delivery.status >= 200 && delivery.status < 300 ? 0 : 1;
  }
  throw new UsageError(`unknown command: ${[command, subcommand].filter(Boolean).join(' ')}`);
}

run(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (error: unknown) => {
    if (error instanceof UsageError) {
      process.stderr.write(`${error.message}\n\n${USAGE}\n`);
      process.exit(2);
    }
    process.stderr.write(`${error instanceof Error ? error.message : String(error)}\n`);
    process.exit(1);
  },
);
