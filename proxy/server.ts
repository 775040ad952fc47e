/**
 * Runs the proxy: load config, build, listen, and shut down cleanly on SIGTERM/SIGINT
 * (in-flight requests finish; Kubernetes gives us the grace period for that).
 */
import { createLogger } from '../lib/log.ts';
import { loadProxyConfig } from './config.ts';
import { openProxy } from './open.ts';

export async function runProxy(env: NodeJS.ProcessEnv = process.env): Promise<void> {
  const config = loadProxyConfig(env);
  const log = createLogger(config.logLevel, { service: 'tiercache-proxy', region: config.region });
  const proxy = await openProxy(config, log);
  const address = await proxy.app.listen({ port: config.port, host: config.host });
  log.info({ address, l2: config.redis ? 'redis' : 'disabled' }, 'tiercache proxy listening');

  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, 'shutting down');
    await proxy.close();
    process.exit(0);
  };
  process.once('SIGTERM', () => void stop('SIGTERM'));
  process.once('SIGINT', () => void stop('SIGINT'));
}
