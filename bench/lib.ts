/** Shared benchmark plumbing: servers as child processes, wrk/autocannon runs, a printed table. */
import { type ChildProcess, execFile, execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import autocannon, { type Request } from 'autocannon';
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

/** utime + stime of a process in µs, from /proc (NaN where there is no /proc). */
function cpuTimeUs(pid: number | undefined): number {
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
    return ((Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS) * 1e6;
  } catch {
    return Number.NaN;
  }
}

function has(command: string): boolean {
  try {
    execFileSync('sh', ['-c', `command -v ${command}`], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/** The load generator: wrk (one thread, as the design's baselines were measured) when installed, else autocannon. */
export const loadGenerator = has('wrk') ? 'wrk -t1 -c50' : 'autocannon -c50';

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
  if (process.env.BENCH_PIN === '0' || cpus < 2 || !has('taskset')) return 'no CPU pinning';
  execFileSync('taskset', ['-a', '-cp', `0-${cpus - 2}`, String(process.pid)], { stdio: 'ignore' });
  serverCpu = cpus - 1;
  return `measured servers pinned to CPU ${serverCpu}, load generator and Redis on CPU 0-${cpus - 2}`;
}

/** Moves a server (all its threads, and its child processes such as nginx workers) onto the CPU reserved for measured servers. */
export function pinServer(server: Server): void {
  if (serverCpu === undefined || server.proc.pid === undefined) return;
  const pids = [String(server.proc.pid)];
  try {
    pids.push(
      ...execFileSync('pgrep', ['-P', String(server.proc.pid)], { encoding: 'utf8' })
        .split('\n')
        .filter(Boolean),
    );
  } catch {
    // pgrep exits 1 when there are no children
  }
  for (const pid of pids)
    execFileSync('taskset', ['-a', '-cp', String(serverCpu), pid], { stdio: 'ignore' });
}

function wrkMs(value: string, unit: string): number {
  const n = Number(value);
  return unit === 'us' ? n / 1000 : unit === 's' ? n * 1000 : n;
}

async function measureWrk(
  name: string,
  url: string,
  seconds: number,
  uniquePaths?: string,
): Promise<Omit<Result, 'cpuUs'> & { total: number }> {
  const args = ['-t1', '-c50', `-d${seconds}s`, '--latency'];
  if (uniquePaths) {
    const script = join(mkdtempSync(join(tmpdir(), 'tiercache-bench-')), 'unique.lua');
    writeFileSync(
      script,
      `local n = 0\nrequest = function()\n  n = n + 1\n  return wrk.format(nil, "${uniquePaths}" .. n)\nend\n`,
    );
    args.push('-s', script);
  }
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

export async function measure(
  name: string,
  server: Server,
  path: string,
  seconds: number,
  opts: { uniquePaths?: string } = {},
): Promise<Result> {
  const url = server.url + path;
  const cpuBefore = cpuTimeUs(server.proc.pid);
  let r: Omit<Result, 'cpuUs'> & { total: number };
  if (loadGenerator.startsWith('wrk')) r = await measureWrk(name, url, seconds, opts.uniquePaths);
  else {
    let n = 0;
    const requests = opts.uniquePaths
      ? [{ setupRequest: (req: Request) => ({ ...req, path: `${opts.uniquePaths}${n++}` }) }]
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
