/**
 * The quarantine with real redis-server processes and the operator's own auth.conf: a master
 * killed and started again empty at its address (what a container restart without persistence
 * does) must not hand its empty dataset to the replica that holds the shard's data. Without the
 * quarantine (the persistent form of auth.conf) the replica does copy it and loses every key:
 * the control case, so the test can fail.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { withDefaults } from '../../operator/api/types.ts';
import { admit } from '../../operator/controller/failover.ts';
import { Connections, parseInfo } from '../../operator/redis/connections.ts';
import { REPLICATION_USER } from '../../operator/resources/names.ts';
import { authConf } from '../../operator/resources/redis-config.ts';
import { freeRedisPort } from '../helpers/ports.ts';
import { waitFor } from '../helpers/wait.ts';

const PASSWORD = 'quarantine-test';
const started: { proc: ChildProcess; dir: string }[] = [];

async function node(dir: string, port: number): Promise<ChildProcess> {
  const proc = spawn(
    'redis-server',
    [
      join(dir, 'auth.conf'),
      '--port',
      String(port),
      '--bind',
      '127.0.0.1',
      '--dir',
      dir,
      '--cluster-enabled',
      'yes',
      '--cluster-config-file',
      `nodes-${port}.conf`,
      '--save',
      '',
      '--appendonly',
      'no',
      '--repl-diskless-sync-delay',
      '0',
    ],
    { stdio: 'ignore' },
  );
  started.push({ proc, dir });
  return proc;
}

const exited = (p: ChildProcess) =>
  p.exitCode !== null || p.signalCode !== null
    ? Promise.resolve()
    : new Promise((r) => p.once('exit', r));

afterEach(async () => {
  const all = started.splice(0);
  for (const { proc } of all) proc.kill('SIGKILL');
  await Promise.all(all.map(({ proc }) => exited(proc)));
  for (const dir of new Set(all.map((x) => x.dir))) rmSync(dir, { recursive: true, force: true });
});

/** A master and its replica with 100 keys, then the master restarted empty at its port. */
async function masterRestartsEmpty(persistence: boolean, replicationUser = false): Promise<number> {
  const redis = withDefaults({
    redis: {
      persistence: { enabled: persistence },
      auth: { users: { replication: replicationUser } },
    },
  }).redis;
  const dir = mkdtempSync(join(tmpdir(), 'tiercache-quarantine-'));
  writeFileSync(join(dir, 'auth.conf'), authConf(redis, [PASSWORD], { replication: 'repl-pw' }));
  const [a, b] = [await freeRedisPort('127.0.0.1'), await freeRedisPort('127.0.0.1')];
  const A = `127.0.0.1:${a}`;
  const B = `127.0.0.1:${b}`;
  const conns = new Connections({ password: PASSWORD, timeoutMs: 2000 });
  try {
    let master = await node(dir, a);
    await node(dir, b);
    const answers = (addr: string) => () =>
      conns.call(addr, 'PING').then(
        () => true,
        () => false,
      );
    await waitFor('both nodes', async () => (await answers(A)()) && (await answers(B)()), 10_000);
    await conns.call(A, 'CLUSTER', 'ADDSLOTSRANGE', 0, 16383);
    await admit(conns, [A]);
    await conns.call(B, 'CLUSTER', 'MEET', '127.0.0.1', a);
    const id = await conns.call<string>(A, 'CLUSTER', 'MYID');
    await waitFor(
      'B to replicate A',
      () =>
        conns.call(B, 'CLUSTER', 'REPLICATE', id).then(
          () => true,
          () => false,
        ),
      10_000,
    );
    await waitFor(
      'the cluster to be ok',
      async () => parseInfo(await conns.call<string>(A, 'CLUSTER', 'INFO')).cluster_state === 'ok',
      10_000,
      50,
    );
    for (let i = 0; i < 100; i++) await conns.call(A, 'SET', `{k}${i}`, 'v');
    await waitFor(
      'B to hold the keys',
      async () => (await conns.call(B, 'DBSIZE')) === 100,
      10_000,
    );

    // The replica signed in as the user the test is about.
    expect(await conns.call<string>(A, 'CLIENT', 'LIST', 'TYPE', 'replica')).toContain(
      ` user=${replicationUser ? REPLICATION_USER : 'default'} `,
    );
    master.kill('SIGKILL');
    await exited(master);
    rmSync(join(dir, `nodes-${a}.conf`), { force: true });
    conns.forget(A);
    master = await node(dir, a);
    await waitFor('A to answer again, empty', answers(A), 10_000);
    // B reconnects to A's address and asks to sync: it is refused (quarantine), or it copies
    // A's empty dataset and its link comes up.
    await waitFor(
      'B to be refused a sync by A, or to have synced from it',
      async () => {
        const stats = parseInfo(await conns.call<string>(A, 'INFO', 'commandstats'));
        const refused = /rejected_calls=[1-9]/.test(`${stats.cmdstat_psync} ${stats.cmdstat_sync}`);
        const r = parseInfo(await conns.call<string>(B, 'INFO', 'replication'));
        return refused || r.master_link_status === 'up';
      },
      15_000,
      50,
    );
    return await conns.call<number>(B, 'DBSIZE');
  } finally {
    conns.close();
  }
}

describe('a master restarted empty at its address', () => {
  it('does not wipe its replica when nodes start quarantined (no persistence, the default)', async () => {
    expect(await masterRestartsEmpty(false)).toBe(100);
  });

  it('does not wipe its replica signed in as the replication user (auth.users.replication)', async () => {
    expect(await masterRestartsEmpty(false, true)).toBe(100);
  });

  it('wipes its replica without the quarantine (the control: why the quarantine exists)', async () => {
    expect(await masterRestartsEmpty(true)).toBe(0);
  });
});
