/**
 * One node's RDB snapshot, fetched the way a replica gets one: `SYNC` with the `eof`
 * capability and `rdb-only`, so the node forks, streams the RDB straight from memory (never a
 * live AOF, never a file in the pod) and closes the link when it is sent. A replica answers
 * only while linked to its master (NOMASTERLINK otherwise), so the copy is in sync with the
 * shard. The file's CRC-64 is checked as it streams; nothing is kept on a mismatch.
 */
import { createWriteStream } from 'node:fs';
import { rm } from 'node:fs/promises';
import { connect as netConnect, type Socket } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { TiercacheError } from '../../lib/errors.ts';
import { parseAddr } from '../../lib/redis/addr.ts';
import { Crc64 } from '../../lib/redis/crc64.ts';
import { type RedisTls, tlsConnectOptions } from '../../lib/redis/tls.ts';

export interface SnapshotOptions {
  username?: string | undefined;
  password?: string | undefined;
  tls?: RedisTls | undefined;
  /** Longest silence from the node before giving up (it sends a newline every second while it forks). */
  idleTimeoutMs?: number;
}

export interface Snapshot {
  bytes: number;
}

const EOF_MARK_LENGTH = 40;
const CRC_LENGTH = 8;

function resp(...args: string[]): string {
  return `*${args.length}\r\n${args.map((a) => `$${Buffer.byteLength(a)}\r\n${a}\r\n`).join('')}`;
}

const failed = (addr: string, message: string) =>
  new TiercacheError('L2_UNAVAILABLE', `snapshot of ${addr}: ${message}`, { addr });

/** Streams `addr`'s RDB into `path` (written whole or removed). */
export async function fetchSnapshot(
  addr: string,
  path: string,
  opts: SnapshotOptions = {},
): Promise<Snapshot> {
  const { host, port } = parseAddr(addr);
  const socket: Socket = opts.tls
    ? tlsConnect({ host, port, ...tlsConnectOptions(opts.tls) })
    : netConnect({ host, port });
  const out = createWriteStream(path);
  try {
    const bytes = await receive(socket, out, addr, opts);
    await new Promise<void>((resolve, reject) =>
      out.end((err?: Error | null) => (err ? reject(err) : resolve())),
    );
    return { bytes };
  } catch (err) {
    out.destroy();
    await rm(path, { force: true });
    throw err;
  } finally {
    socket.destroy();
  }
}

function receive(
  socket: Socket,
  out: NodeJS.WritableStream,
  addr: string,
  opts: SnapshotOptions,
): Promise<number> {
  return new Promise<number>((resolve, reject) => {
    // One command at a time: a node refuses SYNC while earlier replies are still unsent.
    const steps: { name: string; command: string }[] = [
      ...(opts.password
        ? [{ name: 'AUTH', command: resp('AUTH', opts.username ?? 'default', opts.password) }]
        : []),
      { name: 'REPLCONF capa', command: resp('REPLCONF', 'capa', 'eof') },
      { name: 'REPLCONF rdb-only', command: resp('REPLCONF', 'rdb-only', '1') },
      { name: 'SYNC', command: resp('SYNC') },
    ];
    const next = () => socket.write(steps[0]!.command);
    let pending = Buffer.alloc(0);
    let mark: Buffer | undefined; // the EOF mark, for a diskless transfer
    let remaining = -1; // bytes still to come, for a transfer with a length
    let held = Buffer.alloc(0); // the tail not yet known to be RDB data rather than mark/CRC
    let written = 0;
    const crc = new Crc64();
    let done = false;
    const finish = (err?: Error, bytes?: number) => {
      if (done) return;
      done = true;
      socket.removeAllListeners('data');
      if (err) reject(err);
      else resolve(bytes!);
    };
    const release = (data: Buffer) => {
      if (data.length === 0) return;
      crc.update(data);
      written += data.length;
      if (!out.write(data)) {
        socket.pause();
        out.once('drain', () => socket.resume());
      }
    };
    const complete = (tail: Buffer) => {
      // tail: the last bytes of the RDB, ending with its 8-byte checksum.
      release(tail.subarray(0, tail.length - CRC_LENGTH));
      const stored = tail.subarray(tail.length - CRC_LENGTH);
      out.write(stored);
      const bytes = written + CRC_LENGTH;
      if (!stored.every((b) => b === 0) && !crc.bytesLE.equals(stored))
        return finish(failed(addr, 'the RDB checksum does not match what was received'));
      finish(undefined, bytes);
    };
    const onPayload = (chunk: Buffer) => {
      if (mark) {
        held = Buffer.concat([held, chunk]);
        if (
          held.length >= EOF_MARK_LENGTH + CRC_LENGTH &&
          held.subarray(-EOF_MARK_LENGTH).equals(mark)
        )
          return complete(held.subarray(0, held.length - EOF_MARK_LENGTH));
        const keep = EOF_MARK_LENGTH + CRC_LENGTH;
        if (held.length > keep) {
          release(held.subarray(0, held.length - keep));
          held = held.subarray(held.length - keep);
        }
        return;
      }
      const mine = chunk.subarray(0, remaining);
      remaining -= mine.length;
      held = Buffer.concat([held, mine]);
      if (remaining === 0) return complete(held);
      if (held.length > CRC_LENGTH) {
        release(held.subarray(0, held.length - CRC_LENGTH));
        held = held.subarray(held.length - CRC_LENGTH);
      }
    };
    socket.on('data', (chunk: Buffer) => {
      if (mark || remaining >= 0) return onPayload(chunk);
      pending = Buffer.concat([pending, chunk]);
      for (;;) {
        // Newlines are the node's keep-alives while it prepares the snapshot.
        while (pending[0] === 0x0a) pending = pending.subarray(1);
        const end = pending.indexOf('\r\n');
        if (end < 0) return;
        const line = pending.subarray(0, end).toString('latin1');
        pending = pending.subarray(end + 2);
        const step = steps[0]!.name;
        if (step !== 'SYNC') {
          // A server before Redis 7 has no rdb-only: it then streams commands after the RDB,
          // which closing the link at the RDB's end ignores.
          if (line.startsWith('-') && step !== 'REPLCONF rdb-only')
            return finish(failed(addr, `${step} refused: ${line.slice(1)}`));
          steps.shift();
          next();
          continue;
        }
        if (line.startsWith('-')) return finish(failed(addr, `SYNC refused: ${line.slice(1)}`));
        if (!line.startsWith('$'))
          return finish(failed(addr, `unexpected reply "${line.slice(0, 80)}"`));
        if (line.startsWith('$EOF:')) mark = Buffer.from(line.slice(5), 'latin1');
        else remaining = Number(line.slice(1));
        const rest = pending;
        pending = Buffer.alloc(0);
        if (rest.length > 0) onPayload(rest);
        return;
      }
    });
    socket.setTimeout(opts.idleTimeoutMs ?? 60_000, () =>
      finish(failed(addr, `no data for ${(opts.idleTimeoutMs ?? 60_000) / 1000} s`)),
    );
    socket.on('error', (err) => finish(failed(addr, err.message)));
    socket.on('close', () =>
      finish(failed(addr, 'the node closed the connection before the RDB ended')),
    );
    socket.once(opts.tls ? 'secureConnect' : 'connect', next);
  });
}
