/**
 * One change, measured: tiercache at an earlier commit (BENCH_BASE, default HEAD) against this
 * working tree, side by side on one CPU over the production run's Zipf trace (20 000 movie URLs,
 * L1 at its default size, a 3-master Redis Cluster), every URL warmed in both. Prints the median
 * ratio of req/s (this tree / base) and each round's. On this VM the host's noise moves single
 * rounds by ±10 %; side by side both servers suffer it alike, and a tree against itself reads
 * about 1.0 (rounds 0.92–1.06).
 *
 *   npm run bench:compare   (BENCH_BASE=<commit> the base, BENCH_SIDE_ROUNDS=5 rounds of
 *                            BENCH_SECONDS=5, BENCH_URLS=20000, BENCH_PIN=0 to not pin CPUs)
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startCluster } from '../test/helpers/redis.ts';
import {
  benchProxyEnv,
  measure,
  pinServer,
  reserveServerCpu,
  type Server,
  sideBySide,
  startServer,
  waitForL2,
} from './lib.ts';
import { warm, zipfTrace } from './production.ts';

const base = process.env.BENCH_BASE ?? 'HEAD';
const rounds = Number(process.env.BENCH_SIDE_ROUNDS ?? 5);
const seconds = Number(process.env.BENCH_SECONDS ?? 5);
const repo = fileURLToPath(new URL('..', import.meta.url));
const git = (...args: string[]) =>
  execFileSync('git', ['-C', repo, ...args], { encoding: 'utf8' }).trim();

console.log(reserveServerCpu());
const commit = git('rev-parse', '--short', base);
// The base as a worktree of its own, sharing this checkout's node_modules.
const parent = mkdtempSync(join(tmpdir(), 'tiercache-base-'));
const baseDir = join(parent, 'tree');
git('worktree', 'add', '--detach', baseDir, commit);
symlinkSync(join(repo, 'node_modules'), join(baseDir, 'node_modules'));
const cluster = await startCluster(3);
const servers: Server[] = [];
try {
  const upstream = await startServer([join(repo, 'bench/servers/upstream-movies.ts')]);
  servers.push(upstream);
  const env = benchProxyEnv(upstream.url, { REDIS_CLUSTER_NODES: cluster.spec });
  const before = await startServer([join(baseDir, 'bin/tiercache.ts'), 'proxy'], env);
  servers.push(before);
  const after = await startServer([join(repo, 'bin/tiercache.ts'), 'proxy'], env);
  servers.push(after);
  for (const s of [before, after]) pinServer(s);
  await waitForL2([before, after]);
  for (const s of [before, after]) await warm(s);
  const trace = zipfTrace();
  const run = (s: Server) => measure('', s, '', seconds, { trace });
  // Warm-up: V8 optimises both servers' paths, L1 settles into the trace's working set.
  for (const s of [before, after]) await run(s);
  const r = await sideBySide(
    () => run(after),
    () => run(before),
    rounds,
  );
  console.log(
    `this tree / ${commit}: ${r.ratio.toFixed(2)}× req/s side by side (rounds ${r.rounds})`,
  );
} finally {
  await Promise.all(servers.map((s) => s.stop()));
  await cluster.stop();
  git('worktree', 'remove', '--force', baseDir);
  rmSync(parent, { recursive: true, force: true });
}
