/** Shared benchmark plumbing: servers as child processes, wrk/autocannon runs, a printed table. */
import { type ChildProcess, execFile, execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import autocannon, { type Request } from 'autocannon';
import { hasBinary, tryInstallDebianPackage } from '../lib/packages.ts';
import { waitFor } from '../test/helpers/wait.ts';

const run = promisify(execFile);

export interface Server {
  url: string;
  proc: ChildProcess;
  stop(): Promise<void>;
}

/** Sends `signal` and resolves once the process has exited. */
export function stopProcess(proc: ChildProcess, signal: NodeJS.Signals): Promise<void> {
  return new Promise((resolve) => {
    if (proc.exitCode !== null || proc.signalCode !== null) return resolve();
    proc.once('exit', () => resolve());
    proc.kill(signal);
  });
}

/** Spawns `node <args>` and resolves with the URL it prints (`listening on …` or a pino address line). */
export function startServer(args: string[], env: Record<string, string> = {}): Promise<Server> {
  return new Promise((resolve, reject) => {
    const proc = spawn(process.execPath, args, {
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    const onData = (d: Buffer) => {
      out += d.toString();
      const m = /listening on (http:\/\/\S+)/.exec(out) ?? /"address":"(http:\/\/[^"]+)"/.exec(out);
      if (m) {
        proc.stdout!.off('data', onData);
        resolve({
          url: m[1]!,
          proc,
          stop: () => stopProcess(proc, 'SIGTERM'),
        });
      }
    };
    proc.stdout!.on('data', onData);
    proc.stderr!.on('data', (d) => {
      out += d.toString();
    });
    proc.once('exit', (code) => reject(new Error(`${args.join(' ')} exited with ${code}: ${out}`)));
  });
}

/** The environment of a tiercache proxy under benchmark: `upstream` as TMDB, any free port on loopback. */
export function benchProxyEnv(
  upstream: string,
  extra: Record<string, string> = {},
): Record<string, string> {
  return {
    TMDB_API_URL: upstream,
    TMDB_API_KEY: 'bench',
    HOST: '127.0.0.1',
    PORT: '0',
    LOG_LEVEL: 'info',
    ...extra,
  };
}

/** Resolves once every proxy says its L2 is connected (`/ready` → l2: ok). */
export async function waitForL2(proxies: Server[]): Promise<void> {
  for (const p of proxies)
    await waitFor(
      `L2 of ${p.url}`,
      async () => ((await (await fetch(`${p.url}/ready`)).json()) as { l2: string }).l2 === 'ok',
      20_000,
    );
}

export interface Result {
  name: string;
  rps: number;
  p99: number;
  non2xx: number;
  errors: number;
  /** Server CPU time (all its threads) per request in µs: steadier than req/s on a shared 2-core box. */
  cpuUs: number;
}

const CLOCK_TICKS =
  Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;

/** The child processes of `pid` (nginx's workers), from pgrep. */
function childrenOf(pid: number): number[] {
  try {
    return execFileSync('pgrep', ['-P', String(pid)], { encoding: 'utf8' })
      .split('\n')
      .filter(Boolean)
      .map(Number);
  } catch {
    return []; // pgrep exits 1 when there are none
  }
}

/** utime + stime of a process and its children in µs, from /proc (NaN where there is no /proc). */
function cpuTimeUs(pid: number | undefined): number {
  if (pid === undefined) return Number.NaN;
  try {
    let ticks = 0;
    for (const p of [pid, ...childrenOf(pid)]) {
      const fields = readFileSync(`/proc/${p}/stat`, 'utf8').split(') ')[1]!.split(' ');
      ticks += Number(fields[11]) + Number(fields[12]);
    }
    return (ticks / CLOCK_TICKS) * 1e6;
  } catch {
    return Number.NaN;
  }
}

// On a fresh machine the benchmarks install what they run from Debian's packages (as root):
// redis-server for L2, and wrk (without it they fall back to autocannon).
tryInstallDebianPackage('redis-server', 'redis-server');

/** The load generator: wrk (one thread, as the design's baselines were measured) when installed, else autocannon. */
export const loadGenerator = tryInstallDebianPackage('wrk', 'wrk')
  ? 'wrk -t1 -c50'
  : 'autocannon -c50';

/** The CPU reserved for the servers being measured, once reserveServerCpu() has run. */
let serverCpu: number | undefined;

/**
 * CPU placement: the servers being measured get the last CPU to themselves; this process and
 * everything it starts afterwards (load generator, Redis, upstream) run on the others. With the
 * load generator and the server on one core, each run measured their fight for it as much as
 * the server. Off with BENCH_PIN=0, or where taskset or a second CPU is missing.
 */
export function reserveServerCpu(): string {
  const cpus = availableParallelism();
  if (process.env.BENCH_PIN === '0' || cpus < 2 || !hasBinary('taskset')) return 'no CPU pinning';
  execFileSync('taskset', ['-a', '-cp', `0-${cpus - 2}`, String(process.pid)], { stdio: 'ignore' });
  serverCpu = cpus - 1;
  return `measured servers pinned to CPU ${serverCpu}, load generator and Redis on CPU 0-${cpus - 2}`;
}

/** Moves a server (all its threads, and its child processes such as nginx workers) onto the CPU reserved for measured servers. */
export function pinServer(server: Server): void {
  if (serverCpu === undefined || server.proc.pid === undefined) return;
  const pids = [server.proc.pid, ...childrenOf(server.proc.pid)].map(String);
  for (const pid of pids)
    execFileSync('taskset', ['-a', '-cp', String(serverCpu), pid], { stdio: 'ignore' });
}

function wrkMs(value: string, unit: string): number {
  const n = Number(value);
  return unit === 'us' ? n / 1000 : unit === 's' ? n * 1000 : n;
}

/** A list of request paths a load generator cycles through, also written to a file for wrk and vegeta. */
export interface Trace {
  paths: string[];
  file: string;
}

export function writeTrace(paths: string[]): Trace {
  const file = join(mkdtempSync(join(tmpdir(), 'tiercache-trace-')), 'paths.txt');
  writeFileSync(file, `${paths.join('\n')}\n`);
  return { paths, file };
}

function wrkScript(name: string, lua: string): string {
  const script = join(mkdtempSync(join(tmpdir(), 'tiercache-bench-')), name);
  writeFileSync(script, lua);
  return script;
}

async function measureWrk(
  name: string,
  url: string,
  seconds: number,
  opts: MeasureOptions,
): Promise<Omit<Result, 'cpuUs'> & { total: number }> {
  const args = ['-t1', '-c50', `-d${seconds}s`, '--latency'];
  if (opts.uniquePaths)
    args.push(
      '-s',
      wrkScript(
        'unique.lua',
        `local n = 0\nrequest = function()\n  n = n + 1\n  return wrk.format(nil, "${opts.uniquePaths}" .. n)\nend\n`,
      ),
    );
  if (opts.trace)
    // Requests formatted once, in init (wrk's Host header is set by then), so wrk's own cost
    // per request stays that of one fixed path; each run starts at a random point of the trace.
    args.push(
      '-s',
      wrkScript(
        'trace.lua',
        `local reqs = {}\nlocal i = 0\ninit = function(args)\n  for line in io.lines("${opts.trace.file}") do reqs[#reqs + 1] = wrk.format("GET", line) end\n  math.randomseed(os.time() + os.clock() * 1e6)\n  i = math.random(#reqs)\nend\nrequest = function()\n  i = i + 1\n  if i > #reqs then i = 1 end\n  return reqs[i]\nend\n`,
      ),
    );
  const { stdout: out } = await run('wrk', [...args, url], { encoding: 'utf8' });
  const rps = Number(/Requests\/sec:\s+([\d.]+)/.exec(out)?.[1] ?? 0);
  const p99 = /99%\s+([\d.]+)(us|ms|s)/.exec(out);
  const non2xx = Number(/Non-2xx or 3xx responses:\s+(\d+)/.exec(out)?.[1] ?? 0);
  const errors = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(out);
  return {
    name,
    rps,
    total: Number(/(\d+) requests in/.exec(out)?.[1] ?? 0),
    p99: p99 ? wrkMs(p99[1]!, p99[2]!) : Number.NaN,
    non2xx,
    errors: errors ? errors.slice(1).reduce((a, b) => a + Number(b), 0) : 0,
  };
}

export interface MeasureOptions {
  /** Every request to a new path: this prefix and a counter. */
  uniquePaths?: string;
  /** Requests cycle through the trace's paths. */
  trace?: Trace;
}

export async function measure(
  name: string,
  server: Server,
  path: string,
  seconds: number,
  opts: MeasureOptions = {},
): Promise<Result> {
  const url = server.url + path;
  const cpuBefore = cpuTimeUs(server.proc.pid);
  let r: Omit<Result, 'cpuUs'> & { total: number };
  if (loadGenerator.startsWith('wrk')) r = await measureWrk(name, url, seconds, opts);
  else {
    let n = 0;
    const { uniquePaths, trace } = opts;
    const requests = uniquePaths
      ? [{ setupRequest: (req: Request) => ({ ...req, path: `${uniquePaths}${n++}` }) }]
      : trace
        ? [
            {
              setupRequest: (req: Request) => ({
                ...req,
                path: trace.paths[n++ % trace.paths.length],
              }),
            },
          ]
        : undefined;
    const a = await autocannon({
      url,
      connections: 50,
      pipelining: 1,
      duration: seconds,
      ...(requests ? { requests } : {}),
    });
    r = {
      name,
      rps: a.requests.average,
      total: a.requests.total,
      p99: a.latency.p99,
      non2xx: a.non2xx,
      errors: a.errors,
    };
  }
  const { total, ...rest } = r;
  return { ...rest, cpuUs: (cpuTimeUs(server.proc.pid) - cpuBefore) / Math.max(1, total) };
}

export function printTable(rows: (Result & { vs?: string })[]): void {
  const cols = (name: string, rps: string, p99: string, cpu: string, bad: string, vs: string) =>
    `${name.padEnd(28)} ${rps.padStart(7)} ${p99.padStart(7)} ${cpu.padStart(8)} ${bad.padStart(4)}  ${vs}`;
  console.log(
    cols(
      'path',
      'req/s',
      'p99 ms',
      'µs CPU',
      'bad',
      'ratio (µs CPU = server CPU time per request)',
    ),
  );
  for (const r of rows) {
    const bad = String(r.non2xx + r.errors);
    console.log(
      cols(r.name, r.rps.toFixed(0), r.p99.toFixed(1), r.cpuUs.toFixed(1), bad, r.vs ?? ''),
    );
  }
}

/** Zipf(s) over ranks 0..n-1 by inverse CDF on precomputed weights. */
export function zipf(n: number, s: number, random: () => number = Math.random): () => number {
  const cdf: number[] = [];
  let total = 0;
  for (let i = 0; i < n; i++) {
    total += 1 / (i + 1) ** s;
    cdf.push(total);
  }
  return () => {
    const x = random() * total;
    let lo = 0;
    let hi = n - 1;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (cdf[mid]! < x) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  };
}

export interface FixedRateResult {
  name: string;
  rate: number;
  /** Requests per second actually sent (vegeta's rate). */
  sent: number;
  p50: number;
  p99: number;
  max: number;
  /** Answers other than 200, and transport errors. */
  bad: number;
}

const MAX_CONNECTIONS = 64;

/**
 * Open-loop load at a fixed rate (vegeta): requests leave on schedule whatever the server is
 * doing, so a stall shows in the latencies instead of slowing the sender down (closed-loop
 * tools like wrk hide it). Latencies in ms.
 */
export async function fixedRate(
  name: string,
  server: Server,
  trace: Trace,
  rate: number,
  seconds: number,
  vegeta: string,
): Promise<FixedRateResult> {
  const dir = mkdtempSync(join(tmpdir(), 'tiercache-vegeta-'));
  const targets = join(dir, 'targets.txt');
  writeFileSync(targets, trace.paths.map((p) => `GET ${server.url}${p}`).join('\n'));
  const results = join(dir, 'results.bin');
  await run(vegeta, [
    'attack',
    `-rate=${rate}/1s`,
    `-duration=${seconds}s`,
    `-targets=${targets}`,
    `-output=${results}`,
    // Go's client asks for gzip unless told otherwise; wrk asks for no encoding, nor does this.
    '-header=Accept-Encoding: identity',
    '-timeout=10s',
    // At most 64 connections (wrk uses 50): uncapped, vegeta opens one more whenever latency
    // rises, and at 5 000 req/s it drove nginx past its 1 024 connections into errors. Capped,
    // a server too slow for the rate shows as a lower `sent` rate and higher latencies.
    `-max-workers=${MAX_CONNECTIONS}`,
    `-max-connections=${MAX_CONNECTIONS}`,
  ]);
  const { stdout } = await run(vegeta, ['report', '-type=json', results], {
    encoding: 'utf8',
    maxBuffer: 16 * 1024 * 1024,
  });
  const report = JSON.parse(stdout) as {
    rate: number;
    requests: number;
    latencies: { '50th': number; '99th': number; max: number };
    status_codes: Record<string, number>;
  };
  const ms = (ns: number) => ns / 1e6;
  return {
    name,
    rate,
    sent: report.rate,
    p50: ms(report.latencies['50th']),
    p99: ms(report.latencies['99th']),
    max: ms(report.latencies.max),
    bad: report.requests - (report.status_codes['200'] ?? 0),
  };
}

/** The middle item by `value` (the upper one of an even count). */
export function median<T>(items: T[], value: (item: T) => number): T {
  const sorted = [...items].sort((a, b) => value(a) - value(b));
  return sorted[Math.floor(sorted.length / 2)]!;
}

/**
 * Side by side: both measurements run at the same time, `rounds` times, so the host's noise hits
 * both alike; returns the median ratio of their req/s (a / b) and each round's, printed.
 */
export async function sideBySide(
  a: () => Promise<Result>,
  b: () => Promise<Result>,
  rounds: number,
): Promise<{ ratio: number; rounds: string }> {
  const ratios: number[] = [];
  for (let r = 0; r < rounds; r++) {
    const [ra, rb] = await Promise.all([a(), b()]);
    ratios.push(ra.rps / rb.rps);
  }
  return { ratio: median(ratios, (x) => x), rounds: ratios.map((x) => x.toFixed(2)).join(' ') };
}
