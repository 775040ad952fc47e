/**
 * Password rotation, decided (pure). A new password never locks anyone out: every node first
 * accepts it beside the one in use ("introduce"), then clients switch to it and the proxies
 * roll, and only once every proxy runs with it do the nodes forget the old one ("retire").
 * What is under way is kept in the operator's `<cc>-redis-auth` Secret, so a restarted
 * operator carries on: `password` (what clients use), `next` (being introduced), `retiring`
 * (still accepted until the proxies rolled). Auth disabled is the password NO_PASSWORD, so
 * turning auth on or off is a rotation from or to it: nodes then have `nopass` (any password,
 * or none, is accepted), and an empty masterauth is Redis's own "none".
 */
import type { V1Deployment } from '@kubernetes/client-node';
import { PROBE_USER } from '../resources/names.ts';
import { AUTH_VERSION_ANNOTATION } from '../resources/proxy.ts';
import { type AuthKeys, NO_PASSWORD } from '../resources/redis-config.ts';

/** The rotation state kept in `<cc>-redis-auth`. */
export interface StoredAuth {
  password?: string | undefined;
  next?: string | undefined;
  retiring?: string | undefined;
  /** The nodes have `default` switched off (default-user.ts). */
  defaultOff?: boolean | undefined;
}

export type AuthPlan =
  /** One password, in use everywhere. */
  | { kind: 'steady'; current: string }
  /** Nodes are taught `next` beside `current`; then clients switch to `next`. */
  | { kind: 'introduce'; current: string; next: string }
  /** Clients use `current`; nodes still accept `retiring` until every proxy rolled. */
  | { kind: 'retire'; current: string; retiring: string };

/**
 * `desired`: the user's Secret's password, or the generated one; `remembered`: the password
 * this operator last saw the nodes accept (for when the generated Secret was deleted).
 */
export function planAuth(stored: StoredAuth, desired: string, remembered?: string): AuthPlan {
  const current = stored.password ?? remembered;
  // A new cluster: nothing uses a password yet.
  if (current === undefined) return { kind: 'steady', current: desired };
  if (current !== desired) return { kind: 'introduce', current, next: desired };
  if (stored.retiring !== undefined && stored.retiring !== current)
    return { kind: 'retire', current, retiring: stored.retiring };
  // A rotation given up half-way (the Secret changed back): some nodes may have been taught
  // the abandoned password; they forget it as if it were retiring (clients never left `current`).
  if (stored.next !== undefined && stored.next !== current)
    return { kind: 'retire', current, retiring: stored.next };
  return { kind: 'steady', current };
}

/** Which users beside `default` a rotation of its password touches. */
export interface RotationUsers {
  /** Replicas sign in as the replication user: masterauth is its password, not this one. */
  ownReplicationUser?: boolean | undefined;
  /** The readiness probe's user (`default` disabled), which has default's passwords. */
  probeUser?: boolean | undefined;
}

/**
 * What every node runs to accept `next` beside `current` (then clients may switch). Replicas
 * authenticate as `default` (masteruser) so a master that has no password yet accepts them —
 * unless they sign in as the replication user, whose password is not this one: then masterauth
 * is left alone. The probe user, where there is one, learns `next` as default does.
 */
export function introduceCommands(
  current: string,
  next: string,
  { ownReplicationUser = false, probeUser = false }: RotationUsers = {},
): string[][] {
  // nopass accepts the password in use and no password alike; masterauth stays until retired.
  if (next === NO_PASSWORD) return [['ACL', 'SETUSER', 'default', 'nopass']];
  const masterauth = ownReplicationUser
    ? []
    : [['CONFIG', 'SET', 'masteruser', 'default', 'masterauth', next]];
  // A node without a password accepts `next` already (AUTH default <any>): adding one to the
  // user would end nopass and shut out the clients that send none.
  if (current === NO_PASSWORD) return masterauth;
  return [
    ['ACL', 'SETUSER', 'default', `>${next}`],
    ...(probeUser ? [['ACL', 'SETUSER', PROBE_USER, `>${next}`]] : []),
    ...masterauth,
  ];
}

/**
 * What every node runs, once every client uses `current`, to refuse every other password and
 * replicate with `current` (again: a rotation given up may have switched masterauth) — or, when
 * replicas sign in as the replication user, leave masterauth to it.
 */
export function retireCommands(
  current: string,
  { ownReplicationUser = false, probeUser = false }: RotationUsers = {},
): string[][] {
  if (current === NO_PASSWORD)
    return [
      ['ACL', 'SETUSER', 'default', 'nopass'],
      ['CONFIG', 'SET', 'masterauth', ''],
    ];
  return [
    ['ACL', 'SETUSER', 'default', 'resetpass', `>${current}`],
    ...(probeUser ? [['ACL', 'SETUSER', PROBE_USER, 'resetpass', `>${current}`]] : []),
    ...(ownReplicationUser
      ? []
      : [['CONFIG', 'SET', 'masteruser', 'default', 'masterauth', current]]),
  ];
}

/** The Normal Event saying a step finished, in the words of what changed for the user. */
export function stepDone(plan: AuthPlan): { reason: string; message: string } {
  if (plan.kind === 'introduce') {
    if (plan.next === NO_PASSWORD)
      return {
        reason: 'AuthDisabling',
        message:
          'every Redis node accepts connections without a password: the proxies roll without one',
      };
    if (plan.current === NO_PASSWORD)
      return {
        reason: 'AuthEnabling',
        message:
          'every Redis node replicates with the new password: the proxies roll with it, then the nodes require it',
      };
    return {
      reason: 'PasswordRotating',
      message:
        'every Redis node accepts the new password: clients switch to it and the proxies roll',
    };
  }
  if (plan.kind === 'retire') {
    if (plan.current === NO_PASSWORD)
      return { reason: 'AuthDisabled', message: 'no Redis node or proxy uses a password any more' };
    if (plan.retiring === NO_PASSWORD)
      return {
        reason: 'AuthEnabled',
        message: 'every Redis node requires the password, and every proxy uses it',
      };
    return {
      reason: 'PasswordRotated',
      message: 'every Redis node and every proxy uses the new password; the old one is refused',
    };
  }
  return { reason: 'PasswordSteady', message: 'nothing to change' };
}

/** Every password the nodes must accept while this plan holds (the one in use first). */
export function acceptedPasswords(plan: AuthPlan): string[] {
  switch (plan.kind) {
    case 'steady':
      return [plan.current];
    case 'introduce':
      return [plan.current, plan.next];
    case 'retire':
      return [plan.current, plan.retiring];
  }
}

/** What the Secret keeps of the plan. */
export function storedOf(plan: AuthPlan): AuthKeys {
  return {
    password: plan.current,
    ...(plan.kind === 'introduce' ? { next: plan.next } : {}),
    ...(plan.kind === 'retire' ? { retiring: plan.retiring } : {}),
  };
}

/** Every pod of the Deployment runs its current template, which carries `version`. */
export function rolledOut(d: V1Deployment, version: string): boolean {
  const want = d.spec?.replicas ?? 1;
  const s = d.status;
  return (
    d.spec?.template?.metadata?.annotations?.[AUTH_VERSION_ANNOTATION] === version &&
    (s?.observedGeneration ?? 0) >= (d.metadata?.generation ?? 0) &&
    (s?.updatedReplicas ?? 0) === want &&
    (s?.availableReplicas ?? 0) === want &&
    (s?.replicas ?? 0) === want
  );
}
