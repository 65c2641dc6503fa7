/**
 * runc's `events` wire format: `{"type":"stats","id":...,"data":{...}}` and `{"type":"oom","id":...}`
 * JSON lines, built from cordon's typed CgroupStats plus network interface counters.
 */
import fs from 'node:fs';
import type { BlkioEntry, CgroupStats, MemoryEntry } from '../kernel/index.js';

/** Counters of one network interface (runc's NetworkInterface). */
export interface InterfaceStats {
  name: string;
  rx_bytes: bigint;
  rx_packets: bigint;
  rx_errors: bigint;
  rx_dropped: bigint;
  tx_bytes: bigint;
  tx_packets: bigint;
  tx_errors: bigint;
  tx_dropped: bigint;
}

/** Interface counters of the network namespace `pid` is in (/proc/PID/net/dev), loopback left out as runc does. */
export function interfaceStats(pid: number): InterfaceStats[] {
  let text: string;
  try {
    text = fs.readFileSync(`/proc/${pid}/net/dev`, 'utf8');
  } catch {
    return [];
  }
  const out: InterfaceStats[] = [];
  for (const line of text.split('\n').slice(2)) {
    const m = /^\s*([^:]+):\s*(.*)$/.exec(line);
    if (!m || m[1] === 'lo') continue;
    const v = m[2].trim().split(/\s+/).map((x) => BigInt(x));
    out.push({ name: m[1], rx_bytes: v[0], rx_packets: v[1], rx_errors: v[2], rx_dropped: v[3], tx_bytes: v[8], tx_packets: v[9], tx_errors: v[10], tx_dropped: v[11] });
  }
  return out;
}

const mem = (e: MemoryEntry) => ({ limit: e.limit, usage: e.usage, max: e.maxUsage, failcnt: e.failcnt });
const blk = (xs: BlkioEntry[]) => xs.map((x) => ({ major: x.major, minor: x.minor, op: x.op, value: x.value }));

/** The `data` object of a runc stats event. */
export function runcStats(s: CgroupStats, net: InterfaceStats[]): Record<string, unknown> {
  return {
    cpu: {
      usage: { total: s.cpu.usage.total, percpu: s.cpu.usage.percpu, kernel: s.cpu.usage.kernel, user: s.cpu.usage.user },
      throttling: { periods: s.cpu.throttling.periods, throttledPeriods: s.cpu.throttling.throttledPeriods, throttledTime: s.cpu.throttling.throttledTime },
    },
    memory: {
      cache: s.memory.cache,
      usage: mem(s.memory.usage),
      swap: mem(s.memory.swap),
      kernel: mem(s.memory.kernel),
      kernelTCP: mem(s.memory.kernelTCP),
      raw: s.memory.stats,
    },
    pids: { current: s.pids.current, limit: s.pids.limit },
    blkio: { ioServiceBytesRecursive: blk(s.blkio.ioServiceBytesRecursive), ioServicedRecursive: blk(s.blkio.ioServicedRecursive) },
    hugetlb: Object.fromEntries(Object.entries(s.hugetlb).map(([k, v]) => [k, { usage: v.usage, max: v.maxUsage, failcnt: v.failcnt }])),
    intel_rdt: {},
    network_interfaces: net.length ? net : null,
  };
}

/** JSON with bigints written as plain numbers (Go's uint64). */
export function jsonWithBigints(value: unknown): string {
  return JSON.stringify(value, (_k, v: unknown) => (typeof v === 'bigint' ? `\u0000${v}\u0000` : v)).replace(/"\\u0000(-?\d+)\\u0000"/g, '$1');
}
