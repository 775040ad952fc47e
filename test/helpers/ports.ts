/** Free loopback ports for servers the tests start (Redis Cluster also needs port + 10000). */
import { tcpPortFree as canBind } from '../../lib/ports.ts';

const taken = new Set<number>();

/**
 * A port p in 20000–29999 with p and p + 10000 (the cluster bus) free, never handed out twice per
 * process. Main ports and bus ports come from disjoint ranges, so one node's bus can never be
 * another's client port; test workers are separate processes, so startRedis retries on a clash.
 */
export async function freeRedisPort(host = '127.0.0.1'): Promise<number> {
  for (let i = 0; i < 200; i++) {
    const port = 20000 + Math.floor(Math.random() * 10000);
    if (taken.has(port)) continue;
    if ((await canBind(port, host)) && (await canBind(port + 10000, host))) {
      taken.add(port);
      return port;
    }
  }
  throw new Error('no free port pair found on 127.0.0.1');
}
