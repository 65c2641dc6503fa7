/**
 * Reading CgroupStats from cgroup v1 controllers, as runc 1.1's cgroupfs driver reads them: cpuacct
 * (usage, per-cpu usage, user/system from cpuacct.stat in USER_HZ ticks → ns), cpu.stat throttling,
 * memory (usage/memsw/kmem/kmem.tcp counters, memory.stat), pids, blkio (the first group of files that
 * has data: BFQ debug, BFQ, CFQ, throttle recursive, throttle), hugetlb per page size.
 */
import path from 'node:path';
import { type BlkioEntry, type CgroupStats, type MemoryEntry } from '../types.js';
import { CgroupError } from '../../../config/cgroup-error.js';
import { hasFile, parseFlatKeyed, readCgroupFile, readCgroupUint, readOptionalFile } from '../files.js';
import { pidsStats } from '../stats.js';
import type { V1Dirs } from './apply.js';

/** USER_HZ: cpuacct.stat counts in 1/100 s on Linux (runc hard-codes it too). */
const CLOCK_TICKS = 100n;
const NS_PER_SEC = 1_000_000_000n;

/** Fill `stats` from every v1 controller in `dirs`; `hugePageSizes` as hugetlb files name them ("2MB"). */
export function statsV1(dirs: V1Dirs, stats: CgroupStats, hugePageSizes: readonly string[]): void {
  if (dirs.cpu) cpuStats(dirs.cpu, stats);
  if (dirs.cpuacct) cpuacctStats(dirs.cpuacct, stats);
  if (dirs.memory) memoryStats(dirs.memory, stats);
  if (dirs.pids) pidsStats(dirs.pids, stats);
  if (dirs.blkio) stats.blkio = blkioStats(dirs.blkio);
  if (dirs.hugetlb) {
    for (const size of hugePageSizes) {
      const d = dirs.hugetlb;
      const p = `hugetlb.${size}`;
      if (!hasFile(d, `${p}.usage_in_bytes`)) continue;
      stats.hugetlb[size] = {
        usage: readCgroupUint(d, `${p}.usage_in_bytes`),
        maxUsage: readCgroupUint(d, `${p}.max_usage_in_bytes`),
        failcnt: readCgroupUint(d, `${p}.failcnt`),
      };
    }
  }
}

function cpuStats(dir: string, stats: CgroupStats): void {
  const t = readOptionalFile(dir, 'cpu.stat');
  if (t === undefined) return;
  const kv = parseFlatKeyed(t);
  stats.cpu.throttling = { periods: kv.nr_periods ?? 0n, throttledPeriods: kv.nr_throttled ?? 0n, throttledTime: kv.throttled_time ?? 0n };
}

function cpuacctStats(dir: string, stats: CgroupStats): void {
  const text = readCgroupFile(dir, 'cpuacct.stat');
  const f = text.trim().split(/\s+/);
  if (f.length < 4 || f[0] !== 'user' || f[2] !== 'system' || !/^\d+$/.test(f[1]) || !/^\d+$/.test(f[3])) {
    throw new CgroupError(`malformed line ${JSON.stringify(text)} in ${path.join(dir, 'cpuacct.stat')}`, path.join(dir, 'cpuacct.stat'));
  }
  stats.cpu.usage.user = (BigInt(f[1]) * NS_PER_SEC) / CLOCK_TICKS;
  stats.cpu.usage.kernel = (BigInt(f[3]) * NS_PER_SEC) / CLOCK_TICKS;
  stats.cpu.usage.total = readCgroupUint(dir, 'cpuacct.usage');
  stats.cpu.usage.percpu = readCgroupFile(dir, 'cpuacct.usage_percpu')
    .trim()
    .split(/\s+/)
    .filter(Boolean)
    .map((v) => BigInt(v));
}

/** usage/max usage/failcnt/limit of memory (name ""), memory.memsw, memory.kmem or memory.kmem.tcp. */
function memoryData(dir: string, name: string): MemoryEntry {
  const m = name ? `memory.${name}` : 'memory';
  if (name && !hasFile(dir, `${m}.usage_in_bytes`)) return { usage: 0n, maxUsage: 0n, failcnt: 0n, limit: 0n };
  return {
    usage: readCgroupUint(dir, `${m}.usage_in_bytes`),
    maxUsage: readCgroupUint(dir, `${m}.max_usage_in_bytes`),
    failcnt: readCgroupUint(dir, `${m}.failcnt`),
    limit: readCgroupUint(dir, `${m}.limit_in_bytes`),
  };
}

function memoryStats(dir: string, stats: CgroupStats): void {
  const t = readOptionalFile(dir, 'memory.stat');
  if (t === undefined) return;
  stats.memory.stats = parseFlatKeyed(t);
  stats.memory.cache = stats.memory.stats.cache ?? 0n;
  stats.memory.rss = stats.memory.stats.rss ?? 0n;
  stats.memory.usage = memoryData(dir, '');
  stats.memory.swap = memoryData(dir, 'memsw');
  stats.memory.kernel = memoryData(dir, 'kmem');
  stats.memory.kernelTCP = memoryData(dir, 'kmem.tcp');
}

/**
 * Lines "8:0 Read 1234" ("Total N" lines skipped) of a blkio file; undefined when the file is missing or
 * has no device line (runc moves on to the next group of files then).
 */
function parseBlkioFile(text: string | undefined, where: string): BlkioEntry[] | undefined {
  if (text === undefined) return undefined;
  const out: BlkioEntry[] = [];
  for (const line of text.split('\n')) {
    const f = line.split(/[ :]+/).filter(Boolean);
    if (f.length === 0) continue;
    if (f.length < 3) {
      if (f.length === 2 && f[0] === 'Total') continue;
      throw new CgroupError(`invalid line found while parsing ${where}: ${line}`, where);
    }
    const op = f.length === 4 ? f[2] : '';
    const value = f.length === 4 ? f[3] : f[2];
    out.push({ major: Number(f[0]), minor: Number(f[1]), op, value: BigInt(value) });
  }
  return out.length > 0 ? out : undefined;
}

type Target = 'serviced' | 'bytes' | null;
const BLKIO_GROUPS: Array<Array<[string, Target]>> = [
  [
    ['blkio.bfq.sectors_recursive', null],
    ['blkio.bfq.io_service_time_recursive', null],
    ['blkio.bfq.io_wait_time_recursive', null],
    ['blkio.bfq.io_merged_recursive', null],
    ['blkio.bfq.io_queued_recursive', null],
    ['blkio.bfq.time_recursive', null],
    ['blkio.bfq.io_serviced_recursive', 'serviced'],
    ['blkio.bfq.io_service_bytes_recursive', 'bytes'],
  ],
  [
    ['blkio.bfq.io_serviced_recursive', 'serviced'],
    ['blkio.bfq.io_service_bytes_recursive', 'bytes'],
  ],
  [
    ['blkio.sectors_recursive', null],
    ['blkio.io_service_time_recursive', null],
    ['blkio.io_wait_time_recursive', null],
    ['blkio.io_merged_recursive', null],
    ['blkio.io_queued_recursive', null],
    ['blkio.time_recursive', null],
    ['blkio.io_serviced_recursive', 'serviced'],
    ['blkio.io_service_bytes_recursive', 'bytes'],
  ],
  [
    ['blkio.throttle.io_serviced_recursive', 'serviced'],
    ['blkio.throttle.io_service_bytes_recursive', 'bytes'],
  ],
  [
    ['blkio.throttle.io_serviced', 'serviced'],
    ['blkio.throttle.io_service_bytes', 'bytes'],
  ],
];

/** blkio counters from the first group of files whose first file has data (runc's ordered groups). */
function blkioStats(dir: string): CgroupStats['blkio'] {
  for (const group of BLKIO_GROUPS) {
    const out: CgroupStats['blkio'] = { ioServiceBytesRecursive: [], ioServicedRecursive: [] };
    for (let i = 0; i < group.length; i++) {
      const [file, target] = group[i];
      const entries = parseBlkioFile(readOptionalFile(dir, file), path.join(dir, file));
      if (entries === undefined) {
        if (i === 0) break;
        return out;
      }
      if (target === 'serviced') out.ioServicedRecursive = entries;
      else if (target === 'bytes') out.ioServiceBytesRecursive = entries;
      if (i === group.length - 1) return out;
    }
  }
  return { ioServiceBytesRecursive: [], ioServicedRecursive: [] };
}
