/** The tests' Square: the application's simulator (adapters/square/simulator/), on its own socket, state in memory. */
export * from '../../adapters/square/simulator/server.ts';

import { TEST_APP_ID, TEST_APP_SECRET, type SquareTestServer } from '../../adapters/square/simulator/server.ts';

/** What a test service needs to reach the tests' Square, take its OAuth grants and check its webhooks' signatures. */
export function squareEnv(square: SquareTestServer, webhookSignatureKey: string, apiBaseUrl: string): Record<string, string> {
  return {
    SQUARE_BASE_URL: square.url,
    SQUARE_APP_ID: TEST_APP_ID,
    SQUARE_APP_SECRET: TEST_APP_SECRET,
    SQUARE_WEBHOOK_SIGNATURE_KEY: webhookSignatureKey,
    API_BASE_URL: apiBaseUrl,
  };
}
