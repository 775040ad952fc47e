/**
 * What runs for a container image. There is no image registry here: the `redis`/`valkey`
 * images run this machine's redis-server, and tiercache's own image runs the checkout's CLI.
 * Each process is told to bind its pod's IP (pods share the machine's network).
 */

import { join } from 'node:path';
import type { V1Container } from '@kubernetes/client-node';
import { REPO } from '../layout.ts';

export interface Launch {
  argv: string[];
  env: Record<string, string>;
}

export class UnsupportedImage extends Error {}

const REDIS_IMAGE = /(^|\/)(redis|valkey)(:|@|$)/;
const TIERCACHE_IMAGE = /(^|\/)tiercache(:|@|$)/;
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
  if (isTiercacheImage(image)) {
    const rest = command[0]?.endsWith('tiercache') ? command.slice(1) : command;
    return {
      argv: [process.execPath, join(REPO, 'bin', 'tiercache.ts'), ...rest, ...args],
      env: { HOST: podIp },
    };
  }
  throw new UnsupportedImage(
    `image ${image} is not runnable here (only redis/valkey and tiercache images are)`,
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
