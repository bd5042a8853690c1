/**
 * The whole ingestion suite (ingestion.test.ts) again, with the webhook worker on a thread of its own
 * (`WEBHOOK_WORKER_THREAD=true`): outcomes, refunds, claims, retries and re-drives, the poll beside it, the state
 * it decides on never behind a write, and its log lines in the service's log (the suite reads them).
 */
process.env.TEST_WEBHOOK_WORKER_THREAD = 'true';
await import('./ingestion.test.ts');
