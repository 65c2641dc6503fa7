/**
 * An all-zero CgroupStats that the v1 and v2 readers fill controller by controller (a hybrid host fills
 * one object from both hierarchies), and the pids figures, whose files are the same on v1 and v2.
 */
import { readCgroupFile, readOptionalFile } from './files.js';
import type { CgroupStats, MemoryEntry } from './types.js';

/** A memory counter with every figure 0. */
function emptyMemoryEntry(): MemoryEntry {
  return { usage: 0n, maxUsage: 0n, failcnt: 0n, limit: 0n };
}

/** Stats with every figure 0 and every list empty. */
export function emptyStats(): CgroupStats {
  return {
    cpu: {
      usage: { total: 0n, percpu: [], user: 0n, kernel: 0n },
      throttling: { periods: 0n, throttledPeriods: 0n, throttledTime: 0n },
    },
    memory: {
      usage: emptyMemoryEntry(),
      swap: emptyMemoryEntry(),
      kernel: emptyMemoryEntry(),
      kernelTCP: emptyMemoryEntry(),
      cache: 0n,
      rss: 0n,
      stats: {},
    },
    pids: { current: 0n, limit: 0n },
    blkio: { ioServiceBytesRecursive: [], ioServicedRecursive: [] },
    hugetlb: {},
  };
}

/** pids.current and pids.max ("max" → 0, no limit), shared by v1 and v2. */
export function pidsStats(dir: string, stats: CgroupStats): void {
  const cur = readOptionalFile(dir, 'pids.current');
  if (cur === undefined) return;
  stats.pids.current = BigInt(cur.trim());
  const max = readCgroupFile(dir, 'pids.max').trim();
  stats.pids.limit = max === 'max' ? 0n : BigInt(max);
}
