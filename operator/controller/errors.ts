/**
 * What a failed call says, in words fit for a condition, an Event and a log line (pure). A
 * Kubernetes API error carries the API server's own message (a quota, an immutable field, a
 * validation rule), never the request or the headers; Redis errors carry Redis's reply.
 */

import { TiercacheError } from '../../lib/errors.ts';

const MAX_CHARS = 600;

interface ApiStatus {
  code?: number;
  reason?: string;
  message?: string;
}

function statusOf(body: unknown): ApiStatus | undefined {
  if (typeof body === 'string') {
    try {
      return statusOf(JSON.parse(body));
    } catch {
      return undefined;
    }
  }
  return body && typeof body === 'object' ? (body as ApiStatus) : undefined;
}

/** A short description of an error: the API server's Status message when there is one. */
export function describeError(err: unknown): string {
  const e = err as { code?: unknown; body?: unknown; message?: unknown } | undefined;
  let text: string;
  if (typeof e?.code === 'number' && e.body !== undefined) {
    const status = statusOf(e.body);
    text = status?.message
      ? `${status.message} (${status.reason ?? e.code})`
      : `the API server answered ${e.code}`;
  } else {
    text = String(e?.message ?? err);
  }
  const line = text.replace(/\s+/g, ' ').trim();
  return line.length > MAX_CHARS ? `${line.slice(0, MAX_CHARS)}…` : line;
}

/** A Redis reply that says the password is wrong or missing. */
export const isAuthError = (message: string): boolean =>
  /WRONGPASS|NOAUTH|invalid (username-)?password|Authentication required/i.test(message);

/**
 * A reconcile that cannot go on yet and is not failing (cert-manager has yet to issue a
 * certificate): the status gives `reason`, a Normal Event says why, and it looks again soon.
 */
export const waitingFor = (reason: string, message: string): TiercacheError =>
  new TiercacheError('NOT_FOUND', message, { waitingReason: reason });

/** The reason a reconcile is waiting (waitingFor), or undefined for any other error. */
export const waitingReason = (err: unknown): string | undefined =>
  err instanceof TiercacheError && typeof err.details?.waitingReason === 'string'
    ? err.details.waitingReason
    : undefined;
