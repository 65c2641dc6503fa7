/**
 * Reading CgroupStats from a cgroup v2 directory as runc 1.1's fs2 driver does: cpu.stat (µs → ns),
 * memory.current/max/peak, memory.swap.* (reported as memory+swap, like v1's memsw), memory.stat (cache =
 * "file", rss = "anon"), pids, io.stat (rbytes/wbytes → service bytes, rios/wios → serviced, ops
 * "Read"/"Write"), hugetlb.<size>.current and the "max" count of hugetlb.<size>.events as failcnt.
 */
import { parseFlatKeyed, parseNestedKeyed, readCgroupUint, readOptionalFile, UINT64_MAX } from '../files.js';
import { pidsStats } from '../stats.js';
import type { BlkioEntry, CgroupStats, MemoryEntry } from '../types.js';

/** Which groups of figures to read (a hybrid host reads from v2 only what v1 does not have). */
export interface V2StatsScope {
  cpu: boolean;
  memory: boolean;
  pids: boolean;
  io: boolean;
  hugetlb: boolean;
}

/** Fill `stats` from the v2 cgroup `dir` for the groups in `scope`; `hugePageSizes` like "2MB". */
export function statsV2(dir: string, stats: CgroupStats, scope: V2StatsScope, hugePageSizes: readonly string[]): void {
  if (scope.cpu) cpuStats(dir, stats);
  if (scope.memory) memoryStats(dir, stats);
  if (scope.pids) pidsStats(dir, stats);
  if (scope.io) ioStats(dir, stats);
  if (scope.hugetlb) {
    for (const size of hugePageSizes) {
      const cur = readOptionalFile(dir, `hugetlb.${size}.current`);
      if (cur === undefined) continue;
      const events = parseFlatKeyed(readOptionalFile(dir, `hugetlb.${size}.events`) ?? '');
      stats.hugetlb[size] = { usage: BigInt(cur.trim()), maxUsage: 0n, failcnt: events.max ?? 0n };
    }
  }
}

function cpuStats(dir: string, stats: CgroupStats): void {
  const t = readOptionalFile(dir, 'cpu.stat');
  if (t === undefined) return;
  const kv = parseFlatKeyed(t);
  const ns = (k: string) => (kv[k] ?? 0n) * 1000n;
  stats.cpu.usage.total = ns('usage_usec');
  stats.cpu.usage.user = ns('user_usec');
  stats.cpu.usage.kernel = ns('system_usec');
  stats.cpu.throttling = { periods: kv.nr_periods ?? 0n, throttledPeriods: kv.nr_throttled ?? 0n, throttledTime: ns('throttled_usec') };
}

/** memory.<name>.current / .max / .peak (peak: kernel 5.19+, swap peak 6.5+; 0 when absent). */
function memoryData(dir: string, name: string): MemoryEntry | undefined {
  const m = name ? `memory.${name}` : 'memory';
  const cur = readOptionalFile(dir, `${m}.current`);
  if (cur === undefined) return undefined;
  const peak = readOptionalFile(dir, `${m}.peak`);
  return {
    usage: BigInt(cur.trim()),
    maxUsage: peak === undefined ? 0n : BigInt(peak.trim()),
    failcnt: 0n,
    limit: readCgroupUint(dir, `${m}.max`),
  };
}

function memoryStats(dir: string, stats: CgroupStats): void {
  const t = readOptionalFile(dir, 'memory.stat');
  if (t === undefined) return;
  stats.memory.stats = parseFlatKeyed(t);
  stats.memory.cache = stats.memory.stats.file ?? 0n;
  stats.memory.rss = stats.memory.stats.anon ?? 0n;
  const usage = memoryData(dir, '');
  if (usage) stats.memory.usage = usage;
  const swap = memoryData(dir, 'swap');
  if (swap) {
    // v1 reports memory+swap; do the same for compatibility (runc does).
    swap.usage += stats.memory.usage.usage;
    if (swap.limit !== UINT64_MAX) swap.limit += stats.memory.usage.limit;
    stats.memory.swap = swap;
  }
}

function ioStats(dir: string, stats: CgroupStats): void {
  const t = readOptionalFile(dir, 'io.stat');
  if (t === undefined) return;
  const bytes: BlkioEntry[] = [];
  const serviced: BlkioEntry[] = [];
  for (const line of parseNestedKeyed(t)) {
    const d = line.key.split(':');
    if (d.length !== 2 || !/^\d+$/.test(d[0]) || !/^\d+$/.test(d[1])) continue;
    const major = Number(d[0]);
    const minor = Number(d[1]);
    for (const [k, v] of line.fields) {
      if (!/^\d+$/.test(v)) continue;
      const value = BigInt(v);
      if (k === 'rbytes') bytes.push({ major, minor, op: 'Read', value });
      else if (k === 'wbytes') bytes.push({ major, minor, op: 'Write', value });
      else if (k === 'rios') serviced.push({ major, minor, op: 'Read', value });
      else if (k === 'wios') serviced.push({ major, minor, op: 'Write', value });
    }
  }
  stats.blkio = { ioServiceBytesRecursive: bytes, ioServicedRecursive: serviced };
}
