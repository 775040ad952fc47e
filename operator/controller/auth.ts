/**
 * Carrying out a password rotation on the nodes (I/O; the decisions are in auth-plan.ts).
 * Every change is live — `ACL SETUSER default >new` adds a password beside the one in use,
 * `CONFIG SET masterauth` switches what replicas send, `ACL SETUSER default resetpass >new`
 * drops every other — so no Redis pod restarts. The include file in the Secret says the same
 * for a pod that restarts meanwhile.
 */
import type { V1Deployment } from '@kubernetes/client-node';
import { Connections } from '../redis/connections.ts';
import { passwordVersion } from '../resources/proxy.ts';
import { type AuthPlan, rolledOut } from './auth-plan.ts';
import { describeError, isAuthError } from './errors.ts';

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
  passwords: string[],
  timeoutMs: number,
  ...args: string[]
): Promise<string[]> {
  const failed = await Promise.all(
    addrs.map(async (addr) => {
      let why = 'no password accepted';
      for (const password of passwords) {
        const conns = new Connections({ password, timeoutMs });
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
      return `${addr}: ${args.slice(0, 2).join(' ')} failed (${why.replace(/>\S+/g, '>…')})`;
    }),
  );
  return failed.filter((f): f is string => f !== undefined);
}

/**
 * The rotation's next step: teach every node the new password (then clients switch to it), or,
 * once every proxy rolled, make the nodes forget the old one. A step that cannot finish (a node
 * down, a proxy still rolling) leaves the plan as it was, for the next reconcile.
 */
export async function carryOutAuth(
  plan: AuthPlan,
  addrs: string[],
  proxies: V1Deployment[],
  timeoutMs: number,
  log: (line: string) => void,
): Promise<AuthOutcome> {
  const done = (failures: string[]) => {
    for (const f of failures) log(`password rotation waits: ${f}`);
    return failures.length === 0;
  };
  if (plan.kind === 'introduce') {
    const both = [plan.current, plan.next];
    const teach = ['ACL', 'SETUSER', 'default', `>${plan.next}`];
    if (!done(await onEveryNode(addrs, both, timeoutMs, ...teach))) return { plan };
    const masterauth = ['CONFIG', 'SET', 'masterauth', plan.next];
    if (!done(await onEveryNode(addrs, both, timeoutMs, ...masterauth))) return { plan };
    return {
      plan: { kind: 'retire', current: plan.next, retiring: plan.current },
      said: {
        reason: 'PasswordRotating',
        message: `every Redis node accepts the new password: clients switch to it and the proxies roll (${proxies.length} Deployments)`,
      },
    };
  }
  if (plan.kind === 'retire') {
    const version = passwordVersion(plan.current);
    if (!proxies.every((d) => rolledOut(d, version))) return { plan };
    const forget = ['ACL', 'SETUSER', 'default', 'resetpass', `>${plan.current}`];
    if (!done(await onEveryNode(addrs, [plan.current, plan.retiring], timeoutMs, ...forget)))
      return { plan };
    return {
      plan: { kind: 'steady', current: plan.current },
      said: {
        reason: 'PasswordRotated',
        message: 'every Redis node and every proxy uses the new password; the old one is refused',
      },
    };
  }
  return { plan };
}
