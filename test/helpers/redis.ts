/**
 * Real redis-server processes for tests: a standalone node, or a Redis Cluster of N masters
 * formed with plain cluster commands (ADDSLOTSRANGE, MEET). Everything started is stopped by
 * `stop()`; data lives in a temporary directory that is removed with it.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type Cluster, Redis } from 'ioredis';
import { ensureValkeyServer } from '../../hack/valkey.ts';
import { freeRedisPort } from './ports.ts';
import { waitFor } from './wait.ts';

export interface RedisNode {
  host: string;
  port: number;
  /** Stops the process gracefully. */
  stop(): Promise<void>;
  /** SIGKILL, as a crash would. */
  kill(): Promise<void>;
  /** SIGSTOP / SIGCONT: a node that hangs without closing its connections. */
  pause(): void;
  resume(): void;
  /** Stops the process and starts it again on a new port, same directory (nodes.conf, data). */
  moveToNewPort(): Promise<void>;
  /** Starts the process again on the same port and directory. */
  restart(): Promise<void>;
  client(): Redis;
}

/**
 * ioredis options to authenticate as the operator's clients do: as user default (which a node
 * without a password accepts too), nothing when the password is empty (auth disabled).
 */
export const authAs = (password: string): { username?: string; password?: string } =>
  password ? { username: 'default', password } : {};

class PortTaken extends Error {}

function exited(proc: ChildProcess): Promise<void> {
  return proc.exitCode !== null || proc.signalCode !== null
    ? Promise.resolve()
    : new Promise((r) => proc.once('exit', () => r()));
}

export async function startRedis(
  opts: {
    cluster?: boolean;
    port?: number;
    host?: string;
    persist?: boolean;
    /** The server binary: Debian's redis-server (default) or Valkey 9 (hack/valkey.ts). */
    server?: 'redis' | 'valkey';
    /** A config file's text, read before the command-line options (e.g. the operator's auth.conf). */
    config?: string;
  } = {},
): Promise<RedisNode> {
  const binary = opts.server === 'valkey' ? ensureValkeyServer() : 'redis-server';
  const host = opts.host ?? '127.0.0.1';
  let port = opts.port ?? (await freeRedisPort(host));
  const dir = mkdtempSync(join(tmpdir(), `tiercache-redis-${port}-`));
  const args = [
    '--port',
    String(port),
    '--bind',
    host,
    '--save',
    '',
    '--appendonly',
    opts.persist ? 'yes' : 'no',
    '--dir',
    dir,
    '--protected-mode',
    'no',
  ];
  if (opts.config !== undefined) {
    writeFileSync(join(dir, 'extra.conf'), opts.config);
    args.push('--include', join(dir, 'extra.conf'));
  }
  if (opts.cluster)
    args.push(
      '--cluster-enabled',
      'yes',
      '--cluster-config-file',
      'nodes.conf',
      '--cluster-node-timeout',
      '2000',
      // Outgoing bus connections do not bind the node's address; without this, a node on
      // 127.0.0.2 would be seen as 127.0.0.1 by its peers.
      '--cluster-announce-ip',
      host,
    );
  let proc: ChildProcess;
  const clients: Redis[] = [];

  // A bare PING over TCP: up is PONG, or a refusal for want of a password (a client library
  // would first send HELLO or INFO, which such a server refuses by closing the connection).
  const answers = (): Promise<boolean> =>
    new Promise((resolve) => {
      const socket = connect({ port, host });
      const done = (up: boolean) => {
        socket.destroy();
        resolve(up);
      };
      socket.setTimeout(1000, () => done(false));
      socket.on('error', () => done(false));
      socket.on('connect', () => socket.write('PING\r\n'));
      socket.on('data', (reply) => done(/^(\+PONG|-NOAUTH)/.test(reply.toString())));
    });
  const launch = async () => {
    args[1] = String(port);
    proc = spawn(binary, args, { stdio: 'ignore' });
    const started = proc;
    const deadline = Date.now() + 10_000;
    while (!(await answers())) {
      // A server that exited (its port taken meanwhile by another test worker) will never answer.
      if (started.exitCode !== null)
        throw new PortTaken(`redis-server on ${port} exited with ${started.exitCode}`);
      if (Date.now() > deadline)
        throw new Error(`redis-server on ${port} did not answer within 10 s`);
      await new Promise((r) => setTimeout(r, 25));
    }
  };
  for (let attempt = 1; ; attempt++) {
    try {
      await launch();
      break;
    } catch (err) {
      if (opts.port !== undefined || attempt >= 5 || !(err instanceof PortTaken)) throw err;
      port = await freeRedisPort(host); // another worker took the port between check and start
    }
  }

  const node: RedisNode = {
    host,
    port,
    async stop() {
      for (const c of clients) c.disconnect();
      proc.kill('SIGTERM');
      await exited(proc);
      rmSync(dir, { recursive: true, force: true });
    },
    async kill() {
      proc.kill('SIGKILL');
      await exited(proc);
    },
    pause: () => void proc.kill('SIGSTOP'),
    resume: () => void proc.kill('SIGCONT'),
    restart: launch,
    async moveToNewPort() {
      for (const c of clients.splice(0)) c.disconnect();
      proc.kill('SIGTERM');
      await exited(proc);
      port = await freeRedisPort(host);
      node.port = port;
      await launch();
    },
    client() {
      const c = new Redis({ port, host, maxRetriesPerRequest: 1 });
      c.on('error', () => {});
      clients.push(c);
      return c;
    },
  };
  return node;
}

/**
 * `count` nodes started in parallel; if any fails to start, the ones that did are stopped
 * before the error is thrown, so a failed start leaves no process behind.
 */
export async function startNodes(
  count: number,
  opts: Parameters<typeof startRedis>[0] = {},
): Promise<RedisNode[]> {
  const results = await Promise.allSettled(Array.from({ length: count }, () => startRedis(opts)));
  const started = results.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
  const failed = results.find((r) => r.status === 'rejected');
  if (failed) {
    await Promise.all(started.map((n) => n.stop()));
    throw failed.reason;
  }
  return started;
}

/**
 * Two standalone nodes started from the same config file (e.g. the operator's auth.conf), to be
 * a master and its replica, with their addresses as the operator writes them.
 */
export async function startPair(config: string) {
  const [master, replica] = await startNodes(2, { config });
  return {
    master: master!,
    replica: replica!,
    A: `${master!.host}:${master!.port}`,
    B: `${replica!.host}:${replica!.port}`,
  };
}

export interface TestCluster {
  nodes: RedisNode[];
  /** "127.0.0.1:p1,127.0.0.1:p2,…" as REDIS_CLUSTER_NODES takes it. */
  spec: string;
  /** The master that holds a key's slot. */
  masterOf(key: string): Promise<RedisNode>;
  stop(): Promise<void>;
}

/** N masters (no replicas), 16384 slots split evenly, cluster_state:ok on every node. */
export async function startCluster(masters = 3): Promise<TestCluster> {
  const nodes = await startNodes(masters, { cluster: true });
  const clients = nodes.map((n) => n.client());
  const per = Math.ceil(16384 / masters);
  await Promise.all(
    clients.map((c, i) =>
      c.call(
        'CLUSTER',
        'ADDSLOTSRANGE',
        String(i * per),
        String(Math.min(16383, (i + 1) * per - 1)),
      ),
    ),
  );
  for (const n of nodes.slice(1)) await clients[0]!.call('CLUSTER', 'MEET', n.host, String(n.port));
  await waitFor(
    'cluster_state:ok on every node',
    async () => {
      const infos = await Promise.all(
        clients.map((c) => c.call('CLUSTER', 'INFO') as Promise<string>),
      );
      return infos.every(
        (i) => i.includes('cluster_state:ok') && i.includes(`cluster_known_nodes:${masters}`),
      );
    },
    20_000,
    100,
  );
  return {
    nodes,
    spec: nodes.map((n) => `${n.host}:${n.port}`).join(','),
    async masterOf(key) {
      const slot = Number(await clients[0]!.call('CLUSTER', 'KEYSLOT', key));
      return nodes[Math.floor(slot / per)]!;
    },
    async stop() {
      await Promise.all(nodes.map((n) => n.stop()));
    },
  };
}

/** Writes `<prefix>:<i>` = `value-<i>` for i < count, 5000 at a time. */
export async function fill(client: Cluster, count: number, prefix = 'k'): Promise<void> {
  for (let i = 0; i < count; i += 5000) {
    await Promise.all(
      Array.from({ length: Math.min(5000, count - i) }, (_, j) =>
        client.set(`${prefix}:${i + j}`, `value-${i + j}`),
      ),
    );
  }
}

/** How many of the keys `fill` wrote are not there with their value. */
export async function missing(client: Cluster, count: number, prefix = 'k'): Promise<number> {
  let lost = 0;
  for (let i = 0; i < count; i += 5000) {
    const values = await Promise.all(
      Array.from({ length: Math.min(5000, count - i) }, (_, j) => client.get(`${prefix}:${i + j}`)),
    );
    values.forEach((v, j) => {
      if (v !== `value-${i + j}`) lost += 1;
    });
  }
  return lost;
}
