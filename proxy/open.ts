/**
 * A proxy with what it needs started: the demo upstream when no key is set (buildProxy closes
 * it with the proxy). `tiercache proxy`, the local stack and the tests open proxies this way.
 */
import type { Logger } from '../lib/log.ts';
import { buildProxy, demoUpstreams, type ProxyInstance } from './app.ts';
import type { ProxyConfig } from './config.ts';
import { startDemoUpstream } from './upstreams/demo-server.ts';

export async function openProxy(config: ProxyConfig, log: Logger): Promise<ProxyInstance> {
  const needs = demoUpstreams(config);
  const demo = needs.tmdb || needs.crypto ? await startDemoUpstream() : undefined;
  try {
    return await buildProxy(config, log, { demo });
  } catch (err) {
    await demo?.close();
    throw err;
  }
}
