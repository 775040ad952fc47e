/** Cluster DNS for pod processes: UDP on the cluster DNS IP, answering from the live pods and Services. */
import { createSocket } from 'node:dgram';
import { resolve, type Snapshot } from './dns-records.ts';
import { buildAnswer, formatError, parseQuery, TYPE_A } from './dns-wire.ts';

const TTL_SECONDS = 1;

export function startDns(
  ip: string,
  domain: string,
  snapshot: () => Snapshot,
): Promise<() => Promise<void>> {
  const socket = createSocket('udp4');
  socket.on('message', (msg, peer) => {
    const q = parseQuery(msg);
    if (!q) {
      socket.send(formatError(msg), peer.port, peer.address);
      return;
    }
    const ips = resolve(snapshot(), q.name, domain);
    // A name that exists but has no A record of the asked type answers NODATA, not NXDOMAIN.
    const answer = ips === undefined ? undefined : q.type === TYPE_A ? ips : [];
    socket.send(buildAnswer(q, answer, TTL_SECONDS), peer.port, peer.address);
  });
  return new Promise((res, rej) => {
    socket.once('error', rej);
    socket.bind(53, ip, () => res(() => new Promise((done) => socket.close(() => done()))));
  });
}
