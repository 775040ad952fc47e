/**
 * What runs for a container image. There is no image registry here: the `redis`/`valkey`
 * images run this machine's redis-server, `oliver006/redis_exporter` the exporter built from
 * its Go module (binaries.ts), and tiercache's own image runs the checkout's CLI. Each
 * process is told to bind its pod's IP (pods share the machine's network, so a sidecar's
 * `localhost` is its pod's IP).
 */

import { join } from 'node:path';
import type { V1Container } from '@kubernetes/client-node';
import { EXPORTER_GROUPS, ensureBinaries } from '../binaries.ts';
import { REPO } from '../layout.ts';

export interface Launch {
  argv: string[];
  env: Record<string, string>;
}

export class UnsupportedImage extends Error {}

const REDIS_IMAGE = /(^|\/)(redis|valkey)(:|@|$)/;
const TIERCACHE_IMAGE = /(^|\/)tiercache(:|@|$)/;
const EXPORTER_IMAGE = /(^|\/)redis_exporter(:|@|$)/;
const EXPORTER_DEFAULT_LISTEN = ':9121';
const REDIS_ENTRYPOINTS = new Set(['redis-server', 'docker-entrypoint.sh', 'valkey-server']);

export const isTiercacheImage = (image: string | undefined): boolean =>
  TIERCACHE_IMAGE.test(image ?? '');

export function launchFor(container: V1Container, podIp: string): Launch {
  const image = container.image ?? '';
  const command = container.command ?? [];
  const args = container.args ?? [];
  if (REDIS_IMAGE.test(image)) {
    const [first, ...rest] = command;
    const own = ['--protected-mode', 'no'];
    // A shell command (sh -c "...") runs as given: it is the container's own wrapper. One
    // that ends in `exec redis-server "$@"` is given the pod's bind as further arguments.
    if (first && !REDIS_ENTRYPOINTS.has(first.split('/').pop()!)) {
      const passesArgs = command.some((c) => /exec (redis|valkey)-server "\$@"/.test(c));
      const binds = passesArgs && !args.includes('--bind') ? ['--bind', podIp, ...own] : [];
      return { argv: [...command, ...args, ...binds], env: {} };
    }
    const redisArgs = first ? [...rest, ...args] : args;
    const binds = redisArgs.includes('--bind') ? [] : ['--bind', podIp];
    return { argv: ['redis-server', ...redisArgs, ...binds, ...own], env: {} };
  }
  if (EXPORTER_IMAGE.test(image)) {
    return {
      argv: [ensureBinaries(EXPORTER_GROUPS).redis_exporter!, ...args],
      env: exporterEnv(container, podIp),
    };
  }
  if (isTiercacheImage(image)) {
    const rest = command[0]?.endsWith('tiercache') ? command.slice(1) : command;
    return {
      argv: [process.execPath, join(REPO, 'bin', 'tiercache.ts'), ...rest, ...args],
      env: { HOST: podIp },
    };
  }
  throw new UnsupportedImage(
    `image ${image} is not runnable here (only redis/valkey, redis_exporter and tiercache images are)`,
  );
}

/**
 * What the exporter is told on top of its container's environment: listen on its pod's IP,
 * and read the Redis at `localhost`, which here is that IP too.
 */
export function exporterEnv(container: V1Container, podIp: string): Record<string, string> {
  const env = literalEnv(container);
  const listen = env.REDIS_EXPORTER_WEB_LISTEN_ADDRESS ?? EXPORTER_DEFAULT_LISTEN;
  const addr = env.REDIS_ADDR ?? 'redis://localhost:6379';
  return {
    REDIS_EXPORTER_WEB_LISTEN_ADDRESS: `${podIp}:${listen.split(':').pop()}`,
    REDIS_ADDR: addr.replace(/\/\/(localhost|127\.0\.0\.1)(?=[:/]|$)/, `//${podIp}`),
  };
}

/** The container's environment variables given as plain values. */
function literalEnv(container: V1Container): Record<string, string> {
  return Object.fromEntries(
    (container.env ?? []).flatMap((e) => (e.value === undefined ? [] : [[e.name, e.value]])),
  );
}

/**
 * Kubelet's `$(VAR)` references in command and args: replaced by the container's variable
 * when it is defined, left as written when not; `$$` escapes a `$`.
 */
export function expandReferences(arg: string, env: Record<string, string>): string {
  return arg.replace(/\$\$|\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)/g, (whole, name: string | undefined) =>
    name === undefined ? '$' : (env[name] ?? whole),
  );
}
