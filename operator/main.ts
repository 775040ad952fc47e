/**
 * `tiercache operator`: watches CacheClusters, elects one leader among its replicas, and lets
 * the leader reconcile each CacheCluster through a keyed work queue (one worker per key at a
 * time, back-off on errors, a periodic resync). /healthz, /readyz and /metrics share one port.
 */
import { hostname } from 'node:os';
import Fastify from 'fastify';
import { createLogger } from '../lib/log.ts';
import { loadOperatorConfig } from './config.ts';
import { EventRecorder } from './controller/events.ts';
import { keyOf, startWatches } from './controller/informers.ts';
import { connect } from './controller/kube.ts';
import { LeaderElector } from './controller/leader.ts';
import { WorkQueue } from './controller/queue.ts';
import { Reconciler } from './controller/reconcile.ts';
import { createOperatorMetrics, WORKERS } from './metrics.ts';

export async function runOperator(env: NodeJS.ProcessEnv = process.env): Promise<void> {
  const config = loadOperatorConfig(env);
  const log = createLogger(config.logLevel, { service: 'tiercache-operator' });
  const identity = config.podName ?? `${hostname()}-${process.pid}`;
  const kube = connect();
  const metrics = createOperatorMetrics();
  const queue = new WorkQueue(metrics.queue);

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

  const watches = await startWatches(kube, log, (key) => queue.add(key));
  const health = Fastify({ logger: false });
  health.get('/healthz', async () => ({ status: 'ok' }));
  // Listening starts once every watch has listed its objects: from then on, ready.
  health.get('/readyz', async () => ({ status: 'ready', leading: elector?.leading ?? true }));
  health.get('/metrics', async (_req, reply) =>
    reply.type(metrics.registry.contentType).send(await metrics.registry.metrics()),
  );
  const address = await health.listen({ host: config.host, port: config.port });
  log.info({ address, identity }, 'tiercache operator started');

  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, 'shutting down');
    queue.stop();
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
    lookup: (key) => {
      const [namespace, name] = key.split('/');
      return watches.cacheClusters.get(name!, namespace);
    },
  });
  const resync = () => {
    for (const cc of watches.cacheClusters.list()) queue.add(keyOf(cc));
  };
  resync();
  setInterval(resync, config.resyncSeconds * 1000).unref();

  await queue.run(async (key) => {
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
        { cachecluster: key, err: (err as Error).message, retryMs },
        'reconcile failed; retrying',
      );
      metrics.reconciled('error', (performance.now() - started) / 1000);
    } finally {
      metrics.activeWorkers.dec();
    }
  }, WORKERS);
}
