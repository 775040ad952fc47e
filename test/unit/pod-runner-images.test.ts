import { describe, expect, it } from 'vitest';
import {
  expandReferences,
  exporterEnv,
  launchFor,
} from '../../hack/local-cluster/pod-runner/images.ts';

describe('pod runner: what runs for a container', () => {
  it('expands $(VAR) references as kubelet does', () => {
    const env = { POD_IP: '127.10.1.5', POD_NAME: 'cache-shard-0-1' };
    expect(expandReferences('$(POD_IP)', env)).toBe('127.10.1.5');
    expect(expandReferences('$(POD_NAME).cache-redis.ns.svc', env)).toBe(
      'cache-shard-0-1.cache-redis.ns.svc',
    );
    expect(expandReferences('$(MISSING)', env)).toBe('$(MISSING)');
    expect(expandReferences('$$(POD_IP) costs $$5', env)).toBe('$(POD_IP) costs $5');
  });

  it('runs a redis image as redis-server bound to the pod IP, keeping its arguments', () => {
    const launch = launchFor(
      {
        name: 'redis',
        image: 'redis:7.2',
        command: ['redis-server'],
        args: ['/etc/redis/redis.conf'],
      },
      '127.10.1.5',
    );
    expect(launch.argv).toEqual([
      'redis-server',
      '/etc/redis/redis.conf',
      '--bind',
      '127.10.1.5',
      '--protected-mode',
      'no',
    ]);
  });

  it('gives a shell wrapper that passes its arguments to redis-server the pod IP to bind', () => {
    const script = 'rm -f /data/nodes.conf && exec redis-server "$@"';
    const launch = launchFor(
      {
        name: 'redis',
        image: 'redis:7.2',
        command: ['sh', '-c', script, 'redis-server'],
        args: ['/etc/redis/redis.conf'],
      },
      '127.10.1.5',
    );
    expect(launch.argv).toEqual([
      'sh',
      '-c',
      script,
      'redis-server',
      '/etc/redis/redis.conf',
      '--bind',
      '127.10.1.5',
      '--protected-mode',
      'no',
    ]);
    const other = launchFor(
      { name: 'redis', image: 'redis:7.2', command: ['sh', '-c', 'echo hi'] },
      '127.10.1.5',
    );
    expect(other.argv).toEqual(['sh', '-c', 'echo hi']);
  });

  it("points the exporter at its pod's IP for both its listener and its Redis", () => {
    const sidecar = {
      name: 'exporter',
      image: 'oliver006/redis_exporter:v1.74.0',
      env: [
        { name: 'REDIS_ADDR', value: 'redis://localhost:6379' },
        { name: 'REDIS_USER', value: 'tiercache-exporter' },
        { name: 'REDIS_EXPORTER_WEB_LISTEN_ADDRESS', value: ':9121' },
      ],
    };
    expect(exporterEnv(sidecar, '127.10.1.5')).toEqual({
      REDIS_EXPORTER_WEB_LISTEN_ADDRESS: '127.10.1.5:9121',
      REDIS_ADDR: 'redis://127.10.1.5:6379',
    });
    // Defaults when the container sets nothing; an address elsewhere is left alone.
    expect(exporterEnv({ name: 'e', image: 'redis_exporter' }, '127.10.1.6')).toEqual({
      REDIS_EXPORTER_WEB_LISTEN_ADDRESS: '127.10.1.6:9121',
      REDIS_ADDR: 'redis://127.10.1.6:6379',
    });
    const remote = { name: 'e', env: [{ name: 'REDIS_ADDR', value: 'redis://cache-0:6379' }] };
    expect(exporterEnv(remote, '127.10.1.6').REDIS_ADDR).toBe('redis://cache-0:6379');
  });

  it('refuses images it cannot run, naming them', () => {
    expect(() => launchFor({ name: 'x', image: 'nginx:1.27' }, '127.10.1.5')).toThrow(/nginx:1.27/);
  });
});
