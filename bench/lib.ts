/** Shared benchmark plumbing: servers as child processes, autocannon runs, a printed table. */
import { type ChildProcess, spawn } from 'node:child_process';
import autocannon, { type Request } from 'autocannon';

export interface Server {
  url: string;
  proc: ChildProcess;
  stop(): Promise<void>;
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
          stop: () =>
            new Promise((r) => {
              if (proc.exitCode !== null) return r();
              proc.once('exit', () => r());
              proc.kill('SIGTERM');
            }),
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

export interface Result {
  name: string;
  rps: number;
  p99: number;
  non2xx: number;
  errors: number;
}

export async function measure(
  name: string,
  url: string,
  seconds: number,
  opts: { uniquePaths?: string } = {},
): Promise<Result> {
  let n = 0;
  const requests = opts.uniquePaths
    ? [{ setupRequest: (req: Request) => ({ ...req, path: `${opts.uniquePaths}${n++}` }) }]
    : undefined;
  const r = await autocannon({
    url,
    connections: 50,
    pipelining: 1,
    duration: seconds,
    ...(requests ? { requests } : {}),
  });
  return { name, rps: r.requests.average, p99: r.latency.p99, non2xx: r.non2xx, errors: r.errors };
}

export function printTable(rows: (Result & { vs?: string })[]): void {
  const fmt = (r: Result & { vs?: string }) =>
    `${r.name.padEnd(34)} ${r.rps.toFixed(0).padStart(9)} ${r.p99.toFixed(1).padStart(8)} ${String(r.non2xx + r.errors).padStart(6)}  ${r.vs ?? ''}`;
  console.log(
    `${'path'.padEnd(34)} ${'req/s'.padStart(9)} ${'p99 ms'.padStart(8)} ${'bad'.padStart(6)}  ratio`,
  );
  for (const r of rows) console.log(fmt(r));
}
