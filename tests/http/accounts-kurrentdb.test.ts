/**
 * The whole accounts suite (accounts.test.ts) again with the service's events in KurrentDB (`TEST_EVENT_STORE=kurrentdb`:
 * the real client to the in-process protocol server), so the feature answers the same on both event stores.
 */
process.env.TEST_EVENT_STORE = 'kurrentdb';
await import('./accounts.test.ts');
