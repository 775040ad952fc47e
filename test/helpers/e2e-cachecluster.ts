/**
 * One CacheCluster under test on a real Kubernetes API: its status, its Redis pods, a client
 * of its Redis Cluster, keys written and counted, writers in worker threads, and the check
 * run after every disruption (Ready for the current generation, every slot served, no open
 * slot, every master with its replicas, no failure domain holding most masters).
 */

import type { ConnectionOptions } from 'node:tls';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import type { V1Pod } from '@kubernetes/client-node';
import { Cluster, Redis } from 'ioredis';
import { tlsConnectOptions } from '../../lib/redis/tls.ts';
import type { CacheCluster } from '../../operator/api/types.ts';
import { checkCluster } from '../../operator/redis/check.ts';
import { Connections } from '../../operator/redis/connections.ts';
import { observe } from '../../operator/redis/observe.ts';
import { kubectl, kubectlJson, pods } from './kube.ts';
import { authAs } from './redis.ts';
import { waitFor } from './wait.ts';

const here = (p: string) => fileURLToPath(new URL(p, import.meta.url));

export interface WriterResult {
  successes: number;
  failures: number;
  longestMs: number;
}

export interface AckedWriterResult extends WriterResult {
  /** Indexes of the writes Redis acknowledged (`<prefix>:<i>` = i). */
  acked: number[];
}

/** How a TLS CacheCluster's nodes are reached: the CA, and the name their certificates carry. */
export interface E2ETls {
  ca: string;
  serverName: string;
}

/**
 * Runs `batch` (idempotent reads or writes of the test's own) again when a command of it got no
 * answer within the client's timeout — a node busy for a moment on a loaded 2-core machine —
 * up to three times in all. Any other error, or a third timeout, fails the test: what is
 * counted as lost must be keys, not one slow answer to the test's own client.
 */
async function againIfUnanswered<T>(batch: () => Promise<T>): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await batch();
    } catch (err) {
      if (attempt >= 3 || !/Command timed out/.test(String(err))) throw err;
    }
  }
}

export class E2ECacheCluster {
  readonly ns: string;
  readonly name: string;
  readonly tls: E2ETls | undefined;

  constructor(ns: string, name = 'cache', tls?: E2ETls) {
    this.ns = ns;
    this.name = name;
    this.tls = tls;
  }

  /** ioredis's `tls` option for this cluster's nodes (none when it is plain-text). */
  get tlsOption(): { tls?: ConnectionOptions } {
    return this.tls ? { tls: tlsConnectOptions(this.tls) } : {};
  }

  /**
   * Who the helpers sign in as: `default` with the clients' password unless set — a user of
   * the operator's once `default` is disabled (auth.defaultUser).
   */
  signInAs: { username: string; password: string } | undefined;

  /** ioredis's credentials: `password` as default when given, else as the helpers sign in. */
  credentials(password?: string): { username?: string; password?: string } {
    if (password !== undefined) return authAs(password);
    return this.signInAs ?? authAs(this.password());
  }

  /** The operator's Connections for this cluster's nodes (TLS when it has it). */
  connections(password?: string, timeoutMs = 3000): Connections {
    return new Connections({
      ...this.credentials(password),
      timeoutMs,
      ...(this.tls ? { tls: this.tls } : {}),
    });
  }

  get selector(): string {
    return `tiercache.io/cluster=${this.name},app.kubernetes.io/component=redis`;
  }

  get(): CacheCluster {
    return kubectlJson<CacheCluster>(['get', 'cc', this.name, '-n', this.ns]);
  }

  condition(type: string, cc = this.get()) {
    return cc.status?.conditions?.find((c) => c.type === type);
  }

  redisPods(): V1Pod[] {
    return kubectlJson<{ items: V1Pod[] }>(['get', 'pods', '-n', this.ns, '-l', this.selector])
      .items;
  }

  password(): string {
    const b64 = kubectl([
      'get',
      'secret',
      `${this.name}-redis-auth`,
      '-n',
      this.ns,
      '-o',
      'jsonpath={.data.password}',
    ]);
    return Buffer.from(b64, 'base64').toString('utf8');
  }

  /** Ready for the current generation. */
  waitReady(timeoutMs = 180_000): Promise<CacheCluster> {
    return waitFor(
      `${this.ns}/${this.name} to be Ready`,
      () => {
        const cc = this.get();
        const ready = this.condition('Ready', cc);
        return ready?.status === 'True' && ready.observedGeneration === cc.metadata.generation
          ? cc
          : undefined;
      },
      timeoutMs,
      500,
    );
  }

  /** Ready for the current generation, with `shards` shards each holding its replicas. */
  waitReadyWithReplicas(shards = 3, replicas = 1, timeoutMs = 180_000): Promise<CacheCluster> {
    return waitFor(
      `${this.ns}/${this.name}: Ready with ${shards} shards and their replicas`,
      () => {
        const cc = this.get();
        const ready = this.condition('Ready', cc);
        const ok =
          ready?.status === 'True' &&
          ready.observedGeneration === cc.metadata.generation &&
          cc.status?.readyShards === shards &&
          cc.status.shards?.length === shards &&
          cc.status.shards.every((s) => s.replicas.length === replicas);
        if (ok) return cc;
        // Not yet: what the status says is what a timeout reports.
        throw new Error(this.#describe(cc));
      },
      timeoutMs,
      250,
    );
  }

  /** The status in one line: conditions with reasons, and each shard's pods. */
  #describe(cc: CacheCluster): string {
    const conditions = (cc.status?.conditions ?? [])
      .map(
        (c) =>
          `${c.type}=${c.status} ${c.reason ?? ''} "${c.message ?? ''}" (gen ${c.observedGeneration})`,
      )
      .join('; ');
    const shards = (cc.status?.shards ?? [])
      .map((s) => `${s.name}: ${s.master || '-'} + [${s.replicas.join(',')}]`)
      .join('; ');
    return `generation ${cc.metadata.generation}, readyShards ${cc.status?.readyShards}; ${conditions}; ${shards}`;
  }

  /** `shards` shards in the status, each with a master and its replicas (Ready or not). */
  waitShardsWithReplicas(shards = 3, replicas = 1, timeoutMs = 180_000): Promise<CacheCluster> {
    return waitFor(
      `${this.ns}/${this.name}: ${shards} shards with a master and their replicas`,
      () => {
        const cc = this.get();
        const ok =
          cc.status?.readyShards === shards &&
          cc.status.shards?.length === shards &&
          cc.status.shards.every((s) => s.master && s.replicas.length === replicas);
        return ok ? cc : undefined;
      },
      timeoutMs,
      250,
    );
  }

  /**
   * Kills a Redis pod's process without warning: SIGKILL on the local control plane (the pod
   * runner restarts the container in place); elsewhere (kind) the pod is force-deleted.
   */
  crash(podName: string): void {
    if (process.env.E2E_KUBECONFIG) this.forceDelete(podName);
    else this.#kill(podName);
  }

  /** SIGKILL to the local pod runner's process of each pod. */
  #kill(...podNames: string[]): void {
    const running = pods(this.ns, this.selector);
    for (const name of podNames) {
      const pid = running.find((p) => p.name === name)?.pid;
      if (!pid) throw new Error(`no process found for ${name}`);
      process.kill(pid, 'SIGKILL');
    }
  }

  /** A pod gone at once, as when its node is lost: no preStop, no handover. */
  forceDelete(...podNames: string[]): void {
    kubectl(['delete', 'pod', ...podNames, '-n', this.ns, '--grace-period=0', '--force']);
  }

  /**
   * Pods lost with their node: their processes die at once and the pods are force-deleted.
   * (Force-deleting alone leaves the local pod runner's process answering for a moment, long
   * enough to hand its slots over, which a lost node never does.)
   */
  lose(...podNames: string[]): void {
    if (!process.env.E2E_KUBECONFIG) this.#kill(...podNames);
    this.forceDelete(...podNames);
  }

  /**
   * Asks the API server to evict a pod (what `kubectl drain` does): 'evicted', or the
   * refusal's message (a PodDisruptionBudget that allows no disruption right now).
   */
  evict(podName: string): string {
    const path = `/api/v1/namespaces/${this.ns}/pods/${podName}/eviction`;
    const body = {
      apiVersion: 'policy/v1',
      kind: 'Eviction',
      metadata: { name: podName, namespace: this.ns },
    };
    try {
      kubectl(['create', '--raw', path, '-f', '-'], JSON.stringify(body));
      return 'evicted';
    } catch (err) {
      return (err as Error).message;
    }
  }

  /** Talks to one pod's Redis server directly (not through the cluster client). */
  async onNode<T>(podName: string, fn: (node: Redis) => Promise<T>, password?: string): Promise<T> {
    const ip = this.redisPods().find((p) => p.metadata?.name === podName)?.status?.podIP;
    if (!ip) throw new Error(`${podName} has no IP`);
    const node = new Redis({
      host: ip,
      port: 6379,
      ...this.credentials(password),
      ...this.tlsOption,
      connectTimeout: 2000,
      commandTimeout: 2000,
      maxRetriesPerRequest: 0,
      // RESP2 and no INFO before the first command: a connection without a password (made to
      // try AUTH itself) is not closed by a refused HELLO or ready check.
      protocol: 2,
      enableReadyCheck: false,
      lazyConnect: true,
    });
    node.on('error', () => {});
    try {
      await node.connect();
      return await fn(node);
    } finally {
      node.disconnect();
    }
  }

  private seeds(): { host: string; port: number }[] {
    return this.redisPods()
      .filter((p) => p.status?.podIP)
      .map((p) => ({ host: p.status!.podIP!, port: 6379 }));
  }

  async withClient<T>(fn: (cluster: Cluster) => Promise<T>): Promise<T> {
    const cluster = new Cluster(this.seeds(), {
      redisOptions: {
        ...this.credentials(),
        ...this.tlsOption,
        connectTimeout: 2000,
        commandTimeout: 2000,
      },
      // No auto-pipelining: ioredis fails auto-pipelined commands that meet MOVED after slots moved.
      slotsRefreshTimeout: 2000,
      retryDelayOnFailover: 50,
      retryDelayOnClusterDown: 50,
      retryDelayOnTryAgain: 50,
      maxRedirections: 32,
    });
    cluster.on('error', () => {});
    try {
      return await fn(cluster);
    } finally {
      cluster.disconnect();
    }
  }

  async writeKeys(prefix: string, n: number, size = 16): Promise<void> {
    const value = 'v'.repeat(size);
    await this.withClient(async (cluster) => {
      for (let i = 0; i < n; i += 1000)
        await againIfUnanswered(() =>
          Promise.all(
            Array.from({ length: Math.min(1000, n - i) }, (_, j) =>
              cluster.set(`${prefix}:${i + j}`, value),
            ),
          ),
        );
    });
  }

  /** The keys of `keys` that are not there (or, with `values`, hold another value). */
  async missing(keys: string[], values?: string[]): Promise<string[]> {
    return this.withClient(async (cluster) => {
      const out: string[] = [];
      for (let i = 0; i < keys.length; i += 1000) {
        const chunk = keys.slice(i, i + 1000);
        const found = await againIfUnanswered(() => Promise.all(chunk.map((k) => cluster.get(k))));
        chunk.forEach((k, j) => {
          const v = found[j];
          if (v === null || (values && v !== values[i + j])) out.push(k);
        });
      }
      return out;
    });
  }

  missingKeys(prefix: string, n: number): Promise<string[]> {
    return this.missing(Array.from({ length: n }, (_, i) => `${prefix}:${i}`));
  }

  /** Which of `keys` hash to slots in `ranges` (one shard's, as status gives them). */
  async inSlots(ranges: string, keys: string[]): Promise<string[]> {
    const bounds = ranges.split(',').map((r) => r.split('-').map(Number) as [number, number?]);
    const inRange = (slot: number) => bounds.some(([a, b]) => slot >= a && slot <= (b ?? a));
    const conns = this.connections();
    try {
      const [seed] = this.seeds();
      const addr = `${seed!.host}:${seed!.port}`;
      const slots = await Promise.all(
        keys.map((k) => conns.call<number>(addr, 'CLUSTER', 'KEYSLOT', k)),
      );
      return keys.filter((_, i) => inRange(slots[i]!));
    } finally {
      conns.close();
    }
  }

  /** `count` keys `w:<i>` whose slots lie in `ranges`. */
  async keysInSlots(ranges: string, count: number): Promise<string[]> {
    const out: string[] = [];
    for (let i = 0; out.length < count; i += count * 4) {
      const batch = Array.from({ length: count * 4 }, (_, j) => `w:${i + j}`);
      out.push(...(await this.inSlots(ranges, batch)));
    }
    return out.slice(0, count);
  }

  /**
   * Writes to `keys` back to back in a worker thread; the longest time between two successful
   * writes is the write pause.
   */
  startPauseWriter(keys: string[]): { stop(): Promise<WriterResult> } {
    return this.#worker<WriterResult>('write-pauses-worker.ts', { keys });
  }

  /**
   * Writes `<prefix>:<i>` = i for i = 0, 1, … one after another in a worker thread, keeping the
   * indexes Redis acknowledged: afterwards every acknowledged write can be looked for.
   */
  startAckedWriter(prefix: string): { stop(): Promise<AckedWriterResult> } {
    return this.#worker<AckedWriterResult>('write-pauses-worker.ts', { prefix });
  }

  #worker<T>(file: string, data: Record<string, unknown>): { stop(): Promise<T> } {
    const worker = new Worker(here(`./${file}`), {
      workerData: { nodes: this.seeds(), auth: this.credentials(), tls: this.tls, ...data },
    });
    const result = new Promise<T>((resolve, reject) => {
      worker.once('message', resolve);
      worker.once('error', reject);
    });
    return {
      async stop() {
        worker.postMessage('stop');
        const r = await result;
        await worker.terminate();
        return r;
      },
    };
  }

  /**
   * What must hold after every disruption, read from Redis itself: every slot served, no open
   * slot, nothing failed or disagreeing, and no failure domain (the pod's zone) holding most
   * masters. Returns the problems (empty when healthy).
   */
  async problems(opts: { spread?: boolean } = {}): Promise<string[]> {
    const podList = this.redisPods();
    const conns = this.connections();
    try {
      const view = await observe(
        conns,
        podList.filter((p) => p.status?.podIP).map((p) => `${p.status!.podIP}:6379`),
      );
      const check = checkCluster(view);
      const out = [...check.problems];
      const zones = nodeZones();
      const domainOf = new Map(
        podList.map((p) => [
          `${p.status?.podIP}:6379`,
          zones.get(p.spec?.nodeName ?? '') ?? p.spec?.nodeName,
        ]),
      );
      const perDomain = new Map<string, number>();
      for (const s of check.shards) {
        const d = domainOf.get(s.addr) ?? '?';
        perDomain.set(d, (perDomain.get(d) ?? 0) + 1);
      }
      if (opts.spread !== false)
        for (const [d, n] of perDomain)
          if (check.shards.length >= 3 && n * 2 > check.shards.length)
            out.push(`${d} holds ${n} of ${check.shards.length} masters`);
      // The status tells the truth: each shard's master pod is the node Redis has as master.
      const masterAddrs = new Set(check.shards.map((s) => s.addr));
      const ipOf = new Map(podList.map((p) => [p.metadata!.name!, `${p.status?.podIP}:6379`]));
      for (const s of this.get().status?.shards ?? [])
        if (!masterAddrs.has(ipOf.get(s.master) ?? ''))
          out.push(`status says ${s.name}'s master is ${s.master}, Redis does not`);
      return out;
    } finally {
      conns.close();
    }
  }

  /** Waits until `problems()` is empty (gossip may lag the status by a moment). */
  async waitHealthy(opts: { spread?: boolean } = {}, timeoutMs = 60_000): Promise<void> {
    let last: string[] = [];
    try {
      await waitFor(
        `${this.ns}/${this.name}: a healthy cluster`,
        async () => {
          last = await this.problems(opts);
          return last.length === 0;
        },
        timeoutMs,
        250,
      );
    } catch (err) {
      throw new Error(`${(err as Error).message}; still: ${last.join('; ')}`);
    }
  }

  /** Reasons and messages of the CacheCluster's Events. */
  events(): { type: string; reason: string; message: string }[] {
    return kubectlJson<{ items: { type: string; reason: string; message: string }[] }>([
      'get',
      'events',
      '-n',
      this.ns,
      '--field-selector',
      `involvedObject.name=${this.name},involvedObject.kind=CacheCluster`,
    ]).items;
  }
}

function nodeZones(): Map<string, string> {
  const nodes = kubectlJson<{
    items: { metadata: { name: string; labels?: Record<string, string> } }[];
  }>(['get', 'nodes']).items;
  return new Map(
    nodes.flatMap((n) => {
      const z = n.metadata.labels?.['topology.kubernetes.io/zone'];
      return z ? [[n.metadata.name, z] as [string, string]] : [];
    }),
  );
}

/** One of the two ways every operator behaviour is tested: the CRD's default, and persistence on. */
export interface Mode {
  label: string;
  persistence: boolean;
  cc: E2ECacheCluster;
}

/** Persistence off and on, each CacheCluster in its own namespace `<prefix>-off|on-<pid>`. */
export function bothModes(prefix: string): Mode[] {
  return [
    {
      label: 'persistence off',
      persistence: false,
      cc: new E2ECacheCluster(`${prefix}-off-${process.pid}`),
    },
    {
      label: 'persistence on',
      persistence: true,
      cc: new E2ECacheCluster(`${prefix}-on-${process.pid}`),
    },
  ];
}
