/**
 * The simulator as `npm start` uses it in development: mounted under `/square-simulator` on Tally's own HTTP server,
 * answering loopback clients only, its state under DATA_DIR, webhooks signed and sent to Tally's own notification
 * URL, a "Demo Bakery" on a fresh start. The composition root calls this only when `config.squareSimulated` (never in production: config refuses it).
 */
import path from 'node:path';
import type { Config } from '../../config.ts';
import { DEMO_CATALOG } from './orders.ts';
import { createSquareSimulator, type SquareSimulator } from './server.ts';

export const SIMULATOR_PATH = '/square-simulator';
export const SIMULATOR_APP_ID = 'sq0idp-tally-simulator';
export const SIMULATOR_APP_SECRET = 'sq0csp-tally-simulator-secret';
/** The merchant a fresh simulator has, so the README's quick start can name it. */
export const DEMO_MERCHANT = {
  merchantId: 'MLDEMOBAKERY',
  businessName: 'Demo Bakery',
  currency: 'USD',
  country: 'US',
  // Two, so README's rules and promotions limited to a location can be tried (`trigger payment --location`).
  locations: [
    { id: 'LDEMOBAKERYMAIN', name: 'Demo Bakery (main)', timezone: 'America/New_York' },
    { id: 'LDEMOBAKERYAIRPORT', name: 'Demo Bakery (airport kiosk)', timezone: 'America/New_York' },
  ],
};

const isLoopback = (address: string | undefined) =>
  address !== undefined && (address === '::1' || address.startsWith('127.') || address.startsWith('::ffff:127.'));

/**
 * Headers a proxy or tunnel adds (nginx, Caddy, ngrok, cloudflared, load balancers): a request carrying one came
 * through something on this machine that takes requests from elsewhere, so its loopback socket proves nothing.
 * `TRUST_PROXY` changes nothing here: a trusted proxy's client is still not this machine.
 */
const PROXY_HEADERS = [
  'forwarded',
  'x-forwarded-for',
  'x-forwarded-host',
  'x-forwarded-proto',
  'x-forwarded-port',
  'x-forwarded-server',
  'x-real-ip',
  'x-client-ip',
  'x-cluster-client-ip',
  'x-original-forwarded-for',
  'true-client-ip',
  'cf-connecting-ip',
  'fastly-client-ip',
  'via',
] as const;

/** Why the simulator refuses a request (not from this machine, or through a proxy), or undefined when it answers it. */
function simulatorRefusal(request: { socket: { remoteAddress?: string | undefined }; headers: Record<string, unknown> }): string | undefined {
  if (!isLoopback(request.socket.remoteAddress)) return 'The Square simulator answers requests from this machine only.';
  const proxied = PROXY_HEADERS.find((name) => request.headers[name] !== undefined);
  if (proxied) {
    return `The Square simulator answers requests from this machine only, and this one came through a proxy or tunnel (it carries ${proxied}): its control endpoints make payments without credentials, so it must not be exposed through one.`;
  }
  return undefined;
}

export interface DevelopmentSimulator {
  simulator: SquareSimulator;
  /** The configuration with Square's variables pointing at the simulator. */
  config: Config;
  stateFile: string;
}

export function developmentSimulator(
  config: Config,
  options: { notificationUrl: string; redirectUri: string; afterDelivery: (eventId: string) => Promise<string | undefined> },
): DevelopmentSimulator {
  const stateFile = path.join(config.DATA_DIR, 'square-simulator', 'state.json');
  const simulator = createSquareSimulator({
    appId: SIMULATOR_APP_ID,
    appSecret: SIMULATOR_APP_SECRET,
    basePath: SIMULATOR_PATH,
    stateFile,
    webhooks: { notificationUrl: options.notificationUrl, ...(config.SQUARE_WEBHOOK_SIGNATURE_KEY ? { signatureKey: config.SQUARE_WEBHOOK_SIGNATURE_KEY } : {}) },
    redirectUri: options.redirectUri,
    seedMerchants: [DEMO_MERCHANT],
    seedCatalog: DEMO_CATALOG,
    afterDelivery: options.afterDelivery,
  });
  simulator.setUrl(config.API_BASE_URL);
  // Its control endpoints make payments without credentials: answer this machine only, even when HOST is 0.0.0.0,
  // and not through a proxy or tunnel on this machine (its socket is loopback, its client is anyone).
  const handle = simulator.handle.bind(simulator);
  simulator.handle = (request, response) => {
    const refusal = simulatorRefusal(request);
    if (!refusal) return handle(request, response);
    response.writeHead(403, { 'Content-Type': 'application/json' });
    response.end(JSON.stringify({ errors: [{ category: 'AUTHENTICATION_ERROR', code: 'FORBIDDEN', detail: refusal }] }));
  };
  return {
    simulator,
    stateFile,
    config: {
      ...config,
      SQUARE_APP_ID: SIMULATOR_APP_ID,
      SQUARE_APP_SECRET: SIMULATOR_APP_SECRET,
      SQUARE_BASE_URL: simulator.url,
      SQUARE_WEBHOOK_SIGNATURE_KEY: simulator.webhookSignatureKey,
    },
  };
}
