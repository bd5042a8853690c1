// The end-to-end tier (npm run test:e2e): a real headless Chromium against the running service.
// Kept out of `npm test` (package.json's ava.files excludes tests/e2e/) so the default suite needs no browser.
export default {
  files: ['tests/e2e/**/*.test.ts'],
  // Compiled by tests/run.ts to .build/, as npm test's files (package.json's ava.typescript).
  typescript: { rewritePaths: { 'tests/': '.build/tests/' }, compile: false },
  nodeArguments: ['--enable-source-maps'],
  workerThreads: false,
  timeout: '120s',
  concurrency: 1,
};
