/** Whether nothing listens on a TCP port — for tools that pick or check ports before binding. */
import { createServer } from 'node:net';

export function tcpPortFree(port: number, host = '127.0.0.1'): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = createServer();
    srv.once('error', () => resolve(false));
    srv.listen(port, host, () => srv.close(() => resolve(true)));
  });
}
