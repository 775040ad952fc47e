/**
 * The Redis password and the proxies' admin token of a CacheCluster: read from their Secrets,
 * generated once when missing. A user-given auth.secretName supplies the password instead.
 */
import { randomBytes } from 'node:crypto';
import { TiercacheError } from '../../lib/errors.ts';
import type { CacheCluster, CacheClusterSpec } from '../api/types.ts';
import { names } from '../resources/names.ts';
import { isNotFound, type Kube } from './kube.ts';

async function readKey(kube: Kube, namespace: string, name: string, key: string) {
  try {
    const secret = await kube.core.readNamespacedSecret({ name, namespace });
    const value = secret.data?.[key];
    return value === undefined ? undefined : Buffer.from(value, 'base64').toString('utf8');
  } catch (err) {
    if (isNotFound(err)) return undefined;
    throw err;
  }
}

const generate = () => randomBytes(24).toString('base64url');

export async function redisPassword(
  kube: Kube,
  cc: CacheCluster,
  spec: CacheClusterSpec,
): Promise<string> {
  const { namespace } = cc.metadata;
  const given = spec.redis.auth.secretName;
  if (given) {
    const password = await readKey(kube, namespace, given, 'password');
    if (!password)
      throw new TiercacheError('BAD_REQUEST', `Secret ${namespace}/${given} has no key "password"`);
    return password;
  }
  return (
    (await readKey(kube, namespace, names.authSecret(cc.metadata.name), 'password')) ?? generate()
  );
}

export async function adminToken(kube: Kube, cc: CacheCluster): Promise<string> {
  const name = `${cc.metadata.name}-proxy-admin`;
  return (await readKey(kube, cc.metadata.namespace, name, 'token')) ?? generate();
}
