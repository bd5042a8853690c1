/** The tests' Square: the application's simulator (adapters/square/simulator/), on its own socket, state in memory. */
export * from '../../adapters/square/simulator/server.ts';

import { TEST_APP_ID, TEST_APP_SECRET, type Fault, type SquareTestServer } from '../../adapters/square/simulator/server.ts';

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

/**
 * A fault that holds the normal answer until `release` is called: "Square is slow" for as long as the test says,
 * however fast or loaded the machine is (a fixed `delayMs` races the client's timeout and the test's own pace).
 */
export function heldAnswer(): { fault: Fault; release: () => void } {
  let release = () => {};
  const released = new Promise<void>((resolve) => (release = resolve));
  return { fault: { released }, release };
}
