/**
 * Carrying out a password rotation on the nodes (I/O; the commands are chosen in auth-plan.ts).
 * Every change is live — `ACL SETUSER default >new` adds a password beside the one in use,
 * `CONFIG SET masterauth` switches what replicas send, `ACL SETUSER default resetpass >new`
 * drops every other, `nopass` accepts any — so no Redis pod restarts, also when auth is turned
 * on or off. The include file in the Secret says the same for a pod that restarts meanwhile.
 */
import type { V1Deployment } from '@kubernetes/client-node';
import type { RedisTls } from '../../lib/redis/tls.ts';
import { Connections } from '../redis/connections.ts';
import { passwordVersion } from '../resources/proxy.ts';
import {
  type AuthPlan,
  introduceCommands,
  type RotationUsers,
  retireCommands,
  stepDone,
} from './auth-plan.ts';
import { describeError, isAuthError } from './errors.ts';
import type { UserLogin } from './operator-user.ts';
import { proxyDoneWith } from './proxy-user.ts';

/** How the nodes are reached: the per-command timeout, and TLS for a TLS CacheCluster. */
export interface NodeReach {
  timeoutMs: number;
  tls?: RedisTls | undefined;
}

/**
 * Which users the rotation touches besides default, and how the operator signs in to carry it
 * out: as `default` with whichever of the rotation's passwords a node accepts, or — with
 * `default` disabled — as its own user (`login`).
 */
export interface RotationContext extends NodeReach, RotationUsers {
  login?: UserLogin | undefined;
}

export interface AuthOutcome {
  plan: AuthPlan;
  /** What to say in a Normal Event when the rotation moved on. */
  said?: { reason: string; message: string };
}

/**
 * Runs `args` on every node, authenticating with the first of `passwords` the node accepts
 * (a node restarted during a rotation may know only one of them). Returns the nodes where it
 * failed, with why (never a password: the command is named by its first word).
 */
async function onEveryNode(
  addrs: string[],
  logins: (UserLogin | { password: string })[],
  reach: NodeReach,
  ...args: string[]
): Promise<string[]> {
  const passwords = logins.map((l) => l.password);
  const failed = await Promise.all(
    addrs.map(async (addr) => {
      let why = 'no password accepted';
      for (const login of logins) {
        const conns = new Connections({ ...login, ...reach });
        try {
          await conns.call(addr, ...args);
          return undefined;
        } catch (err) {
          why = describeError(err);
          if (!isAuthError(why)) break;
        } finally {
          conns.close();
        }
      }
      for (const p of passwords) if (p !== '') why = why.split(p).join('…');
      return `${addr}: ${args.slice(0, 2).join(' ')} failed (${why.replace(/>\S+/g, '>…')})`;
    }),
  );
  return failed.filter((f): f is string => f !== undefined);
}

/**
 * The rotation's next step: teach every node the new password (then clients switch to it), or,
 * once every proxy rolled, make the nodes forget the old one. Turning auth on or off is the
 * same, to or from NO_PASSWORD (auth-plan.ts). A step that cannot finish (a node down, a proxy
 * still rolling) leaves the plan as it was, for the next reconcile.
 */
export async function carryOutAuth(
  plan: AuthPlan,
  addrs: string[],
  proxies: V1Deployment[],
  { ownReplicationUser, probeUser, login, ...reach }: RotationContext,
  log: (line: string) => void,
): Promise<AuthOutcome> {
  const users = { ownReplicationUser, probeUser };
  const runAll = async (passwords: string[], commands: string[][]) => {
    const logins = login ? [login] : passwords.map((password) => ({ password }));
    for (const command of commands) {
      const failures = await onEveryNode(addrs, logins, reach, ...command);
      for (const f of failures) log(`password rotation waits: ${f}`);
      if (failures.length > 0) return false;
    }
    return true;
  };
  if (plan.kind === 'introduce') {
    if (
      !(await runAll([plan.current, plan.next], introduceCommands(plan.current, plan.next, users)))
    )
      return { plan };
    return {
      plan: { kind: 'retire', current: plan.next, retiring: plan.current },
      said: stepDone(plan),
    };
  }
  if (plan.kind === 'retire') {
    const version = passwordVersion(plan.current);
    if (!proxies.every((d) => proxyDoneWith(d, version))) return { plan };
    if (!(await runAll([plan.current, plan.retiring], retireCommands(plan.current, users))))
      return { plan };
    return { plan: { kind: 'steady', current: plan.current }, said: stepDone(plan) };
  }
  return { plan };
}
