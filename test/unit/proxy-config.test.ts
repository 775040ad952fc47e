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
});
