/**
 * Cache keys. A key names the upstream and the normalised request (path plus sorted query),
 * so it reads well in /cache/keys and /cache/search, and is the same in every region so
 * replicas share L2. Credentials a client may send are dropped before the key is built, and
 * the server-side API key never enters a request's path or query at this layer.
 */
import { createHash } from 'node:crypto';
import { TiercacheError } from '../../lib/errors.ts';

/** Prefix of every cache entry in Redis; SCAN, clear and search only touch these keys. */
export const ENTRY_PREFIX = 'tc:';
/** Prefix of the short cross-replica fetch leases (kept apart so SCAN of entries skips them). */
export const LEASE_PREFIX = 'tc-lease:';
/** Prefix of the shared upstream back-off deadlines (a 429 seen by one replica holds them all). */
export const BACKOFF_PREFIX = 'tc-backoff:';
/** Prefix of the per-client request counters (RATE_LIMIT_*), shared by every replica. */
export const RATE_PREFIX = 'tc-rate:';
/** Pub/sub channel that carries L1 invalidations to every replica. */
export const BUS_CHANNEL = 'tiercache:invalidate';
/** Counts invalidations, so a replica that missed one on the bus can tell (cache/bus.ts). */
export const CLEAR_GENERATION_KEY = 'tiercache:clear-generation';
/** Every key a proxy reads or writes, as Redis ACL key patterns (the proxies' own ACL user). */
export const PROXY_KEY_PATTERNS = [
  ...[ENTRY_PREFIX, LEASE_PREFIX, BACKOFF_PREFIX, RATE_PREFIX].map((prefix) => `${prefix}*`),
  CLEAR_GENERATION_KEY,
];
/** Every pub/sub channel a proxy uses. */
export const PROXY_CHANNELS = [BUS_CHANNEL];

const MAX_KEY_LENGTH = 1024;

/** Query parameters that carry credentials: never part of a key, a log line or an upstream URL from clients. */
export const SECRET_PARAMS: ReadonlySet<string> = new Set([
  'api_key',
  'apikey',
  'access_token',
  'token',
  'x_cg_pro_api_key',
  'x_cg_demo_api_key',
]);

/**
 * Query parameters that carry a TMDB user's session: a request with one is that user's own
 * (passed through uncached, upstreams/tmdb.ts), and their values are redacted from logs.
 */
export const SESSION_PARAMS: ReadonlySet<string> = new Set([
  'session_id',
  'guest_session_id',
  'request_token',
]);

type Pair = [string, string];

const byNameThenValue = ([a, av]: Pair, [b, bv]: Pair) =>
  a < b ? -1 : a > b ? 1 : av < bv ? -1 : av > bv ? 1 : 0;

/**
 * Sorted, credential-free form of the query: the canonical form keys and upstream URLs use.
 * A query already in that form is returned as it is (callers never mutate it).
 */
export function canonicalQuery(query: URLSearchParams): URLSearchParams {
  if (query.size === 0) return query;
  const pairs: Pair[] = [];
  let canonical = true;
  for (const pair of query) {
    if (SECRET_PARAMS.has(pair[0].toLowerCase())) {
      canonical = false;
      continue;
    }
    if (canonical && pairs.length > 0 && byNameThenValue(pairs[pairs.length - 1]!, pair) > 0)
      canonical = false;
    pairs.push(pair);
  }
  return canonical ? query : new URLSearchParams(pairs.sort(byNameThenValue));
}

/** A request target split at its `?`: the path, and the raw query ('' when there is none). */
export function splitTarget(url: string): [path: string, query: string] {
  const q = url.indexOf('?');
  return q < 0 ? [url, ''] : [url.slice(0, q), url.slice(q + 1)];
}

/** The Redis/L1 key of a request; `canonical` is canonicalQuery's result (built once per request). */
export function cacheKey(upstream: string, path: string, canonical?: URLSearchParams): string {
  const q = canonical ? canonical.toString() : '';
  const key = `${ENTRY_PREFIX}${upstream}:${path}${q ? `?${q}` : ''}`;
  if (key.length <= MAX_KEY_LENGTH) return key;
  const digest = createHash('sha256').update(key).digest('hex');
  return `${key.slice(0, MAX_KEY_LENGTH - 65)}#${digest}`;
}

/** The human part of a key (upstream:path?query), as admin routes show it. */
export function displayKey(key: string): string {
  return key.startsWith(ENTRY_PREFIX) ? key.slice(ENTRY_PREFIX.length) : key;
}

/**
 * The fetch lease of an entry key. It shares the entry's hash slot (`tc-lease:{<key>}`), so one
 * script can look for the entry and take the lease on the same node in one round trip; a key
 * with braces of its own (a raw path could carry them) cannot be wrapped so, and gets
 * `tc-lease:<key>` on whatever slot that hashes to.
 */
export function leaseKey(key: string): string {
  return leaseSharesSlot(key) ? `${LEASE_PREFIX}{${key}}` : LEASE_PREFIX + key;
}

/** Whether `leaseKey(key)` lives in `key`'s hash slot (the key has no braces to change it). */
export function leaseSharesSlot(key: string): boolean {
  return !key.includes('{') && !key.includes('}');
}

/**
 * Checks a client path before it is forwarded: no dot segments, no empty segments, no
 * control characters. A bad path is the client's error (400), never ours.
 */
/** Paths made only of unreserved characters, with no empty, `.` or `..` segment: the common case. */
const PLAIN_PATH = /^(?:\/(?!\.{1,2}(?:\/|$))[A-Za-z0-9_~.-]+)+\/?$/;

export function checkPath(path: string): string {
  if (path.length <= 2048 && PLAIN_PATH.test(path)) return path;
  if (path.length > 2048)
    throw new TiercacheError('BAD_REQUEST', 'path is longer than 2048 characters');
  // biome-ignore lint/suspicious/noControlCharactersInRegex: rejecting control characters is the point
  if (/[\u0000-\u001f\u007f\\]/.test(path))
    throw new TiercacheError('BAD_REQUEST', 'path contains control characters');
  const segments = path.split('/').slice(1);
  for (const segment of segments) {
    let decoded: string;
    try {
      decoded = decodeURIComponent(segment);
    } catch {
      throw new TiercacheError('BAD_REQUEST', 'path has a malformed percent-encoding');
    }
    if (decoded === '.' || decoded === '..')
      throw new TiercacheError('BAD_REQUEST', 'path may not contain . or .. segments');
    if (decoded.includes('/'))
      throw new TiercacheError('BAD_REQUEST', 'path segments may not contain encoded slashes');
  }
  if (segments.slice(0, -1).some((s) => s === ''))
    throw new TiercacheError('BAD_REQUEST', 'path may not contain empty segments');
  return path;
}

/** Escapes Redis glob characters so a search term matches literally inside SCAN MATCH. */
export function globEscape(term: string): string {
  return term.replace(/[*?[\]\\]/g, (c) => `\\${c}`);
}

/** A URL string safe for logs: credential parameters are replaced by `[redacted]`. */
export function redactUrl(url: string): string {
  const q = url.indexOf('?');
  if (q < 0) return url;
  const params = new URLSearchParams(url.slice(q + 1));
  let changed = false;
  for (const name of [...params.keys()]) {
    const lower = name.toLowerCase();
    if (SECRET_PARAMS.has(lower) || SESSION_PARAMS.has(lower)) {
      params.set(name, '[redacted]');
      changed = true;
    }
  }
  return changed ? `${url.slice(0, q)}?${params.toString()}` : url;
}
