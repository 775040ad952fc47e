/**
 * The metrics sidecar against a real redis-server configured by the operator's own auth.conf:
 * redis_exporter (built from its Go module, as the pod runner runs it) logs in as its own ACL
 * user and reports the node's keys, memory and cluster state with no permission error, while
 * that user can read no key — its password sits in the pod's environment.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { withDefaults } from '../../operator/api/types.ts';
import { Connections, parseInfo } from '../../operator/redis/connections.ts';
import { EXPORTER_USER } from '../../operator/resources/names.ts';
import { authConf } from '../../operator/resources/redis-config.ts';
import { exporterBinary, sample, startExporter, stopExporters } from '../helpers/exporter.ts';
import { freeRedisPort } from '../helpers/ports.ts';
import { waitFor } from '../helpers/wait.ts';

const PASSWORD = 'exporter-test-clients';
const EXPORTER_PASSWORD = 'exporter-test-metrics';
const started: { proc: ChildProcess; dir?: string }[] = [];

beforeAll(() => {
  exporterBinary();
}, 1_800_000);

const exited = (p: ChildProcess) =>
  p.exitCode !== null || p.signalCode !== null
    ? Promise.resolve()
    : new Promise((r) => p.once('exit', r));

afterEach(async () => {
  await stopExporters();
  const all = started.splice(0);
  for (const { proc } of all) proc.kill('SIGKILL');
  await Promise.all(all.map(({ proc }) => exited(proc)));
  for (const { dir } of all) if (dir) rmSync(dir, { recursive: true, force: true });
});

/** One cluster-enabled node owning every slot, configured as the operator configures it. */
async function redisNode(persistence: boolean): Promise<{ addr: string; port: number }> {
  const redis = withDefaults({
    redis: { persistence: { enabled: persistence }, exporter: { enabled: true } },
  }).redis;
  const dir = mkdtempSync(join(tmpdir(), 'tiercache-exporter-'));
  writeFileSync(
    join(dir, 'auth.conf'),
    authConf(redis, [PASSWORD], { exporter: EXPORTER_PASSWORD }),
  );
  const port = await freeRedisPort();
  const persistenceArgs = persistence
    ? ['--appendonly', 'yes']
    : ['--save', '', '--appendonly', 'no'];
  const proc = spawn(
    'redis-server',
    [
      join(dir, 'auth.conf'),
      ...['--port', String(port), '--bind', '127.0.0.1', '--dir', dir],
      ...['--cluster-enabled', 'yes', '--maxmemory', '64mb', ...persistenceArgs],
    ],
    { stdio: 'ignore' },
  );
  started.push({ proc, dir });
  return { addr: `127.0.0.1:${port}`, port };
}

async function scrape(url: string): Promise<string> {
  const res = await fetch(url);
  expect(res.status).toBe(200);
  return res.text();
}

describe.each([
  ['off (the default)', false],
  ['on', true],
])('the metrics sidecar with persistence %s', (_, persistence) => {
  it("reports the node's keys, memory and cluster state, and reads no key", async () => {
    const node = await redisNode(persistence);
    const conns = new Connections({ password: PASSWORD, timeoutMs: 2000 });
    try {
      await waitFor(
        'redis to answer',
        () => conns.call(node.addr, 'PING').then(() => true),
        10_000,
      );
      await conns.call(node.addr, 'CLUSTER', 'ADDSLOTSRANGE', 0, 16383);
      await waitFor(
        'the cluster to be ok',
        async () =>
          parseInfo(await conns.call<string>(node.addr, 'CLUSTER', 'INFO')).cluster_state === 'ok',
        10_000,
        50,
      );
      for (let i = 0; i < 100; i++) await conns.call(node.addr, 'SET', `{k}${i}`, 'v');

      const metrics = await startExporter(node.port, {
        user: EXPORTER_USER,
        password: EXPORTER_PASSWORD,
      });
      const first = await waitFor('a scrape', () => scrape(metrics.url).catch(() => ''), 10_000);
      expect(sample(first, 'redis_up')).toBe(1);
      expect(sample(first, 'redis_db_keys{db="db0"}')).toBe(100);
      expect(sample(first, 'redis_cluster_state')).toBe(1);
      expect(sample(first, 'redis_cluster_slots_assigned')).toBe(16384);
      expect(sample(first, 'redis_memory_max_bytes')).toBe(64 * 1024 * 1024);
      expect(sample(first, 'redis_exporter_last_scrape_error{err=""}')).toBe(0);

      // Every scrape reads the node afresh.
      await conns.call(node.addr, 'SET', '{k}one-more', 'v');
      expect(sample(await scrape(metrics.url), 'redis_db_keys{db="db0"}')).toBe(101);

      // The exporter was refused nothing it asked for, and its user opens no data.
      const refusals = await conns.call<unknown[]>(node.addr, 'ACL', 'LOG');
      expect(refusals).toEqual([]);
      expect(metrics.log()).not.toMatch(/NOPERM|level=error/);
      const asExporter = new Redis({
        port: node.port,
        host: '127.0.0.1',
        username: EXPORTER_USER,
        password: EXPORTER_PASSWORD,
        maxRetriesPerRequest: 0,
      });
      try {
        expect(await asExporter.dbsize()).toBe(101);
        await expect(asExporter.get('{k}1')).rejects.toThrow(/NOPERM/);
        await expect(asExporter.set('{k}1', 'x')).rejects.toThrow(/NOPERM/);
      } finally {
        asExporter.disconnect();
      }
      expect(await conns.call(node.addr, 'DBSIZE')).toBe(101);
    } finally {
      conns.close();
    }
  });
});
