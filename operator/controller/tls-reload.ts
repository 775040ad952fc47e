/**
 * A renewed certificate, loaded without a restart. The kubelet refreshes a pod's mounted Secret
 * within a minute or two of the Secret changing; Redis reads its certificate files only when
 * told (`CONFIG SET tls-cert-file …`, same paths). So the operator compares what each node
 * serves to a new connection with the Secret's certificate, asks a node that differs to read its
 * files again, and comes back later for one whose files are not refreshed yet.
 */
import { X509Certificate } from 'node:crypto';
import { connect } from 'node:tls';
import { parseAddr } from '../../lib/redis/addr.ts';
import type { Connections } from '../redis/connections.ts';
import { tlsReloadCommand } from '../resources/redis-config.ts';

/**
 * The SHA-256 fingerprint of the certificate `addr` presents to a new TLS connection. Only
 * compared, never trusted (nothing is sent), so it is read unverified: a node still serving a
 * certificate of a CA the Secret no longer names is seen as different, not as unreachable.
 */
export function servedFingerprint(addr: string, timeoutMs: number): Promise<string> {
  const { host, port } = parseAddr(addr);
  return new Promise((resolve, reject) => {
    const socket = connect({ host, port, rejectUnauthorized: false, timeout: timeoutMs }, () => {
      resolve(socket.getPeerCertificate().fingerprint256);
      socket.end();
    });
    socket.on('timeout', () => socket.destroy(new Error(`${addr}: TLS handshake timed out`)));
    socket.on('error', reject);
  });
}

export interface ReloadOutcome {
  /** Nodes that now serve the Secret's certificate after being asked to read their files. */
  reloaded: string[];
  /** Nodes still serving another one (their mounted files not refreshed yet, or unreachable). */
  pending: string[];
}

/** Brings every node to the certificate `wantedPem` (a Secret's tls.crt, leaf first). */
export async function reloadRenewedCertificates(
  conns: Connections,
  addrs: string[],
  wantedPem: string,
  timeoutMs: number,
  reloadDir?: string,
): Promise<ReloadOutcome> {
  const wanted = new X509Certificate(wantedPem).fingerprint256;
  const out: ReloadOutcome = { reloaded: [], pending: [] };
  await Promise.all(
    addrs.map(async (addr) => {
      try {
        if ((await servedFingerprint(addr, timeoutMs)) === wanted) return;
        await conns.call(addr, ...tlsReloadCommand(reloadDir));
        if ((await servedFingerprint(addr, timeoutMs)) === wanted) out.reloaded.push(addr);
        else out.pending.push(addr);
      } catch {
        out.pending.push(addr);
      }
    }),
  );
  return out;
}
