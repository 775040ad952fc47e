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
          include: ['test/unit/**/*.test.ts', 'test/integration/**/*.test.ts'],
          globalSetup: ['test/helpers/global-setup.ts'],
          testTimeout: 30_000,
          hookTimeout: 60_000,
        },
      },
      {
        // The local control plane itself (hack/local-cluster): started by the global setup,
        // built first if its binaries are not cached yet.
        test: {
          name: 'local-cluster',
          include: [LOCAL_CLUSTER_SUITE],
          globalSetup: ['test/helpers/local-cluster-setup.ts'],
          testTimeout: 120_000,
          hookTimeout: 120_000,
        },
      },
      {
        // Cluster-agnostic e2e suites: any KUBECONFIG (the local control plane, or kind via hack/kind-e2e.sh).
        test: {
          name: 'e2e',
          include: ['test/e2e/**/*.test.ts'],
          exclude: [LOCAL_CLUSTER_SUITE],
          testTimeout: 120_000,
          hookTimeout: 120_000,
        },
      },
    ],
  },
});
