/**
 * Typed, validated environment variables. A spec lists each variable once with its parser,
 * default and help text; the same spec drives parsing, `--help` output and the redacted
 * `/config` view, so the three never drift apart.
 */
import { accessSync, constants } from 'node:fs';
import { ConfigError } from './errors.ts';
import { type Addr, formatAddr, matchAddr } from './redis/addr.ts';

export interface EnvVar<T> {
  readonly name: string;
  readonly help: string;
  /** Human-readable allowed values, used in error messages and --help. */
  readonly allowed: string;
  readonly fallback: T;
  readonly secret: boolean;
  parse(raw: string): T;
  /** How a value is shown (--help, /config) when String() would not say it well. */
  format?(value: T): string;
}

interface Common<T> {
  help: string;
  default: T;
  secret?: boolean;
}

function make<T>(
  name: string,
  opts: Common<T>,
  allowed: string,
  parse: (raw: string) => T,
): EnvVar<T> {
  return {
    name,
    help: opts.help,
    allowed,
    fallback: opts.default,
    secret: opts.secret ?? false,
    parse,
  };
}

function fail(name: string, raw: string, allowed: string): never {
  throw new ConfigError(name, `invalid value "${raw}"; allowed: ${allowed}`);
}

export function integer(
  name: string,
  opts: Common<number> & { min: number; max: number },
): EnvVar<number> {
  const allowed = `an integer from ${opts.min} to ${opts.max}`;
  return make(name, opts, allowed, (raw) => {
    const value = Number(raw);
    if (!/^-?\d+$/.test(raw.trim()) || value < opts.min || value > opts.max)
      fail(name, raw, allowed);
    return value;
  });
}

export function decimal(
  name: string,
  opts: Common<number> & { min: number; max: number; unit: string },
): EnvVar<number> {
  const allowed = `a number of ${opts.unit} from ${opts.min} to ${opts.max} (decimals allowed)`;
  return make(name, opts, allowed, (raw) => {
    const value = Number(raw);
    if (raw.trim() === '' || !Number.isFinite(value) || value < opts.min || value > opts.max)
      fail(name, raw, allowed);
    return value;
  });
}

const TRUE = new Set(['1', 'true', 'yes', 'on']);
const FALSE = new Set(['0', 'false', 'no', 'off']);

export function bool<D extends boolean | undefined>(
  name: string,
  opts: Common<D>,
): EnvVar<boolean | D> {
  const allowed = 'true or false (also 1/0, yes/no, on/off)';
  return make<boolean | D>(name, opts, allowed, (raw) => {
    const v = raw.trim().toLowerCase();
    if (TRUE.has(v)) return true;
    if (FALSE.has(v)) return false;
    return fail(name, raw, allowed);
  });
}

export function oneOf<const V extends string>(
  name: string,
  values: readonly V[],
  opts: Common<V>,
): EnvVar<V> {
  const allowed = values.join(', ');
  return make(name, opts, allowed, (raw) => {
    const v = raw.trim() as V;
    if (!values.includes(v)) fail(name, raw, allowed);
    return v;
  });
}

export function text<D extends string | undefined>(
  name: string,
  opts: Common<D>,
): EnvVar<string | D> {
  return make<string | D>(name, opts, 'any non-empty text', (raw) => {
    if (raw.trim() === '') fail(name, raw, 'any non-empty text');
    return raw.trim();
  });
}

/** The path of a file this process can read (checked at start, so a typo stops it there). */
export function readableFile<D extends string | undefined>(
  name: string,
  opts: Common<D>,
): EnvVar<string | D> {
  const allowed = 'the path of a readable file';
  return make<string | D>(name, opts, allowed, (raw) => {
    const path = raw.trim();
    try {
      accessSync(path, constants.R_OK);
    } catch (err) {
      throw new ConfigError(
        name,
        `cannot read "${path}" (${(err as NodeJS.ErrnoException).code}); allowed: ${allowed}`,
      );
    }
    return path;
  });
}

/** Comma-separated Kubernetes names (RFC 1123 labels, e.g. namespaces). */
export function nameList(name: string, opts: Common<string[]>): EnvVar<string[]> {
  const allowed =
    'comma-separated lower-case names of up to 63 letters, digits and "-", e.g. team-a,team-b';
  return make(name, opts, allowed, (raw) => {
    const items = raw
      .split(',')
      .map((s) => s.trim())
      .filter(Boolean);
    for (const item of items)
      if (!/^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/.test(item)) fail(name, item, allowed);
    return [...new Set(items)];
  });
}

export function httpUrl<D extends string | undefined>(
  name: string,
  opts: Common<D>,
): EnvVar<string | D> {
  const allowed = 'an absolute http:// or https:// URL';
  return make<string | D>(name, opts, allowed, (raw) => {
    let url: URL;
    try {
      url = new URL(raw.trim());
    } catch {
      return fail(name, raw, allowed);
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') fail(name, raw, allowed);
    return url.toString().replace(/\/+$/, '');
  });
}

/** Comma-separated `key=value` pairs, each side matching its pattern (e.g. a symbol override table). */
export function pairList(
  name: string,
  opts: Common<Record<string, string>> & { key: RegExp; value: RegExp; example: string },
): EnvVar<Record<string, string>> {
  const allowed = `comma-separated key=value pairs, e.g. ${opts.example}`;
  return make(name, opts, allowed, (raw) => {
    const out: Record<string, string> = {};
    for (const item of raw.split(',').map((s) => s.trim())) {
      if (item === '') continue;
      const [key, value, ...more] = item.split('=').map((s) => s.trim());
      if (more.length > 0 || !key || !value || !opts.key.test(key) || !opts.value.test(value))
        fail(name, item, allowed);
      out[key] = value;
    }
    return out;
  });
}

/**
 * Browser origins allowed to read answers: `*` (any), `none`, or a comma-separated list of
 * origins such as https://app.example.com,http://localhost:3000.
 */
export function originList(name: string, opts: Common<'*' | 'none' | string[]>) {
  const allowed = '*, none, or comma-separated origins, e.g. https://app.example.com';
  return make<'*' | 'none' | string[]>(name, opts, allowed, (raw) => {
    const value = raw.trim();
    if (value === '*' || value === 'none') return value;
    return value
      .split(',')
      .map((s) => s.trim())
      .filter(Boolean)
      .map((origin) => {
        let url: URL;
        try {
          url = new URL(origin);
        } catch {
          return fail(name, origin, allowed);
        }
        if (!/^https?:$/.test(url.protocol) || url.origin !== origin.replace(/\/$/, ''))
          fail(name, origin, allowed);
        return url.origin;
      });
  });
}

/** At most `max` requests per `windowMs`. */
export interface RatePerWindow {
  max: number;
  windowMs: number;
}

const WINDOW_MS = { s: 1000, m: 60_000, h: 3_600_000 } as const;

/** A request rate such as `600/1m`, `20/s` or `5000/1h`; `off` for no limit. */
export function ratePerWindow(name: string, opts: Common<RatePerWindow | 'off'>) {
  const allowed = 'off, or requests/window such as 600/1m, 20/s, 5000/1h';
  const v = make<RatePerWindow | 'off'>(name, opts, allowed, (raw) => {
    const value = raw.trim();
    if (value === 'off') return 'off';
    const m = /^(\d{1,9})\/(\d{0,6})(s|m|h)$/.exec(value);
    const max = Number(m?.[1]);
    const windowMs = Number(m?.[2] || 1) * WINDOW_MS[(m?.[3] ?? 's') as keyof typeof WINDOW_MS];
    if (!m || max < 1 || windowMs < 1000) fail(name, raw, allowed);
    return { max, windowMs };
  });
  return {
    ...v,
    format: (r: RatePerWindow | 'off') => (r === 'off' ? 'off' : `${r.max}/${r.windowMs / 1000}s`),
  } as EnvVar<RatePerWindow | 'off'>;
}

export type HostPort = Addr;

/** Comma-separated host:port list, as in the seed's REDIS_CLUSTER_NODES. */
export function hostPortList(name: string, opts: Common<HostPort[]>): EnvVar<HostPort[]> {
  const allowed = 'comma-separated host:port pairs, e.g. redis1:6379,[fd00::5]:6379';
  return make(name, opts, allowed, (raw) => {
    const items = raw
      .split(',')
      .map((s) => s.trim())
      .filter(Boolean);
    if (items.length === 0) fail(name, raw, allowed);
    return items.map((item) => matchAddr(item) ?? fail(name, item, allowed));
  });
}

export type Spec = Record<string, EnvVar<unknown>>;
export type Values<S extends Spec> = { [K in keyof S]: S[K] extends EnvVar<infer T> ? T : never };

/** Parses every variable of `spec` from `env`; the first bad value throws a ConfigError naming it. */
export function readEnv<S extends Spec>(spec: S, env: NodeJS.ProcessEnv): Values<S> {
  const out: Record<string, unknown> = {};
  for (const [key, v] of Object.entries(spec)) {
    const raw = env[v.name];
    out[key] = raw === undefined || raw === '' ? v.fallback : v.parse(raw);
  }
  return out as Values<S>;
}

export function formatValue(v: EnvVar<unknown>, value: unknown): string {
  if (v.secret) return value === undefined ? '(unset)' : '(set, redacted)';
  if (v.format) return v.format(value);
  if (value === undefined) return '(unset)';
  if (Array.isArray(value))
    return value.map((x) => (typeof x === 'object' ? formatAddr(x) : String(x))).join(',');
  if (typeof value === 'object')
    return Object.entries(value as Record<string, unknown>)
      .map(([k, x]) => `${k}=${String(x)}`)
      .join(',');
  return String(value);
}

/** One block per variable, for `--help`. */
export function formatHelp(spec: Spec): string {
  return Object.values(spec)
    .map(
      (v) =>
        `  ${v.name}\n      ${v.help}\n      allowed: ${v.allowed}; default: ${formatValue({ ...v, secret: false }, v.fallback)}`,
    )
    .join('\n');
}
