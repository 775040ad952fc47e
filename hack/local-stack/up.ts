/**
 * `tiercache up` (`npm start`): the whole data path on one machine, as the seeds ran it with
 * docker-compose — six redis-server processes formed into 3 shards × 1 replica by the cluster
 * manager, the demo upstream unless TMDB_API_KEY is set, and two regional proxies sharing the
 * cluster on ports 6635 and 6636. Ctrl-C stops everything and removes the temporary data.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createLogger } from '../../lib/log.ts';
import { tryInstallDebianPackage } from '../../lib/packages.ts';
import { tcpPortFree as free } from '../../lib/ports.ts';
import { Connections } from '../../operator/redis/connections.ts';
import { createCluster } from '../../operator/redis/create.ts';
import type { ProxyInstance } from '../../proxy/app.ts';
import { loadProxyConfig } from '../../proxy/config.ts';
import { openProxy } from '../../proxy/open.ts';
import { type DemoUpstream, startDemoUpstream } from '../../proxy/upstreams/demo-server.ts';

const REGIONS = [
  { region: 'ap-southeast-1', port: 6635 },
  { region: 'eu-west-1', port: 6636 },
];
const PREFERRED_REDIS_PORTS = [7001, 7002, 7003, 7004, 7005, 7006]; // as in seed 002

const say = (line: string) => process.stdout.write(`${line}\n`);

async function redisPorts(): Promise<number[]> {
  const preferred = await Promise.all(
    PREFERRED_REDIS_PORTS.map(async (p) => (await free(p)) && (await free(p + 10000))),
  );
  if (preferred.every(Boolean)) return PREFERRED_REDIS_PORTS;
  const ports: number[] = [];
  for (let p = 27001; ports.length < 6 && p < 28000; p++)
    if ((await free(p)) && (await free(p + 10000))) ports.push(p);
  return ports;
}

async function startRedisNodes(dir: string): Promise<{ procs: ChildProcess[]; addrs: string[] }> {
  const ports = await redisPorts();
  const procs = ports.map((port) =>
    spawn(
      'redis-server',
      [
        '--port',
        String(port),
        '--bind',
        '127.0.0.1',
        '--cluster-enabled',
        'yes',
        '--cluster-config-file',
        `nodes-${port}.conf`,
        '--dir',
        dir,
        '--save',
        '',
        '--appendonly',
        'no',
        '--cluster-node-timeout',
        '3000',
      ],
      {
        stdio: 'ignore',
      },
    ),
  );
  const addrs = ports.map((p) => `127.0.0.1:${p}`);
  const conns = new Connections({ timeoutMs: 2000 });
  try {
    for (const a of addrs) {
      for (let i = 0; ; i++) {
        try {
          await conns.call(a, 'PING');
          break;
        } catch (err) {
          if (i > 100) throw err;
          await new Promise((r) => setTimeout(r, 50));
        }
      }
    }
    await createCluster(conns, addrs, { replicas: 1, log: (l) => say(`  ${l}`) });
  } finally {
    conns.close();
  }
  return { procs, addrs };
}

export async function runLocalStack(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'tiercache-up-'));
  const redisProcs: ChildProcess[] = [];
  const proxies: ProxyInstance[] = [];
  let demo: DemoUpstream | undefined;
  const stop = async () => {
    await Promise.all(proxies.map((p) => p.close()));
    await demo?.close();
    for (const p of redisProcs) p.kill('SIGTERM');
    await Promise.all(
      redisProcs.map((p) =>
        p.exitCode === null ? new Promise((r) => p.once('exit', r)) : undefined,
      ),
    );
    rmSync(dir, { recursive: true, force: true });
  };
  process.once('SIGINT', () => void stop().then(() => process.exit(0)));
  process.once('SIGTERM', () => void stop().then(() => process.exit(0)));

  let nodes: string[] = [];
  if (tryInstallDebianPackage('redis-server', 'redis-server')) {
    say('forming a Redis Cluster of 3 shards × 1 replica…');
    const r = await startRedisNodes(dir);
    redisProcs.push(...r.procs);
    nodes = r.addrs;
  } else {
    say(
      'WARNING: redis-server is not installed (apt-get install redis-server, or brew install redis): the proxies run with L1 only.',
    );
  }
  const env = process.env;
  if (!env.TMDB_API_KEY && !env.TMDB_API_URL) demo = await startDemoUpstream();
  const adminToken = env.ADMIN_TOKEN ?? randomBytes(12).toString('hex');
  for (const { region, port } of REGIONS) {
    const config = loadProxyConfig({
      ...env,
      PORT: String(port),
      HOST: env.HOST ?? '127.0.0.1',
      REGION: region,
      ADMIN_TOKEN: adminToken,
      LOG_LEVEL: env.LOG_LEVEL ?? 'warn',
      ...(demo ? { TMDB_API_URL: demo.url } : {}),
      ...(nodes.length > 0 ? { REDIS_CLUSTER_NODES: nodes.join(',') } : { USE_REDIS: 'false' }),
    });
    const proxy = await openProxy(
      config,
      createLogger(config.logLevel, { service: 'tiercache-proxy', region }),
    );
    await proxy.app.listen({ port: config.port, host: config.host });
    proxies.push(proxy);
  }
  say('');
  say('tiercache local stack is running:');
  if (nodes.length > 0) say(`  Redis Cluster   ${nodes.join(' ')}  (3 masters, 3 replicas)`);
  say(
    `  upstream        ${demo ? `${demo.url}  (built-in DEMO data, not from TMDB)` : (env.TMDB_API_URL ?? 'https://api.themoviedb.org')}`,
  );
  for (const { region, port } of REGIONS)
    say(`  proxy ${region.padEnd(15)} http://127.0.0.1:${port}`);
  say(`  admin token     ${env.ADMIN_TOKEN ? '(from ADMIN_TOKEN)' : adminToken}`);
  say(`  data            ${dir}  (removed on exit)`);
  say('');
  say('Try:');
  say('  curl -i http://127.0.0.1:6635/3/movie/550          # MISS, then L1');
  say('  curl -i http://127.0.0.1:6636/3/movie/550          # L2: shared with the other region');
  const bearer = `-H "Authorization: Bearer ${env.ADMIN_TOKEN ? '$ADMIN_TOKEN' : adminToken}"`;
  say(`  curl -s ${bearer} http://127.0.0.1:6635/cache/info`);
  say(`  curl -X POST ${bearer} http://127.0.0.1:6635/cache/clear`);
  if (nodes.length > 0) say(`  npx tiercache cluster check ${nodes[0]}`);
  say('');
  say('Ctrl-C stops everything and removes the temporary data.');
}
