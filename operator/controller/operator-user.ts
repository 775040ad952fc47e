/**
 * The operator's own ACL user (spec.redis.auth.users.operator), switched to and from live.
 * On: every running node learns the user while the operator still signs in as `default`, and
 * only once all of them know it does the operator sign in as it. Off: the operator signs in as
 * `default` again first, then every node forgets the user (deleting it closes the connections
 * signed in as it, so never the ones in use). A node that starts meanwhile declares the user
 * from auth.conf. Which login works is kept per cluster in memory: a restarted operator signs in
 * as `default` once, teaches again (ACL SETUSER is idempotent) and switches.
 */
import type { Connections } from '../redis/connections.ts';
import { OPERATOR_USER } from '../resources/names.ts';
import { operatorUserSetuser } from '../resources/redis-config.ts';
import { failuresOnEvery } from './every-node.ts';

/** Credentials of an ACL user other than default. */
export interface UserLogin {
  username: string;
  password: string;
}

/** Which clusters' nodes all know the operator's user, with which password. */
export class OperatorLogins {
  readonly #taught = new Map<string, string>();

  /** Sign in as the operator's user when it is wanted (its `password`) and every node was taught it. */
  loginFor(key: string, password: string | undefined): UserLogin | undefined {
    return password !== undefined && this.#taught.get(key) === password
      ? { username: OPERATOR_USER, password }
      : undefined;
  }

  /** The user's login last taught to every node of the cluster, whatever the spec says now. */
  taughtLogin(key: string): UserLogin | undefined {
    const password = this.#taught.get(key);
    return password === undefined ? undefined : { username: OPERATOR_USER, password };
  }

  taught(key: string, password: string): void {
    this.#taught.set(key, password);
  }

  /** Sign in as default again (the user is not wanted, or a node refused it). */
  forget(key: string): void {
    this.#taught.delete(key);
  }
}

/** Every node of `addrs` knows the user with `password`; the failures, by node. */
export const teachOperatorUser = (conns: Connections, addrs: string[], password: string) =>
  failuresOnEvery(addrs, 'ACL SETUSER', (addr) =>
    conns.call(addr, ...operatorUserSetuser(password)),
  );

/** No node of `addrs` knows the user; the failures, by node. */
export const forgetOperatorUser = (conns: Connections, addrs: string[]) =>
  failuresOnEvery(addrs, 'ACL DELUSER', (addr) =>
    conns.call(addr, 'ACL', 'DELUSER', OPERATOR_USER),
  );
