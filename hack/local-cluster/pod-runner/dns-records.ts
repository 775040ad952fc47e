/**
 * Cluster DNS names → pod IPs, computed from the pods and Services the API reports (pure):
 *   <svc>.<ns>.svc[.<domain>]                  the ready pods the Service selects
 *                                              (all of them with publishNotReadyAddresses)
 *   <hostname>.<subdomain>.<ns>.svc[.<domain>] the pod with that hostname and subdomain
 * Pods run on loopback IPs, which Endpoints may not hold, so DNS reads pods directly.
 */
import type { V1Pod, V1Service } from '@kubernetes/client-node';
import { isPodReady } from '../../../lib/pods.ts';

export interface Snapshot {
  pods: readonly V1Pod[];
  services: readonly V1Service[];
}

function selects(selector: Record<string, string> | undefined, pod: V1Pod): boolean {
  if (!selector || Object.keys(selector).length === 0) return false;
  const labels = pod.metadata?.labels ?? {};
  return Object.entries(selector).every(([k, v]) => labels[k] === v);
}

/** IPs for `name`: a list (maybe empty: the name exists, no address) or undefined (no such name). */
export function resolve(snapshot: Snapshot, name: string, domain: string): string[] | undefined {
  const n = name.replace(/\.$/, '').toLowerCase();
  const base = n.endsWith(`.svc.${domain}`) ? n.slice(0, -(domain.length + 1)) : n;
  if (!base.endsWith('.svc')) return undefined;
  const parts = base.slice(0, -4).split('.');
  const live = snapshot.pods.filter((p) => p.status?.podIP && !p.metadata?.deletionTimestamp);
  if (parts.length === 2) {
    const [svcName, ns] = parts;
    const svc = snapshot.services.find(
      (s) => s.metadata?.name === svcName && s.metadata?.namespace === ns,
    );
    if (!svc) return undefined;
    const publishAll = svc.spec?.publishNotReadyAddresses === true;
    return live
      .filter(
        (p) =>
          p.metadata?.namespace === ns &&
          selects(svc.spec?.selector, p) &&
          (publishAll || isPodReady(p)),
      )
      .map((p) => p.status!.podIP!);
  }
  if (parts.length === 3) {
    const [hostname, subdomain, ns] = parts;
    const pod = live.find(
      (p) =>
        p.metadata?.namespace === ns &&
        (p.spec?.hostname ?? p.metadata?.name) === hostname &&
        p.spec?.subdomain === subdomain,
    );
    return pod ? [pod.status!.podIP!] : undefined;
  }
  return undefined;
}
