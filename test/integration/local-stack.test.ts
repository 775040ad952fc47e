/** `tiercache up` (npm start): the whole data path on one machine, and nothing left after Ctrl-C. */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { waitFor } from '../helpers/wait.ts';

const CLI = fileURLToPath(new URL('../../bin/tiercache.ts', import.meta.url));

describe('tiercache up', () => {
  it('runs a 6-node cluster, the demo upstream and two regional proxies sharing L2, and stops cleanly', async () => {
    const proc = spawn(process.execPath, [CLI, 'up'], {
      env: { PATH: process.env.PATH },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    proc.stdout.on('data', (d) => {
      out += d;
    });
    proc.stderr.on('data', (d) => {
      out += d;
    });
    try {
      await waitFor('the stack to run', () => out.includes('Ctrl-C stops everything'), 60_000);
      const nodes = /Redis Cluster\s+(\S+(?: \S+){5})/.exec(out)![1]!.split(' ');
      expect(nodes).toHaveLength(6);
      expect(out).toMatch(/DEMO data/);

      const first = await fetch('http://127.0.0.1:6635/3/movie/42');
      expect(first.headers.get('x-cache')).toBe('MISS');
      const other = await fetch('http://127.0.0.1:6636/3/movie/42');
      expect(other.headers.get('x-cache')).toBe('L2');
      const status = await (await fetch('http://127.0.0.1:6636/status')).json();
      expect(status).toMatchObject({ region: 'eu-west-1', l2: 'ok' });
    } finally {
      proc.kill('SIGINT');
      await new Promise((r) => proc.once('exit', r));
    }
    const dir = /data\s+(\S+)\s+\(removed on exit\)/.exec(out)?.[1];
    expect(dir).toMatch(/tiercache-up-/);
    expect(existsSync(dir!)).toBe(false);
    await expect(fetch('http://127.0.0.1:6635/health')).rejects.toThrow();
  }, 90_000);
});
