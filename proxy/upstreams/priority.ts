/**
 * Which upstream calls may wait: a background refresh (a stale entry is being served anyway)
 * runs inside `inBackground`, so the HTTP layer can shed it before a call a client waits for.
 * AsyncLocalStorage carries the mark through the fetch without threading a flag everywhere.
 */
import { AsyncLocalStorage } from 'node:async_hooks';

const background = new AsyncLocalStorage<true>();

export function inBackground<T>(fn: () => T): T {
  return background.run(true, fn);
}

export function isBackground(): boolean {
  return background.getStore() === true;
}
