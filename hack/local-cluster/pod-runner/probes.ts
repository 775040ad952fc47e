/** Readiness probes as the kubelet runs them: exec (inside the container's root), tcpSocket, httpGet. */
import { spawn } from 'node:child_process';
import { connect } from 'node:net';
import type { V1Probe } from '@kubernetes/client-node';

function portOf(port: number | string, namedPorts: Record<string, number>): number {
  return typeof port === 'number' ? port : (namedPorts[port] ?? Number(port));
}

export async function probe(
  p: V1Probe,
  podIp: string,
  pid: number | undefined,
  namedPorts: Record<string, number>,
): Promise<boolean> {
  const timeoutMs = (p.timeoutSeconds ?? 1) * 1000;
  const command = p.exec?.command;
  if (command) {
    if (pid === undefined) return false;
    // Asynchronous: one runner serves every pod, and a probe must not stall the others.
    return new Promise((resolve) => {
      const child = spawn(
        'nsenter',
        ['--target', String(pid), '--mount', '--root', '--wd', '--', ...command],
        { timeout: timeoutMs, stdio: 'ignore' },
      );
      child.once('exit', (code) => resolve(code === 0));
      child.once('error', () => resolve(false));
    });
  }
  if (p.tcpSocket) {
    const port = portOf(p.tcpSocket.port, namedPorts);
    return new Promise((resolve) => {
      const s = connect({ host: podIp, port, timeout: timeoutMs });
      s.once('connect', () => {
        s.destroy();
        resolve(true);
      });
      s.once('error', () => resolve(false));
      s.once('timeout', () => {
        s.destroy();
        resolve(false);
      });
    });
  }
  if (p.httpGet) {
    const port = portOf(p.httpGet.port, namedPorts);
    try {
      const res = await fetch(`http://${podIp}:${port}${p.httpGet.path ?? '/'}`, {
        signal: AbortSignal.timeout(timeoutMs),
      });
      await res.arrayBuffer();
      return res.status >= 200 && res.status < 400;
    } catch {
      return false;
    }
  }
  return true;
}
