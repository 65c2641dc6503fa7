/**
 * An all-zero CgroupStats that the v1 and v2 readers fill controller by controller (a hybrid host fills
 * one object from both hierarchies).
 */
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
