/**
 * A regional proxy of a CacheCluster (pure): a Deployment running `tiercache proxy` and its
 * Service. The proxies are given the headless Service's name as their one Redis seed: it
 * resolves to whichever Redis pods exist, and ioredis learns the slot map from them, so a
 * topology change (failover, new IPs, shards added or removed) never changes the Deployment
 * and never restarts a proxy.
 */
import { createHash } from 'node:crypto';
import type { V1Deployment, V1EnvVar, V1Secret, V1Service } from '@kubernetes/client-node';
import type { CacheCluster, ProxySpec } from '../api/types.ts';
import {
  clusterLabels,
  names,
  PROXY_PORT,
  PROXY_USER,
  proxyLabels,
  proxySelector,
  REDIS_PORT,
} from './names.ts';
import { ownedMeta } from './owner.ts';
import { NO_PASSWORD } from './redis-config.ts';

const base64 = (s: string) => Buffer.from(s, 'utf8').toString('base64');

export const REGION_LABEL = 'topology.kubernetes.io/region';
export const NONROOT_UID = 65532;

/** The admin token of a CacheCluster's proxies (cache clears, the dashboard's clear buttons). */
export function proxyAdminSecret(cc: CacheCluster, token: string): V1Secret {
  return {
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: ownedMeta(cc, `${cc.metadata.name}-proxy-admin`, clusterLabels(cc, 'proxy')),
    type: 'Opaque',
    data: { token: base64(token) },
  };
}

/** The headless Service's DNS name: the proxies' seed, and the name TLS certificates carry. */
export const redisServiceName = (cc: CacheCluster): string =>
  `${names.redisService(cc.metadata.name)}.${cc.metadata.namespace}.svc`;

export function redisSeed(cc: CacheCluster): string {
  return `${redisServiceName(cc)}:${REDIS_PORT}`;
}

/** Where the proxies find the CA of a TLS CacheCluster. */
const PROXY_TLS_DIR = '/etc/redis-tls';

/** On the proxies' pod template of a TLS CacheCluster: a digest of the CA, so a new CA rolls them. */
export const CA_VERSION_ANNOTATION = 'tiercache.io/redis-ca-version';

/** On the proxies' pod template: a digest of the Redis password, so a new one rolls them. */
export const AUTH_VERSION_ANNOTATION = 'tiercache.io/redis-auth-version';

export const passwordVersion = (password: string): string =>
  createHash('sha256').update(`tiercache-auth:${password}`).digest('hex').slice(0, 12);

/**
 * How the proxies log in to Redis: as `default` with the cluster's password (NO_PASSWORD when
 * auth is off), or as their own ACL user (spec.redis.auth.users.proxies).
 */
export type ProxyLogin =
  | { as: 'default'; password: string }
  | { as: 'proxy-user'; password: string };

/** The pod template's version of a login: a new password, or another user, rolls the proxies. */
export const loginVersion = (login: ProxyLogin): string =>
  login.as === 'default'
    ? passwordVersion(login.password)
    : passwordVersion(`${PROXY_USER}\n${login.password}`);

/** Whether a proxy Deployment's template logs in as the proxies' own ACL user. */
export const templateUsesProxyUser = (d: V1Deployment): boolean =>
  (d.spec?.template?.spec?.containers ?? []).some((c) =>
    (c.env ?? []).some((e) => e.name === 'REDIS_USERNAME' && e.value === PROXY_USER),
  );

const PROXY_PRESTOP_SECONDS = 5;

const API_KEY_VARIABLE = { tmdb: 'TMDB_API_KEY', crypto: 'CRYPTO_API_KEY' } as const;

/** What the proxies of a TLS CacheCluster need: the certificate Secret's name, and its CA. */
export interface ProxyTls {
  secretName: string;
  ca: string;
}

function proxyEnv(
  cc: CacheCluster,
  proxy: ProxySpec,
  login: ProxyLogin,
  tls: ProxyTls | undefined,
): V1EnvVar[] {
  const env: V1EnvVar[] = [
    ...Object.entries(proxy.env ?? {})
      .sort(([a], [b]) => a.localeCompare(b))
      .map(([name, value]) => ({ name, value })),
    { name: 'PORT', value: String(PROXY_PORT) },
    { name: 'REGION', value: proxy.region },
    { name: 'USE_REDIS', value: 'true' },
    { name: 'REDIS_CLUSTER_NODES', value: redisSeed(cc) },
    { name: 'REDIS_READ_FROM', value: proxy.readFrom },
    // Over TLS: the CA alone (never the nodes' key) and the name every node's certificate carries.
    ...(tls
      ? [
          { name: 'REDIS_TLS', value: 'true' },
          { name: 'REDIS_TLS_CA_FILE', value: `${PROXY_TLS_DIR}/ca.crt` },
          { name: 'REDIS_TLS_SERVER_NAME', value: redisServiceName(cc) },
        ]
      : []),
    {
      name: 'ADMIN_TOKEN',
      valueFrom: { secretKeyRef: { name: `${cc.metadata.name}-proxy-admin`, key: 'token' } },
    },
  ];
  if (login.as === 'proxy-user') {
    env.push(
      { name: 'REDIS_USERNAME', value: PROXY_USER },
      {
        name: 'REDIS_PASSWORD',
        valueFrom: {
          secretKeyRef: { name: names.proxyUserSecret(cc.metadata.name), key: 'password' },
        },
      },
    );
  } else if (login.password !== NO_PASSWORD) {
    env.push(
      // As user default, so a node still without a password (auth being turned on) accepts it.
      { name: 'REDIS_USERNAME', value: 'default' },
      {
        name: 'REDIS_PASSWORD',
        valueFrom: { secretKeyRef: { name: names.authSecret(cc.metadata.name), key: 'password' } },
      },
    );
  }
  if (proxy.apiKeySecretRef) {
    env.push({
      name: API_KEY_VARIABLE[proxy.upstream],
      valueFrom: { secretKeyRef: { ...proxy.apiKeySecretRef } },
    });
  }
  return env;
}

export function proxyDeployment(
  cc: CacheCluster,
  proxy: ProxySpec,
  defaultImage: string,
  /** How they log in to Redis: a new password or user rolls the pods (they read it at start). */
  login: ProxyLogin,
  /** A TLS CacheCluster's certificate Secret and CA (its digest on the template: a new CA rolls the pods). */
  tls?: ProxyTls,
): V1Deployment {
  const selector = proxySelector(cc, proxy.name);
  const labels = proxyLabels(cc, proxy.name);
  return {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: ownedMeta(cc, names.proxy(cc.metadata.name, proxy.name), labels),
    spec: {
      replicas: proxy.replicas,
      selector: { matchLabels: selector },
      strategy: { type: 'RollingUpdate', rollingUpdate: { maxUnavailable: 0, maxSurge: 1 } },
      template: {
        metadata: {
          labels,
          annotations: {
            [AUTH_VERSION_ANNOTATION]: loginVersion(login),
            ...(tls
              ? {
                  [CA_VERSION_ANNOTATION]: createHash('sha256')
                    .update(tls.ca)
                    .digest('hex')
                    .slice(0, 12),
                }
              : {}),
          },
        },
        spec: {
          nodeSelector: proxy.nodeSelector ?? { [REGION_LABEL]: proxy.region },
          enableServiceLinks: false,
          securityContext: {
            runAsNonRoot: true,
            runAsUser: NONROOT_UID,
            runAsGroup: NONROOT_UID,
            seccompProfile: { type: 'RuntimeDefault' },
          },
          ...(tls
            ? {
                volumes: [
                  {
                    name: 'redis-ca',
                    secret: {
                      secretName: tls.secretName,
                      items: [{ key: 'ca.crt', path: 'ca.crt' }],
                    },
                  },
                ],
              }
            : {}),
          containers: [
            {
              name: 'proxy',
              image: proxy.image ?? defaultImage,
              args: ['proxy'],
              env: proxyEnv(cc, proxy, login, tls),
              ports: [{ name: 'http', containerPort: PROXY_PORT }],
              readinessProbe: { httpGet: { path: '/ready', port: PROXY_PORT }, periodSeconds: 2 },
              livenessProbe: {
                httpGet: { path: '/health', port: PROXY_PORT },
                initialDelaySeconds: 10,
                periodSeconds: 10,
              },
              // A pod being replaced (a roll, a scale-in) keeps answering until the Service's
              // endpoints no longer send it requests, and only then gets SIGTERM.
              lifecycle: { preStop: { sleep: { seconds: PROXY_PRESTOP_SECONDS } } },
              ...(proxy.resources ? { resources: proxy.resources } : {}),
              ...(tls
                ? { volumeMounts: [{ name: 'redis-ca', mountPath: PROXY_TLS_DIR, readOnly: true }] }
                : {}),
              securityContext: {
                allowPrivilegeEscalation: false,
                readOnlyRootFilesystem: true,
                capabilities: { drop: ['ALL'] },
              },
            },
          ],
        },
      },
    },
  };
}

export function proxyService(cc: CacheCluster, proxy: ProxySpec): V1Service {
  const labels = proxyLabels(cc, proxy.name);
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: ownedMeta(cc, names.proxy(cc.metadata.name, proxy.name), labels),
    spec: {
      selector: proxySelector(cc, proxy.name),
      ports: [{ name: 'http', port: PROXY_PORT, targetPort: PROXY_PORT }],
    },
  };
}
