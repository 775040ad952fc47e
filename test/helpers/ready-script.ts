/** The Redis pods' readiness probe (READY_SCRIPT) run against local servers, as a kubelet runs it. */
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { READY_SCRIPT } from '../../operator/resources/redis-config.ts';

export class ReadyScript {
  readonly #dir = mkdtempSync(join(tmpdir(), 'tiercache-ready-'));

  constructor() {
    writeFileSync(join(this.#dir, 'ready.sh'), READY_SCRIPT);
  }

  /** Whether the probe passes on `node`; `auth`: the files of the mounted auth Secret, if any. */
  passes(node: { host: string; port: number }, auth: Record<string, string> = {}): boolean {
    const authDir = join(this.#dir, `auth-${Math.random().toString(36).slice(2)}`);
    mkdirSync(authDir);
    for (const [key, value] of Object.entries(auth)) writeFileSync(join(authDir, key), value);
    const r = spawnSync('sh', [join(this.#dir, 'ready.sh')], {
      env: {
        ...process.env,
        READY_HOST: node.host,
        READY_PORT: String(node.port),
        READY_AUTH_DIR: authDir,
      },
      timeout: 5000,
    });
    return r.status === 0;
  }

  remove(): void {
    rmSync(this.#dir, { recursive: true, force: true });
  }
}
