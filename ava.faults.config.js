// The fault tier (npm run test:faults): the service as a child process, killed and restarted under load.
// Kept out of `npm test` (package.json ava.files excludes tests/faults/); CI runs it after the other tiers.
export default {
  files: ['tests/faults/**/*.test.ts'],
  // Compiled by tests/run.ts to .build/, as npm test's files (package.json's ava.typescript).
  typescript: { rewritePaths: { 'tests/': '.build/tests/' }, compile: false },
  nodeArguments: ['--enable-source-maps'],
  workerThreads: false,
  timeout: '300s',
  // Two files at a time: each has its own database (or its own embedded server), ports and data directory, and the
  // SIGKILL run (over two minutes) no longer waits for the others: 3.8 → 3.0 minutes on a 2-core AMD machine.
  concurrency: 2,
};
