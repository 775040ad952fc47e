/**
 * `default` switched off and on live (spec.redis.auth.defaultUser).
 *
 * Off: only once no client needs it — the operator signs in as its own user, replicas as
 * theirs, every proxy runs on its own, and no password rotation is under way — and once every
 * running node has the readiness probe's user (with default's passwords, so the probe needs no
 * new file). Then every node switches `default` off (connections signed in as it stay; new
 * ones are refused) and the auth Secret records it, so auth.conf says the same to a node that
 * restarts, and a restarted operator knows it must sign in as its own user. A node that comes
 * up with `default` on meanwhile is switched off again.
 *
 * On (the spec says `password` again): every node switches `default` on first; only after that
 * may the users go (auth.ts' callers keep them while the Secret says off, whatever the spec).
 */
import type { RedisSpec } from '../api/types.ts';
import type { Connections } from '../redis/connections.ts';
import type { NodeReport } from '../redis/observe.ts';
import { PROBE_USER } from '../resources/names.ts';
import { probeUserSetuser, probeUserWanted } from '../resources/redis-config.ts';
import { failuresOnEvery } from './every-node.ts';

/**
 * The spec the operator acts on (pure): while the nodes have `default` off (`defaultOff`), auth
 * and every user stay on whatever the spec says now — the clients must leave `default` only
 * after it is back, never before.
 */
export function keepUsersWhileDefaultOff(redis: RedisSpec, defaultOff: boolean): RedisSpec {
  if (!defaultOff) return redis;
  return {
    ...redis,
    auth: {
      ...redis.auth,
      enabled: true,
      users: { proxies: true, replication: true, operator: true },
    },
  };
}

export type DefaultUserStep = 'keep' | 'switch-off' | 'switch-on';

/** What to do about `default` now (pure); see the file's comment for the order. */
export function defaultUserStep(o: {
  wantedOff: boolean;
  /** The auth Secret says the nodes have it off. */
  storedOff: boolean;
  /** Reachable nodes that have it on, and that have it off. */
  nodesOn: number;
  nodesOff: number;
  /** No client needs `default` any more, and every node answered. */
  clientsOnOwnUsers: boolean;
}): DefaultUserStep {
  // A node that came up from a copy of auth.conf that lags the Secret is set right too.
  if (!o.wantedOff) return o.storedOff || o.nodesOff > 0 ? 'switch-on' : 'keep';
  if (o.storedOff) return o.nodesOn > 0 ? 'switch-off' : 'keep';
  return o.clientsOnOwnUsers ? 'switch-off' : 'keep';
}

export interface DefaultUserOutcome {
  /** Whether the nodes have `default` off now (what the auth Secret is to say). */
  defaultOff: boolean;
  /** What to say in a Normal Event when it changed. */
  said?: { reason: string; message: string };
  /** Nodes where a step failed, with why (never a password). */
  failed: string[];
}

/**
 * Carries out `step` on the running nodes (`addrs`), signed in as the operator's user. The
 * probe user is taught first where a node lacks it (with `accepted`, default's passwords), and
 * deleted once `default` is on again and nothing wants it.
 */
export async function settleDefaultUser(
  conns: Connections,
  addrs: string[],
  reports: NodeReport[],
  o: { redis: RedisSpec; step: DefaultUserStep; storedOff: boolean; accepted: string[] },
): Promise<DefaultUserOutcome> {
  const unchanged = (failed: string[]): DefaultUserOutcome => ({ defaultOff: o.storedOff, failed });
  const probeWanted = probeUserWanted(o.redis, o.storedOff);
  const haveProbe = (r: NodeReport) => r.aclUsers.includes(PROBE_USER);
  if (probeWanted && !reports.every(haveProbe)) {
    const failed = await failuresOnEvery(addrs, 'ACL SETUSER', (addr) =>
      conns.call(addr, ...probeUserSetuser(o.accepted)),
    );
    if (failed.length > 0) return unchanged(failed);
  }
  if (!probeWanted && reports.some(haveProbe)) {
    const failed = await failuresOnEvery(addrs, 'ACL DELUSER', (addr) =>
      conns.call(addr, 'ACL', 'DELUSER', PROBE_USER),
    );
    if (failed.length > 0) return unchanged(failed);
  }
  if (o.step === 'keep') return unchanged([]);
  const on = o.step === 'switch-on';
  // A switch goes to every running node; setting right a node that strayed, to that node only.
  const switching = o.storedOff === on;
  const targets = switching
    ? addrs
    : reports.filter((r) => r.defaultUserOn !== on).map((r) => r.addr);
  const failed = await failuresOnEvery(targets, 'ACL SETUSER default', (addr) =>
    conns.call(addr, 'ACL', 'SETUSER', 'default', on ? 'on' : 'off'),
  );
  if (failed.length > 0) return unchanged(failed);
  if (!switching) return { defaultOff: !on, failed };
  return {
    defaultOff: !on,
    failed,
    said: on
      ? {
          reason: 'DefaultUserOn',
          message: 'every Redis node lets clients sign in as default again',
        }
      : {
          reason: 'DefaultUserOff',
          message:
            'no client signs in as default any more: every Redis node refuses it (no restart)',
        },
  };
}
