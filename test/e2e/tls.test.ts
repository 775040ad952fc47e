/**
 * CacheClusters with TLS (spec.redis.tls from the user's certificate Secret), persistence off
 * (the default) and on side by side, each with its two regional proxies: the cluster forms with
 * TLS only (clients, replication, the cluster bus), the proxies share L2 over it, a plain-text
 * connection is refused, and a renewed certificate written to the Secret is loaded by every node
 * with no restart while proxy traffic and a writer run — nothing acknowledged is lost.
 * The persistence-off cluster names its certificate Secret (secretName); the persistence-on one
 * has cert-manager issue it (issuerRef): the operator asks for a Certificate (cert-manager's
 * real CRD on the API server), waits for it (WaitingForCertificate), and the test, playing
 * cert-manager, writes the Secret it names — then the same checks run on both.
 */
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { V1Pod } from '@kubernetes/client-node';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { certificateCrd } from '../../hack/cert-manager.ts';
import { ensureCa, signed } from '../../hack/local-cluster/pki.ts';
import { isPodReady } from '../../lib/pods.ts';
import type { CacheCluster } from '../../operator/api/types.ts';
import { servedFingerprint } from '../../operator/controller/tls-reload.ts';
import { around, expectNothingLost, report } from '../helpers/e2e-around.ts';
import { E2ECacheCluster, type Mode } from '../helpers/e2e-cachecluster.ts';
import { prepareNamespace, sampleCacheCluster } from '../helpers/e2e-proxies.ts';
import { installOperator, kubectl, kubectlJson, removeAll } from '../helpers/kube.ts';
import { waitFor } from '../helpers/wait.ts';

const OPERATOR_NS = `tiercache-t${process.pid}`;
const RELEASE = `tt${process.pid}`;

const pki = mkdtempSync(join(tmpdir(), 'tiercache-e2e-tls-'));
const ca = ensureCa(pki, 'tiercache-e2e-redis-ca');
const caPem = readFileSync(ca.cert, 'utf8');

/** A server certificate for a CacheCluster `cache` in `ns`: its Service's name and every pod's. */
function serverCertificate(
  ns: string,
  name: string,
  dnsNames = [`cache-redis.${ns}.svc`, `*.cache-redis.${ns}.svc`],
) {
  return signed(
    pki,
    name,
    '/CN=cache-redis',
    [
      'basicConstraints=CA:FALSE',
      'keyUsage=digitalSignature,keyEncipherment',
      'extendedKeyUsage=serverAuth,clientAuth',
      `subjectAltName=${dnsNames.map((d) => `DNS:${d}`).join(',')}`,
    ].join('\n'),
  );
}

/** The Secret holding the nodes' certificate: named by the spec, or the one cert-manager writes. */
const secretOf = (m: Mode) => (m.persistence ? 'cache-redis-tls' : 'redis-tls');

/** Writes (or replaces) the certificate Secret, as the user or cert-manager would. */
function setTlsSecret(m: Mode, cert: { cert: string; key: string }): void {
  const ns = m.cc.ns;
  const secret = kubectl([
    'create',
    'secret',
    'generic',
    secretOf(m),
    '-n',
    ns,
    `--from-file=tls.crt=${cert.cert}`,
    `--from-file=tls.key=${cert.key}`,
    `--from-file=ca.crt=${ca.cert}`,
    '--dry-run=client',
    '-o',
    'json',
  ]);
  kubectl(['apply', '-n', ns, '-f', '-'], secret);
}

const MODES: Mode[] = [false, true].map((persistence) => {
  const ns = `tls-${persistence ? 'on' : 'off'}-${process.pid}`;
  return {
    label: `persistence ${persistence ? 'on' : 'off'}`,
    persistence,
    cc: new E2ECacheCluster(ns, 'cache', { ca: caPem, serverName: `cache-redis.${ns}.svc` }),
  };
});

interface CertificateJson {
  spec: { secretName: string; dnsNames: string[]; issuerRef: { name: string }; usages: string[] };
}

/**
 * What cert-manager would do for the operator's Certificate: the cluster waits for it meanwhile
 * (WaitingForCertificate), then gets a certificate for exactly the names it asked for.
 */
async function issueAsCertManager(m: Mode): Promise<void> {
  const certificate = await waitFor(`${m.label}: the operator's Certificate`, () => {
    try {
      return kubectlJson<CertificateJson>(['get', 'certificate', 'cache-redis-tls', '-n', m.cc.ns]);
    } catch {
      return undefined;
    }
  });
  expect(certificate.spec).toMatchObject({
    secretName: 'cache-redis-tls',
    issuerRef: { name: 'redis-ca' },
    usages: expect.arrayContaining(['server auth', 'client auth']),
  });
  expect(certificate.spec.dnsNames).toEqual(
    expect.arrayContaining([`cache-redis.${m.cc.ns}.svc`, `*.cache-redis.${m.cc.ns}.svc`]),
  );
  await waitFor(`${m.label}: WaitingForCertificate in the status`, () =>
    m.cc.get().status?.conditions?.some((c) => c.reason === 'WaitingForCertificate'),
  );
  setTlsSecret(m, serverCertificate(m.cc.ns, `issued-${m.cc.ns}`, certificate.spec.dnsNames));
}

const redisIps = (m: Mode) => m.cc.redisPods().map((p) => `${p.status!.podIP}:6379`);

beforeAll(async () => {
  const upstreams = MODES.map((m) => prepareNamespace(m.cc.ns));
  installOperator(RELEASE, OPERATOR_NS, [`watchNamespaces={${MODES.map((m) => m.cc.ns)}}`]);
  kubectl(['apply', '--server-side', '--force-conflicts', '-f', certificateCrd()]);
  kubectl([
    'wait',
    '--for=condition=Established',
    '--timeout=60s',
    'crd/certificates.cert-manager.io',
  ]);
  for (const [i, m] of MODES.entries()) {
    const cc: CacheCluster = sampleCacheCluster(upstreams[i]!);
    cc.spec.redis.persistence = { ...cc.spec.redis.persistence, enabled: m.persistence };
    if (m.persistence) {
      cc.spec.redis.tls = {
        enabled: true,
        issuerRef: { name: 'redis-ca', kind: 'Issuer', group: 'cert-manager.io' },
      };
    } else {
      setTlsSecret(m, serverCertificate(m.cc.ns, `server-${m.cc.ns}`));
      cc.spec.redis.tls = { enabled: true, secretName: 'redis-tls' };
    }
    kubectl(['apply', '-n', m.cc.ns, '-f', '-'], JSON.stringify(cc));
  }
  await issueAsCertManager(MODES.find((m) => m.persistence)!);
  await Promise.all(MODES.map((m) => m.cc.waitReadyWithReplicas()));
}, 300_000);

afterAll(() => {
  removeAll(
    RELEASE,
    OPERATOR_NS,
    MODES.map((m) => m.cc.ns),
  );
  rmSync(pki, { recursive: true, force: true });
});

describe('TLS, persistence off (the default) and on', () => {
  it('forms the cluster with TLS only; the proxies share L2 over it; a plain-text client is refused', async () => {
    for (const m of MODES) {
      await m.cc.waitHealthy();
      // Two pods of one proxy: what one fetched, the other reads from L2.
      const pods = kubectlJson<{ items: V1Pod[] }>([
        'get',
        'pods',
        '-n',
        m.cc.ns,
        '-l',
        'tiercache.io/proxy=tmdb-apac',
      ]).items.filter((p) => isPodReady(p) && !p.metadata?.deletionTimestamp);
      expect(pods.length, m.label).toBe(2);
      const [a, b] = pods.map((p) => `http://${p.status!.podIP}:6635`);
      const first = await fetch(`${a}/3/movie/777`);
      expect(first.status, m.label).toBe(200);
      await waitFor(`${m.label}: the other proxy pod to read it from L2`, async () => {
        const r = await fetch(`${b}/3/movie/777`);
        return r.headers.get('x-cache') === 'L2';
      });

      for (const addr of redisIps(m)) {
        const [host, port] = addr.split(':');
        const plain = new Redis({
          host,
          port: Number(port),
          lazyConnect: true,
          maxRetriesPerRequest: 0,
          retryStrategy: () => null,
          connectTimeout: 2000,
        });
        plain.on('error', () => {});
        await expect(
          plain.connect().then(() => plain.ping()),
          addr,
        ).rejects.toThrow();
        plain.disconnect();
      }
    }
  });

  it('a renewed certificate in the Secret is loaded by every node with no restart, under traffic and a writer; nothing lost', async () => {
    const restarts = (m: Mode) =>
      Object.fromEntries(
        m.cc
          .redisPods()
          .map((p) => [p.metadata!.uid, p.status?.containerStatuses?.[0]?.restartCount ?? 0]),
      );
    const before = MODES.map(restarts);
    const outcomes = await Promise.all(
      MODES.map((m) => {
        const renewed = serverCertificate(m.cc.ns, `server-renewed-${m.cc.ns}`);
        const wanted = new X509Certificate(readFileSync(renewed.cert)).fingerprint256;
        return around(m, 'renew', () => setTlsSecret(m, renewed), {
          what: 'every node to serve the renewed certificate',
          when: async () => {
            const served = await Promise.all(
              redisIps(m).map((a) => servedFingerprint(a, 2000).catch(() => '')),
            );
            return served.every((f) => f === wanted);
          },
        });
      }),
    );
    for (const [i, m] of MODES.entries()) {
      const o = outcomes[i]!;
      report('certificate renewed', m, o);
      // The same pods, none restarted: the nodes read the new files live.
      expect(restarts(m), m.label).toEqual(before[i]);
      expectNothingLost(m, o);
      expect(o.writes, m.label).toBeGreaterThan(0);
      expect(
        m.cc.events().some((e) => e.reason === 'CertificateReloaded'),
        m.label,
      ).toBe(true);
      await m.cc.waitHealthy();
    }
  }, 420_000);
});
