/**
 * The proxies' own ACL user (spec.redis.auth.users.proxies), brought in and out with no
 * lockout. Turned on: every running node learns the user live (`ACL SETUSER`) before the
 * proxies roll to it — a node that starts later declares it from auth.conf. Turned off: the
 * proxies roll back to `default` first, and the nodes forget the user (`ACL DELUSER`) only once
 * no proxy runs with it. The choice is pure (chooseProxyLogin); the reconciler runs the I/O
 * (teachProxyUser, forgetProxyUser) no more often than it re-applies anything else.
 */
import type { V1Deployment } from '@kubernetes/client-node';
import type { Connections } from '../redis/connections.ts';
import { PROXY_USER } from '../resources/names.ts';
import {
  AUTH_VERSION_ANNOTATION,
  type ProxyLogin,
  templateUsesProxyUser,
} from '../resources/proxy.ts';
import { NO_PASSWORD, proxyUserSetuser } from '../resources/redis-config.ts';
import { rolledOut } from './auth-plan.ts';
import { failuresOnEvery } from './every-node.ts';

/** Every pod of the Deployment runs the template it has now. */
const rolledToTemplate = (d: V1Deployment): boolean =>
  rolledOut(d, d.spec?.template?.metadata?.annotations?.[AUTH_VERSION_ANNOTATION] ?? '');

/**
 * How the proxies should log in (pure): as their own user when it is wanted and every running
 * node knows it — or the proxies already use it (a node down a moment does not roll them back) —
 * else as `default` with the password clients use now.
 */
export function chooseProxyLogin(o: {
  wanted: boolean;
  /** The password clients use (NO_PASSWORD: auth off, where no user applies). */
  current: string;
  /** The user's password (read only when the user is wanted). */
  userPassword: string | undefined;
  nodesKnowUser: boolean;
  proxies: V1Deployment[];
}): ProxyLogin {
  const onUser = o.proxies.length > 0 && o.proxies.every(templateUsesProxyUser);
  if (
    o.wanted &&
    o.userPassword !== undefined &&
    o.current !== NO_PASSWORD &&
    (o.nodesKnowUser || onUser)
  )
    return { as: 'proxy-user', password: o.userPassword };
  return { as: 'default', password: o.current };
}

/** Every proxy pod logs in as the proxies' user: each runs a template that does. */
export const everyProxyOnUser = (proxies: V1Deployment[]): boolean =>
  proxies.every((d) => templateUsesProxyUser(d) && rolledToTemplate(d));

/** No proxy pod logs in as the proxies' user any more: each runs a template that does not. */
export const noProxyOnUser = (proxies: V1Deployment[]): boolean =>
  proxies.every((d) => !templateUsesProxyUser(d) && rolledToTemplate(d));

/**
 * A proxy is done with the default password `version` stands for: rolled out to it, or to a
 * template that logs in as the proxies' own user (the default password is not theirs).
 */
export const proxyDoneWith = (d: V1Deployment, version: string): boolean =>
  rolledOut(d, version) || (templateUsesProxyUser(d) && rolledToTemplate(d));

/** Runs one command on every address; true when every node did it. */
const onEvery = async (conns: Connections, addrs: string[], args: string[]): Promise<boolean> =>
  (await failuresOnEvery(addrs, args.slice(0, 2).join(' '), (addr) => conns.call(addr, ...args)))
    .length === 0;

/** Every node of `addrs` knows the user with `password` (ACL SETUSER is idempotent). */
export const teachProxyUser = (conns: Connections, addrs: string[], password: string) =>
  onEvery(conns, addrs, proxyUserSetuser(password));

/** No node of `addrs` knows the user (ACL DELUSER of an absent user is no error). */
export const forgetProxyUser = (conns: Connections, addrs: string[]) =>
  onEvery(conns, addrs, ['ACL', 'DELUSER', PROXY_USER]);
