/**
 * redis_exporter for tests, built from its Go module as the pod runner runs it, and reading a
 * Prometheus text exposition. Exporters a test starts are stopped by `stopExporters()`.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { EXPORTER_GROUPS, ensureBinaries } from '../../hack/local-cluster/binaries.ts';
import { tcpPortFree } from '../../lib/ports.ts';

const running: ChildProcess[] = [];

/** The redis_exporter binary, built on first use (call from beforeAll: a first build takes minutes). */
export const exporterBinary = (): string => ensureBinaries(EXPORTER_GROUPS).redis_exporter!;

async function freeMetricsPort(): Promise<number> {
  for (;;) {
    const port = 40000 + Math.floor(Math.random() * 10000);
    if (await tcpPortFree(port)) return port;
  }
}

/** redis_exporter reading the node on `redisPort`, as the sidecar runs it (a user and password from the environment when given). */
export async function startExporter(
  redisPort: number,
  login: { user?: string; password?: string } = {},
): Promise<{ url: string; log: () => string }> {
  const listen = await freeMetricsPort();
  const proc = spawn(exporterBinary(), [], {
    env: {
      REDIS_ADDR: `redis://127.0.0.1:${redisPort}`,
      ...(login.user ? { REDIS_USER: login.user } : {}),
      ...(login.password ? { REDIS_PASSWORD: login.password } : {}),
      REDIS_EXPORTER_WEB_LISTEN_ADDRESS: `127.0.0.1:${listen}`,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let log = '';
  proc.stdout?.on('data', (d) => (log += d));
  proc.stderr?.on('data', (d) => (log += d));
  running.push(proc);
  return { url: `http://127.0.0.1:${listen}/metrics`, log: () => log };
}

export async function stopExporters(): Promise<void> {
  const all = running.splice(0);
  for (const proc of all) proc.kill('SIGKILL');
  await Promise.all(
    all.map((p) =>
      p.exitCode !== null || p.signalCode !== null
        ? undefined
        : new Promise((r) => p.once('exit', r)),
    ),
  );
}

/** The value of one sample (`name{labels} value`) in a Prometheus text exposition. */
export function sample(metrics: string, series: string): number | undefined {
  const line = metrics.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

/** Every series name an exposition declares (`# TYPE`), with a histogram's or summary's _bucket, _count and _sum. */
export function declaredSeries(metrics: string): Set<string> {
  const names = new Set<string>();
  for (const m of metrics.matchAll(/^# TYPE (\S+) (\S+)$/gm)) {
    const [, name, type] = m;
    names.add(name!);
    if (type === 'histogram' || type === 'summary')
      for (const suffix of ['_bucket', '_count', '_sum']) names.add(`${name}${suffix}`);
  }
  return names;
}
