/**
 * TLS to Redis, as the proxy (REDIS_TLS*) and the cluster manager (--tls*) take it: the CA that
 * signed the nodes' certificates, optionally a client certificate (for `tls-auth-clients yes`),
 * and the name the nodes' certificates carry when they are reached by address (a cluster hands
 * out IPs, so one name — e.g. the headless Service's — verifies every node).
 */
import { readFileSync } from 'node:fs';
import type { ConnectionOptions } from 'node:tls';

export interface RedisTls {
  /** PEM bundle of the CAs to trust (default: Node's built-in public CAs). */
  caFile?: string | undefined;
  /** The same, given as text (the operator reads it from a Secret). */
  ca?: string | undefined;
  /** Client certificate and key, both or neither. */
  certFile?: string | undefined;
  keyFile?: string | undefined;
  /** The name to verify every node's certificate against (default: the address dialled). */
  serverName?: string | undefined;
}

/**
 * ioredis's `tls` option. The files are read now: a client made later (a reconnecting proxy
 * replica, the operator's next reconcile) reads renewed ones.
 */
export function tlsConnectOptions(tls: RedisTls): ConnectionOptions {
  return {
    ...(tls.caFile ? { ca: readFileSync(tls.caFile) } : {}),
    ...(tls.ca ? { ca: tls.ca } : {}),
    ...(tls.certFile ? { cert: readFileSync(tls.certFile) } : {}),
    ...(tls.keyFile ? { key: readFileSync(tls.keyFile) } : {}),
    ...(tls.serverName ? { servername: tls.serverName } : {}),
  };
}
