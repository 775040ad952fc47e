/**
 * Proxies for tests: in-process (openProxy + listen on an ephemeral loopback port) or as a
 * separate `tiercache proxy` process, the way regional replicas run. Logs are captured so tests
 * can check what was (and was not) written.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { request as httpRequest } from 'node:http';
import { Writable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { createLogger } from '../../lib/log.ts';
import type { ProxyInstance } from '../../proxy/app.ts';
import { loadProxyConfig } from '../../proxy/config.ts';
import { openProxy } from '../../proxy/open.ts';
import { waitFor } from './wait.ts';

export interface RunningProxy {
  url: string;
  proxy: ProxyInstance;
  logs(): string;
  close(): Promise<void>;
}

export async function startProxy(env: Record<string, string>): Promise<RunningProxy> {
  const config = loadProxyConfig({ LOG_LEVEL: 'info', HOST: '127.0.0.1', PORT: '0', ...env });
  let captured = '';
  const sink = new Writable({
    write(chunk, _enc, cb) {
      captured += chunk.toString();
      cb();
    },
  });
  const log = createLogger(config.logLevel, { region: config.region }, sink);
  const proxy = await openProxy(config, log);
  const url = await proxy.app.listen({ port: 0, host: '127.0.0.1' });
  return { url, proxy, logs: () => captured, close: () => proxy.close() };
}

const CLI = fileURLToPath(new URL('../../bin/tiercache.ts', import.meta.url));

export interface ProxyProcess {
  url: string;
  proc: ChildProcess;
  output(): string;
  stop(): Promise<void>;
}

/** Starts `tiercache proxy` as its own process and resolves once it is listening. */
export async function spawnProxy(env: Record<string, string>): Promise<ProxyProcess> {
  const proc = spawn(process.execPath, [CLI, 'proxy'], {
    env: { PATH: process.env.PATH, HOST: '127.0.0.1', PORT: '0', LOG_LEVEL: 'info', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  proc.stdout!.on('data', (d) => {
    output += d.toString();
  });
  proc.stderr!.on('data', (d) => {
    output += d.toString();
  });
  const url = await waitFor(
    'the proxy process to listen',
    () => {
      if (proc.exitCode !== null) throw new Error(`proxy exited with ${proc.exitCode}: ${output}`);
      return /"address":"(http:\/\/[^"]+)","l2"/.exec(output)?.[1];
    },
    15_000,
  );
  return {
    url,
    proc,
    output: () => output,
    async stop() {
      if (proc.exitCode !== null) return;
      proc.kill('SIGTERM');
      await new Promise((r) => proc.once('exit', r));
    },
  };
}

/** Runs `tiercache <args>` to completion and returns its exit code and output. */
export function runCli(
  args: string[],
  env: Record<string, string>,
): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve) => {
    const proc = spawn(process.execPath, [CLI, ...args], {
      env: { PATH: process.env.PATH, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    proc.stdout.on('data', (d) => {
      output += d.toString();
    });
    proc.stderr.on('data', (d) => {
      output += d.toString();
    });
    proc.on('exit', (code) => resolve({ code, output }));
  });
}

/** GET with the path sent exactly as given (fetch would normalise `%2e%2e` and `..` away). */
export interface RawAnswer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
}

/** One request as sent, nothing added (fetch adds Accept-Encoding and decodes bodies). */
export function rawRequest(
  baseUrl: string,
  path: string,
  opts: { method?: string; headers?: Record<string, string> } = {},
): Promise<RawAnswer> {
  const { hostname, port } = new URL(baseUrl);
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      { host: hostname, port, path, method: opts.method ?? 'GET', headers: opts.headers },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (d: Buffer) => chunks.push(d));
        res.on('end', () =>
          resolve({
            status: res.statusCode ?? 0,
            headers: res.headers,
            body: Buffer.concat(chunks),
          }),
        );
      },
    );
    req.on('error', reject);
    req.end();
  });
}

export async function rawGet(
  baseUrl: string,
  path: string,
): Promise<{ status: number; body: string }> {
  const res = await rawRequest(baseUrl, path);
  return { status: res.status, body: res.body.toString() };
}
