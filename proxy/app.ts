/**
 * Builds one proxy instance: tiers, upstream, routes, metrics. `buildProxy` starts nothing that
 * listens (the demo upstream, when no key is set, is handed in: open.ts starts it), so tests
 * drive it with `inject` or `listen` as they need. What it opens (Redis, the bus, upstream
 * pools, the demo upstream it was given) closes with fastify's `onClose`, after in-flight
 * requests have finished.
 */
import { randomUUID } from 'node:crypto';
import Fastify, { type FastifyError, type FastifyInstance, type FastifyReply } from 'fastify';
import { ConfigError, isTiercacheError } from '../lib/errors.ts';
import type { Logger } from '../lib/log.ts';
import pkg from '../package.json' with { type: 'json' };
import { InvalidationBus } from './cache/bus.ts';
import { redactUrl } from './cache/keys.ts';
import { MemoryTier } from './cache/l1.ts';
import { RedisTier } from './cache/l2.ts';
import { L2Admin } from './cache/l2-admin.ts';
import { TieredCache } from './cache/tiered.ts';
import type { ProxyConfig } from './config.ts';
import { dataCorsHeaders, registerCors } from './cors.ts';
import { ChartSeries } from './crypto/charts.ts';
import { LatestPrices } from './crypto/prices.ts';
import { SymbolResolver } from './crypto/resolver.ts';
import { createProxyMetrics } from './metrics.ts';
import { registerRateLimits } from './rate-limit.ts';
import { type RouteClass, routeClassOf } from './route-class.ts';
import { cacheAdminRoutes } from './routes/cache-admin.ts';
import { coingeckoApiRoutes } from './routes/coingecko.ts';
import { cryptoRoutes } from './routes/crypto.ts';
import { cryptoChartRoutes } from './routes/crypto-charts.ts';
import { dashboardRoutes } from './routes/dashboard.ts';
import type { RouteAnswers } from './routes/send.ts';
import { systemRoutes } from './routes/system.ts';
import { tmdbRoutes } from './routes/tmdb.ts';
import { statsReader } from './stats.ts';
import { forShieldClient } from './upstreams/call-context.ts';
import { COINGECKO_API, CryptoUpstream } from './upstreams/crypto.ts';
import { DEMO_LABEL, DEMO_LABEL_CRYPTO, type DemoUpstream } from './upstreams/demo-server.ts';
import { HttpUpstream } from './upstreams/http.ts';
import { SharedBackoffCopy } from './upstreams/shared-backoff.ts';
import { SHIELD_CLIENT_HEADER, Shield } from './upstreams/shield.ts';
import { TMDB_API_ORIGIN, TMDB_IMAGE_ORIGIN, TmdbUpstream } from './upstreams/tmdb.ts';
import { requestsKeptFor } from './upstreams/types.ts';

export interface ProxyInstance {
  app: FastifyInstance;
  cache: TieredCache;
  bus: InvalidationBus | undefined;
  demo: DemoUpstream | undefined;
  close(): Promise<void>;
}

/**
 * No key and no upstream URL for TMDB or CoinGecko: the built-in demo upstream stands in —
 * unless a shield answers for it (its answers are real, and so must be what stands in for it).
 */
export function demoUpstreams(config: ProxyConfig): { tmdb: boolean; crypto: boolean } {
  const shielded = config.shieldUrl !== undefined;
  return {
    tmdb: !shielded && !config.tmdb.apiKey && !config.tmdb.apiUrl,
    crypto: !shielded && !config.crypto.apiKey && !config.crypto.apiUrl,
  };
}

export interface ProxyResources {
  /** The demo upstream, when `demoUpstreams` says one is needed; closed with the proxy. */
  demo?: DemoUpstream | undefined;
}

export async function buildProxy(
  config: ProxyConfig,
  log: Logger,
  resources: ProxyResources = {},
): Promise<ProxyInstance> {
  const metrics = createProxyMetrics(config.region);
  const instance = randomUUID();

  // No key and no upstream URL: serve the built-in demo upstream, and say so everywhere.
  const { tmdb: tmdbDemo, crypto: cryptoDemo } = demoUpstreams(config);
  const { demo } = resources;
  if ((tmdbDemo || cryptoDemo) && !demo)
    throw new ConfigError(
      tmdbDemo ? 'TMDB_API_KEY' : 'CRYPTO_API_KEY',
      'not set, and no demo upstream was given to stand in (openProxy starts one)',
    );
  if (demo) {
    if (tmdbDemo)
      log.warn({ upstream: demo.url }, `TMDB_API_KEY is not set: serving ${DEMO_LABEL}`);
    if (cryptoDemo)
      log.warn({ upstream: demo.url }, `CRYPTO_API_KEY is not set: serving ${DEMO_LABEL_CRYPTO}`);
  }
  const apiUrl = tmdbDemo && demo ? demo.url : (config.tmdb.apiUrl ?? TMDB_API_ORIGIN);
  const imageUrl = tmdbDemo && demo ? demo.url : (config.tmdb.imageUrl ?? TMDB_IMAGE_ORIGIN);

  const l1 = new MemoryTier(config.l1);
  const l2 = config.redis
    ? new RedisTier(config.redis, log, {
        onBreakerChange: (target, state) => metrics.breaker(target, state),
        onNodeBreakerChange: (target, node, state) => metrics.nodeBreaker(target, node, state),
        onError: (target, op) => metrics.l2Error(target, op),
        onSlowRead: (target) => metrics.l2SlowRead(target),
      })
    : undefined;
  const cache = new TieredCache({
    l1,
    l2,
    staleMs: config.staleMs,
    notFoundMs: config.notFoundTtlMs,
    leaseMs: config.leaseMs,
    upstreamTimeoutMs: config.upstreamTimeoutMs,
    l2MaxEntryBytes: config.l2MaxEntryBytes,
    metrics,
    log,
  });
  const bus = l2
    ? new InvalidationBus(
        l2,
        instance,
        (msg, origin) => {
          if (msg.action === 'clear') cache.clearMemory();
          else if (msg.action === 'prefix') l1.deletePrefix(msg.prefix);
          else for (const key of msg.keys) l1.delete(key);
          log.info(
            { component: 'bus', action: msg.action, origin },
            'applied invalidation from another replica',
          );
        },
        log,
      )
    : undefined;

  const shared = l2
    ? new SharedBackoffCopy({
        until: (u: string) => l2.backoffUntil(u),
        hold: (u: string, t: number) => l2.holdBackoff(u, t),
      })
    : undefined;
  const http = new HttpUpstream({
    name: 'tmdb',
    timeoutMs: config.upstreamTimeoutMs,
    log,
    metrics,
    shared,
  });
  const cryptoHttp = new HttpUpstream({
    name: 'crypto',
    timeoutMs: config.upstreamTimeoutMs,
    log,
    metrics,
    shared,
  });
  const shieldHttp = config.shieldUrl
    ? new HttpUpstream({
        name: 'shield',
        timeoutMs: config.upstreamTimeoutMs,
        log,
        metrics,
        tiercache: true,
      })
    : undefined;
  const shield = shieldHttp
    ? new Shield({
        base: new URL(config.shieldUrl!),
        http: shieldHttp,
        log,
        counted: (result) => metrics.shieldRequests.labels(result).inc(),
      })
    : undefined;
  const requestsKept = requestsKeptFor(config.l1.maxBytes);
  const crypto = new CryptoUpstream({
    apiUrl: cryptoDemo && demo ? `${demo.url}/api/v3` : (config.crypto.apiUrl ?? COINGECKO_API),
    apiKey: config.crypto.apiKey,
    ttl: config.ttl,
    http: cryptoHttp,
    shield,
    requestsKept,
  });
  const tmdb = new TmdbUpstream({
    apiKey: config.tmdb.apiKey,
    apiUrl,
    imageUrl,
    ttl: config.ttl,
    http,
    shield,
    requestsKept,
  });
  const stats = statsReader(metrics);

  // Fastify gets no logger: with one it builds a child logger, a request id and two response
  // listeners for every request (~4 µs, 5 % of an L1 hit) only to write access lines a cache
  // answering thousands of requests a second must not write anyway. The proxy logs through
  // `log`, with the URL redacted, where something is worth saying.
  const app = Fastify({
    logger: false,
    // The first TRUST_PROXY hops of X-Forwarded-For are our own proxies; the next is the client.
    trustProxy: (_address: string, hop: number) => hop < config.trustProxy,
    routerOptions: { maxParamLength: 2048 },
    // Node 24: a request with no body (every GET here) starts with its body stream already
    // ended, instead of setting one up per request only to end it.
    http: { optimizeEmptyRequests: true },
  });
  // With CORS_ORIGINS=* every data answer carries the same CORS headers (cors.ts): the routes
  // write them with their answers, and the error and not-found answers of data routes here,
  // so a browser can read why its request failed.
  const cors = dataCorsHeaders(config.corsOrigins);
  const withCors = (url: string, reply: FastifyReply) =>
    routeClassOf(url) ? reply.headers(cors) : reply;
  app.setErrorHandler((err: FastifyError, req, reply) => {
    withCors(req.url, reply);
    if (isTiercacheError(err)) {
      const retry = err.details?.retryAfterSeconds;
      if (retry !== undefined) reply.header('retry-after', String(retry));
      // Stainless-generated clients (CoinGecko's, OpenAI's) retry at once unless told not to.
      if (err.code === 'UPSTREAM_RATE_LIMITED') reply.header('x-should-retry', 'false');
      if (err.httpStatus >= 500) log.warn({ url: redactUrl(req.url), code: err.code }, err.message);
      return reply
        .code(err.httpStatus)
        .send({ ...err.details, error: err.code, message: err.message });
    }
    if (err.statusCode !== undefined && err.statusCode < 500) {
      return reply.code(err.statusCode).send({ error: 'BAD_REQUEST', message: err.message });
    }
    log.error({ url: redactUrl(req.url), err }, 'unexpected error');
    return reply.code(500).send({ error: 'INTERNAL', message: 'internal error' });
  });
  app.setNotFoundHandler((req, reply) =>
    withCors(req.url, reply)
      .code(404)
      .send({ error: 'NOT_FOUND', message: `no route for ${req.method} ${req.url.split('?')[0]}` }),
  );

  // Asked by another proxy as its shield while having one: this proxy's misses go upstream.
  if (shield)
    app.addHook('onRequest', (req, _reply, done) =>
      req.headers[SHIELD_CLIENT_HEADER] ? forShieldClient(done) : done(),
    );
  await registerCors(app, config.corsOrigins);
  // After CORS: a browser may read the 429 it gets.
  await registerRateLimits(app, config.rateLimits, l2);
  // What the answers of each data route class carry (send.ts RouteAnswers).
  const answersOf = (route: RouteClass, demoLabel: string | undefined): RouteAnswers => ({
    headers: { ...cors, ...(demoLabel ? { 'x-demo-data': demoLabel } : {}) },
    deadlineMs: config.requestTimeoutMs,
    latency: metrics.answerLatency.of(route),
  });
  const tmdbLabel = tmdbDemo ? DEMO_LABEL : undefined;
  await app.register(tmdbRoutes, {
    cache,
    tmdb,
    answers: { tmdb: answersOf('tmdb', tmdbLabel), images: answersOf('images', tmdbLabel) },
  });
  const cryptoAnswers = answersOf('crypto', cryptoDemo ? DEMO_LABEL_CRYPTO : undefined);
  const onCoalesced = () => metrics.coalesced.process.inc();
  const resolver = new SymbolResolver({
    cache,
    crypto,
    overrides: config.crypto.symbolIds,
    onCoalesced,
  });
  const prices = new LatestPrices({ cache, crypto, resolver, onCoalesced });
  const charts = new ChartSeries({ cache, crypto, resolver });
  await app.register(cryptoRoutes, { cache, crypto, prices, answers: cryptoAnswers });
  await app.register(cryptoChartRoutes, { cache, crypto, charts, answers: cryptoAnswers });
  await app.register(coingeckoApiRoutes, { cache, crypto, answers: cryptoAnswers });
  await app.register(cacheAdminRoutes, {
    config,
    cache,
    l2: l2 ? new L2Admin(l2) : undefined,
    bus,
    stats,
  });
  await app.register(dashboardRoutes);
  await app.register(systemRoutes, {
    config,
    cache,
    metrics,
    stats,
    upstream: { name: 'tmdb', demo: tmdbDemo },
    version: pkg.version,
  });

  app.addHook('onClose', async () => {
    // Answers already sent may still be on their way into L2.
    await cache.writesSettled();
    await bus?.close();
    await l2?.close();
    await Promise.all([http.close(), cryptoHttp.close(), shieldHttp?.close()]);
    await demo?.close();
  });

  return { app, cache, bus, demo, close: () => app.close() };
}
