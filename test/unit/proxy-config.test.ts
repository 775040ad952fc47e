import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { loadProxyConfig } from '../../proxy/config.ts';

describe('proxy configuration', () => {
  it('uses the seed defaults: port 6635 and TTLs in minutes', () => {
    const c = loadProxyConfig({});
    expect(c.port).toBe(6635);
    expect(c.ttl.json).toEqual({ memoryMs: 15 * 60_000, diskMs: 360 * 60_000 });
    expect(c.ttl.image).toEqual({ memoryMs: 30 * 60_000, diskMs: 10080 * 60_000 });
    expect(c.ttl.search).toEqual({ memoryMs: 3 * 60_000, diskMs: 10 * 60_000 });
    expect(c.redis).toBeUndefined();
  });

  it('turns L2 on when nodes are given, with timeouts in seconds', () => {
    const c = loadProxyConfig({ REDIS_CLUSTER_NODES: 'a:1,b:2', REDIS_READ_TIMEOUT: '0.25' });
    expect(c.redis?.nodes).toHaveLength(2);
    expect(c.redis?.readTimeoutMs).toBe(250);
    expect(
      loadProxyConfig({ REDIS_CLUSTER_NODES: 'a:1', USE_REDIS: 'false' }).redis,
    ).toBeUndefined();
  });

  it('requires nodes when USE_REDIS=true', () => {
    expect(() => loadProxyConfig({ USE_REDIS: 'true' })).toThrow(/REDIS_CLUSTER_NODES/);
  });

  it('reads REDIS_TLS and its files, refusing settings that would be ignored or cannot be read', () => {
    const here = fileURLToPath(import.meta.url);
    const tls = loadProxyConfig({
      REDIS_CLUSTER_NODES: 'a:1',
      REDIS_TLS: 'true',
      REDIS_TLS_CA_FILE: here,
      REDIS_TLS_SERVER_NAME: 'cache-redis.apps.svc',
    }).redis?.tls;
    expect(tls).toEqual({
      caFile: here,
      certFile: undefined,
      keyFile: undefined,
      serverName: 'cache-redis.apps.svc',
    });
    expect(loadProxyConfig({ REDIS_CLUSTER_NODES: 'a:1' }).redis?.tls).toBeUndefined();
    const load = (env: Record<string, string>) => () =>
      loadProxyConfig({ REDIS_CLUSTER_NODES: 'a:1', ...env });
    expect(load({ REDIS_TLS_CA_FILE: here })).toThrow(
      /REDIS_TLS: must be true when REDIS_TLS_CA_FILE is set/,
    );
    expect(load({ REDIS_TLS: 'true', REDIS_TLS_CA_FILE: '/no/such/ca.pem' })).toThrow(
      /REDIS_TLS_CA_FILE: cannot read "\/no\/such\/ca.pem" \(ENOENT\)/,
    );
    expect(load({ REDIS_TLS: 'true', REDIS_TLS_CERT_FILE: here })).toThrow(
      /REDIS_TLS_KEY_FILE: REDIS_TLS_CERT_FILE and REDIS_TLS_KEY_FILE go together/,
    );
  });

  it('redacts secrets in the /config view', () => {
    const c = loadProxyConfig({
      TMDB_API_KEY: 'k3y',
      REDIS_PASSWORD: 'pw',
      ADMIN_TOKEN: 't0k',
      REDIS_CLUSTER_NODES: 'a:1',
    });
    const shown = JSON.stringify(c.redacted);
    expect(shown).not.toMatch(/k3y|pw"|t0k/);
    expect(c.redacted.TMDB_API_KEY).toBe('(set, redacted)');
    expect(c.redacted.REDIS_CLUSTER_NODES).toBe('a:1');
  });

  it('reads rate limits per route class as requests/window, off by default', () => {
    const c = loadProxyConfig({ RATE_LIMIT_TMDB: '600/1m', RATE_LIMIT_CRYPTO: '20/s' });
    expect(c.rateLimits).toEqual({
      tmdb: { max: 600, windowMs: 60_000 },
      images: 'off',
      crypto: { max: 20, windowMs: 1000 },
    });
    expect(c.redacted.RATE_LIMIT_TMDB).toBe('600/60s');
    expect(c.redacted.RATE_LIMIT_IMAGES).toBe('off');
    for (const bad of ['fast', '0/1m', '10/0s', '10/1d', '10'])
      expect(() => loadProxyConfig({ RATE_LIMIT_IMAGES: bad }), bad).toThrow(
        /RATE_LIMIT_IMAGES: invalid value .*allowed: off, or requests\/window/,
      );
  });
});
