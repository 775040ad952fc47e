/** Talking to the local API server as the admin, for readiness checks (client certificate over TLS). */
import { readFileSync } from 'node:fs';
import { Agent, request } from 'undici';
import { apiserverUrl } from './layout.ts';
import type { Pki } from './pki.ts';

export function adminAgent(pki: Pki): Agent {
  return new Agent({
    connect: {
      ca: readFileSync(pki.ca.cert),
      cert: readFileSync(pki.clients.admin.cert),
      key: readFileSync(pki.clients.admin.key),
    },
  });
}

/** GET a path of the API server; status and body, or status 0 when it does not answer. */
export async function apiGet(
  agent: Agent,
  path: string,
): Promise<{ status: number; body: string }> {
  try {
    const res = await request(`${apiserverUrl()}${path}`, {
      dispatcher: agent,
      signal: AbortSignal.timeout(5000),
    });
    return { status: res.statusCode, body: await res.body.text() };
  } catch {
    return { status: 0, body: '' };
  }
}

export async function waitUntil(
  what: string,
  check: () => Promise<boolean>,
  timeoutMs: number,
  onTimeout: () => string,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}\n${onTimeout()}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}
