/**
 * Replication's own ACL user (spec.redis.auth.users.replication), switched to and from live.
 *
 * On: every running node first learns the user — serving replication exactly as its default
 * user does, so a quarantined node stays quarantined — and only once all of them know it do
 * the nodes sign in to their masters as it (`CONFIG SET masteruser masterauth`: a link that is
 * up stays up, the next one uses the user). Off: every node signs in as `default` again first,
 * and the user is deleted only once every running node has switched back (deleting it cuts the
 * links signed in as it; they come back as `default`, with a partial resync). A node that starts
 * meanwhile reads the same from auth.conf.
 */

import type { Connections } from '../redis/connections.ts';
import { servesReplication } from '../redis/observe.ts';
import { REPLICATION_USER } from '../resources/names.ts';
import { replicationUserSetuser } from '../resources/redis-config.ts';
import { describeError } from './errors.ts';
import { failuresOnEvery } from './every-node.ts';

/** How replicas should sign in: as the replication user with its password, or as default with the clients' one. */
export type ReplicationLogin =
  | { as: 'replication-user'; password: string }
  | { as: 'default'; password: string };

export interface SwitchOutcome {
  /** Nodes that signed in as another user before this switch. */
  switched: number;
  /** Nodes where a step failed, with why (never a password). */
  failed: string[];
}

/** `masteruser` of each node (a node that does not answer is a failure). */
async function masterUsers(conns: Connections, addrs: string[]) {
  return Promise.all(
    addrs.map((addr) =>
      conns.call<string[]>(addr, 'CONFIG', 'GET', 'masteruser').then(
        ([, user]) => ({ addr, user: user ?? '' }),
        (err) => ({ addr, error: describeError(err) }),
      ),
    ),
  );
}

/** Every running node signs in as `login` says; see the file's comment for the order. */
export async function switchReplicationLogin(
  conns: Connections,
  addrs: string[],
  login: ReplicationLogin,
): Promise<SwitchOutcome> {
  const user = login.as === 'replication-user' ? REPLICATION_USER : 'default';
  const before = await masterUsers(conns, addrs);
  const unanswered = before.flatMap((b) => ('error' in b ? [`${b.addr}: ${b.error}`] : []));
  if (unanswered.length > 0) return { switched: 0, failed: unanswered };
  const switched = before.filter((b) => 'user' in b && b.user !== user).length;

  if (login.as === 'replication-user') {
    const taught = await failuresOnEvery(addrs, 'ACL SETUSER', async (addr) => {
      const defaultUser = await conns.call<unknown[]>(addr, 'ACL', 'GETUSER', 'default');
      const serves = servesReplication(defaultUser);
      await conns.call(addr, ...replicationUserSetuser(login.password, serves));
    });
    if (taught.length > 0) return { switched: 0, failed: taught };
  }
  const signedIn = await failuresOnEvery(addrs, 'CONFIG SET masteruser', (addr) =>
    conns.call(addr, 'CONFIG', 'SET', 'masteruser', user, 'masterauth', login.password),
  );
  if (signedIn.length > 0 || login.as === 'replication-user') return { switched, failed: signedIn };
  const forgotten = await failuresOnEvery(addrs, 'ACL DELUSER', (addr) =>
    conns.call(addr, 'ACL', 'DELUSER', REPLICATION_USER),
  );
  return { switched, failed: forgotten };
}
