/**
 * The image users run: built from the unchanged Dockerfile by hack/build-image.sh (buildah,
 * pulls off, local stand-ins for its base images), then run under runc as the chart runs it —
 * uid 65532, read-only root filesystem, no capabilities, no writable directory.
 */
import { existsSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  buildImage,
  DEV_IMAGE,
  imageSize,
  type MountedImage,
  mountImage,
  runContainer,
  startContainer,
} from '../../hack/image/oci-run.ts';
import { REPO } from '../../hack/local-cluster/layout.ts';
import { tcpPortFree } from '../../lib/ports.ts';
import { waitFor } from '../helpers/wait.ts';

let image: MountedImage;

beforeAll(() => {
  // The first build makes the stand-in base images and runs `npm ci`; later ones reuse
  // buildah's cached layers unless package-lock.json changed.
  buildImage();
  image = mountImage(DEV_IMAGE);
  console.log(`image ${DEV_IMAGE}: ${imageSize(DEV_IMAGE)} (buildah images)`);
}, 1_200_000);

afterAll(() => image?.close());

async function freePort(): Promise<number> {
  for (let port = 31000 + Math.floor(Math.random() * 2000); ; port++)
    if (await tcpPortFree(port, '127.0.0.1')) return port;
}

describe('the tiercache image', () => {
  it('runs its CLI as 65532 with no capabilities on a read-only root', async () => {
    const help = await runContainer(image, { args: ['--help'] });
    expect(help).toMatchObject({ code: 0 });
    expect(help.output).toMatch(/Usage: tiercache <command>/);
    expect(help.output).toMatch(/operator\s+run the Kubernetes operator/);

    // What the process is, seen from inside: the image's own node, not the entrypoint's CLI.
    const probe = await runContainer(image, {
      args: [],
      command: [
        '/nodejs/bin/node',
        '-e',
        `const fs = require('node:fs');
         let write = 'written';
         try { fs.writeFileSync('/app/x', 'x') } catch (e) { write = e.code }
         const caps = fs.readFileSync('/proc/self/status', 'utf8').match(/^CapEff:\\s*(\\w+)/m)[1];
         console.log(JSON.stringify({ uid: process.getuid(), gid: process.getgid(), write, caps, node: process.version }));`,
      ],
    });
    expect(probe.code).toBe(0);
    expect(JSON.parse(probe.output)).toEqual({
      uid: 65532,
      gid: 65532,
      write: 'EROFS',
      caps: '0000000000000000',
      node: expect.stringMatching(/^v24\./),
    });
  });

  it('serves the proxy: /health, and a demo movie from the built-in demo upstream', async () => {
    const port = await freePort();
    const proxy = startContainer(image, {
      args: ['proxy'],
      env: [`PORT=${port}`, 'HOST=127.0.0.1'],
    });
    try {
      const url = `http://127.0.0.1:${port}`;
      const health = await waitFor(
        'the proxy in the container to answer /health',
        async () => {
          const res = await fetch(`${url}/health`);
          return res.ok ? res : undefined;
        },
        30_000,
        100,
      );
      expect(health.status).toBe(200);
      const movie = await fetch(`${url}/3/movie/550`);
      expect(movie.status).toBe(200);
      expect(movie.headers.get('x-cache')).toBe('MISS');
      const body = (await movie.json()) as { id: number; title: string };
      expect(body).toMatchObject({ id: 550, title: expect.any(String) });
      const again = await fetch(`${url}/3/movie/550`);
      expect(again.headers.get('x-cache')).toBe('L1');
      expect(await again.json()).toEqual(body);
    } finally {
      await proxy.stop();
    }
    expect(proxy.output()).toMatch(/TMDB_API_KEY is not set/);
  });

  it('exits the operator with a message naming what to do when there is no API server', async () => {
    const unconfigured = await runContainer(image, { args: ['operator'] });
    expect(unconfigured.code).toBe(78);
    expect(unconfigured.output).toMatch(/KUBECONFIG/);

    // A kubeconfig mounted like a Secret's volume, naming a port nothing listens on.
    const port = await freePort();
    const kubeconfig = join(tmpdir(), `tiercache-image-kubeconfig-${process.pid}`);
    writeFileSync(
      kubeconfig,
      JSON.stringify({
        apiVersion: 'v1',
        kind: 'Config',
        clusters: [{ name: 'gone', cluster: { server: `https://127.0.0.1:${port}` } }],
        users: [{ name: 'gone', user: { token: 'not-a-secret' } }],
        contexts: [{ name: 'gone', context: { cluster: 'gone', user: 'gone' } }],
        'current-context': 'gone',
      }),
    );
    try {
      const unreachable = await runContainer(image, {
        args: ['operator'],
        env: ['KUBECONFIG=/etc/tiercache/kubeconfig', 'API_SERVER_TIMEOUT=2'],
        mounts: [{ source: kubeconfig, destination: '/etc/tiercache/kubeconfig' }],
      });
      expect(unreachable.code).toBe(1);
      expect(unreachable.output).toMatch(
        new RegExp(
          `cannot reach the Kubernetes API server at https://127.0.0.1:${port} within 2 s`,
        ),
      );
      expect(unreachable.output).not.toMatch(/not-a-secret/);
    } finally {
      rmSync(kubeconfig, { force: true });
    }
  });

  it('holds the production dependencies and the CLI sources, and nothing else of the checkout', () => {
    // The lockfile marks each package only devDependencies need with dev: true.
    const lock = JSON.parse(readFileSync(join(REPO, 'package-lock.json'), 'utf8')) as {
      packages: Record<string, { dev?: boolean; optional?: boolean }>;
    };
    const packages = Object.entries(lock.packages).filter(([path]) => path !== '');
    const present = (path: string) => existsSync(join(image.rootfs, 'app', path));
    const devPresent = packages.filter(([path, p]) => p.dev && present(path)).map(([path]) => path);
    const prodMissing = packages
      .filter(([path, p]) => !p.dev && !p.optional && !present(path))
      .map(([path]) => path);
    expect(devPresent).toEqual([]);
    expect(prodMissing).toEqual([]);
    expect(packages.filter(([, p]) => p.dev).length).toBeGreaterThan(0);
    expect(readdirSync(join(image.rootfs, 'app')).sort()).toEqual([
      'bin',
      'crds',
      'lib',
      'node_modules',
      'operator',
      'package.json',
      'proxy',
    ]);
  });
});
