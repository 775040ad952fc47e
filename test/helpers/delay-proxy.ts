/**
 * A TCP relay that holds every chunk for `delayMs` in each direction: Redis "far away" (a
 * region from the masters) on one machine. Chunks keep their order (timers of one delay fire
 * in the order they were set).
 */
import { connect, createServer, type Server, type Socket } from 'node:net';
import type { RedisNode } from './redis.ts';
import { waitFor } from './wait.ts';

export interface DelayProxy {
  port: number;
  close(): Promise<void>;
}

function relay(from: Socket, to: Socket, delayMs: number): void {
  from.on('data', (chunk) => {
    setTimeout(() => to.writable && to.write(chunk), delayMs);
  });
  from.on('end', () => setTimeout(() => to.end(), delayMs));
  from.on('error', () => to.destroy());
}

export async function startDelayProxy(
  target: { host: string; port: number },
  delayMs: number,
): Promise<DelayProxy> {
  const sockets = new Set<Socket>();
  const server: Server = createServer((client) => {
    client.setNoDelay(true);
    const upstream = connect(target.port, target.host);
    upstream.setNoDelay(true);
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on('close', () => sockets.delete(s));
    }
    relay(client, upstream, delayMs);
    relay(upstream, client, delayMs);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  return {
    port,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

/**
 * Puts cluster nodes "far away": each of `far` gets a relay adding `delayMs` each way and
 * announces it as its client port (the bus stays direct), and this waits until every node of
 * `all` names the relays in its slot map, so clients following it go through them.
 */
export async function behindRelays(
  far: RedisNode[],
  all: RedisNode[],
  delayMs: number,
): Promise<DelayProxy[]> {
  const relays: DelayProxy[] = [];
  for (const node of far) {
    const relay = await startDelayProxy(node, delayMs);
    relays.push(relay);
    const c = node.client();
    try {
      await c.call('CONFIG', 'SET', 'cluster-announce-bus-port', String(node.port + 10000));
      await c.call('CONFIG', 'SET', 'cluster-announce-port', String(relay.port));
    } finally {
      c.disconnect();
    }
  }
  const relayPorts = new Set(relays.map((r) => r.port));
  const announced = (slots: unknown[][]) =>
    slots.every((s) => relayPorts.has(Number((s[2] as unknown[])[1])));
  await waitFor(
    'every node to name the relays in its slot map',
    async () => {
      for (const node of all) {
        const c = node.client();
        try {
          if (!announced((await c.call('CLUSTER', 'SLOTS')) as unknown[][])) return false;
        } finally {
          c.disconnect();
        }
      }
      return true;
    },
    20_000,
    100,
  );
  return relays;
}
