import { defineConfig } from 'vitest/config';

// Integration tests start real containers as root; they share /run and the machine's two cores, so files run
// one at a time and each test has room for a few container starts.
export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    fileParallelism: false,
    testTimeout: 60_000,
    hookTimeout: 60_000,
    pool: 'forks',
  },
});
