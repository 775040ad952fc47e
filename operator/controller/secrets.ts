/**
 * The Redis password, the proxies' admin token and the metrics sidecar's password of a
 * CacheCluster: read from their Secrets,
 * generated once when missing. A user-given auth.secretName supplies the password instead;
 * `<cc>-redis-auth` also keeps a password rotation under way (auth-plan.ts).
 */
import { randomBytes } from 'node:crypto';
import { TiercacheError } from '../../lib/errors.ts';
import type { CacheCluster, CacheClusterSpec, RedisSpec } from '../api/types.ts';
import { names, tlsSecretName } from '../resources/names.ts';
import {
  NO_PASSWORD,
  operatorUserWanted,
  proxyUserWanted,
  replicationUserWanted,
} from '../resources/redis-config.ts';
import { isNotFound, type Kube } from '../runtime/kube.ts';
import type { StoredAuth } from './auth-plan.ts';
import { waitingFor } from './errors.ts';

/** A Secret's keys, decoded (undefined when there is no such Secret). One read of the API. */
async function readSecretData(
  kube: Kube,
  namespace: string,
  name: string,
): Promise<Record<string, string> | undefined> {
  try {
    const secret = await kube.core.readNamespacedSecret({ name, namespace });
    return Object.fromEntries(
      Object.entries(secret.data ?? {}).map(([k, v]) => [
        k,
        Buffer.from(v, 'base64').toString('utf8'),
      ]),
    );
  } catch (err) {
    if (isNotFound(err)) return undefined;
    throw err;
  }
}

async function readKey(kube: Kube, namespace: string, name: string, key: string) {
  return (await readSecretData(kube, namespace, name))?.[key];
}

const generate = () => randomBytes(24).toString('base64url');

/**
 * What `<cc>-redis-auth` holds of the password, a rotation under way and whether `default` is
 * off (empty when missing).
 */
export async function readStoredAuth(kube: Kube, cc: CacheCluster): Promise<StoredAuth> {
  const { namespace, name } = cc.metadata;
  const data = await readSecretData(kube, namespace, names.authSecret(name));
  return {
    password: data?.password,
    next: data?.next,
    retiring: data?.retiring,
    defaultOff: data?.default === 'off',
  };
}

/** The password the nodes accept now, as the operator last recorded it (`<cc>-redis-auth-in-use`). */
export async function readInUsePassword(kube: Kube, cc: CacheCluster): Promise<string | undefined> {
  const { namespace, name } = cc.metadata;
  return readKey(kube, namespace, names.authInUseSecret(name), 'password');
}

/**
 * The password the nodes should end up with: none when auth is disabled, the user's Secret's
 * (auth.secretName), else the generated one being introduced or in use, else a new one (the
 * generated Secret was deleted, the cluster is new, or auth is being turned on).
 */
export async function desiredPassword(
  kube: Kube,
  cc: CacheCluster,
  spec: CacheClusterSpec,
  stored: StoredAuth,
): Promise<string> {
  if (!spec.redis.auth.enabled) return NO_PASSWORD;
  const { namespace } = cc.metadata;
  const given = spec.redis.auth.secretName;
  if (given) {
    const password = await readKey(kube, namespace, given, 'password');
    if (!password)
      throw new TiercacheError('BAD_REQUEST', `Secret ${namespace}/${given} has no key "password"`);
    return password;
  }
  // NO_PASSWORD is a value here, not a password to keep.
  return stored.next || stored.password || generate();
}

/** A generated secret value that is kept once made: read from its Secret, or new. */
const keptOrNew = async (kube: Kube, cc: CacheCluster, name: string, key: string) =>
  (await readKey(kube, cc.metadata.namespace, name, key)) ?? generate();

export const adminToken = (kube: Kube, cc: CacheCluster): Promise<string> =>
  keptOrNew(kube, cc, `${cc.metadata.name}-proxy-admin`, 'token');

/** The metrics sidecar's password (its ACL user's; it never rotates). */
export const exporterPassword = (kube: Kube, cc: CacheCluster): Promise<string> =>
  keptOrNew(kube, cc, names.exporterSecret(cc.metadata.name), 'password');

/**
 * The passwords of the ACL users the spec wants (proxies', replication's, the operator's), each
 * generated once into its own Secret; a user not wanted has none, and its Secret is not read.
 * Read once per reconcile: what the nodes are taught is what the Secrets keep.
 */
export async function wantedUserPasswords(
  kube: Kube,
  cc: CacheCluster,
  redis: RedisSpec,
): Promise<{ proxy?: string; replication?: string; operator?: string }> {
  const { name } = cc.metadata;
  const read = (wanted: boolean, secret: string) =>
    wanted ? keptOrNew(kube, cc, secret, 'password') : Promise.resolve(undefined);
  const [proxy, replication, operator] = await Promise.all([
    read(proxyUserWanted(redis), names.proxyUserSecret(name)),
    read(replicationUserWanted(redis), names.replicationUserSecret(name)),
    read(operatorUserWanted(redis), names.operatorUserSecret(name)),
  ]);
  return { proxy, replication, operator };
}

/** What the operator needs of a TLS CacheCluster's certificate Secret: the CA to trust, the certificate the nodes should serve. */
export interface TlsMaterial {
  ca: string;
  cert: string;
}

/**
 * Reads the nodes' certificate Secret, refusing one that lacks a key the nodes need (or, with
 * tls.issuerRef, saying cert-manager has not issued it yet).
 */
export async function readTlsSecret(kube: Kube, cc: CacheCluster): Promise<TlsMaterial> {
  const { namespace } = cc.metadata;
  const name = tlsSecretName(cc);
  const data = await readSecretData(kube, namespace, name);
  const missing = ['ca.crt', 'tls.crt', 'tls.key'].find((key) => !data?.[key]);
  if (missing && cc.spec.redis.tls?.issuerRef)
    throw waitingFor(
      'WaitingForCertificate',
      `waiting for cert-manager to issue the Certificate ${names.tlsCertificate(cc.metadata.name)} into Secret ${namespace}/${name}`,
    );
  if (missing)
    throw new TiercacheError(
      'BAD_REQUEST',
      `spec.redis.tls.secretName: Secret ${namespace}/${name} is missing or has no key "${missing}" (it needs tls.crt, tls.key and ca.crt)`,
    );
  return { ca: data!['ca.crt']!, cert: data!['tls.crt']! };
}
