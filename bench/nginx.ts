/**
 * nginx with proxy_cache in front of the benchmark upstream: the design's reference for a
 * caching reverse proxy, installed from Debian's package when missing (as root).
 */
import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { tryInstallDebianPackage } from '../lib/packages.ts';
import { type Server, stopProcess } from './lib.ts';

export function nginxPath(): string | undefined {
  tryInstallDebianPackage('nginx', 'nginx');
  try {
    return execFileSync('sh', ['-c', 'command -v nginx || ls /usr/sbin/nginx'], {
      encoding: 'utf8',
    })
      .trim()
      .split('\n')[0];
  } catch {
    return undefined;
  }
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as { port: number };
      srv.close(() => resolve(port));
    });
  });
}

/** `maxSize`: the cache's disk bound (nginx counts file system blocks, 8 KB per 4 KB answer on ext4). */
export async function startNginxCache(
  nginx: string,
  upstreamUrl: string,
  opts: { maxSize?: string } = {},
): Promise<Server> {
  const dir = mkdtempSync(join(tmpdir(), 'tiercache-nginx-'));
  const port = await freePort();
  const root = process.getuid?.() === 0 ? 'user root;' : '';
  writeFileSync(
    join(dir, 'nginx.conf'),
    `${root}
worker_processes 1;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log warn;
events { worker_connections 1024; }
http {
  access_log off;
  client_body_temp_path ${dir}/body;
  proxy_temp_path ${dir}/proxy;
  fastcgi_temp_path ${dir}/fastcgi;
  uwsgi_temp_path ${dir}/uwsgi;
  scgi_temp_path ${dir}/scgi;
  proxy_cache_path ${dir}/cache levels=1:2 keys_zone=bench:10m max_size=${opts.maxSize ?? '100m'} inactive=60m use_temp_path=off;
  server {
    listen 127.0.0.1:${port};
    location / {
      proxy_pass ${upstreamUrl};
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_cache bench;
      proxy_cache_valid 200 10m;
      add_header X-Cache $upstream_cache_status;
    }
  }
}
`,
  );
  const proc = spawn(nginx, ['-p', dir, '-c', join(dir, 'nginx.conf'), '-g', 'daemon off;'], {
    stdio: 'ignore',
  });
  const url = `http://127.0.0.1:${port}`;
  for (let i = 0; i < 100; i++) {
    try {
      await fetch(`${url}/`);
      break;
    } catch {
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  return {
    url,
    proc,
    // SIGQUIT: nginx's graceful shutdown, which also stops its worker.
    stop: () => stopProcess(proc, 'SIGQUIT'),
  };
}
