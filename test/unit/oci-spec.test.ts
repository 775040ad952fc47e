import { describe, expect, it } from 'vitest';
import { mergeEnv, parseImageUser, runtimeSpec } from '../../hack/image/oci-spec.ts';

describe('the OCI runtime spec for the tiercache image', () => {
  const image = {
    entrypoint: ['/nodejs/bin/node', '/app/bin/tiercache.ts'],
    env: ['PATH=/usr/bin:/bin', 'SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt'],
    workingDir: '/app',
    user: { uid: 65532, gid: 65532 },
  };

  it('runs as the image user, read-only, with no capabilities and no rlimits', () => {
    const spec = runtimeSpec({ rootfs: '/r', image, args: ['proxy'], env: ['PORT=1'] }) as {
      process: Record<string, unknown>;
      root: unknown;
    };
    expect(spec.process).toMatchObject({
      user: { uid: 65532, gid: 65532 },
      args: ['/nodejs/bin/node', '/app/bin/tiercache.ts', 'proxy'],
      cwd: '/app',
      noNewPrivileges: true,
      capabilities: { bounding: [], effective: [], permitted: [], inheritable: [], ambient: [] },
    });
    expect(spec.process).not.toHaveProperty('rlimits');
    expect(spec.root).toEqual({ path: '/r', readonly: true });
  });

  it('replaces the entrypoint with a command, as a pod does', () => {
    const spec = runtimeSpec({ rootfs: '/r', image, command: ['/nodejs/bin/node'], args: ['-v'] });
    expect((spec.process as { args: string[] }).args).toEqual(['/nodejs/bin/node', '-v']);
  });

  it('lets the run environment override the image environment', () => {
    expect(mergeEnv(['A=1', 'B=2'], ['B=3', 'C=x=y'])).toEqual(['A=1', 'B=3', 'C=x=y']);
  });

  it('reads numeric image users and refuses names it cannot resolve', () => {
    expect(parseImageUser('65532')).toEqual({ uid: 65532, gid: 65532 });
    expect(parseImageUser('65532:1000')).toEqual({ uid: 65532, gid: 1000 });
    expect(() => parseImageUser('nonroot')).toThrow(/not numeric/);
  });
});
