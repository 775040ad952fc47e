/**
 * A real S3-compatible server for the backup tests: versitygw (built from its Go module on
 * first use, hack/local-cluster/binaries.ts) serving a temporary directory on loopback, with
 * SigV4 authentication and one bucket made for the test. `stop()` ends it and removes the data.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CreateBucketCommand, S3Client } from '@aws-sdk/client-s3';
import { ensureBinaries, S3_GROUPS } from '../../hack/local-cluster/binaries.ts';
import { freeRedisPort } from './ports.ts';
import { waitFor } from './wait.ts';

export interface S3Server {
  endpoint: string;
  bucket: string;
  /** The credentials, as the AWS SDK reads them from the environment. */
  env: { AWS_ACCESS_KEY_ID: string; AWS_SECRET_ACCESS_KEY: string };
  stop(): Promise<void>;
}

export async function startS3(bucket = 'backups'): Promise<S3Server> {
  const { versitygw } = ensureBinaries(S3_GROUPS);
  const dir = mkdtempSync(join(tmpdir(), 'tiercache-s3-'));
  const port = await freeRedisPort('127.0.0.1');
  const env = {
    AWS_ACCESS_KEY_ID: 'tiercache-test',
    AWS_SECRET_ACCESS_KEY: 'tiercache-test-secret',
  };
  const proc: ChildProcess = spawn(
    versitygw!,
    [
      '--access',
      env.AWS_ACCESS_KEY_ID,
      '--secret',
      env.AWS_SECRET_ACCESS_KEY,
      '--port',
      `127.0.0.1:${port}`,
      'posix',
      dir,
    ],
    { stdio: 'ignore' },
  );
  const endpoint = `http://127.0.0.1:${port}`;
  const client = new S3Client({
    endpoint,
    region: 'us-east-1',
    forcePathStyle: true,
    credentials: { accessKeyId: env.AWS_ACCESS_KEY_ID, secretAccessKey: env.AWS_SECRET_ACCESS_KEY },
  });
  const stop = async () => {
    client.destroy();
    if (proc.exitCode === null) {
      proc.kill('SIGTERM');
      await new Promise((r) => proc.once('exit', r));
    }
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    await waitFor(
      `versitygw on ${endpoint} to make the bucket ${bucket}`,
      async () => {
        if (proc.exitCode !== null) throw new Error(`versitygw exited with ${proc.exitCode}`);
        await client.send(new CreateBucketCommand({ Bucket: bucket }));
        return true;
      },
      20_000,
      100,
    );
  } catch (err) {
    await stop();
    throw err;
  }
  return { endpoint, bucket, env, stop };
}
