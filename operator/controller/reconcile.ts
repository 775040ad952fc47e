/**
 * Reconciles one CacheCluster: the failover phase first (failover-phase.ts), a password
 * rotation step (auth.ts) and live settings (live-config.ts), then applies everything it owns
 * (server-side apply), removes what it no longer wants, carries out the next step its Redis
 * Cluster needs (steps.ts, chosen by redis-plan.ts), and writes the status. Level-triggered and
 * idempotent: it reads the world each time and never trusts a cache it did not just read (the
 * informer's objects are cloned, never changed).
 */
import { createHash } from 'node:crypto';
import type { V1Deployment, V1Node, V1StatefulSet } from '@kubernetes/client-node';
import { TiercacheError } from '../../lib/errors.ts';
import type { Logger } from '../../lib/log.ts';
import type { RedisTls } from '../../lib/redis/tls.ts';
import {
  type CacheCluster,
  type CacheClusterSpec,
  type CacheClusterStatus,
  withDefaults,
} from '../api/types.ts';
import type { OperatorMetrics } from '../metrics.ts';
import { Connections } from '../redis/connections.ts';
import { type ClusterView, observe } from '../redis/observe.ts';
import { redisCertificate } from '../resources/certificate.ts';
import { desiredObjects } from '../resources/desired.ts';
import {
  componentSelector,
  LABEL_PROXY,
  LABEL_SHARD,
  labelSelector,
  names,
  OPERATOR_USER,
  PROBE_USER,
  REPLICATION_USER,
  tlsSecretName,
} from '../resources/names.ts';
import { type ProxyLogin, redisServiceName } from '../resources/proxy.ts';
import {
  type AuthKeys,
  effectiveMaxMemory,
  liveSettings,
  MAXMEMORY_SHARE_OF_LIMIT,
  probeUserWanted,
  proxyUserWanted,
  replicationUserWanted,
} from '../resources/redis-config.ts';
import { DoneRecently } from '../runtime/done-recently.ts';
import { apply, applyStatus, isNotFound, type Kube } from '../runtime/kube.ts';
import { WarnOnce } from '../runtime/warn-once.ts';
import { carryOutAuth } from './auth.ts';
import {
  type AuthPlan,
  acceptedPasswords,
  planAuth,
  type StoredAuth,
  storedOf,
} from './auth-plan.ts';
import { type BackupsOutcome, reconcileBackups } from './backups.ts';
import { addrs, type PodRef, self } from './cluster-pods.ts';
import { defaultUserStep, keepUsersWhileDefaultOff, settleDefaultUser } from './default-user.ts';
import { describeError, isAuthError, waitingReason } from './errors.ts';
import type { EventRecorder } from './events.ts';
import { FailoverPhase } from './failover-phase.ts';
import { shardsToKeep } from './failure-plan.ts';
import { heldKeyCounts } from './key-counts.ts';
import { applyLiveSettings } from './live-config.ts';
import { MasterBook } from './master-book.ts';
import { forgetOperatorUser, OperatorLogins, teachOperatorUser } from './operator-user.ts';
import { podRef } from './pod-refs.ts';
import {
  chooseProxyLogin,
  everyProxyOnUser,
  forgetProxyUser,
  noProxyOnUser,
  teachProxyUser,
} from './proxy-user.ts';
import { deletesPod, nextRedisStep, type RedisStep } from './redis-plan.ts';
import { type ReplicationLogin, switchReplicationLogin } from './replication-user.ts';
import {
  adminToken,
  desiredPassword,
  exporterPassword,
  readInUsePassword,
  readStoredAuth,
  readTlsSecret,
  type TlsMaterial,
  wantedUserPasswords,
} from './secrets.ts';
import { buildStatus, clusterStateOk, failedStatus, type ProxyReadiness } from './status.ts';
import { StepRunner } from './steps.ts';
import { growStorage } from './storage.ts';
import { reloadRenewedCertificates } from './tls-reload.ts';

export interface ReconcilerOptions {
  kube: Kube;
  log: Logger;
  metrics: OperatorMetrics;
  events: EventRecorder;
  /** The image proxies run unless they name one (the operator's own). */
  image: string;
  redisTimeoutMs: number;
  /** The informer's copy of a CacheCluster (never modified here). */
  lookup: (key: string) => CacheCluster | undefined;
  /** Aborted when the operator shuts down (StepRunnerOptions.stopping). */
  stopping?: AbortSignal;
  /** Whether any CacheClusterBackup names the CacheCluster (no API call for clusters without). */
  hasBackups?: (cc: CacheCluster) => boolean;
}

export interface Outcome {
  /** Reconcile again after this long (something is still in progress). */
  requeueAfterMs?: number;
}

/** Owned objects are applied again at least this often even when nothing changed (drift). */
const REAPPLY_EVERY_MS = 30_000;
/** A reconcile whose objects the API server refused tries again this soon. */
const APPLY_RETRY_MS = 5000;
/** A node whose mounted certificate the kubelet has not refreshed yet is looked at again this soon. */
const CERTIFICATE_RETRY_MS = 5000;

export class Reconciler {
  readonly #o: ReconcilerOptions;
  readonly #warnings = new WarnOnce();
  readonly #masters: MasterBook;
  /** When each CacheCluster's key counts were last written (they are held in between). */
  readonly #keysRefreshedAt = new Map<string, number>();
  readonly #failovers: FailoverPhase;
  readonly #steps: StepRunner;
  /** What was last applied for each CacheCluster (a digest of the objects) and when. */
  readonly #applied = new DoneRecently(REAPPLY_EVERY_MS);
  /** The live settings last applied to every node, per CacheCluster, and when. */
  readonly #live = new DoneRecently(REAPPLY_EVERY_MS);
  /** The proxies' ACL user last taught to, or forgotten by, every node ("taught:<password>", "forgotten"). */
  readonly #proxyUser = new DoneRecently(REAPPLY_EVERY_MS);
  /** How every node last signed in to its master, and which nodes those were. */
  readonly #replicationLoggedIn = new DoneRecently(REAPPLY_EVERY_MS);
  /** Which clusters' nodes all know the operator's own user (it signs in as it there). */
  readonly #operatorLogins = new OperatorLogins();
  /** The certificate every node was last seen serving, per CacheCluster, and when. */
  readonly #certificates = new DoneRecently(REAPPLY_EVERY_MS);
  /** The cert-manager Certificate last applied for tls.issuerRef, and when. */
  readonly #certificateApplied = new DoneRecently(REAPPLY_EVERY_MS);

  constructor(options: ReconcilerOptions) {
    this.#o = options;
    this.#masters = new MasterBook(options.metrics);
    this.#steps = new StepRunner({
      ...options,
      masterMoved: (cc, shard, pod) => this.#masters.moved(cc, shard, pod),
      elected: (cc, shard) =>
        this.#masters.elected(`${cc.metadata.namespace}/${cc.metadata.name}`, shard),
    });
    this.#failovers = new FailoverPhase({
      ...options,
      masters: this.#masters,
      warnings: this.#warnings,
    });
  }

  async reconcile(key: string): Promise<Outcome> {
    const cached = this.#o.lookup(key);
    // Gone, or going: everything it owns goes with it (owner references).
    if (!cached || cached.metadata.deletionTimestamp) {
      this.#keysRefreshedAt.delete(key);
      for (const perCluster of [
        this.#applied,
        this.#live,
        this.#proxyUser,
        this.#replicationLoggedIn,
        this.#certificates,
        this.#certificateApplied,
      ])
        perCluster.forget(key);
      this.#masters.forget(key);
      this.#steps.forget(key);
      this.#operatorLogins.forget(key);
      return {};
    }
    const cc = structuredClone(cached);
    try {
      return await this.#reconcile(key, cc);
    } catch (err) {
      await this.#reportFailure(cc, err);
      // Not a failure: something it needs is not there yet (Secrets are not watched).
      if (waitingReason(err)) return { requeueAfterMs: CERTIFICATE_RETRY_MS };
      throw err;
    }
  }

  async #reconcile(key: string, cc: CacheCluster): Promise<Outcome> {
    const stored = await readStoredAuth(this.#o.kube, cc);
    const storedOff = stored.defaultOff === true;
    const asGiven = withDefaults(cc.spec);
    // While the nodes have `default` off, its clients keep their own users (default-user.ts).
    const spec = { ...asGiven, redis: keepUsersWhileDefaultOff(asGiven.redis, storedOff) };
    const log = this.#o.log.child({ cachecluster: key });

    let auth = await this.#authPlan(cc, spec, stored);
    const timeoutMs = this.#o.redisTimeoutMs;
    const { material: tlsMaterial, tls } = await this.#tlsOf(cc, spec);
    const users = await wantedUserPasswords(this.#o.kube, cc, spec.redis);
    // With `default` off there is no other way in: every node has the user from auth.conf.
    if (storedOff && users.operator !== undefined) this.#operatorLogins.taught(key, users.operator);
    const operatorLogin = this.#operatorLogins.loginFor(key, users.operator);
    let conns = new Connections({
      ...(operatorLogin ?? { password: auth.current }),
      timeoutMs,
      tls,
    });
    try {
      const { apps } = this.#o.kube;
      const { namespace } = cc.metadata;
      const [sets, deployments] = await Promise.all([
        apps.listNamespacedStatefulSet({ namespace, labelSelector: selectorOf(cc, 'redis') }),
        apps.listNamespacedDeployment({ namespace, labelSelector: selectorOf(cc, 'proxy') }),
      ]);
      const nodeList = (await this.#o.kube.core.listNode()).items;
      const zones = zonesByNode(nodeList);
      const allPods = await this.#redisPods(cc, sets.items, zones);
      // First, before anything slower: masters that are going away hand over, replicas of
      // masters that are down take over, and legitimate nodes may serve replication.
      let view = await this.#failovers.run(cc, conns, allPods);
      // A node refused the operator's user (started from an older auth.conf, or the user was
      // deleted by hand): sign in as default next time, and teach it again.
      if (operatorLogin && view.unreachable.some((u) => isAuthError(u.error)))
        this.#operatorLogins.forget(key);
      // The proxy Deployments the spec still names (one being pruned logs in as nobody's concern).
      const wantedProxies = new Set(spec.proxies.map((p) => names.proxy(cc.metadata.name, p.name)));
      const proxyDeployments = deployments.items.filter((d) =>
        wantedProxies.has(d.metadata?.name ?? ''),
      );
      // Before a rotation: it leaves masterauth alone only once replicas use their own user.
      const replicationLogin: ReplicationLogin =
        users.replication !== undefined
          ? { as: 'replication-user', password: users.replication }
          : { as: 'default', password: auth.current };
      const replicasOnLogin = await this.#replicationLogin(
        key,
        cc,
        conns,
        view,
        replicationLogin,
        log,
      );
      if (auth.kind !== 'steady') {
        log.info({ phase: auth.kind }, 'password rotation under way');
        const done = await carryOutAuth(
          auth,
          addrs(allPods.filter((p) => p.running)),
          proxyDeployments,
          {
            timeoutMs,
            tls,
            ownReplicationUser: replicationUserWanted(spec.redis),
            probeUser: probeUserWanted(spec.redis, storedOff),
            login: storedOff ? operatorLogin : undefined,
          },
          (line) => log.warn(line),
        );
        if (done.said)
          await this.#o.events.record(cc, 'Normal', done.said.reason, done.said.message);
        if (done.plan.current !== auth.current && !operatorLogin) {
          conns.close();
          conns = new Connections({ password: done.plan.current, timeoutMs, tls });
          view = await observe(conns, addrs(allPods));
        }
        auth = done.plan;
      }
      conns = await this.#operatorSignsIn(key, cc, conns, view, allPods, users.operator, log);
      await this.#applyLive(cc, spec, conns, allPods);
      const certificatesPending = tlsMaterial
        ? await this.#loadRenewedCertificates(key, cc, tlsMaterial.cert, conns, allPods)
        : false;
      const proxyLogin = await this.#proxyLogin(key, spec, {
        current: auth.current,
        userPassword: users.proxy,
        conns,
        pods: allPods,
        proxies: proxyDeployments,
      });
      const defaultOff = await this.#defaultUser(cc, spec, storedOff, log, {
        conns,
        view,
        pods: allPods,
        clientsOnOwnUsers:
          auth.kind === 'steady' &&
          conns.opts.username === OPERATOR_USER &&
          replicasOnLogin &&
          everyProxyOnUser(proxyDeployments),
        accepted: acceptedPasswords(auth),
      });
      // Shards beyond the spec stay until they provably own nothing (a scale-in drains them first).
      const keep = shardsToKeep(allPods, view, spec.redis.shards);

      // A grown disk: claims expanded, StatefulSets re-created around their running pods.
      const storage = await growStorage(this.#o.kube, cc, spec, sets.items);
      for (const line of storage.said)
        await this.#o.events.record(cc, 'Normal', 'StorageExpanded', line);
      // An object the API server refuses is reported, and Redis is repaired all the same.
      const applyFailures = [
        ...storage.refused,
        ...(await this.#applyOwned(
          cc,
          spec,
          keep,
          { ...storedOf(auth), defaultOff },
          proxyLogin,
          users,
          tlsMaterial?.ca,
          new Set(zones.values()).size,
          storage.recreating,
        )),
      ];
      await this.#prune(cc, spec, keep, sets.items, deployments.items);

      const pods = allPods.filter((p) => p.shard < keep);
      const wanted = {
        shards: spec.redis.shards,
        podsPerShard: 1 + spec.redis.replicasPerShard,
        domains: schedulableDomains(nodeList),
        mayReplacePods: this.#steps.mayReplacePods(key),
        electedRecently: this.#masters.electedWithin(key, 2 * spec.redis.nodeTimeoutMs + 1000),
      };
      let step = nextRedisStep(pods, view, wanted);
      if (step.kind !== 'wait' && step.kind !== 'settled') {
        await this.#steps.carryOut(cc, step, conns, pods, log);
        view = await observe(conns, addrs(pods));
        // The pod list predates a pod just deleted (re-created, restarted): planning again
        // from it would not see the pod go, and could call the cluster settled meanwhile.
        if (!deletesPod(step)) step = nextRedisStep(pods, view, wanted);
      }
      const proxies = proxyReadiness(spec, deployments.items);
      const backups = await this.#backups(cc, spec, step.kind === 'settled', view, log);
      await this.#writeStatus(cc, spec, pods, keep, view, step, proxies, applyFailures, auth, {
        backup: backups.backup,
        restore: backups.restore,
      });
      if (step.kind === 'settled') {
        if (applyFailures.length > 0) return { requeueAfterMs: APPLY_RETRY_MS };
        // A backup or restore Job running, or a scheduled time coming.
        if (backups.requeueAfterMs !== undefined)
          return { requeueAfterMs: Math.max(250, backups.requeueAfterMs) };
        // A node whose mounted certificate is not refreshed yet is asked again shortly.
        if (certificatesPending) return { requeueAfterMs: CERTIFICATE_RETRY_MS };
        // A rotation moves on when the proxies have rolled (their events wake it too).
        return auth.kind !== 'steady' ? { requeueAfterMs: 2000 } : {};
      }
      return { requeueAfterMs: step.kind === 'wait' ? 2000 : 250 };
    } finally {
      conns.close();
    }
  }

  /**
   * The crash fast path, run on a pod event that says a Redis server went down: only the
   * failover phase, beside a reconcile that may be busy (a migration, a rollout, a sync), so a
   * replica takes over at once rather than after it. The next reconcile does the rest.
   */
  async failOverNow(key: string): Promise<void> {
    const cached = this.#o.lookup(key);
    if (!cached || cached.metadata.deletionTimestamp) return;
    const cc = structuredClone(cached);
    // Only the password clients use now: no rotation is planned on the crash path. The
    // operator's own user where every node was taught it, or has it because `default` is off.
    const login = this.#operatorLogins.taughtLogin(key) ?? (await this.#loginBeforeReconcile(cc));
    const { tls } = await this.#tlsOf(cc, withDefaults(cc.spec));
    const conns = new Connections({ ...login, timeoutMs: this.#o.redisTimeoutMs, tls });
    try {
      await this.#failovers.run(cc, conns, await this.#redisPods(cc, [], new Map()));
    } finally {
      conns.close();
    }
  }

  /**
   * Backups and the restore (backups.ts). Their trouble is reported and retried with the next
   * reconcile; it never holds up the cluster's own repair. Their last status is kept meanwhile.
   */
  async #backups(
    cc: CacheCluster,
    spec: CacheClusterSpec,
    settled: boolean,
    view: ClusterView,
    log: Logger,
  ): Promise<BackupsOutcome> {
    const used =
      spec.backup !== undefined || spec.restore !== undefined || (this.#o.hasBackups?.(cc) ?? true);
    if (!used) return { backup: undefined, restore: undefined, requeueAfterMs: undefined };
    try {
      return await reconcileBackups({
        kube: this.#o.kube,
        cc,
        spec,
        image: this.#o.image,
        events: this.#o.events,
        log,
        settled,
        clusterKeys: masterKeys(view),
        tlsSecretName: spec.redis.tls.enabled ? tlsSecretName(cc) : undefined,
      });
    } catch (err) {
      log.warn({ err: describeError(err) }, 'backups: retrying');
      return {
        backup: cc.status?.backup,
        restore: cc.status?.restore,
        requeueAfterMs: APPLY_RETRY_MS,
      };
    }
  }

  /**
   * maxmemory and its policy set live on every running node when the spec changed them (and
   * re-checked every 30 s, for a node that started from an older ConfigMap).
   */
  async #applyLive(
    cc: CacheCluster,
    spec: CacheClusterSpec,
    conns: Connections,
    pods: PodRef[],
  ): Promise<void> {
    const key = `${cc.metadata.namespace}/${cc.metadata.name}`;
    const settings = liveSettings(spec.redis);
    const digest = JSON.stringify(settings);
    if (this.#live.fresh(key, digest)) return;
    const max = effectiveMaxMemory(spec.redis);
    if (max.capped && this.#warnings.first(`${key}/maxmemory-capped`))
      await this.#o.events.record(
        cc,
        'Warning',
        'MaxMemoryCapped',
        `maxMemory ${spec.redis.maxMemory} does not fit resources.limits.memory ${spec.redis.resources?.limits?.memory} with room for Redis's own overhead: maxmemory is ${max.bytes} bytes (${MAXMEMORY_SHARE_OF_LIMIT * 100} % of the limit)`,
      );
    const applied = await applyLiveSettings(conns, addrs(pods.filter((p) => p.running)), settings);
    if (applied.changed.length > 0)
      await this.#o.events.record(
        cc,
        'Normal',
        'ConfigApplied',
        `${Object.entries(settings)
          .map(([k, v]) => `${k} ${v}`)
          .join(', ')} set live on ${applied.changed.length} nodes (no restart)`,
      );
    if (applied.failed.length === 0) this.#live.done(key, digest);
  }

  /**
   * How the proxies log in: their own ACL user once every running node knows it (taught here
   * when wanted), else `default`; a user no longer wanted is forgotten once no proxy uses it.
   */
  async #proxyLogin(
    key: string,
    spec: CacheClusterSpec,
    o: {
      current: string;
      userPassword: string | undefined;
      conns: Connections;
      pods: PodRef[];
      proxies: V1Deployment[];
    },
  ): Promise<ProxyLogin> {
    const wanted = proxyUserWanted(spec.redis);
    const running = addrs(o.pods.filter((p) => p.running));
    // ACL SETUSER and DELUSER are idempotent: done again every REAPPLY_EVERY_MS at most.
    const once = async (state: string, run: () => Promise<boolean>) => {
      if (this.#proxyUser.fresh(key, state)) return true;
      const ok = await run();
      if (ok) this.#proxyUser.done(key, state);
      return ok;
    };
    const password = o.userPassword;
    const nodesKnowUser =
      password !== undefined &&
      running.length > 0 &&
      (await once(`taught:${password}`, () => teachProxyUser(o.conns, running, password)));
    if (!wanted && noProxyOnUser(o.proxies))
      await once('forgotten', () => forgetProxyUser(o.conns, running));
    return chooseProxyLogin({
      wanted,
      current: o.current,
      userPassword: o.userPassword,
      nodesKnowUser,
      proxies: o.proxies,
    });
  }

  /**
   * The operator's own user (operator-user.ts): taught to every running node, then signed in as
   * (the Connections returned); or, not wanted, forgotten by every node that has it. `conns` is
   * closed when it is replaced.
   */
  async #operatorSignsIn(
    key: string,
    cc: CacheCluster,
    conns: Connections,
    view: ClusterView,
    pods: PodRef[],
    password: string | undefined,
    log: Logger,
  ): Promise<Connections> {
    const running = addrs(pods.filter((p) => p.running));
    if (password === undefined) {
      this.#operatorLogins.forget(key);
      if (!view.reports.some((r) => r.aclUsers.includes(OPERATOR_USER))) return conns;
      const failed = await forgetOperatorUser(conns, running);
      for (const f of failed) log.warn(`operator user: waits for ${f}`);
      if (failed.length === 0)
        await this.#o.events.record(
          cc,
          'Normal',
          'OperatorUserOff',
          `the operator signs in as default; no Redis node has ${OPERATOR_USER} any more`,
        );
      return conns;
    }
    if (this.#operatorLogins.loginFor(key, password) || running.length === 0) return conns;
    const failed = await teachOperatorUser(conns, running, password);
    for (const f of failed) log.warn(`operator user: waits for ${f}`);
    if (failed.length > 0) return conns;
    this.#operatorLogins.taught(key, password);
    if (!view.reports.every((r) => r.aclUsers.includes(OPERATOR_USER)))
      await this.#o.events.record(
        cc,
        'Normal',
        'OperatorUserOn',
        `every Redis node knows ${OPERATOR_USER}: the operator signs in as it (no restart)`,
      );
    conns.close();
    return new Connections({ ...conns.opts, username: OPERATOR_USER, password });
  }

  /**
   * Replicas sign in to their masters as the replication user when it is wanted, else as
   * default (replication-user.ts). Done again when the nodes changed (a node restarted without
   * persistence is a new node) or every REAPPLY_EVERY_MS; skipped for a cluster that never had
   * the user.
   */
  async #replicationLogin(
    key: string,
    cc: CacheCluster,
    conns: Connections,
    view: ClusterView,
    login: ReplicationLogin,
    log: Logger,
  ): Promise<boolean> {
    const wanted = login.as === 'replication-user';
    if (!wanted && !view.reports.some((r) => r.aclUsers.includes(REPLICATION_USER))) return true;
    const nodes = view.reports.map((r) => `${r.addr}=${r.id}`).sort();
    const digest = createHash('sha256')
      .update(JSON.stringify([login, nodes]))
      .digest('hex');
    if (this.#replicationLoggedIn.fresh(key, digest)) return true;
    const outcome = await switchReplicationLogin(
      conns,
      view.reports.map((r) => r.addr),
      login,
    );
    for (const f of outcome.failed) log.warn(`replication user: waits for ${f}`);
    if (outcome.switched > 0)
      await this.#o.events.record(
        cc,
        'Normal',
        wanted ? 'ReplicationUserOn' : 'ReplicationUserOff',
        wanted
          ? `${outcome.switched} Redis nodes now replicate as ${REPLICATION_USER} (no restart)`
          : `${outcome.switched} Redis nodes now replicate as default; ${REPLICATION_USER} is deleted`,
      );
    if (outcome.failed.length > 0) return false;
    this.#replicationLoggedIn.done(key, digest);
    return true;
  }

  /**
   * `default` switched off or on as the spec says, once that is safe (default-user.ts). Returns
   * whether the nodes have it off, which the auth Secret then records.
   */
  async #defaultUser(
    cc: CacheCluster,
    spec: CacheClusterSpec,
    storedOff: boolean,
    log: Logger,
    o: {
      conns: Connections;
      view: ClusterView;
      pods: PodRef[];
      clientsOnOwnUsers: boolean;
      accepted: string[];
    },
  ): Promise<boolean> {
    const { auth } = spec.redis;
    const wantedOff = auth.enabled && auth.defaultUser === 'disabled';
    const { reports } = o.view;
    const nodesOff = reports.filter((r) => !r.defaultUserOn).length;
    // The common case: never disabled, nothing to look at.
    if (
      !wantedOff &&
      !storedOff &&
      nodesOff === 0 &&
      !reports.some((r) => r.aclUsers.includes(PROBE_USER))
    )
      return false;
    const running = o.pods.filter((p) => p.running);
    const step = defaultUserStep({
      wantedOff,
      storedOff,
      nodesOn: reports.length - nodesOff,
      nodesOff,
      clientsOnOwnUsers:
        o.clientsOnOwnUsers &&
        o.view.unreachable.length === 0 &&
        running.length === o.pods.length &&
        reports.length === o.pods.length,
    });
    const outcome = await settleDefaultUser(o.conns, addrs(running), reports, {
      redis: spec.redis,
      step,
      storedOff,
      accepted: o.accepted,
    });
    for (const f of outcome.failed) log.warn(`default user: waits for ${f}`);
    if (outcome.said)
      await this.#o.events.record(cc, 'Normal', outcome.said.reason, outcome.said.message);
    return outcome.defaultOff;
  }

  /**
   * A TLS CacheCluster's certificate Secret, and how its nodes are reached: with the Secret's
   * CA, checking the headless Service's name every node's certificate carries.
   */
  async #tlsOf(
    cc: CacheCluster,
    spec: CacheClusterSpec,
  ): Promise<{ material?: TlsMaterial; tls?: RedisTls }> {
    if (!spec.redis.tls.enabled) return {};
    if (spec.redis.tls.issuerRef) await this.#applyCertificate(cc, spec.redis.tls.issuerRef);
    const material = await readTlsSecret(this.#o.kube, cc);
    return { material, tls: { ca: material.ca, serverName: redisServiceName(cc) } };
  }

  /** The cert-manager Certificate for tls.issuerRef, applied before its Secret is read. */
  async #applyCertificate(
    cc: CacheCluster,
    issuerRef: NonNullable<CacheClusterSpec['redis']['tls']['issuerRef']>,
  ): Promise<void> {
    const key = `${cc.metadata.namespace}/${cc.metadata.name}`;
    const certificate = redisCertificate(cc, issuerRef);
    const digest = JSON.stringify(certificate.spec);
    if (this.#certificateApplied.fresh(key, digest)) return;
    try {
      await apply(this.#o.kube, certificate);
    } catch (err) {
      // client-node asks discovery for the kind first: without cert-manager it is not there.
      if (isNotFound(err) || /Unrecognized API version and kind/.test(String(err)))
        throw new TiercacheError(
          'BAD_REQUEST',
          "spec.redis.tls.issuerRef: this API server does not serve cert-manager's Certificate (cert-manager.io/v1): install cert-manager, or give tls.secretName",
        );
      throw err;
    }
    this.#certificateApplied.done(key, digest);
  }

  /**
   * A renewed certificate loaded by every running node (tls-reload.ts), checked at most every
   * 30 s once they all serve it. True while a node still serves another one.
   */
  async #loadRenewedCertificates(
    key: string,
    cc: CacheCluster,
    cert: string,
    conns: Connections,
    pods: PodRef[],
  ): Promise<boolean> {
    if (this.#certificates.fresh(key, cert)) return false;
    const running = addrs(pods.filter((p) => p.running));
    const outcome = await reloadRenewedCertificates(conns, running, cert, this.#o.redisTimeoutMs);
    if (outcome.reloaded.length > 0)
      await this.#o.events.record(
        cc,
        'Normal',
        'CertificateReloaded',
        `${outcome.reloaded.length} Redis nodes now serve the renewed certificate (no restart)`,
      );
    if (outcome.pending.length === 0) this.#certificates.done(key, cert);
    return outcome.pending.length > 0;
  }

  /** Where the CacheCluster's password stands: in use, being introduced, or retiring. */
  async #authPlan(cc: CacheCluster, spec: CacheClusterSpec, stored: StoredAuth): Promise<AuthPlan> {
    const desired = await desiredPassword(this.#o.kube, cc, spec, stored);
    // The auth Secret deleted: the password to rotate from is the one the in-use Secret keeps.
    const remembered =
      stored.password === undefined ? await readInUsePassword(this.#o.kube, cc) : undefined;
    return planAuth(stored, desired, remembered);
  }

  /**
   * How to sign in before a reconcile has: as the operator's user when the nodes have `default`
   * off, else with the password clients use now (the auth Secret's, or the in-use one if it was
   * deleted).
   */
  async #loginBeforeReconcile(
    cc: CacheCluster,
  ): Promise<{ username?: string; password: string | undefined }> {
    const stored = await readStoredAuth(this.#o.kube, cc);
    if (stored.defaultOff) {
      const { operator } = await wantedUserPasswords(
        this.#o.kube,
        cc,
        keepUsersWhileDefaultOff(withDefaults(cc.spec).redis, true),
      );
      return { username: OPERATOR_USER, password: operator };
    }
    return { password: stored.password ?? (await readInUsePassword(this.#o.kube, cc)) };
  }

  async #redisPods(
    cc: CacheCluster,
    sets: V1StatefulSet[],
    zones: Map<string, string>,
  ): Promise<PodRef[]> {
    const list = await this.#o.kube.core.listNamespacedPod({
      namespace: cc.metadata.namespace,
      labelSelector: selectorOf(cc, 'redis'),
    });
    // The revision each shard's pods should run (OnDelete: the operator restarts them).
    const revision = new Map(
      sets.map((s) => [s.metadata?.labels?.[LABEL_SHARD], s.status?.updateRevision]),
    );
    return list.items.map((pod) => podRef(pod, revision, zones));
  }

  async #applyOwned(
    cc: CacheCluster,
    spec: CacheClusterSpec,
    shards: number,
    auth: AuthKeys,
    proxyLogin: ProxyLogin,
    /** The passwords of the ACL users that are wanted (read once per reconcile). */
    users: { proxy?: string; replication?: string; operator?: string },
    tlsCa: string | undefined,
    zoneCount: number,
    /** StatefulSets being deleted (pods orphaned): applied again once they are gone. */
    skip: Set<string>,
  ): Promise<string[]> {
    const { kube, image } = this.#o;
    const objects = desiredObjects(cc, {
      spec,
      shards,
      auth,
      adminToken: await adminToken(kube, cc),
      exporterPassword: await exporterPassword(kube, cc),
      proxyUserPassword: users.proxy,
      replicationUserPassword: users.replication,
      operatorUserPassword: users.operator,
      proxyLogin,
      tlsCa,
      placement: { zones: zoneCount },
      proxyImage: image,
    });
    // The same objects applied a moment ago need not be applied again: a reconcile that only
    // watches Redis stays short, so a pod event (a crash) is acted on sooner. A periodic
    // re-apply still corrects drift.
    const key = `${cc.metadata.namespace}/${cc.metadata.name}`;
    const digest = createHash('sha256').update(JSON.stringify(objects)).digest('hex');
    if (this.#applied.fresh(key, digest)) return [];
    const failures: string[] = [];
    for (const obj of objects) {
      if (obj.kind === 'StatefulSet' && skip.has(obj.metadata?.name ?? '')) continue;
      try {
        await apply(kube, obj);
      } catch (err) {
        const what = `${obj.kind} ${obj.metadata?.name}`;
        const why = describeError(err);
        failures.push(`${what}: ${why}`);
        if (this.#warnings.first(`${key}/apply/${what}/${why}`))
          await this.#o.events.record(
            cc,
            'Warning',
            'ApplyFailed',
            `could not apply ${what}: ${why}`,
          );
      }
    }
    if (failures.length === 0 && skip.size === 0) this.#applied.done(key, digest);
    return failures;
  }

  /**
   * A reconcile failed before it wrote its status: the status says so for the current
   * generation (Ready False), and a Warning Event says why (once a minute for one message).
   */
  async #reportFailure(cc: CacheCluster, err: unknown): Promise<void> {
    // Stopped for a shutdown with nothing half done: not a failure of the CacheCluster.
    if (err instanceof TiercacheError && err.code === 'CANCELLED') return;
    const key = `${cc.metadata.namespace}/${cc.metadata.name}`;
    const message = describeError(err);
    const waiting = waitingReason(err);
    const reason = waiting ?? (isAuthError(message) ? 'AuthFailed' : 'ReconcileFailed');
    if (this.#warnings.first(`${key}/failed/${message}`))
      await this.#o.events.record(cc, waiting ? 'Normal' : 'Warning', reason, message);
    const status = failedStatus(cc, reason, message, new Date());
    await applyStatus(this.#o.kube, cc.metadata.namespace, cc.metadata.name, status).catch(
      (e: unknown) =>
        this.#o.log.warn(
          { cachecluster: key, err: describeError(e) },
          'could not write the failure to the status',
        ),
    );
  }

  /** Deletes drained shards and proxies the spec no longer names (only objects this CacheCluster owns). */
  async #prune(
    cc: CacheCluster,
    spec: CacheClusterSpec,
    keep: number,
    sets: V1StatefulSet[],
    deployments: V1Deployment[],
  ): Promise<void> {
    const { apps, core, policy } = this.#o.kube;
    const namespace = cc.metadata.namespace;
    const owned = (o: { metadata?: { ownerReferences?: { uid: string }[] } }) =>
      o.metadata?.ownerReferences?.some((r) => r.uid === cc.metadata.uid) ?? false;
    const ignoreGone = (err: unknown) => {
      if (!isNotFound(err)) throw err;
    };

    for (const sts of sets.filter(owned)) {
      const shard = Number(sts.metadata?.labels?.[LABEL_SHARD]);
      if (!(shard >= keep)) continue;
      const name = sts.metadata!.name!;
      await apps.deleteNamespacedStatefulSet({ name, namespace }).catch(ignoreGone);
      await policy.deleteNamespacedPodDisruptionBudget({ name, namespace }).catch(ignoreGone);
      await this.#o.events.record(cc, 'Normal', 'ShardRemoved', `${name} was drained and deleted`);
    }
    const proxies = new Set(spec.proxies.map((p) => p.name));
    for (const d of deployments.filter(owned)) {
      if (proxies.has(d.metadata?.labels?.[LABEL_PROXY] ?? '')) continue;
      const name = d.metadata!.name!;
      await apps.deleteNamespacedDeployment({ name, namespace }).catch(ignoreGone);
      await core.deleteNamespacedService({ name, namespace }).catch(ignoreGone);
      await this.#o.events.record(cc, 'Normal', 'ProxyRemoved', `${name} is no longer in the spec`);
    }
  }

  async #writeStatus(
    cc: CacheCluster,
    spec: CacheClusterSpec,
    pods: PodRef[],
    shards: number,
    view: ClusterView,
    step: RedisStep,
    proxies: ProxyReadiness[],
    applyFailures: string[],
    auth: AuthPlan,
    backups: Pick<CacheClusterStatus, 'backup' | 'restore'>,
  ): Promise<void> {
    const { kube, metrics, events } = this.#o;
    const key = `${cc.metadata.namespace}/${cc.metadata.name}`;
    const status = buildStatus({
      cc,
      spec,
      pods,
      shards,
      view,
      step,
      proxies,
      applyFailures,
      ...(auth.kind !== 'steady' ? { rotating: auth.kind } : {}),
      now: new Date(),
    });
    const held = heldKeyCounts(
      cc.status?.shards,
      status.shards ?? [],
      this.#keysRefreshedAt.get(key),
      Date.now(),
    );
    status.shards = held.shards;
    if (backups.backup) status.backup = backups.backup;
    if (backups.restore) status.restore = backups.restore;
    if (held.refreshed) this.#keysRefreshedAt.set(key, Date.now());
    // A shard whose master moved to another pod the operator did not choose: Redis failed
    // over by itself (the operator's own moves are in the book already, with their Events).
    for (const [shard, before, now] of this.#masters.record(cc, status.shards ?? []))
      await events.record(cc, 'Warning', 'FailedOver', `${shard}: ${now} took over from ${before}`);
    metrics.clusterState.labels(key).set(clusterStateOk(view) ? 1 : 0);
    metrics.readyShards.labels(key).set(status.readyShards ?? 0);
    await applyStatus(kube, cc.metadata.namespace, cc.metadata.name, status);
  }
}

/** Keys the masters hold, as the nodes reported them. */
function masterKeys(view: ClusterView): number {
  return view.reports
    .filter((r) => self(r).flags.has('master'))
    .reduce((sum, r) => sum + r.keys, 0);
}

/** Ready pods of each spec proxy, from its Deployment. */
function proxyReadiness(spec: CacheClusterSpec, deployments: V1Deployment[]): ProxyReadiness[] {
  return spec.proxies.map((p) => {
    const d = deployments.find((x) => x.metadata?.labels?.[LABEL_PROXY] === p.name);
    return {
      name: p.name,
      region: p.region,
      replicas: p.replicas,
      readyReplicas: d?.status?.readyReplicas ?? 0,
    };
  });
}

const selectorOf = (cc: CacheCluster, component: string) =>
  labelSelector(componentSelector(cc, component));

const ZONE_LABEL = 'topology.kubernetes.io/zone';

/** The zone of every Kubernetes node that has one (failure domains; anti-affinity spread). */
function zonesByNode(nodes: V1Node[]): Map<string, string> {
  const out = new Map<string, string>();
  for (const n of nodes) {
    const zone = n.metadata?.labels?.[ZONE_LABEL];
    if (zone && n.metadata?.name) out.set(n.metadata.name, zone);
  }
  return out;
}

/** Zones of the nodes pods can be scheduled to (their names where nodes have no zone). */
function schedulableDomains(nodes: V1Node[]): string[] {
  const open = nodes.filter((n) => !n.spec?.unschedulable);
  const zones = open.map((n) => n.metadata?.labels?.[ZONE_LABEL]);
  const domains = zones.every(Boolean) ? zones : open.map((n) => n.metadata?.name);
  return [...new Set(domains.filter((d): d is string => Boolean(d)))];
}
