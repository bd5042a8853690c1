/**
 * Gauges read from the database on a scrape: a read that fails shows as unknown (NaN, or no series per projection)
 * and is counted, never as 0. A gauge without labels reset reads 0, so the backlog and failed-webhook gauges fell
 * to 0 while the database was unreachable and alerts on them cleared (review of 2026-12-07, seventh round).
 */
import test from 'ava';
import { createMetrics } from '../../adapters/metrics.ts';

function samples(text: string): Map<string, string> {
  return new Map(
    text
      .split('\n')
      .filter((line) => line && !line.startsWith('#'))
      .map((line) => {
        const at = line.lastIndexOf(' ');
        return [line.slice(0, at), line.slice(at + 1)] as const;
      }),
  );
}

test('an inbox or feed reading that fails is NaN and counted; one that succeeds is its value', async (t) => {
  const errors: unknown[] = [];
  const metrics = createMetrics({ onCollectError: (error) => errors.push(error) });
  const fail = () => Promise.reject(new Error('connect ECONNREFUSED'));
  metrics.observeInbox(() => Promise.resolve({ unprocessed: 5000, oldestDueAgeSeconds: 420, failed: 3 }));
  metrics.observeFeedHorizon(() => Promise.resolve({ ageSeconds: 12 }));
  const up = samples(await metrics.exposition());
  t.is(up.get('tally_webhook_inbox_unprocessed'), '5000');
  t.is(up.get('tally_webhook_inbox_oldest_due_age_seconds'), '420');
  t.is(up.get('tally_webhooks_failed'), '3');
  t.is(up.get('tally_event_feed_horizon_age_seconds'), '12');
  // Every reading's failure series is there from the start, at 0: its first failure is an increase.
  for (const reading of ['projections', 'inbox', 'feed']) t.is(up.get(`tally_metrics_read_failures_total{reading="${reading}"}`), '0', reading);

  // The database goes away: observing the probes again drops the inbox's shared reading, so the next scrape reads.
  metrics.observeInbox(fail);
  metrics.observeFeedHorizon(fail);
  const unknown = samples(await metrics.exposition());
  for (const name of ['tally_webhook_inbox_unprocessed', 'tally_webhook_inbox_oldest_due_age_seconds', 'tally_webhooks_failed', 'tally_event_feed_horizon_age_seconds']) {
    // prom-client writes `Nan`; Prometheus reads NaN in any case (Go's ParseFloat).
    t.is(unknown.get(name)?.toLowerCase(), 'nan', name);
  }
  t.is(errors.length, 2);
  // A failure is counted as the gauges collect, after the counters are written: the next scrape shows the ones before it.
  const next = samples(await metrics.exposition());
  t.is(next.get('tally_metrics_read_failures_total{reading="inbox"}'), '1');
  t.is(next.get('tally_metrics_read_failures_total{reading="feed"}'), '1');
});

test('a projections reading that fails leaves their series out and is counted', async (t) => {
  const metrics = createMetrics();
  metrics.observeProjections({
    status: () => [{ name: 'wallets', state: 'running', position: undefined }],
    headPosition: () => Promise.reject(new Error('connect ECONNREFUSED')),
    isAfter: () => false,
  });
  const text = await metrics.exposition();
  t.notRegex(text, /^tally_projection_lag_events\{/m);
  // Counted as the gauges collect: the next scrape shows it (the reading is shared for a second, so read once).
  t.is(samples(await metrics.exposition()).get('tally_metrics_read_failures_total{reading="projections"}'), '1');
});
