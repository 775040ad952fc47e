/**
 * Redis over TLS, outside Kubernetes: Debian's redis-server serving TLS only (no plain port,
 * TLS on the cluster bus and for replication), certificates from a test CA that name the nodes
 * by a DNS name alone. The cluster manager forms the cluster and adds a shard with its keys over
 * TLS (`tiercache cluster … --tls`) while a client writes; two proxies with REDIS_TLS_* share L2;
 * a plain connection is refused; a proxy trusting another CA, or checking the wrong name, serves
 * from the upstream without L2 rather than failing; and a certificate replaced on every node
 * and loaded by the operator's reload (CONFIG SET tls-cert-file, same paths) is what new
 * connections get, while the proxies keep serving. A backup's snapshot and its restore go over
 * TLS too.
 * Persistence off (the CRD default) and on.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { copyFileSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect as tlsConnect } from 'node:tls';
import { Cluster, Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureCa, signed } from '../../hack/local-cluster/pki.ts';
import { tlsConnectOptions } from '../../lib/redis/tls.ts';
import { reloadRenewedCertificates } from '../../operator/controller/tls-reload.ts';
import { checkCluster } from '../../operator/redis/check.ts';
import { Connections } from '../../operator/redis/connections.ts';
import { observe } from '../../operator/redis/observe.ts';
import { type DemoUpstream, startDemoUpstream } from '../../proxy/upstreams/demo-server.ts';
import { freeRedisPort } from '../helpers/ports.ts';
import { type RunningProxy, runCli, startProxy } from '../helpers/proxy.ts';
import { fill, missing } from '../helpers/redis.ts';
import { waitFor } from '../helpers/wait.ts';

/** The one name the nodes' certificates carry (no IP): clients check it with the server name. */
const NODE_NAME = 'cache-redis.tls.test';
const API_KEY = '71571571571571571571571571571571';

let pki: string;
let ca: { cert: string; key: string };
let server: { cert: string; key: string };
let client: { cert: string; key: string };
let otherCa: { cert: string; key: string };
let upstream: DemoUpstream;

beforeAll(async () => {
  pki = mkdtempSync(join(tmpdir(), 'tiercache-tls-'));
  ca = ensureCa(pki, 'tiercache-test-redis-ca');
  server = signed(
    pki,
    'server',
    '/CN=redis',
    `basicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth,clientAuth\nsubjectAltName=DNS:${NODE_NAME}`,
  );
  client = signed(
    pki,
    'client',
    '/CN=proxy',
    'basicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=clientAuth',
  );
  otherCa = ensureCa(join(pki, 'other'), 'someone-else-ca');
  upstream = await startDemoUpstream({ apiKey: API_KEY });
});

afterAll(async () => {
  await upstream?.close();
  rmSync(pki, { recursive: true, force: true });
});

interface TlsNode {
  port: number;
  addr: string;
  stop(): Promise<void>;
}

/**
 * A cluster-enabled redis-server that speaks TLS only, asking clients for a certificate, with
 * its certificate files in `live` (tls.crt, tls.key, ca.crt) as a pod has its mounted Secret.
 */
async function tlsNode(persistence: boolean, live: string): Promise<TlsNode> {
  const port = await freeRedisPort();
  const dir = mkdtempSync(join(tmpdir(), `tiercache-tls-node-${port}-`));
  const proc: ChildProcess = spawn(
    'redis-server',
    [
      ...['--port', '0', '--tls-port', String(port), '--bind', '127.0.0.1', '--dir', dir],
      ...['--tls-cert-file', join(live, 'tls.crt'), '--tls-key-file', join(live, 'tls.key')],
      ...['--tls-ca-cert-file', join(live, 'ca.crt'), '--tls-auth-clients', 'yes'],
      ...['--tls-cluster', 'yes', '--tls-replication', 'yes'],
      ...['--cluster-enabled', 'yes', '--cluster-config-file', 'nodes.conf'],
      ...['--cluster-node-timeout', '2000', '--cluster-announce-ip', '127.0.0.1'],
      ...(persistence ? ['--appendonly', 'yes'] : ['--save', '', '--appendonly', 'no']),
    ],
    { stdio: 'ignore' },
  );
  const node = {
    port,
    addr: `127.0.0.1:${port}`,
    async stop() {
      if (proc.exitCode === null && proc.signalCode === null) {
        proc.kill('SIGKILL');
        await new Promise((r) => proc.once('exit', r));
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
  const conns = new Connections({ timeoutMs: 1000, tls: managerTls() });
  try {
    await waitFor(`${node.addr} to answer over TLS`, () =>
      conns.call(node.addr, 'PING').then(
        (r) => r === 'PONG',
        () => false,
      ),
    );
  } finally {
    conns.close();
  }
  return node;
}

/** What the cluster manager and test clients present: the CA, the server name, a client certificate. */
const managerTls = () => ({
  caFile: ca.cert,
  certFile: client.cert,
  keyFile: client.key,
  serverName: NODE_NAME,
});
const TLS_ARGS = () => [
  '--tls',
  ...['--tls-ca-file', ca.cert, '--tls-server-name', NODE_NAME],
  ...['--tls-cert-file', client.cert, '--tls-key-file', client.key],
];

function clusterClient(seed: TlsNode): Cluster {
  const c = new Cluster([{ host: '127.0.0.1', port: seed.port }], {
    redisOptions: { tls: tlsConnectOptions(managerTls()) },
  });
  c.on('error', () => {});
  return c;
}

/** The serial number of the certificate a node presents to a new TLS connection. */
function servedSerial(node: TlsNode): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = tlsConnect(
      { host: '127.0.0.1', port: node.port, ...tlsConnectOptions(managerTls()) },
      () => {
        resolve(socket.getPeerCertificate().serialNumber);
        socket.end();
      },
    );
    socket.on('error', reject);
  });
}

const serialOf = (certFile: string) => new X509Certificate(readFileSync(certFile)).serialNumber;

describe.each([
  ['off (the default)', false],
  ['on', true],
])('Redis over TLS, persistence %s', (_, persistence) => {
  const nodes: TlsNode[] = [];
  const proxies: RunningProxy[] = [];
  /** The nodes' certificate files, as a pod's mounted Secret: replaced in place on renewal. */
  let live: string;
  const install = (cert: { cert: string; key: string }) => {
    copyFileSync(cert.cert, join(live, 'tls.crt'));
    copyFileSync(cert.key, join(live, 'tls.key'));
    copyFileSync(ca.cert, join(live, 'ca.crt'));
  };
  beforeAll(() => {
    live = mkdtempSync(join(pki, 'live-'));
    install(server);
  });

  afterAll(async () => {
    // The nodes are stopped even when a proxy fails to close (one run leaked them that way).
    await Promise.allSettled(proxies.map((p) => p.close()));
    await Promise.all(nodes.map((n) => n.stop()));
  });

  const proxyEnv = (env: Record<string, string> = {}) => ({
    TMDB_API_URL: upstream.url,
    TMDB_API_KEY: API_KEY,
    REDIS_CLUSTER_NODES: nodes[0]!.addr,
    REDIS_TLS: 'true',
    REDIS_TLS_CA_FILE: ca.cert,
    REDIS_TLS_SERVER_NAME: NODE_NAME,
    REDIS_TLS_CERT_FILE: client.cert,
    REDIS_TLS_KEY_FILE: client.key,
    ...env,
  });
  /** A proxy, once L2 is up for it (unless it is not expected to come up). */
  const proxy = async (env: Record<string, string> = {}, l2 = true) => {
    const p = await startProxy(proxyEnv(env));
    proxies.push(p);
    if (l2) await waitFor('L2 and the bus to be up', () => (p.proxy.bus?.subscribed ?? 0) > 0);
    return p;
  };

  it('the cluster manager forms a cluster and moves a shard of keys over TLS while a client writes; nothing lost', async () => {
    nodes.push(...(await Promise.all(Array.from({ length: 4 }, () => tlsNode(persistence, live)))));
    const created = await runCli(
      ['cluster', 'create', ...nodes.slice(0, 3).map((n) => n.addr), ...TLS_ARGS()],
      {},
    );
    expect(created.code, created.output).toBe(0);
    // Without --tls the manager cannot even ask.
    const plain = await runCli(['cluster', 'check', nodes[0]!.addr, '--timeout', '1'], {});
    expect(plain.code).not.toBe(0);

    const c = clusterClient(nodes[0]!);
    try {
      await waitFor('the cluster to serve', () =>
        c.set('probe', '1').then(
          () => true,
          () => false,
        ),
      );
      await fill(c, 20_000);
      let writing = true;
      let acked = 0;
      const writer = (async () => {
        while (writing) {
          await c.set(`w:${acked}`, `value-${acked}`);
          acked += 1;
        }
      })();
      const added = await runCli(
        ['cluster', 'add-shard', nodes[0]!.addr, '--master', nodes[3]!.addr, ...TLS_ARGS()],
        {},
      );
      writing = false;
      await writer;
      expect(added.code, added.output).toBe(0);
      const conns = new Connections({ timeoutMs: 2000, tls: managerTls() });
      try {
        const view = checkCluster(await observe(conns, [nodes[0]!.addr]));
        expect(view.problems).toEqual([]);
        expect(view.shards.map((s) => s.slotCount)).toEqual([4096, 4096, 4096, 4096]);
      } finally {
        conns.close();
      }
      expect(acked).toBeGreaterThan(100);
      expect(await missing(c, 20_000)).toBe(0);
      expect(await missing(c, acked, 'w')).toBe(0);
    } finally {
      c.disconnect();
    }
  }, 120_000);

  it('a backup is taken and restored over TLS (the snapshot streams over the nodes’ TLS port); every key counted', async () => {
    const root = mkdtempSync(join(pki, 'backups-'));
    const c = clusterClient(nodes[0]!);
    try {
      const sizes = async () => {
        const conns = new Connections({ timeoutMs: 2000, tls: managerTls() });
        try {
          const all = await Promise.all(nodes.map((n) => conns.call<number>(n.addr, 'DBSIZE')));
          return all.reduce((a, b) => a + b, 0);
        } finally {
          conns.close();
        }
      };
      const before = await sizes();
      const taken = await runCli(
        ['cluster', 'backup', nodes[0]!.addr, '--dir', root, '--name', 'tls', ...TLS_ARGS()],
        {},
      );
      expect(taken.code, taken.output).toBe(0);
      expect(taken.output).toContain(`backup tls: ${before} keys`);
      // Keys lost since: a restore over TLS brings back exactly those.
      const gone = Array.from({ length: 1000 }, (_, i) => `k:${i}`);
      await Promise.all(gone.map((k) => c.del(k)));
      const restored = await runCli(
        ['cluster', 'restore', nodes[1]!.addr, '--dir', root, '--name', 'tls', ...TLS_ARGS()],
        {},
      );
      expect(restored.code, restored.output).toBe(0);
      expect(restored.output).toContain(`restored 1000 of ${before} keys`);
      expect(await sizes()).toBe(before);
    } finally {
      c.disconnect();
      rmSync(root, { recursive: true, force: true });
    }
  });

  it('proxies share L2 over TLS; a plain connection and a client without a certificate are refused', async () => {
    const [a, b] = [await proxy(), await proxy()];
    expect((await fetch(`${a.url}/3/movie/603`)).headers.get('x-cache')).toBe('MISS');
    await waitFor('the fill to reach L2 for the other proxy', async () => {
      const r = await fetch(`${b.url}/3/movie/603`);
      return r.headers.get('x-cache') === 'L2';
    });

    const plain = new Redis({
      host: '127.0.0.1',
      port: nodes[0]!.port,
      lazyConnect: true,
      maxRetriesPerRequest: 0,
      retryStrategy: () => null,
      connectTimeout: 1000,
    });
    plain.on('error', () => {});
    await expect(plain.connect().then(() => plain.ping())).rejects.toThrow();
    plain.disconnect();

    const { certFile: _c, keyFile: _k, ...noCert } = managerTls();
    const anonymous = new Connections({ timeoutMs: 1000, tls: noCert });
    await expect(anonymous.call(nodes[0]!.addr, 'PING')).rejects.toThrow();
    anonymous.close();
  });

  it('a proxy that trusts another CA or checks another name serves from the upstream without L2', async () => {
    const wrong: Record<string, string>[] = [
      { REDIS_TLS_CA_FILE: otherCa.cert },
      { REDIS_TLS_SERVER_NAME: 'someone-else.test' },
    ];
    for (const env of wrong) {
      const p = await proxy(env, false);
      const before = upstream.stats.byPath['/3/movie/603'] ?? 0;
      const res = await fetch(`${p.url}/3/movie/603`);
      expect(res.status, JSON.stringify(env)).toBe(200);
      // In L2 for the trusting proxies, but this one could not read it: it asked the upstream.
      expect(res.headers.get('x-cache')).toBe('MISS');
      expect(upstream.stats.byPath['/3/movie/603']).toBe(before + 1);
      // Saying why: the certificate, not "connection closed".
      await waitFor('the refusal to be logged', () =>
        /L2 not reachable.*(certificate|altnames)|(certificate|altnames).*L2 not reachable/i.test(
          p.logs(),
        ),
      );
    }
  });

  it("a renewed certificate is loaded by every node through the operator's reload, and the proxies keep serving L2", async () => {
    const p = await proxy();
    await fetch(`${p.url}/3/movie/604`);
    const renewed = signed(
      pki,
      `server-renewed-${persistence}`,
      '/CN=redis',
      `basicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth,clientAuth\nsubjectAltName=DNS:${NODE_NAME}`,
    );
    const addrs = nodes.map((n) => n.addr);
    const conns = new Connections({ timeoutMs: 2000, tls: managerTls() });
    try {
      const wanted = readFileSync(renewed.cert, 'utf8');
      // The Secret is renewed but the files are not refreshed yet: every node is still pending.
      expect(await reloadRenewedCertificates(conns, addrs, wanted, 2000, live)).toEqual({
        reloaded: [],
        pending: expect.arrayContaining(addrs),
      });
      install(renewed);
      const outcome = await reloadRenewedCertificates(conns, addrs, wanted, 2000, live);
      expect(outcome.reloaded.sort()).toEqual([...addrs].sort());
      expect(outcome.pending).toEqual([]);
      // Nothing more to do once they serve it.
      expect(await reloadRenewedCertificates(conns, addrs, wanted, 2000, live)).toEqual({
        reloaded: [],
        pending: [],
      });
    } finally {
      conns.close();
    }
    for (const n of nodes) expect(await servedSerial(n)).toBe(serialOf(renewed.cert));
    // A proxy already connected, and one connecting now, both read L2.
    const fresh = await proxy();
    await waitFor('both proxies to read L2', async () => {
      const [old, now] = await Promise.all([
        fetch(`${p.url}/3/movie/603`),
        fetch(`${fresh.url}/3/movie/604`),
      ]);
      return old.headers.get('x-cache') !== 'MISS' && now.headers.get('x-cache') === 'L2';
    });
  });
});
