/**
 * Password rotation, decided (pure). A new password never locks anyone out: every node first
 * accepts it beside the one in use ("introduce"), then clients switch to it and the proxies
 * roll, and only once every proxy runs with it do the nodes forget the old one ("retire").
 * What is under way is kept in the operator's `<cc>-redis-auth` Secret, so a restarted
 * operator carries on: `password` (what clients use), `next` (being introduced), `retiring`
 * (still accepted until the proxies rolled).
 */
import type { V1Deployment } from '@kubernetes/client-node';
import { AUTH_VERSION_ANNOTATION } from '../resources/proxy.ts';
import type { AuthKeys } from '../resources/redis-config.ts';

/** The rotation state kept in `<cc>-redis-auth`. */
export interface StoredAuth {
  password?: string | undefined;
  next?: string | undefined;
  retiring?: string | undefined;
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
  return { kind: 'steady', current };
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
