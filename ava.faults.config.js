// The fault tier (npm run test:faults): the service as a child process, killed and restarted under load.
// Kept out of `npm test` (package.json ava.files excludes tests/faults/); CI runs it after the other tiers.
export default {
  files: ['tests/faults/**/*.test.ts'],
  extensions: { ts: 'module' },
  nodeArguments: ['--import=tsx'],
  workerThreads: false,
  timeout: '300s',
  concurrency: 2,
};
