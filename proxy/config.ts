/**
 * Proxy configuration: environment → typed, validated ProxyConfig. Names and defaults follow
 * the seed documents (TTLs in minutes, Redis timeouts in seconds); a bad value stops start-up
 * with a ConfigError naming the variable and the allowed values.
 */

import {
  bool,
  decimal,
  formatValue,
  type HostPort,
  hostPortList,
  httpUrl,
  integer,
  oneOf,
  originList,
  pairList,
  type RatePerWindow,
  ratePerWindow,
  readableFile,
  readEnv,
  text,
} from '../lib/env.ts';
import { ConfigError } from '../lib/errors.ts';
import type { RedisTls } from '../lib/redis/tls.ts';
import type { TtlPair } from './cache/policy.ts';
import type { RouteClass } from './route-class.ts';

const MIB = 1024 * 1024;
const WEEK_MINUTES = 7 * 24 * 60;
const minutes = (name: string, dflt: number, help: string) =>
  decimal(name, {
    default: dflt,
    min: 0,
    max: 52 * WEEK_MINUTES,
    unit: 'minutes',
    help: `${help}; 0 turns this tier off for the class`,
  });
const seconds = (name: string, dflt: number, help: string) =>
  decimal(name, { default: dflt, min: 0.001, max: 3600, unit: 'seconds', help });

export const proxyEnv = {
  port: integer('PORT', {
    default: 6635,
    min: 0,
    max: 65535,
    help: 'TCP port to listen on (0 picks a free port)',
  }),
  host: text('HOST', { default: '0.0.0.0', help: 'address to listen on' }),
  region: text('REGION', {
    default: 'local',
    help: 'region name reported in /status, logs and metrics',
  }),
  logLevel: oneOf('LOG_LEVEL', ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'], {
    default: 'info',
    help: 'pino log level',
  }),
  tmdbApiKey: text('TMDB_API_KEY', {
    default: undefined,
    secret: true,
    help: 'TMDB v3 API key or v4 read access token; injected server-side only. Unset: serve built-in demo data',
  }),
  tmdbApiUrl: httpUrl('TMDB_API_URL', {
    default: undefined,
    help: 'TMDB API origin (default https://api.themoviedb.org, or the demo upstream when no key is set)',
  }),
  tmdbImageUrl: httpUrl('TMDB_IMAGE_URL', {
    default: undefined,
    help: 'TMDB image origin (default https://image.tmdb.org, or TMDB_API_URL when that is set)',
  }),
  shieldUrl: httpUrl('SHIELD_URL', {
    default: undefined,
    help: 'an upper-tier tiercache proxy (the home region) asked before the upstream on a miss; the upstream is asked when it cannot answer',
  }),
  useRedis: bool('USE_REDIS', {
    default: undefined,
    help: 'use the Redis L2 tier (default: true when REDIS_CLUSTER_NODES is set)',
  }),
  redisNodes: hostPortList('REDIS_CLUSTER_NODES', {
    default: [],
    help: 'Redis Cluster seed nodes (or one standalone Redis)',
  }),
  redisFallbackNodes: hostPortList('REDIS_FALLBACK_NODES', {
    default: [],
    help: 'Redis nodes used while the main cluster is unreachable',
  }),
  redisReadFrom: oneOf('REDIS_READ_FROM', ['master', 'nearest'], {
    default: 'master',
    help: "where L2 looks go in a cluster: 'master', or 'nearest' — the copy of the key's slot (a replica, sent READONLY, or the master) that answers this proxy fastest, e.g. a replica in its own region; leases and writes always go to the master",
  }),
  redisMode: oneOf('REDIS_MODE', ['auto', 'cluster', 'standalone'], {
    default: 'auto',
    help: 'how to talk to the nodes; auto asks the first reachable node',
  }),
  redisUsername: text('REDIS_USERNAME', {
    default: undefined,
    help: 'Redis ACL user to AUTH as (with it, a user without a password accepts any REDIS_PASSWORD)',
  }),
  redisPassword: text('REDIS_PASSWORD', {
    default: undefined,
    secret: true,
    help: 'Redis AUTH password',
  }),
  redisTls: bool('REDIS_TLS', {
    default: false,
    help: 'connect to Redis over TLS (the REDIS_TLS_* settings need it)',
  }),
  redisTlsCaFile: readableFile('REDIS_TLS_CA_FILE', {
    default: undefined,
    help: "PEM file of the CAs that signed the Redis nodes' certificates (default: the public CAs)",
  }),
  redisTlsCertFile: readableFile('REDIS_TLS_CERT_FILE', {
    default: undefined,
    help: 'client certificate for nodes that ask for one (tls-auth-clients), with REDIS_TLS_KEY_FILE',
  }),
  redisTlsKeyFile: readableFile('REDIS_TLS_KEY_FILE', {
    default: undefined,
    help: "the client certificate's private key",
  }),
  redisTlsServerName: text('REDIS_TLS_SERVER_NAME', {
    default: undefined,
    help: "the name every node's certificate is checked against (default: the address dialled; a cluster hands out IPs, so give the name its certificates carry)",
  }),
  redisPoolSize: integer('REDIS_POOL_SIZE', {
    default: 10,
    min: 1,
    max: 1000,
    help: 'accepted for seed compatibility; ioredis multiplexes one pipelined connection per node',
  }),
  redisMinIdleConns: integer('REDIS_MIN_IDLE_CONNS', {
    default: 2,
    min: 0,
    max: 1000,
    help: 'accepted for seed compatibility (see REDIS_POOL_SIZE)',
  }),
  redisConnectTimeout: seconds(
    'REDIS_CONNECT_TIMEOUT',
    5,
    'timeout for connecting to a Redis node',
  ),
  redisReadTimeout: seconds('REDIS_READ_TIMEOUT', 3, 'timeout for every Redis read'),
  redisWriteTimeout: seconds('REDIS_WRITE_TIMEOUT', 3, 'timeout for every Redis write'),
  l2Compression: oneOf('L2_COMPRESSION', ['deflate', 'off'], {
    default: 'deflate',
    help: 'JSON and text bodies of 1 KiB or more stored deflated in L2 when that saves a fifth or more (images never): ~75 % less Redis memory on the demo data, ~5 µs more CPU per L2 hit',
  }),
  l2SoftTimeout: integer('L2_SOFT_TIMEOUT_MS', {
    default: 50,
    min: 0,
    max: 60_000,
    help: "how long a request waits for L2's answer before it is served from stale L1 or the upstream (the read finishes in the background): never under 3× L2's recent latency, so a region far from Redis keeps it; 0 waits for REDIS_READ_TIMEOUT",
  }),
  breakerFailures: integer('REDIS_BREAKER_FAILURES', {
    default: 5,
    min: 1,
    max: 1000,
    help: 'consecutive Redis failures that open the circuit breaker',
  }),
  breakerCooldown: seconds(
    'REDIS_BREAKER_COOLDOWN',
    2,
    'how long the open breaker skips Redis before probing it again',
  ),
  jsonMemoryTtl: minutes('JSON_MEMORY_TTL', 15, 'L1 TTL of JSON details'),
  jsonDiskTtl: minutes('JSON_DISK_TTL', 360, 'L2 TTL of JSON details'),
  imageMemoryTtl: minutes('IMAGE_MEMORY_TTL', 30, 'L1 TTL of images'),
  imageDiskTtl: minutes('IMAGE_DISK_TTL', 10080, 'L2 TTL of images'),
  searchMemoryTtl: minutes('SEARCH_MEMORY_TTL', 3, 'L1 TTL of search results'),
  searchDiskTtl: minutes('SEARCH_DISK_TTL', 10, 'L2 TTL of search results'),
  notFoundTtl: minutes('NOT_FOUND_TTL', 1, 'TTL of upstream 404 answers (both tiers)'),
  staleTtl: minutes(
    'STALE_TTL',
    60,
    'how long past expiry an entry may still be served stale (while revalidating, or when the upstream fails)',
  ),
  l1MaxBytes: decimal('L1_MAX_BYTES', {
    default: 64,
    min: 1,
    max: 1024 * 1024,
    unit: 'MiB',
    help: 'L1 memory budget for JSON entries',
  }),
  l1ImageMaxBytes: decimal('L1_IMAGE_MAX_BYTES', {
    default: 128,
    min: 0,
    max: 1024 * 1024,
    unit: 'MiB',
    help: 'L1 memory budget for images; 0 keeps images out of L1',
  }),
  l2MaxEntryBytes: decimal('L2_MAX_ENTRY_BYTES', {
    default: 8,
    min: 0,
    max: 512,
    unit: 'MiB',
    help: 'largest answer kept in L2; larger ones (big images) are served and kept in L1 only',
  }),
  upstreamTimeout: seconds('UPSTREAM_TIMEOUT', 10, 'timeout for one upstream request'),
  requestTimeout: seconds(
    'REQUEST_TIMEOUT',
    15,
    'longest a client waits for an answer (a lease wait, an upstream call, a batch): past it the answer is a 504 while the fetch goes on and fills the cache',
  ),
  coalesceLease: seconds(
    'COALESCE_LEASE',
    5,
    'how long one replica holds the cross-replica fetch lease for a key',
  ),
  cryptoApiUrl: httpUrl('CRYPTO_API_URL', {
    default: undefined,
    help: 'CoinGecko-compatible API base (default https://api.coingecko.com/api/v3, or the demo upstream when no CRYPTO_API_KEY is set)',
  }),
  cryptoApiKey: text('CRYPTO_API_KEY', {
    default: undefined,
    secret: true,
    help: 'CoinGecko API key (sent as x-cg-pro-api-key to pro-api hosts, else x-cg-demo-api-key); injected server-side only',
  }),
  cryptoSymbolIds: pairList('CRYPTO_SYMBOL_IDS', {
    default: {},
    key: /^[A-Za-z0-9]{1,15}$/,
    value: /^[a-z0-9][a-z0-9-]{0,99}$/,
    example: 'BTC=bitcoin,USDC=usd-coin',
    help: 'symbol → CoinGecko id overrides; other shared symbols mean the coin with the best market-cap rank',
  }),
  cryptoPriceTtl: decimal('CRYPTO_PRICE_TTL', {
    default: 30,
    min: 0,
    max: 86_400,
    unit: 'seconds',
    help: 'TTL of latest prices (both tiers); 0 disables caching them',
  }),
  cryptoIndicatorTtl: minutes('CRYPTO_INDICATOR_TTL', 5, 'TTL of market indicators (both tiers)'),
  cryptoOpenCandleTtl: decimal('CRYPTO_OPEN_CANDLE_TTL', {
    default: 60,
    min: 0,
    max: 86_400,
    unit: 'seconds',
    help: "TTL of today's chart points (the open candle) and of analysis computed from them",
  }),
  cryptoClosedCandleTtl: minutes(
    'CRYPTO_CLOSED_CANDLE_TTL',
    1440,
    'TTL of chart points of past days (closed candles never change)',
  ),
  corsOrigins: originList('CORS_ORIGINS', {
    default: '*',
    help: 'browser origins that may read the data routes (/3/*, /t/p/*, /api/*): *, none, or a list; admin routes never answer cross-origin',
  }),
  rateLimitTmdb: ratePerWindow('RATE_LIMIT_TMDB', {
    default: 'off',
    help: 'per-client limit on /3/* requests, shared by every replica through Redis (per replica without it); answered 429 with Retry-After over it',
  }),
  rateLimitImages: ratePerWindow('RATE_LIMIT_IMAGES', {
    default: 'off',
    help: 'per-client limit on /t/p/* (image) requests, as RATE_LIMIT_TMDB',
  }),
  rateLimitCrypto: ratePerWindow('RATE_LIMIT_CRYPTO', {
    default: 'off',
    help: 'per-client limit on the crypto data routes (/api/*, not /api/cache/*), as RATE_LIMIT_TMDB',
  }),
  trustProxy: integer('TRUST_PROXY', {
    default: 0,
    min: 0,
    max: 10,
    help: 'proxies in front of this one (ingress, load balancer) whose X-Forwarded-For names the client; 0 trusts none',
  }),
  adminToken: text('ADMIN_TOKEN', {
    default: undefined,
    secret: true,
    help: 'bearer token for the admin routes (keys, search, stats, nodes, config, clear, invalidate); unset disables them (403)',
  }),
};

export interface RedisConfig {
  nodes: HostPort[];
  fallbackNodes: HostPort[];
  mode: 'auto' | 'cluster' | 'standalone';
  /** REDIS_READ_FROM: L2 looks from the masters, or from the nearest copy of each slot. */
  readFrom: 'master' | 'nearest';
  username: string | undefined;
  password: string | undefined;
  /** TLS to every node (REDIS_TLS=true), or plain TCP. */
  tls: RedisTls | undefined;
  connectTimeoutMs: number;
  readTimeoutMs: number;
  writeTimeoutMs: number;
  /** Hot-path reads: how long a request waits before it goes on without L2 (0: the read timeout). */
  softTimeoutMs: number;
  /** How bodies are stored: deflated where it pays, or always as they are. */
  compression: 'deflate' | 'off';
  breakerFailures: number;
  breakerCooldownMs: number;
}

export interface ProxyConfig {
  port: number;
  host: string;
  region: string;
  logLevel: string;
  tmdb: { apiKey: string | undefined; apiUrl: string | undefined; imageUrl: string | undefined };
  /** SHIELD_URL: the upper-tier proxy asked before the upstream (upstreams/shield.ts). */
  shieldUrl: string | undefined;
  crypto: {
    apiKey: string | undefined;
    apiUrl: string | undefined;
    /** Upper-case symbol → coin id, as CRYPTO_SYMBOL_IDS gives. */
    symbolIds: ReadonlyMap<string, string>;
  };
  redis: RedisConfig | undefined;
  ttl: Record<string, TtlPair>;
  notFoundTtlMs: number;
  staleMs: number;
  l1: { maxBytes: number; imageMaxBytes: number };
  /** Largest body kept in L2, in bytes. */
  l2MaxEntryBytes: number;
  upstreamTimeoutMs: number;
  /** REQUEST_TIMEOUT: the longest a client waits for an answer. */
  requestTimeoutMs: number;
  leaseMs: number;
  adminToken: string | undefined;
  /** Origins that may read the data routes from a browser. */
  corsOrigins: '*' | 'none' | string[];
  /** Per-client request limits by route class ('off': none). */
  rateLimits: Record<RouteClass, RatePerWindow | 'off'>;
  /** Hops of X-Forwarded-For to believe when naming the client. */
  trustProxy: number;
  /** Every variable with its effective value, secrets redacted — what /config shows. */
  redacted: Record<string, string>;
}

const MINUTE = 60_000;

/** REDIS_TLS and its files, checked together: a setting that would be ignored is an error. */
function redisTls(v: {
  redisTls: boolean;
  redisTlsCaFile: string | undefined;
  redisTlsCertFile: string | undefined;
  redisTlsKeyFile: string | undefined;
  redisTlsServerName: string | undefined;
}): RedisTls | undefined {
  const given = Object.entries({
    REDIS_TLS_CA_FILE: v.redisTlsCaFile,
    REDIS_TLS_CERT_FILE: v.redisTlsCertFile,
    REDIS_TLS_KEY_FILE: v.redisTlsKeyFile,
    REDIS_TLS_SERVER_NAME: v.redisTlsServerName,
  }).filter(([, value]) => value !== undefined);
  if (!v.redisTls) {
    if (given.length > 0)
      throw new ConfigError('REDIS_TLS', `must be true when ${given[0]![0]} is set`);
    return undefined;
  }
  if ((v.redisTlsCertFile === undefined) !== (v.redisTlsKeyFile === undefined))
    throw new ConfigError(
      v.redisTlsCertFile === undefined ? 'REDIS_TLS_CERT_FILE' : 'REDIS_TLS_KEY_FILE',
      'REDIS_TLS_CERT_FILE and REDIS_TLS_KEY_FILE go together: set both or neither',
    );
  return {
    caFile: v.redisTlsCaFile,
    certFile: v.redisTlsCertFile,
    keyFile: v.redisTlsKeyFile,
    serverName: v.redisTlsServerName,
  };
}

export function loadProxyConfig(env: NodeJS.ProcessEnv = process.env): ProxyConfig {
  const v = readEnv(proxyEnv, env);
  const useRedis = v.useRedis ?? v.redisNodes.length > 0;
  if (useRedis && v.redisNodes.length === 0) {
    throw new ConfigError(
      'REDIS_CLUSTER_NODES',
      'must list at least one host:port when USE_REDIS=true',
    );
  }
  const tls = redisTls(v);
  const redacted: Record<string, string> = {};
  for (const [key, spec] of Object.entries(proxyEnv)) {
    redacted[spec.name] = formatValue(spec, (v as Record<string, unknown>)[key]);
  }
  return {
    port: v.port,
    host: v.host,
    region: v.region,
    logLevel: v.logLevel,
    tmdb: { apiKey: v.tmdbApiKey, apiUrl: v.tmdbApiUrl, imageUrl: v.tmdbImageUrl ?? v.tmdbApiUrl },
    shieldUrl: v.shieldUrl,
    crypto: {
      apiKey: v.cryptoApiKey,
      apiUrl: v.cryptoApiUrl,
      symbolIds: new Map(
        Object.entries(v.cryptoSymbolIds).map(([symbol, id]) => [symbol.toUpperCase(), id]),
      ),
    },
    redis: useRedis
      ? {
          nodes: v.redisNodes,
          fallbackNodes: v.redisFallbackNodes,
          mode: v.redisMode,
          readFrom: v.redisReadFrom,
          username: v.redisUsername,
          password: v.redisPassword,
          tls,
          connectTimeoutMs: v.redisConnectTimeout * 1000,
          readTimeoutMs: v.redisReadTimeout * 1000,
          writeTimeoutMs: v.redisWriteTimeout * 1000,
          softTimeoutMs: v.l2SoftTimeout,
          compression: v.l2Compression,
          breakerFailures: v.breakerFailures,
          breakerCooldownMs: v.breakerCooldown * 1000,
        }
      : undefined,
    ttl: {
      json: { memoryMs: v.jsonMemoryTtl * MINUTE, diskMs: v.jsonDiskTtl * MINUTE },
      image: { memoryMs: v.imageMemoryTtl * MINUTE, diskMs: v.imageDiskTtl * MINUTE },
      search: { memoryMs: v.searchMemoryTtl * MINUTE, diskMs: v.searchDiskTtl * MINUTE },
      prices: { memoryMs: v.cryptoPriceTtl * 1000, diskMs: v.cryptoPriceTtl * 1000 },
      indicators: {
        memoryMs: v.cryptoIndicatorTtl * MINUTE,
        diskMs: v.cryptoIndicatorTtl * MINUTE,
      },
      meta: { memoryMs: 24 * 60 * MINUTE, diskMs: 24 * 60 * MINUTE },
      'charts-open': {
        memoryMs: v.cryptoOpenCandleTtl * 1000,
        diskMs: v.cryptoOpenCandleTtl * 1000,
      },
      'charts-closed': {
        memoryMs: v.cryptoClosedCandleTtl * MINUTE,
        diskMs: v.cryptoClosedCandleTtl * MINUTE,
      },
      analysis: { memoryMs: v.cryptoOpenCandleTtl * 1000, diskMs: v.cryptoOpenCandleTtl * 1000 },
    },
    notFoundTtlMs: v.notFoundTtl * MINUTE,
    staleMs: v.staleTtl * MINUTE,
    l1: {
      maxBytes: Math.round(v.l1MaxBytes * MIB),
      imageMaxBytes: Math.round(v.l1ImageMaxBytes * MIB),
    },
    l2MaxEntryBytes: Math.round(v.l2MaxEntryBytes * MIB),
    upstreamTimeoutMs: v.upstreamTimeout * 1000,
    requestTimeoutMs: v.requestTimeout * 1000,
    leaseMs: v.coalesceLease * 1000,
    adminToken: v.adminToken,
    corsOrigins: v.corsOrigins,
    rateLimits: { tmdb: v.rateLimitTmdb, images: v.rateLimitImages, crypto: v.rateLimitCrypto },
    trustProxy: v.trustProxy,
    redacted,
  };
}
