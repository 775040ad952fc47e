import { describe, expect, it } from 'vitest';
import {
  bool,
  decimal,
  hostPortList,
  httpUrl,
  integer,
  nameList,
  oneOf,
  readEnv,
} from '../../lib/env.ts';
import { ConfigError } from '../../lib/errors.ts';

describe('environment parsing', () => {
  const spec = {
    port: integer('PORT', { default: 6635, min: 0, max: 65535, help: '' }),
    ttl: decimal('JSON_MEMORY_TTL', { default: 15, min: 0, max: 100, unit: 'minutes', help: '' }),
    use: bool('USE_REDIS', { default: undefined, help: '' }),
    level: oneOf('LOG_LEVEL', ['info', 'debug'], { default: 'info', help: '' }),
    nodes: hostPortList('REDIS_CLUSTER_NODES', { default: [], help: '' }),
    url: httpUrl('TMDB_API_URL', { default: undefined, help: '' }),
    namespaces: nameList('WATCH_NAMESPACES', { default: [], help: '' }),
  };

  it('applies defaults when variables are unset or empty', () => {
    expect(readEnv(spec, { PORT: '' })).toEqual({
      port: 6635,
      ttl: 15,
      use: undefined,
      level: 'info',
      nodes: [],
      url: undefined,
      namespaces: [],
    });
  });

  it('parses decimals, booleans, lists and URLs', () => {
    const v = readEnv(spec, {
      JSON_MEMORY_TTL: '0.5',
      USE_REDIS: 'yes',
      REDIS_CLUSTER_NODES: 'redis1:6379, 10.0.0.2:7001,[::1]:7002',
      TMDB_API_URL: 'http://127.0.0.1:9000/',
      WATCH_NAMESPACES: 'team-a, team-b,team-a',
    });
    expect(v.namespaces).toEqual(['team-a', 'team-b']);
    expect(v.ttl).toBe(0.5);
    expect(v.use).toBe(true);
    expect(v.nodes).toEqual([
      { host: 'redis1', port: 6379 },
      { host: '10.0.0.2', port: 7001 },
      { host: '::1', port: 7002 },
    ]);
    expect(v.url).toBe('http://127.0.0.1:9000');
  });

  it.each([
    ['PORT', 'abc', /PORT: invalid value "abc"; allowed: an integer from 0 to 65535/],
    ['PORT', '70000', /PORT/],
    ['JSON_MEMORY_TTL', '-1', /JSON_MEMORY_TTL: .*allowed: a number of minutes from 0 to 100/],
    ['USE_REDIS', 'maybe', /USE_REDIS: .*true or false/],
    ['LOG_LEVEL', 'loud', /LOG_LEVEL: .*allowed: info, debug/],
    [
      'REDIS_CLUSTER_NODES',
      'redis1',
      /REDIS_CLUSTER_NODES: invalid value "redis1"; allowed: comma-separated host:port/,
    ],
    ['TMDB_API_URL', 'ftp://x', /TMDB_API_URL: .*http/],
    ['WATCH_NAMESPACES', 'team-a,Team_B', /WATCH_NAMESPACES: invalid value "Team_B"; allowed: /],
  ])('rejects %s=%s naming the variable and the allowed values', (name, value, message) => {
    const run = () => readEnv(spec, { [name]: value });
    expect(run).toThrow(ConfigError);
    expect(run).toThrow(message);
  });
});
