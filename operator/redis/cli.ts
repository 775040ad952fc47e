/**
 * `tiercache cluster …`: the Redis Cluster manager by hand, like `redis-cli --cluster`.
 * Progress goes to stderr, the summary to stdout (JSON with --json).
 */
import { writeFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { TiercacheError } from '../../lib/errors.ts';
import { parseAddr } from '../../lib/redis/addr.ts';
import type { RedisTls } from '../../lib/redis/tls.ts';
import { DirStore } from '../backup/dir-store.ts';
import { restoreBackup } from '../backup/restore.ts';
import { S3Store } from '../backup/s3-store.ts';
import type { BackupStore } from '../backup/store.ts';
import { takeBackup } from '../backup/take.ts';
import { type CheckResult, checkCluster } from './check.ts';
import { Connections } from './connections.ts';
import { createCluster } from './create.ts';
import { healCluster } from './heal.ts';
import { observe } from './observe.ts';
import {
  addShard,
  DEFAULT_CONCURRENCY,
  fixCluster,
  type ReshardResult,
  rebalance,
  removeShard,
} from './reshard.ts';

export const CLUSTER_USAGE = `Usage: tiercache cluster <command> [options]

Commands:
  create <addr>... [--replicas N]     form a cluster from empty nodes
  check <addr> [--json]               exit 0 healthy, 1 not; says why
  fix <addr>                          close open slots, cover uncovered slots
  heal <addr>... [--spare <addr>...]  re-meet moved nodes, forget dead ones,
                                      give masters without replicas a spare
  add-shard <addr> --master <new> [--replica <new>...] [--no-rebalance]
  remove-shard <addr> --master <addr-of-the-shard's-master>
  rebalance <addr> [--threshold PCT]
  backup <addr> (--dir D | --s3-bucket B) --name N [--cluster C] [--scheduled --keep K]
                                      every shard's RDB, from an in-sync replica,
                                      into D/N (retention: K scheduled backups of C)
  restore <addr> (--dir D | --s3-bucket B) --name N
                                      RESTORE every key of the backup N with its
                                      TTL into the cluster, whatever its shards

Options (every command):
  --user U        the ACL user to sign in as (default: $REDIS_USERNAME, else default)
  --password P    Redis AUTH password (default: $REDIS_PASSWORD)
  --tls           connect over TLS (with --tls-ca-file, --tls-cert-file and
                  --tls-key-file, --tls-server-name as the proxy's REDIS_TLS_*)
  --timeout S     per-command timeout in seconds (default 5)
  --concurrency N slots migrated at once (default 16)
  --engine E      how slots move: auto (Valkey 9's atomic slot migration where
                  every master has it, else MIGRATE) or legacy (always MIGRATE)
  --json          print the result as JSON
  --result-file F (backup, restore) also write the result, or the error, as
                  JSON to F (a Job's termination message: /dev/termination-log)
  --s3-bucket B, --s3-prefix P, --s3-endpoint URL, --s3-region R
                  (backup, restore) backups in an S3-compatible bucket under P
                  instead of a directory; credentials as the AWS SDK finds them
                  (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY)
`;

const OPTIONS = {
  replicas: { type: 'string' },
  replica: { type: 'string', multiple: true },
  spare: { type: 'string', multiple: true },
  master: { type: 'string' },
  'no-rebalance': { type: 'boolean' },
  threshold: { type: 'string' },
  dir: { type: 'string' },
  name: { type: 'string' },
  cluster: { type: 'string' },
  scheduled: { type: 'boolean' },
  keep: { type: 'string' },
  'result-file': { type: 'string' },
  's3-bucket': { type: 'string' },
  's3-prefix': { type: 'string' },
  's3-endpoint': { type: 'string' },
  's3-region': { type: 'string' },
  concurrency: { type: 'string' },
  engine: { type: 'string' },
  user: { type: 'string' },
  password: { type: 'string' },
  tls: { type: 'boolean' },
  'tls-ca-file': { type: 'string' },
  'tls-cert-file': { type: 'string' },
  'tls-key-file': { type: 'string' },
  'tls-server-name': { type: 'string' },
  timeout: { type: 'string' },
  json: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} as const;

function progress(line: string): void {
  process.stderr.write(`${line}\n`);
}

function printCheck(result: CheckResult, json: boolean): void {
  if (json) {
    process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
    return;
  }
  for (const s of result.shards) {
    const replicas =
      s.replicas.map((r) => `${r.addr}${r.failed ? ' (failed)' : ''}`).join(', ') || 'no replicas';
    process.stdout.write(
      `master ${s.addr} ${s.id.slice(0, 8)} slots ${s.slots} (${s.slotCount}) keys ${s.keys ?? '?'} — ${replicas}\n`,
    );
  }
  for (const w of result.warnings) process.stdout.write(`warning: ${w}\n`);
  for (const p of result.problems) process.stdout.write(`problem: ${p}\n`);
  process.stdout.write(result.healthy ? 'cluster is healthy\n' : 'cluster is NOT healthy\n');
}

function need(positionals: string[], command: string): string[] {
  if (positionals.length === 0)
    throw new TiercacheError(
      'BAD_REQUEST',
      `${command} needs the address of a node of the cluster`,
    );
  return positionals;
}

function movedLine(r: ReshardResult): string {
  return `moved ${r.slotsMoved} slots and ${r.keysMoved} keys in ${r.seconds.toFixed(1)} s (${Math.round(r.keysPerSecond)} keys/s)`;
}

function summary(json: boolean | undefined, result: object, line: string): void {
  process.stdout.write(json ? `${JSON.stringify(result, null, 2)}\n` : `${line}\n`);
}

/** --tls and its files: a file option without --tls, or a certificate without its key, is an error. */
function tlsOf(values: {
  tls?: boolean | undefined;
  'tls-ca-file'?: string | undefined;
  'tls-cert-file'?: string | undefined;
  'tls-key-file'?: string | undefined;
  'tls-server-name'?: string | undefined;
}): RedisTls | undefined {
  const given = (['tls-ca-file', 'tls-cert-file', 'tls-key-file', 'tls-server-name'] as const).find(
    (o) => values[o] !== undefined,
  );
  if (!values.tls) {
    if (given) throw new TiercacheError('BAD_REQUEST', `--${given} needs --tls`);
    return undefined;
  }
  if ((values['tls-cert-file'] === undefined) !== (values['tls-key-file'] === undefined))
    throw new TiercacheError('BAD_REQUEST', '--tls-cert-file and --tls-key-file go together');
  return {
    caFile: values['tls-ca-file'],
    certFile: values['tls-cert-file'],
    keyFile: values['tls-key-file'],
    serverName: values['tls-server-name'],
  };
}

/** What the kubelet keeps of a termination message, with room to spare. */
const RESULT_MAX_BYTES = 3500;

/** The result for whoever started the command (the operator, through a termination message). */
async function writeResult(file: string | undefined, result: object): Promise<void> {
  if (!file) return;
  let text = JSON.stringify(result);
  if (Buffer.byteLength(text) > RESULT_MAX_BYTES && 'shards' in result)
    text = JSON.stringify({ ...result, shards: undefined });
  await writeFile(file, text);
}

/** --dir, or --s3-bucket and its options: where backups are (exactly one of the two). */
function backupStore(values: {
  dir?: string | undefined;
  name?: string | undefined;
  's3-bucket'?: string | undefined;
  's3-prefix'?: string | undefined;
  's3-endpoint'?: string | undefined;
  's3-region'?: string | undefined;
}): { store: BackupStore; name: string } {
  if (!values.name) throw new TiercacheError('BAD_REQUEST', 'backup and restore need --name');
  const bucket = values['s3-bucket'];
  if ((values.dir === undefined) === (bucket === undefined))
    throw new TiercacheError('BAD_REQUEST', 'backup and restore need one of --dir and --s3-bucket');
  if (values.dir !== undefined) {
    const s3Option = (['s3-prefix', 's3-endpoint', 's3-region'] as const).find(
      (o) => values[o] !== undefined,
    );
    if (s3Option) throw new TiercacheError('BAD_REQUEST', `--${s3Option} needs --s3-bucket`);
    return { store: new DirStore(values.dir), name: values.name };
  }
  const endpoint = values['s3-endpoint'];
  if (endpoint !== undefined && !/^https?:\/\/[^/]+/.test(endpoint))
    throw new TiercacheError(
      'BAD_REQUEST',
      `--s3-endpoint must be an http(s) URL, not "${endpoint}"`,
    );
  return {
    store: new S3Store({
      bucket: bucket!,
      prefix: values['s3-prefix'] ?? '',
      endpoint,
      region: values['s3-region'],
    }),
    name: values.name,
  };
}

/** Runs a cluster command; resolves to the process exit code. */
export async function runClusterCli(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  const { values, positionals } = parseArgs({
    args: rest,
    options: OPTIONS,
    allowPositionals: true,
  });
  if (!command || values.help || command === 'help') {
    process.stdout.write(CLUSTER_USAGE);
    return command ? 0 : 1;
  }
  const timeoutS = Number(values.timeout ?? 5);
  if (!(timeoutS > 0))
    throw new TiercacheError('BAD_REQUEST', '--timeout must be a positive number of seconds');
  for (const p of positionals) parseAddr(p); // fail early on a malformed address
  const password = values.password ?? process.env.REDIS_PASSWORD;
  const concurrency = Number(values.concurrency ?? DEFAULT_CONCURRENCY);
  if (!Number.isInteger(concurrency) || concurrency < 1) {
    throw new TiercacheError('BAD_REQUEST', '--concurrency must be a whole number ≥ 1');
  }
  const engine = values.engine ?? 'auto';
  if (engine !== 'auto' && engine !== 'legacy')
    throw new TiercacheError('BAD_REQUEST', `--engine must be auto or legacy, not "${engine}"`);
  const conns = new Connections({
    username: values.user ?? (process.env.REDIS_USERNAME || undefined),
    password,
    timeoutMs: timeoutS * 1000,
    tls: tlsOf(values),
  });
  // The first SIGINT or SIGTERM lets the slots in flight finish (none left open) and stops;
  // a second one ends the process at once.
  const stop = new AbortController();
  const onSignal = () => stop.abort();
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  const reshardOpts = {
    concurrency,
    engine,
    log: progress,
    signal: stop.signal,
  } as const;
  try {
    switch (command) {
      case 'create': {
        const replicas = Number(values.replicas ?? 0);
        if (!Number.isInteger(replicas) || replicas < 0)
          throw new TiercacheError('BAD_REQUEST', '--replicas must be a whole number ≥ 0');
        const plan = await createCluster(conns, positionals, { replicas, log: progress });
        if (values.json) process.stdout.write(`${JSON.stringify(plan, null, 2)}\n`);
        else
          process.stdout.write(
            `cluster created: ${plan.masters.length} masters, ${plan.replicas.length} replicas\n`,
          );
        return 0;
      }
      case 'check': {
        if (positionals.length === 0)
          throw new TiercacheError('BAD_REQUEST', 'check needs the address of a node');
        const result = checkCluster(await observe(conns, positionals));
        printCheck(result, values.json ?? false);
        return result.healthy ? 0 : 1;
      }
      case 'fix': {
        const r = await fixCluster(conns, need(positionals, 'fix'), { ...reshardOpts });
        summary(values.json, r, `closed ${r.closed} open slots, covered ${r.covered} slots`);
        return 0;
      }
      case 'heal': {
        const r = await healCluster(conns, need(positionals, 'heal'), {
          spares: values.spare ?? [],
          log: progress,
        });
        summary(
          values.json,
          r,
          `healed: ${r.met} MEETs, forgot ${r.forgotten.length} dead nodes, ${r.replicasAdded.length} new replicas`,
        );
        return 0;
      }
      case 'rebalance': {
        const threshold = Number(values.threshold ?? 2);
        const r = await rebalance(conns, need(positionals, 'rebalance'), {
          ...reshardOpts,
          threshold,
        });
        summary(values.json, r, movedLine(r));
        return 0;
      }
      case 'add-shard': {
        if (!values.master)
          throw new TiercacheError('BAD_REQUEST', 'add-shard needs --master <new node address>');
        const shard = { master: values.master, replicas: values.replica ?? [] };
        const r = await addShard(conns, need(positionals, 'add-shard')[0]!, shard, {
          ...reshardOpts,
          rebalance: !values['no-rebalance'],
        });
        summary(
          values.json,
          r ?? {},
          r ? `shard added; ${movedLine(r)}` : 'shard added (not rebalanced)',
        );
        return 0;
      }
      case 'remove-shard': {
        if (!values.master)
          throw new TiercacheError(
            'BAD_REQUEST',
            "remove-shard needs --master <address of the shard's master>",
          );
        const r = await removeShard(
          conns,
          need(positionals, 'remove-shard')[0]!,
          values.master,
          reshardOpts,
        );
        summary(values.json, r, `shard removed; ${movedLine(r)}`);
        return 0;
      }
      case 'backup': {
        const { store, name } = backupStore(values);
        const keep = values.keep === undefined ? undefined : Number(values.keep);
        if (keep !== undefined && !(Number.isInteger(keep) && keep >= 1))
          throw new TiercacheError('BAD_REQUEST', '--keep must be a whole number ≥ 1');
        const { manifest, pruned } = await takeBackup(conns, need(positionals, 'backup'), {
          store,
          name,
          cluster: values.cluster ?? positionals[0]!,
          scheduled: values.scheduled ?? false,
          keep,
          tls: conns.opts.tls,
          log: progress,
        });
        await writeResult(values['result-file'], {
          keys: manifest.keys,
          bytes: manifest.bytes,
          pruned,
          // Last, and left out when it would not fit a termination message (4 KiB).
          shards: manifest.shards.map(({ rdbVersion: _, ...s }) => s),
        });
        summary(
          values.json,
          { ...manifest, pruned },
          `backup ${name}: ${manifest.keys} keys, ${manifest.bytes} bytes from ${manifest.shards.length} shards${pruned.length > 0 ? `; deleted ${pruned.join(', ')}` : ''}`,
        );
        return 0;
      }
      case 'restore': {
        const { store, name } = backupStore(values);
        const r = await restoreBackup(conns, need(positionals, 'restore'), {
          store,
          name,
          log: progress,
          signal: stop.signal,
        });
        await writeResult(values['result-file'], r);
        summary(
          values.json,
          r,
          `restored ${r.restored} of ${r.total} keys in ${r.seconds.toFixed(1)} s (${r.existing} already there, ${r.expired} expired)`,
        );
        return 0;
      }
      default:
        throw new TiercacheError(
          'BAD_REQUEST',
          `unknown cluster command '${command}'\n\n${CLUSTER_USAGE}`,
        );
    }
  } catch (err) {
    await writeResult(values['result-file'], { error: (err as Error).message });
    throw err;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    conns.close();
  }
}
