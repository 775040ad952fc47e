/**
 * `tiercache operator`: watches CacheClusters, elects one leader among its replicas, and lets
 * the leader reconcile each CacheCluster through a keyed work queue (one worker per key at a
 * time, back-off on errors, a periodic resync). /healthz, /readyz and /metrics share one port.
 */
import { hostname } from 'node:os';
import Fastify from 'fastify';
import { createLogger } from '../lib/log.ts';
import { loadOperatorConfig } from './config.ts';
import { describeError } from './controller/errors.ts';
import { EventRecorder } from './controller/events.ts';
import { keyOf, startWatches } from './controller/informers.ts';
import { Reconciler } from './controller/reconcile.ts';
import { CONTROLLER, createOperatorMetrics, WORKERS } from './metrics.ts';
import { waitForApiServer } from './runtime/api-server.ts';
import { connect } from './runtime/kube.ts';
import { LeaderElector } from './runtime/leader.ts';
import { WorkQueue } from './runtime/queue.ts';

/** How long SIGTERM waits for running reconciles (within the pod's 30 s grace period). */
const DRAIN_MS = 20_000;

export async function runOperator(env: NodeJS.ProcessEnv = process.env): Promise<void> {
  const config = loadOperatorConfig(env);
  const log = createLogger(config.logLevel, { service: 'tiercache-operator' });
  const identity = config.podName ?? `${hostname()}-${process.pid}`;
  const kube = connect();
  const serverVersion = await waitForApiServer(kube, config.apiServerTimeoutSeconds);
  const metrics = createOperatorMetrics();
  const queue = new WorkQueue(metrics.queue(CONTROLLER));
  // Pod events that say a Redis server went down also go here: a worker of their own runs
  // only the failover phase, so a crash is not queued behind a long reconcile.
  const crashes = new WorkQueue(metrics.queue(`${CONTROLLER}-crash`));

  const elector = config.leaderElection
    ? new LeaderElector({
        kube,
        namespace: config.namespace,
        name: 'tiercache-operator',
        identity,
        leaseSeconds: config.leaseSeconds,
        log,
      })
    : undefined;

  const watches = await startWatches(
    kube,
    log,
    config.watchNamespaces,
    (key) => queue.add(key),
    (key) => crashes.add(key),
  );
  const health = Fastify({ logger: false });
  health.get('/healthz', async () => ({ status: 'ok' }));
  // Listening starts once every watch has listed its objects: from then on, ready.
  health.get('/readyz', async () => ({ status: 'ready', leading: elector?.leading ?? true }));
  health.get('/metrics', async (_req, reply) =>
    reply.type(metrics.registry.contentType).send(await metrics.registry.metrics()),
  );
  const address = await health.listen({ host: config.host, port: config.port });
  log.info(
    {
      address,
      identity,
      serverVersion,
      namespaces: config.watchNamespaces.length > 0 ? config.watchNamespaces : 'all',
    },
    'tiercache operator started',
  );

  let stopping = false;
  // Aborted on SIGTERM: a migration finishes its slots in flight and stops, so the next leader
  // finds no slot half moved. The Lease is held until then: no one else reconciles meanwhile.
  const draining = new AbortController();
  let working: Promise<unknown> = Promise.resolve();
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, 'shutting down');
    draining.abort();
    queue.stop();
    crashes.stop();
    const finished = await Promise.race([
      working.then(() => true),
      new Promise<false>((r) => setTimeout(() => r(false), DRAIN_MS).unref()),
    ]);
    if (!finished) log.warn({ waitedMs: DRAIN_MS }, 'reconciles still running at exit');
    await elector?.release();
    await watches.stop();
    await health.close();
    process.exit(0);
  };
  process.once('SIGTERM', () => void stop('SIGTERM'));
  process.once('SIGINT', () => void stop('SIGINT'));

  if (elector) {
    await elector.acquire(() => process.exit(1));
    if (stopping) return;
  }
  metrics.leader.set(1);

  const reconciler = new Reconciler({
    kube,
    log,
    metrics,
    events: new EventRecorder(kube, log, identity),
    image: config.image,
    redisTimeoutMs: config.redisTimeoutMs,
    stopping: draining.signal,
    lookup: (key) => {
      const [namespace, name] = key.split('/');
      return watches.cacheCluster(namespace!, name!);
    },
    hasBackups: (cc) => watches.hasBackups(cc.metadata.namespace, cc.metadata.name),
  });
  const resync = () => {
    for (const cc of watches.listCacheClusters()) queue.add(keyOf(cc));
  };
  resync();
  setInterval(resync, config.resyncSeconds * 1000).unref();

  const crashWork = crashes.run(async (key) => {
    try {
      await reconciler.failOverNow(key);
    } catch (err) {
      // The reconcile that follows every pod event tries again.
      log.warn({ cachecluster: key, err: describeError(err) }, 'crash failover failed');
    }
  }, WORKERS);
  const reconcileWork = queue.run(async (key) => {
    const started = performance.now();
    metrics.activeWorkers.inc();
    try {
      const outcome = await reconciler.reconcile(key);
      queue.forget(key);
      if (outcome.requeueAfterMs !== undefined) queue.addAfter(key, outcome.requeueAfterMs);
      metrics.reconciled(
        outcome.requeueAfterMs !== undefined ? 'requeue_after' : 'success',
        (performance.now() - started) / 1000,
      );
    } catch (err) {
      const retryMs = queue.retry(key);
      log.warn(
        { cachecluster: key, err: describeError(err), retryMs },
        'reconcile failed; retrying',
      );
      metrics.reconciled('error', (performance.now() - started) / 1000);
    } finally {
      metrics.activeWorkers.dec();
    }
  }, WORKERS);
  working = Promise.all([crashWork, reconcileWork]);
  await working;
}
