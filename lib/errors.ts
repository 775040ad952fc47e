/**
 * One error vocabulary for the whole project. Every error we raise on purpose is a
 * TiercacheError with a stable `code`; HTTP layers map codes to status codes, the CLI maps
 * them to exit messages. Messages never contain secrets.
 */
export type ErrorCode =
  | 'CONFIG_INVALID'
  | 'BAD_REQUEST'
  | 'UNAUTHORIZED'
  | 'FORBIDDEN'
  | 'NOT_FOUND'
  | 'UPSTREAM_FAILED'
  | 'UPSTREAM_RATE_LIMITED'
  /** This client sent more requests than its limit allows (RATE_LIMIT_*). */
  | 'RATE_LIMITED'
  | 'UPSTREAM_TIMEOUT'
  | 'L2_UNAVAILABLE'
  | 'TIMEOUT'
  /** The Kubernetes API server did not answer (or is not configured) when the operator started. */
  | 'KUBE_API_UNAVAILABLE'
  /** A backup file is damaged, cut short, or written in a form this version cannot read. */
  | 'BACKUP_INVALID'
  /** Work stopped on purpose (the process is shutting down) at a point where nothing is half done. */
  | 'CANCELLED';

const HTTP_STATUS: Record<ErrorCode, number> = {
  CONFIG_INVALID: 500,
  BAD_REQUEST: 400,
  UNAUTHORIZED: 401,
  FORBIDDEN: 403,
  NOT_FOUND: 404,
  UPSTREAM_FAILED: 502,
  UPSTREAM_RATE_LIMITED: 429,
  RATE_LIMITED: 429,
  UPSTREAM_TIMEOUT: 504,
  L2_UNAVAILABLE: 503,
  TIMEOUT: 504,
  KUBE_API_UNAVAILABLE: 503,
  CANCELLED: 503,
  BACKUP_INVALID: 422,
};

export class TiercacheError extends Error {
  readonly code: ErrorCode;
  readonly details: Record<string, unknown> | undefined;

  constructor(
    code: ErrorCode,
    message: string,
    details?: Record<string, unknown>,
    cause?: unknown,
  ) {
    super(message, cause === undefined ? undefined : { cause });
    this.name = 'TiercacheError';
    this.code = code;
    this.details = details;
  }

  get httpStatus(): number {
    return HTTP_STATUS[this.code];
  }
}

/** A configuration value that cannot be used; the message names the variable and what is allowed. */
export class ConfigError extends TiercacheError {
  readonly variable: string;

  constructor(variable: string, problem: string) {
    super('CONFIG_INVALID', `${variable}: ${problem}`, { variable });
    this.name = 'ConfigError';
    this.variable = variable;
  }
}

export function isTiercacheError(err: unknown): err is TiercacheError {
  return err instanceof TiercacheError;
}
