/**
 * Redis Cluster topology as nodes report it (`CLUSTER NODES`), parsed into plain data.
 * Pure: everything the manager plans is computed from these values.
 */
import { fromRedisAddr } from './addr.ts';

export const SLOTS = 16384;

export interface SlotRange {
  start: number;
  end: number;
}

export interface NodeInfo {
  id: string;
  /** ip:port clients use (`[v6]:port` for IPv6). */
  addr: string;
  busPort: number;
  hostname: string | undefined;
  flags: Set<string>;
  /** For replicas: the id of their master. */
  masterId: string | undefined;
  configEpoch: number;
  connected: boolean;
  slots: SlotRange[];
  /** Slots this node is moving out (MIGRATING) → target id. */
  migrating: Map<number, string>;
  /** Slots this node is taking in (IMPORTING) → source id. */
  importing: Map<number, string>;
}

export function isMaster(n: NodeInfo): boolean {
  return n.flags.has('master');
}

export function isFailed(n: NodeInfo): boolean {
  return n.flags.has('fail') || n.flags.has('noaddr');
}

/** Parses one `CLUSTER NODES` reply. */
export function parseClusterNodes(text: string): NodeInfo[] {
  return text
    .split('\n')
    .map((l) => l.trim())
    .filter(Boolean)
    .map(parseLine);
}

function parseLine(line: string): NodeInfo {
  const [id, address, flags, master, , , epoch, link, ...slotFields] = line.split(' ');
  // ip:port@cport[,hostname]
  const [hostPart, hostname] = address!.split(',');
  const at = hostPart!.lastIndexOf('@');
  const addr = fromRedisAddr(at >= 0 ? hostPart!.slice(0, at) : hostPart!);
  const busPort = at >= 0 ? Number(hostPart!.slice(at + 1)) : 0;
  const node: NodeInfo = {
    id: id!,
    addr,
    busPort,
    hostname: hostname || undefined,
    flags: new Set(flags!.split(',')),
    masterId: master === '-' ? undefined : master,
    configEpoch: Number(epoch),
    connected: link === 'connected',
    slots: [],
    migrating: new Map(),
    importing: new Map(),
  };
  for (const field of slotFields) {
    const open = /^\[(\d+)-([<>])-([0-9a-f]+)\]$/.exec(field);
    if (open) {
      (open[2] === '>' ? node.migrating : node.importing).set(Number(open[1]), open[3]!);
      continue;
    }
    const [a, b] = field.split('-');
    node.slots.push({ start: Number(a), end: Number(b ?? a) });
  }
  return node;
}

export function slotCount(ranges: SlotRange[]): number {
  return ranges.reduce((n, r) => n + r.end - r.start + 1, 0);
}

/** Ranges covering the given slots (sorted, merged). */
export function toRanges(slots: Iterable<number>): SlotRange[] {
  const sorted = [...new Set(slots)].sort((a, b) => a - b);
  const out: SlotRange[] = [];
  for (const s of sorted) {
    const last = out[out.length - 1];
    if (last && last.end === s - 1) last.end = s;
    else out.push({ start: s, end: s });
  }
  return out;
}

export function formatRanges(ranges: SlotRange[]): string {
  return ranges.map((r) => (r.start === r.end ? `${r.start}` : `${r.start}-${r.end}`)).join(',');
}

export function* slotsOf(ranges: SlotRange[]): Generator<number> {
  for (const r of ranges) for (let s = r.start; s <= r.end; s++) yield s;
}

/** `count` contiguous ranges splitting 0..16383 as evenly as possible. */
export function splitSlots(count: number): SlotRange[] {
  const out: SlotRange[] = [];
  for (let i = 0; i < count; i++) {
    out.push({
      start: Math.floor((i * SLOTS) / count),
      end: Math.floor(((i + 1) * SLOTS) / count) - 1,
    });
  }
  return out;
}
