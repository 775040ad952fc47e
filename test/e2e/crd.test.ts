/**
 * The CacheCluster and CacheClusterBackup CRDs on a real API server: defaults filled in, the sample accepted, invalid
 * specs refused by the API server itself with messages a person understands, immutable and
 * grow-only fields enforced on update, printer columns and the scale subresource.
 */
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REDIS_DEFAULTS } from '../helpers/cachecluster-defaults.ts';
import { kubectl, kubectlJson } from '../helpers/kube.ts';

const CRD = fileURLToPath(new URL('../../crds/cacheclusters.tiercache.io.yaml', import.meta.url));
const BACKUP_CRD = fileURLToPath(
  new URL('../../crds/cacheclusterbackups.tiercache.io.yaml', import.meta.url),
);
const SAMPLE = fileURLToPath(new URL('../../crds/samples/cachecluster.yaml', import.meta.url));
const NS = `crd-${process.pid}`;

interface CacheClusterJson {
  spec: {
    redis: Record<string, unknown> & {
      persistence: Record<string, unknown>;
      auth: Record<string, unknown>;
    };
    proxies?: Record<string, unknown>[];
  };
}

/** Applies a CacheCluster; the API server's refusal (stderr) is returned, '' when accepted. */
function apply(doc: object): string {
  try {
    kubectl(['apply', '-n', NS, '-f', '-'], JSON.stringify(doc));
    return '';
  } catch (err) {
    return String((err as { stderr?: string }).stderr ?? err);
  }
}

const cc = (name: string, spec: object) => ({
  apiVersion: 'tiercache.io/v1alpha1',
  kind: 'CacheCluster',
  metadata: { name },
  spec,
});

let installedHere = false;

beforeAll(() => {
  installedHere = !kubectl(['get', 'crd', '-o', 'name']).includes('cacheclusters.tiercache.io');
  kubectl(['apply', '--server-side', '--force-conflicts', '-f', CRD, '-f', BACKUP_CRD]);
  kubectl([
    'wait',
    '--for=condition=Established',
    '--timeout=60s',
    'crd/cacheclusters.tiercache.io',
    'crd/cacheclusterbackups.tiercache.io',
  ]);
  kubectl(['create', 'namespace', NS]);
});

afterAll(() => {
  kubectl(['delete', 'namespace', NS, '--wait=false']);
  if (installedHere) kubectl(['delete', '-f', CRD, '-f', BACKUP_CRD, '--wait=false']);
});

describe('CacheCluster CRD', () => {
  it('fills in every default', () => {
    expect(apply(cc('defaults', { redis: {} }))).toBe('');
    const got = kubectlJson<CacheClusterJson>(['get', 'cc', 'defaults', '-n', NS]);
    expect(got.spec.redis).toEqual(REDIS_DEFAULTS);
  });

  it('accepts the sample (3 shards × 1 replica, a TMDB and a crypto proxy in two regions)', () => {
    const out = kubectl(['apply', '-n', NS, '--dry-run=server', '-f', SAMPLE]);
    expect(out).toContain('cachecluster.tiercache.io/cache created (server dry run)');
    const proxy = { name: 'p', upstream: 'tmdb', region: 'eu-west-1' };
    expect(apply(cc('with-proxy', { redis: {}, proxies: [proxy] }))).toBe('');
    const got = kubectlJson<CacheClusterJson>(['get', 'cc', 'with-proxy', '-n', NS]);
    expect(got.spec.proxies?.[0]).toMatchObject({ replicas: 2 });
  });

  it.each([
    [
      'zero shards',
      { redis: { shards: 0 } },
      /spec\.redis\.shards: Invalid value: 0: .*greater than or equal to 1/,
    ],
    [
      'negative replicas',
      { redis: { replicasPerShard: -1 } },
      /spec\.redis\.replicasPerShard: Invalid value: -1: .*greater than or equal to 0/,
    ],
    [
      'an unknown upstream',
      { redis: {}, proxies: [{ name: 'a', upstream: 'imdb', region: 'x' }] },
      /spec\.proxies\[0\]\.upstream: Unsupported value: "imdb": supported values: "tmdb", "crypto"/,
    ],
    [
      'duplicate proxy names',
      {
        redis: {},
        proxies: [
          { name: 'a', upstream: 'tmdb', region: 'x' },
          { name: 'a', upstream: 'crypto', region: 'y' },
        ],
      },
      /spec\.proxies\[1\]: Duplicate value/,
    ],
    [
      'an unknown eviction policy',
      { redis: { evictionPolicy: 'lru' } },
      /spec\.redis\.evictionPolicy: Unsupported value: "lru"/,
    ],
    [
      'a malformed memory size',
      { redis: { maxMemory: '1 GB' } },
      /spec\.redis\.maxMemory: Invalid value: "1 GB"/,
    ],
    [
      'a proxy env setting what the operator owns',
      {
        redis: {},
        proxies: [
          { name: 'a', upstream: 'tmdb', region: 'x', env: { REDIS_CLUSTER_NODES: 'x:1' } },
        ],
      },
      /env may not set REGION, REDIS_\* or the API key variables/,
    ],
    [
      'a password Secret without auth',
      { redis: { auth: { enabled: false, secretName: 's' } } },
      /auth\.secretName needs auth\.enabled/,
    ],
    [
      'a proxy ACL user without auth',
      { redis: { auth: { enabled: false, users: { proxies: true } } } },
      /auth\.users\.proxies needs auth\.enabled/,
    ],
    [
      'a replication ACL user without auth',
      { redis: { auth: { enabled: false, users: { replication: true } } } },
      /auth\.users\.replication needs auth\.enabled/,
    ],
    [
      'an operator ACL user without auth',
      { redis: { auth: { enabled: false, users: { operator: true } } } },
      /auth\.users\.operator needs auth\.enabled/,
    ],
    [
      'default disabled while a client still has no user of its own',
      {
        redis: {
          auth: { defaultUser: 'disabled', users: { proxies: true, replication: true } },
        },
      },
      /auth\.defaultUser disabled needs auth\.enabled and auth\.users\.proxies, replication and operator/,
    ],
    [
      'default disabled by a name the API does not know',
      { redis: { auth: { defaultUser: 'off' } } },
      /defaultUser: Unsupported value: "off": supported values: "password", "disabled"/,
    ],
  ])('refuses %s with a clear message', (_what, spec, message) => {
    const refusal = apply(cc('bad', spec));
    expect(refusal).toMatch(/is invalid/);
    expect(refusal).toMatch(message);
  });

  it('refuses shrinking or switching persistence, and allows growing it', () => {
    const spec = (persistence: object) => ({ redis: { persistence } });
    expect(apply(cc('disk', spec({ enabled: true, size: '2Gi' })))).toBe('');
    expect(apply(cc('disk', spec({ enabled: true, size: '1Gi' })))).toMatch(
      /persistence\.size cannot shrink/,
    );
    expect(apply(cc('disk', spec({ enabled: false, size: '2Gi' })))).toMatch(
      /persistence\.enabled cannot change after creation/,
    );
    expect(apply(cc('disk', spec({ enabled: true, size: '4Gi' })))).toBe('');
  });

  it('refuses switching TLS on or off after creation, and TLS without its Secret', () => {
    const tls = (t: object) => ({ redis: { tls: t } });
    expect(apply(cc('tls', tls({ enabled: true, secretName: 'redis-tls' })))).toBe('');
    expect(apply(cc('tls', tls({ enabled: false })))).toMatch(
      /tls\.enabled cannot change after creation/,
    );
    expect(apply(cc('tls', tls({ enabled: true, secretName: 'renewed-tls' })))).toBe('');
    expect(apply(cc('plain', {}))).toBe('');
    expect(apply(cc('plain', tls({ enabled: true, secretName: 'x' })))).toMatch(
      /tls\.enabled cannot change after creation/,
    );
    expect(apply(cc('no-secret', tls({ enabled: true })))).toMatch(
      /tls\.enabled needs tls\.secretName/,
    );
  });

  it('refuses adding, changing or removing restore after creation, and keeping no backups', () => {
    expect(apply(cc('restored', { redis: {}, restore: { backup: 'b1' } }))).toBe('');
    expect(apply(cc('restored', { redis: {}, restore: { backup: 'b2' } }))).toMatch(
      /restore is fixed at creation/,
    );
    expect(apply(cc('restored', { redis: {} }))).toMatch(/restore is fixed at creation/);
    expect(apply(cc('plain', { redis: {}, restore: { backup: 'b1' } }))).toMatch(
      /restore is fixed at creation/,
    );
    expect(apply(cc('keeps', { redis: {}, backup: { keep: 0 } }))).toMatch(
      /spec\.backup\.keep: Invalid value: 0: .*greater than or equal to 1/,
    );
    expect(apply(cc('keeps', { redis: {}, backup: { schedule: '0 * * * *' } }))).toBe('');
    const got = kubectlJson<{ spec: { backup: object } }>(['get', 'cc', 'keeps', '-n', NS]);
    expect(got.spec.backup).toEqual({
      schedule: '0 * * * *',
      keep: 7,
      size: '1Gi',
      storageClassName: '',
    });
  });

  it('CacheClusterBackup: names its cluster, and its spec never changes', () => {
    const ccb = (name: string, spec: object) => ({
      apiVersion: 'tiercache.io/v1alpha1',
      kind: 'CacheClusterBackup',
      metadata: { name },
      spec,
    });
    expect(apply(ccb('nameless', {}))).toMatch(/spec\.cacheCluster: Required value/);
    expect(apply(ccb('b1', { cacheCluster: 'cache' }))).toBe('');
    expect(apply(ccb('b1', { cacheCluster: 'other' }))).toMatch(/a backup's spec cannot change/);
    const table = kubectl(['get', 'ccb', '-n', NS]);
    expect(table.split('\n')[0]).toMatch(/^NAME\s+CLUSTER\s+PHASE\s+KEYS\s+BYTES\s+AGE$/);
  });

  it('shows shards, replicas, Ready, migration and age, and scales shards', () => {
    const table = kubectl(['get', 'cc', 'defaults', '-n', NS]);
    expect(table.split('\n')[0]).toMatch(/^NAME\s+SHARDS\s+REPLICAS\s+READY\s+MIGRATION\s+AGE$/);
    expect(table.split('\n')[1]).toMatch(/^defaults\s+3\s+1\s+/);
    kubectl(['scale', 'cc/defaults', '-n', NS, '--replicas=4']);
    const got = kubectlJson<CacheClusterJson>(['get', 'cc', 'defaults', '-n', NS]);
    expect(got.spec.redis.shards).toBe(4);
    expect(kubectl(['get', 'cc', '-A', '-o', 'name'])).toContain(
      'cachecluster.tiercache.io/defaults',
    );
  });
});
