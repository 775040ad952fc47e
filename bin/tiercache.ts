#!/usr/bin/env node
import { formatHelp } from '../lib/env.ts';
/**
 * The tiercache CLI. Each subcommand is configured by environment variables (the names the
 * Kubernetes manifests and the seed documents use); `tiercache <command> --help` lists them.
 */
import { isTiercacheError } from '../lib/errors.ts';
import { operatorEnv } from '../operator/config.ts';
import { CLUSTER_USAGE } from '../operator/redis/cli.ts';
import { proxyEnv } from '../proxy/config.ts';

interface Command {
  summary: string;
  help: () => string;
  run: (args: string[]) => Promise<void>;
}

const commands: Record<string, Command> = {
  proxy: {
    summary: 'run the caching proxy (TMDB and crypto routes, cache management, metrics)',
    help: () =>
      `Usage: tiercache proxy\n\nRuns the three-tier caching proxy: L1 memory, L2 Redis (Cluster), L3 the upstream API.\nWith no TMDB_API_KEY and no TMDB_API_URL it serves built-in demo data, labelled as such.\n\nEnvironment variables:\n${formatHelp(proxyEnv)}\n`,
    run: async () => {
      const { runProxy } = await import('../proxy/server.ts');
      await runProxy();
    },
  },
  operator: {
    summary: 'run the Kubernetes operator: CacheClusters → Redis Clusters and regional proxies',
    help: () =>
      `Usage: tiercache operator\n\nWatches CacheCluster resources (tiercache.io/v1alpha1) and reconciles each into a sharded\nRedis Cluster (one StatefulSet per shard) and its regional proxies. Uses the pod's\nServiceAccount in a cluster, else KUBECONFIG. Replicas elect a leader through a Lease.\n\nEnvironment variables:\n${formatHelp(operatorEnv)}\n`,
    run: async () => {
      const { runOperator } = await import('../operator/main.ts');
      await runOperator();
    },
  },
  cluster: {
    summary:
      'manage a Redis Cluster by address: create, check, fix, rebalance, add-shard, remove-shard',
    help: () => CLUSTER_USAGE,
    run: async (args) => {
      const { runClusterCli } = await import('../operator/redis/cli.ts');
      process.exitCode = await runClusterCli(args);
    },
  },
  crds: {
    summary: 'apply the CacheCluster CRD (server-side) and wait until it is served',
    help: () =>
      "Usage: tiercache crds\n\nServer-side applies the CustomResourceDefinitions this version ships (crds/) with the\nfield manager tiercache-operator and waits until each is Established. The Helm chart runs it\nas a pre-upgrade hook (helm installs crds/ once and never upgrades them). Uses the pod's\nServiceAccount in a cluster, else KUBECONFIG.\n",
    run: async () => {
      const { applyCrds } = await import('../operator/crds.ts');
      const { createLogger } = await import('../lib/log.ts');
      await applyCrds(createLogger('info', { service: 'tiercache-crds' }));
    },
  },
  up: {
    summary:
      'run the local stack: a 6-node Redis Cluster, the demo upstream and two regional proxies',
    help: () =>
      'Usage: tiercache up\n\nStarts six redis-server processes formed into 3 shards × 1 replica (ports 7001-7006 when free),\nthe demo upstream unless TMDB_API_KEY or TMDB_API_URL is set, and two proxies sharing the cluster:\nap-southeast-1 on :6635 and eu-west-1 on :6636. The proxy variables (tiercache proxy --help) apply\nto both. Ctrl-C stops everything and removes the temporary data.\n',
    run: async () => {
      const { runLocalStack } = await import('../hack/local-stack/up.ts');
      await runLocalStack();
    },
  },
  'demo-upstream': {
    summary: 'run the TMDB- and CoinGecko-shaped demo upstream (fake API for tests and demos)',
    help: () =>
      'Usage: tiercache demo-upstream [--port N] [--host ADDR] [--api-key KEY]\n\nServes deterministic TMDB-shaped demo data (labelled as such). POST /__demo/control\nwith {"delayMs", "failStatus", "rateLimitSeconds"} makes it slow, failing or rate-limited;\nGET /__demo/stats counts requests.\n\nOptions:\n  --port N        port to listen on (default 0: a free port, printed on start)\n  --host ADDR     address to listen on (default 127.0.0.1)\n  --api-key KEY   reject API requests that do not carry this key (default: accept any)\n',
    run: async (args) => {
      const { parseArgs } = await import('node:util');
      const { values } = parseArgs({
        args,
        options: {
          port: { type: 'string' },
          host: { type: 'string' },
          'api-key': { type: 'string' },
        },
      });
      const { startDemoUpstream } = await import('../proxy/upstreams/demo-server.ts');
      const demo = await startDemoUpstream({
        port: Number(values.port ?? 0),
        host: values.host ?? '127.0.0.1',
        apiKey: values['api-key'],
      });
      process.stdout.write(`demo upstream listening on ${demo.url}\n`);
      process.once('SIGTERM', () => void demo.close().then(() => process.exit(0)));
      process.once('SIGINT', () => void demo.close().then(() => process.exit(0)));
    },
  },
};

function usage(): string {
  const width = Math.max(...Object.keys(commands).map((c) => c.length));
  const lines = Object.entries(commands).map(
    ([name, c]) => `  ${name.padEnd(width)}  ${c.summary}`,
  );
  return `Usage: tiercache <command> [--help]\n\ntiercache runs sharded Redis Cluster caches on Kubernetes and the caching proxies in front of\nrate-limited APIs.\n\nCommands:\n${lines.join('\n')}\n\nRun 'tiercache <command> --help' for a command's options.\n`;
}

async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    process.stdout.write(usage());
    return name === undefined ? 1 : 0;
  }
  const command = commands[name];
  if (!command) {
    process.stderr.write(`tiercache: unknown command '${name}'\n\n${usage()}`);
    return 2;
  }
  if (rest.includes('--help') || rest.includes('-h')) {
    process.stdout.write(command.help());
    return 0;
  }
  await command.run(rest);
  return -1; // keep running: servers exit on their own signals
}

main(process.argv.slice(2)).then(
  (code) => {
    if (code >= 0) process.exit(code);
  },
  (err: unknown) => {
    if (isTiercacheError(err)) {
      process.stderr.write(`tiercache: ${err.message}\n`);
      process.exit(err.code === 'CONFIG_INVALID' ? 78 : 1);
    }
    process.stderr.write(`tiercache: ${(err as Error).stack ?? String(err)}\n`);
    process.exit(1);
  },
);
