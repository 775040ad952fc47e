/**
 * MIGRATE batches sized by bytes as well as keys (pure): a cache holds JSON of a few hundred
 * bytes beside images of several MB, and a batch of 200 keys chosen by count alone could be a
 * single MIGRATE call of hundreds of MB — longer than any deadline, and that much memory on
 * both nodes at once.
 */

/**
 * Splits `keys` (in order) into batches of at most `maxBytes` by `sizes` (bytes per key, same
 * order); a key bigger than `maxBytes` goes alone.
 */
export function batchesByBytes(keys: string[], sizes: number[], maxBytes: number): string[][] {
  const out: string[][] = [];
  let current: string[] = [];
  let bytes = 0;
  keys.forEach((key, i) => {
    const size = sizes[i] ?? 0;
    if (current.length > 0 && bytes + size > maxBytes) {
      out.push(current);
      current = [];
      bytes = 0;
    }
    current.push(key);
    bytes += size;
  });
  if (current.length > 0) out.push(current);
  return out;
}
