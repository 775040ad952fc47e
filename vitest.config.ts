import { defineConfig } from 'vitest/config';

const LOCAL_CLUSTER_SUITE = 'test/e2e/local-cluster.test.ts';

export default defineConfig({
  test: {
    pool: 'forks',
    reporters: ['default', 'json'],
    outputFile: { json: 'reports/vitest.json' },
    passWithNoTests: true,
    projects: [
      {
        // Unit tests and integration tests against real redis-server processes.
        test: {
          name: 'tiercache',
          // Most of these wait on redis-server and sockets, not the CPU: two files at a time
          // use a 2-core machine better than the default (one worker per core but one).
          maxWorkers: 2,
          include: ['test/unit/**/*.test.ts', 'test/integration/**/*.test.ts'],
          globalSetup: ['test/helpers/global-setup.ts'],
          testTimeout: 30_000,
          hookTimeout: 60_000,
        },
      },
      {
        // e2e suites against a real Kubernetes API: the local control plane (hack/local-cluster,
        // started by the global setup and built first when its binaries are not cached), or
        // any cluster given by E2E_KUBECONFIG (kind, via hack/kind-e2e.sh) — then the suite
        // that tests the local control plane itself is left out.
        test: {
          name: 'e2e',
          include: ['test/e2e/**/*.test.ts'],
          exclude: process.env.E2E_KUBECONFIG ? [LOCAL_CLUSTER_SUITE] : [],
          globalSetup: ['test/helpers/local-cluster-setup.ts'],
          // One suite at a time: they share one control plane, which one suite restarts.
          fileParallelism: false,
          testTimeout: 120_000,
          hookTimeout: 120_000,
        },
      },
    ],
  },
});
