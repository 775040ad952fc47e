/**
 * redis.conf of every node of a CacheCluster, its ConfigMap, and the auth Secret (pure).
 * The password never appears on a command line or in an environment variable of Redis: it
 * reaches redis-server through an `include` of a file from the Secret.
 *
 * Without persistence a node starts empty every time, so it starts *quarantined*: its default
 * user (and the replication user, when there is one) may not run SYNC/PSYNC until the operator
 * admits it (`ACL SETUSER <user> +sync +psync`) as a legitimate owner of data. A replica whose master restarted empty at the same
 * address then cannot copy the empty dataset over the data it holds (docs/operator.md).
 */

import { createHash } from 'node:crypto';
import type { V1ConfigMap, V1Secret } from '@kubernetes/client-node';
import { PROXY_CHANNELS, PROXY_KEY_PATTERNS } from '../../proxy/cache/keys.ts';
import type { CacheCluster, RedisSpec } from '../api/types.ts';
import {
  clusterLabels,
  EXPORTER_USER,
  names,
  OPERATOR_USER,
  PROBE_USER,
  PROXY_USER,
  REDIS_PORT,
  REPLICATION_USER,
} from './names.ts';
import { ownedMeta } from './owner.ts';

const base64 = (s: string) => Buffer.from(s, 'utf8').toString('base64');

export const CONFIG_DIR = '/etc/redis';
export const AUTH_DIR = '/etc/redis-auth';
export const DATA_DIR = '/data';
/** Where a TLS CacheCluster's certificate Secret is mounted (tls.crt, tls.key, ca.crt). */
export const TLS_DIR = '/etc/redis-tls';

/**
 * TLS only, on the Redis port: no plain-text port; replication and the cluster bus (and so
 * MIGRATE between nodes) over TLS too. Clients may present a certificate but need not: they
 * authenticate with their password, over an encrypted connection.
 */
const TLS_LINES = [
  'port 0',
  `tls-port ${REDIS_PORT}`,
  `tls-cert-file ${TLS_DIR}/tls.crt`,
  `tls-key-file ${TLS_DIR}/tls.key`,
  `tls-ca-cert-file ${TLS_DIR}/ca.crt`,
  'tls-cluster yes',
  'tls-replication yes',
  'tls-auth-clients optional',
];

/**
 * `CONFIG SET` that makes a node read its certificate files again: Redis reloads them even when
 * the paths are the ones it has (a renewed Secret changes the files behind the same paths).
 */
export const tlsReloadCommand = (dir = TLS_DIR): string[] => [
  'CONFIG',
  'SET',
  'tls-cert-file',
  `${dir}/tls.crt`,
  'tls-key-file',
  `${dir}/tls.key`,
  'tls-ca-cert-file',
  `${dir}/ca.crt`,
];

const UNITS: Record<string, number> = {
  '': 1,
  k: 1e3,
  M: 1e6,
  G: 1e9,
  T: 1e12,
  Ki: 2 ** 10,
  Mi: 2 ** 20,
  Gi: 2 ** 30,
  Ti: 2 ** 40,
};

/** Bytes of a Kubernetes quantity such as 256Mi or 1G (the forms the CRD allows). */
export function quantityBytes(q: string): number {
  const m = /^(\d+)(Ki|Mi|Gi|Ti|k|M|G|T)?$/.exec(q);
  if (!m) throw new Error(`not a memory quantity: ${q}`);
  return Number(m[1]) * UNITS[m[2] ?? '']!;
}

/** Whether nodes start quarantined: only when they never keep data across a restart. */
export const startsQuarantined = (redis: RedisSpec): boolean => !redis.persistence.enabled;

/** The default user's rules of a quarantined node: everything but serving replication. */
const QUARANTINED = '~* &* +@all -sync -psync';

/** Share of the container's memory limit maxmemory may take: the rest is Redis's own overhead. */
export const MAXMEMORY_SHARE_OF_LIMIT = 0.75;

/**
 * The maxmemory a node gets: the spec's, but never more than MAXMEMORY_SHARE_OF_LIMIT of the
 * container's memory limit (replication buffers, fragmentation and the process itself need the
 * rest, or the kernel kills Redis before it evicts). `capped` when the limit decided.
 */
export function effectiveMaxMemory(redis: RedisSpec): { bytes: number; capped: boolean } {
  const wanted = quantityBytes(redis.maxMemory);
  const limit = redis.resources?.limits?.memory;
  if (limit === undefined) return { bytes: wanted, capped: false };
  let limitBytes: number;
  try {
    limitBytes = quantityBytes(String(limit));
  } catch {
    return { bytes: wanted, capped: false }; // a form this parser does not read (e.g. 1.5Gi)
  }
  const ceiling = Math.floor(limitBytes * MAXMEMORY_SHARE_OF_LIMIT);
  return wanted > ceiling ? { bytes: ceiling, capped: true } : { bytes: wanted, capped: false };
}

/**
 * Settings Redis takes at runtime (`CONFIG SET`): the operator applies them live, so changing
 * them restarts no pod (they are left out of the template's config hash).
 */
export function liveSettings(redis: RedisSpec): Record<string, string> {
  const p = redis.persistence;
  return {
    maxmemory: String(effectiveMaxMemory(redis).bytes),
    'maxmemory-policy': redis.evictionPolicy,
    // Without a volume files die with the pod: no snapshots (and no AOF, a static line).
    save: p.enabled && p.snapshotEverySeconds > 0 ? `${p.snapshotEverySeconds} 1` : '',
    ...(p.enabled ? { appendfsync: p.appendFsync } : {}),
  };
}

export function redisConf(redis: RedisSpec): string {
  // An empty value (save "") is written quoted, as redis.conf needs it.
  const live = Object.entries(liveSettings(redis)).map(([k, v]) => `${k} ${v === '' ? '""' : v}`);
  return `${[...staticLines(redis), ...live].join('\n')}\n`;
}

/** Everything of redis.conf that only a restart changes. */
function staticLines(redis: RedisSpec): string[] {
  const p = redis.persistence;
  const lines = [
    ...(redis.tls.enabled ? TLS_LINES : [`port ${REDIS_PORT}`]),
    'bind 0.0.0.0 -::*',
    'protected-mode no',
    `dir ${DATA_DIR}`,
    'cluster-enabled yes',
    `cluster-config-file ${DATA_DIR}/nodes.conf`,
    `cluster-node-timeout ${redis.nodeTimeoutMs}`,
    // A cache keeps serving the shards that are up while one is failing over.
    'cluster-require-full-coverage no',
    // Any replica may take over, however long its link was down: availability first.
    'cluster-replica-validity-factor 0',
    'cluster-allow-replica-migration yes',
    // Start a replica's full sync at once: a shard is exposed until its replica is in sync.
    'repl-diskless-sync-delay 1',
    // Without a volume, files die with the pod: no AOF (and no snapshots, a live setting).
    `appendonly ${p.enabled && p.appendOnly ? 'yes' : 'no'}`,
  ];
  // With auth on or off: the Secret's file says which (turning it on or off is then live).
  lines.push(`include ${AUTH_DIR}/auth.conf`);
  return lines;
}

/**
 * The readiness probe: Ready is a member of the cluster (it knows other nodes) and, as a
 * replica, in sync with its master, so the PodDisruptionBudget protects a shard's last synced
 * copy. redis-cli reaches the node by the pod's own hostname (kubelet maps it to the pod IP
 * in /etc/hosts), the password comes from the auth Secret's file, never the command line.
 * READY_HOST/READY_PORT/READY_AUTH_DIR override the address and the Secret's directory (tests run
 * it against local servers).
 */
export const READY_SCRIPT = `#!/bin/sh
# As user default: a node without a password (auth off, or being turned on) accepts any.
# With default disabled, as ${PROBE_USER}, which has default's passwords.
tls=""
ca="\${READY_TLS_DIR:-${TLS_DIR}}/ca.crt"
[ -s "$ca" ] && tls="--tls --cacert $ca"
user=default
# shellcheck disable=SC2086 # $tls is two options or none
cli() { redis-cli --no-auth-warning $tls --user "$user" -h "\${READY_HOST:-$(cat /etc/hostname)}" -p "\${READY_PORT:-${REDIS_PORT}}" "$@"; }
# The mounted auth Secret lags a password rotation (a kubelet refreshes it within a minute or
# two): use the first user and password the server accepts, else none (an empty file is none).
signed_in() {
  for user in default ${PROBE_USER}; do
    for key in password next retiring; do
      file="\${READY_AUTH_DIR:-${AUTH_DIR}}/$key"
      [ -s "$file" ] || continue
      REDISCLI_AUTH="$(cat "$file")" && export REDISCLI_AUTH
      [ "$(cli ping 2>/dev/null)" = PONG ] && return
      unset REDISCLI_AUTH
    done
  done
  user=default
}
signed_in
cluster="$(cli cluster info)" || exit 1
case "$cluster" in *cluster_known_nodes:1[!0-9]*|*cluster_known_nodes:0*) exit 1 ;; esac
replication="$(cli info replication)" || exit 1
case "$replication" in *role:master*) exit 0 ;; esac
case "$replication" in *master_sync_in_progress:1*) exit 1 ;; esac
case "$replication" in *master_link_status:up*) exit 0 ;; esac
exit 1
`;

export function configMap(cc: CacheCluster, redis: RedisSpec): V1ConfigMap {
  return {
    apiVersion: 'v1',
    kind: 'ConfigMap',
    metadata: ownedMeta(cc, names.redisConfig(cc.metadata.name), clusterLabels(cc, 'redis')),
    data: { 'redis.conf': redisConf(redis), 'ready.sh': READY_SCRIPT },
  };
}

/**
 * Short digest of the configuration only a restart changes, put on the pod template so a
 * change is a new revision (live settings are applied with CONFIG SET instead).
 */
export function configHash(redis: RedisSpec): string {
  return createHash('sha256').update(staticLines(redis).join('\n')).digest('hex').slice(0, 16);
}

/** "No password" (auth disabled): nodes accept any password or none (nopass). */
export const NO_PASSWORD = '';

/** Passwords of the ACL users beside `default`: each user is declared when its password is given. */
export interface UserPasswords {
  /** The metrics sidecar's (used when spec.redis.exporter is enabled). */
  exporter?: string | undefined;
  /** The proxies' (used when spec.redis.auth.users.proxies is on). */
  proxy?: string | undefined;
  /** Replication's (used when spec.redis.auth.users.replication is on). */
  replication?: string | undefined;
  /** The operator's (used when spec.redis.auth.users.operator is on). */
  operator?: string | undefined;
}

/** Whether the proxies log in as their own ACL user. */
export const proxyUserWanted = (redis: RedisSpec): boolean =>
  redis.auth.enabled && redis.auth.users.proxies;

/** Whether the operator signs in as its own ACL user. */
export const operatorUserWanted = (redis: RedisSpec): boolean =>
  redis.auth.enabled && redis.auth.users.operator;

/**
 * Whether the readiness probe has a user of its own: `default` is disabled, or still is
 * (`defaultOff`: the auth Secret says the nodes have it off).
 */
export const probeUserWanted = (redis: RedisSpec, defaultOff: boolean): boolean =>
  defaultOff || (redis.auth.enabled && redis.auth.defaultUser === 'disabled');

/** Whether replicas sign in to their masters as their own ACL user. */
export const replicationUserWanted = (redis: RedisSpec): boolean =>
  redis.auth.enabled && redis.auth.users.replication;

/**
 * What redis-server includes from the auth Secret: the passwords it accepts (the one in use
 * first, and during a rotation the one coming or going; NO_PASSWORD among them means any),
 * its masterauth (the one in use, sent as user default), the quarantine if any, with the
 * metrics sidecar on its own user that reads metrics and no key, and with the proxies' own user
 * on, that user. With the replication user on, replicas sign in as it (masteruser), and the
 * quarantine applies to it as to default.
 */
export function authConf(
  redis: RedisSpec,
  accepted: string[],
  users: UserPasswords = {},
  defaultOff = false,
): string {
  const quote = (s: string) => `"${s.replace(/(["\\])/g, '\\$1')}"`;
  const [current] = accepted;
  if (current === undefined) throw new Error('authConf needs the password in use');
  const rules = startsQuarantined(redis) ? QUARANTINED : '~* &* +@all';
  const passwords = accepted.includes(NO_PASSWORD)
    ? 'nopass'
    : accepted.map((p) => quote(`>${p}`)).join(' ');
  // A `user default` line resets the user, so the quarantined form carries the passwords itself.
  const server =
    passwords !== 'nopass' && !startsQuarantined(redis) && accepted.length === 1 && !defaultOff
      ? `requirepass ${quote(current)}`
      : `user default ${defaultOff ? 'off' : 'on'} ${passwords} ${rules}`;
  const probe = probeUserWanted(redis, defaultOff)
    ? `user ${PROBE_USER} on ${passwords} ${PROBE_USER_RULES}\n`
    : '';
  /** A user of the operator's beside default, when `wanted` and its password is given (setuserArgs). */
  const userLine = (wanted: boolean, user: string, password: string | undefined, rules: string) =>
    wanted && password !== undefined ? `user ${user} on ${quote(`>${password}`)} ${rules}\n` : '';
  const ownReplicationUser = replicationUserWanted(redis) && users.replication !== undefined;
  const replication = ownReplicationUser
    ? `masteruser ${REPLICATION_USER}\nmasterauth ${quote(users.replication!)}\n${userLine(true, REPLICATION_USER, users.replication, replicationRules(!startsQuarantined(redis)))}`
    : current === NO_PASSWORD
      ? ''
      : `masteruser default\nmasterauth ${quote(current)}\n`;
  return [
    `${server}\n`,
    replication,
    userLine(redis.exporter.enabled, EXPORTER_USER, users.exporter, EXPORTER_RULES),
    userLine(proxyUserWanted(redis), PROXY_USER, users.proxy, PROXY_USER_RULES),
    userLine(operatorUserWanted(redis), OPERATOR_USER, users.operator, OPERATOR_USER_RULES),
    probe,
  ].join('');
}

/** What the readiness probe runs (READY_SCRIPT), and nothing else: no key, no channel. */
const PROBE_USER_RULES = 'resetkeys resetchannels -@all +ping +info +cluster|info';

/**
 * `ACL SETUSER` arguments that give a running node the probe user as authConf declares it:
 * with exactly `passwords`, default's.
 */
export const probeUserSetuser = (passwords: string[]): string[] => [
  'ACL',
  'SETUSER',
  PROBE_USER,
  'on',
  'resetpass',
  ...passwords.map((p) => `>${p}`),
  ...PROBE_USER_RULES.split(' '),
];

/**
 * What the proxies' own user may do: read and write their keys (proxy/cache/keys.ts: entries,
 * leases, back-off and rate-limit counters, the clear generation) with the commands they use,
 * publish and subscribe on their invalidation channel, learn the cluster's layout (CLUSTER SLOTS/NODES/INFO, read-only) and
 * read INFO, DBSIZE and MEMORY USAGE for /cache/info. No FLUSHALL, no CONFIG, no CLUSTER change,
 * no key of anyone else.
 */
export const PROXY_USER_RULES = [
  `resetkeys ${PROXY_KEY_PATTERNS.map((k) => `~${k}`).join(' ')}`,
  `resetchannels ${PROXY_CHANNELS.map((c) => `&${c}`).join(' ')}`,
  '-@all',
  '+ping +echo +hello +client|setname +client|id +client|info +readonly +readwrite',
  '+info +dbsize +memory|usage +scan',
  '+cluster|slots +cluster|shards +cluster|nodes +cluster|info +cluster|myid +cluster|keyslot',
  '+get +set +getex +mget +exists +del +unlink +ttl +pttl +expire +pexpire +incr +incrby +decr',
  '+eval +evalsha +eval_ro +evalsha_ro +script|load +script|exists',
  '+publish +subscribe +unsubscribe',
].join(' ');

/**
 * `ACL SETUSER` arguments that make a running node's `user` what authConf declares (userLine):
 * on, with this one password and these rules.
 */
const setuserArgs = (user: string, password: string, rules: string): string[] => [
  'ACL',
  'SETUSER',
  user,
  'on',
  'resetpass',
  `>${password}`,
  ...rules.split(' '),
];

/** `ACL SETUSER` arguments that make a running node's proxy user what authConf declares. */
export const proxyUserSetuser = (password: string): string[] =>
  setuserArgs(PROXY_USER, password, PROXY_USER_RULES);

/**
 * What the operator's own user may do: administer the cluster — every key (MIGRATE, RESTORE,
 * key counts), CLUSTER, CONFIG, ACL (it teaches the other users), INFO, SYNC (backups) — but
 * none of the commands that wipe data, stop the server or show traffic, which it never runs.
 */
export const OPERATOR_USER_RULES =
  'resetkeys resetchannels ~* &* +@all -flushall -flushdb -shutdown -debug -monitor';

/** `ACL SETUSER` arguments that make a running node's operator user what authConf declares. */
export const operatorUserSetuser = (password: string): string[] =>
  setuserArgs(OPERATOR_USER, password, OPERATOR_USER_RULES);

/**
 * What the replication user may run: a replica's side of the handshake and the sync, no key and
 * no channel; SYNC and PSYNC only where the node serves replication (not quarantined).
 */
const replicationRules = (servesReplication: boolean): string =>
  `resetkeys resetchannels -@all +ping +replconf${servesReplication ? ' +sync +psync' : ''}`;

/**
 * `ACL SETUSER` arguments that give a running node the replication user as authConf declares
 * it, serving replication as the node's default user does (a quarantined node stays so).
 */
export const replicationUserSetuser = (password: string, servesReplication: boolean): string[] =>
  setuserArgs(REPLICATION_USER, password, replicationRules(servesReplication));

/**
 * What the metrics sidecar may run: the commands redis_exporter reads metrics with, and no key
 * or channel (its password sits in an environment variable, so it must not open the data).
 */
const EXPORTER_RULES =
  'resetkeys resetchannels -@all +ping +info +config|get +cluster|info +cluster|nodes +slowlog|get +slowlog|len +latency|latest +latency|histogram +client|setname +select +dbsize';

/** The password clients use, and during a rotation the one coming (`next`) or going (`retiring`). */
export interface AuthKeys {
  /** What clients use: at every step of a rotation, a password every node accepts. */
  password: string;
  next?: string | undefined;
  retiring?: string | undefined;
  /** Every node has `default` switched off (spec.redis.auth.defaultUser disabled, carried out). */
  defaultOff?: boolean | undefined;
}

/** A Secret of one generated password (key `password`) that a container reads. */
function passwordSecret(cc: CacheCluster, name: string, password: string): V1Secret {
  return {
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: ownedMeta(cc, name, clusterLabels(cc, 'redis')),
    type: 'Opaque',
    data: { password: base64(password) },
  };
}

/** The metrics sidecar's password (generated once, never rotated), which its container reads. */
export const exporterSecret = (cc: CacheCluster, password: string): V1Secret =>
  passwordSecret(cc, names.exporterSecret(cc.metadata.name), password);

/** The proxies' ACL user's password (generated once), which the proxies read. */
export const proxyUserSecret = (cc: CacheCluster, password: string): V1Secret =>
  passwordSecret(cc, names.proxyUserSecret(cc.metadata.name), password);

/** The operator user's password (generated once), which only the operator reads. */
export const operatorUserSecret = (cc: CacheCluster, password: string): V1Secret =>
  passwordSecret(cc, names.operatorUserSecret(cc.metadata.name), password);

/** The replication user's password (generated once), which only the operator reads. */
export const replicationUserSecret = (cc: CacheCluster, password: string): V1Secret =>
  passwordSecret(cc, names.replicationUserSecret(cc.metadata.name), password);

/**
 * The password every node accepts now, kept apart from the auth Secret: when a user deletes
 * that one to have a new password generated, the operator still knows the one to rotate from.
 */
export const authInUseSecret = (cc: CacheCluster, password: string): V1Secret =>
  passwordSecret(cc, names.authInUseSecret(cc.metadata.name), password);

/**
 * The Secret redis-server includes (`auth.conf`) and clients read (`password`; empty when
 * auth is disabled).
 */
export function authSecret(
  cc: CacheCluster,
  redis: RedisSpec,
  keys: AuthKeys,
  users: UserPasswords = {},
): V1Secret {
  const data: Record<string, string> = { password: base64(keys.password) };
  if (keys.next !== undefined) data.next = base64(keys.next);
  if (keys.retiring !== undefined) data.retiring = base64(keys.retiring);
  if (keys.defaultOff) data.default = base64('off');
  const accepted = [keys.password, keys.next, keys.retiring].filter(
    (p): p is string => p !== undefined,
  );
  data['auth.conf'] = base64(authConf(redis, accepted, users, keys.defaultOff));
  return {
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: ownedMeta(cc, names.authSecret(cc.metadata.name), clusterLabels(cc, 'redis')),
    type: 'Opaque',
    // data, not stringData: server-side apply then compares like with like.
    data,
  };
}
