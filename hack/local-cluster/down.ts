/**
 * `npm run cluster:down`: stops everything `cluster:up` started — the pod runner first (it
 * stops its pods' processes), then the control plane — and checks nothing is left listening
 * on the cluster's ports. State under .local/cluster stays for the next `up` unless --purge.
 */

import { createSocket } from 'node:dgram';
import { rmSync } from 'node:fs';
import { tcpPortFree } from '../../lib/ports.ts';
import { removeContainers } from '../image/oci-run.ts';
import { network, paths, ports, STATE } from './layout.ts';
import { POD_CONTAINER_PREFIX } from './pod-runner/oci.ts';
import { recorded, stopRecorded } from './processes.ts';

const ORDER = [
  'pod-runner',
  'kwok',
  'kube-scheduler',
  'kube-controller-manager',
  'kube-apiserver',
  'etcd',
];

/** True when nothing listens on ip:port (TCP for the API ports, UDP for DNS). */
function portFree(ip: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    if (port === 53) {
      const sock = createSocket('udp4');
      sock.once('error', () => resolve(false));
      sock.bind(port, ip, () => sock.close(() => resolve(true)));
      return;
    }
    void tcpPortFree(port, ip).then(resolve);
  });
}

export async function clusterDown(purge = false): Promise<void> {
  const procs = recorded().sort((a, b) => rank(a.name) - rank(b.name));
  for (const p of procs) {
    process.stdout.write(`stopping ${p.name} (pid ${p.pid})\n`);
    await stopRecorded(p.name, p.pid, p.name === 'pod-runner' ? 40_000 : 10_000);
  }
  // Pod containers under runc (E2E_IMAGE_RUNTIME=oci) outlive a pod runner that was killed.
  const orphans = removeContainers(POD_CONTAINER_PREFIX);
  if (orphans.length) process.stdout.write(`removed ${orphans.length} orphaned pod containers\n`);
  for (const port of Object.values(ports)) {
    if (!(await portFree('127.0.0.1', port)))
      throw new Error(`port ${port} is still in use after cluster:down`);
  }
  if (!(await portFree(network.dnsIp, 53)))
    throw new Error(`cluster DNS (${network.dnsIp}:53) still answers after cluster:down`);
  if (purge) rmSync(STATE, { recursive: true, force: true });
  process.stdout.write(
    `local cluster stopped${purge ? ' and its state removed' : ` (state kept in ${paths.pids}/..)`}\n`,
  );
}

function rank(name: string): number {
  const i = ORDER.indexOf(name);
  return i < 0 ? -1 : i; // pods' own pid files (if any) first
}

if (import.meta.url === `file://${process.argv[1]}`) {
  clusterDown(process.argv.includes('--purge')).catch((err) => {
    process.stderr.write(`cluster:down failed: ${(err as Error).message}\n`);
    process.exit(1);
  });
}
