/**
 * The cgroup v1 memory controller as runc 1.1 sets it: limit and memsw limit in the order the kernel accepts,
 * soft limit, OOM killer, swappiness. Kernel memory (memory.kmem.*) and memory.use_hierarchy are ignored, as
 * runc 1.1 ignores them (it warns "Kernel memory settings are ignored and will be removed"; this kernel
 * rejects use_hierarchy=0 and ignores kmem limits anyway).
 */
import { CgroupError } from '../../../config/cgroup-error.js';
import type { CgroupResources } from '../../../config/model.js';
import { hasFile, readCgroupUint, writeCgroupFile } from '../files.js';

const MEM_LIMIT = 'memory.limit_in_bytes';
const MEMSW_LIMIT = 'memory.memsw.limit_in_bytes';

function setMemoryLimit(dir: string, val: bigint): void {
  if (val === 0n) return;
  try {
    writeCgroupFile(dir, MEM_LIMIT, val.toString(), 'memory.limit');
  } catch (e) {
    if (!(e instanceof CgroupError) || e.code !== 'EBUSY') throw e;
    // EBUSY: the new limit is below the current usage.
    const usage = readCgroupUint(dir, 'memory.usage_in_bytes');
    const peak = readCgroupUint(dir, 'memory.max_usage_in_bytes');
    throw new CgroupError(`memory.limit: unable to set memory limit to ${val} (current usage: ${usage}, peak usage: ${peak})`, `${dir}/${MEM_LIMIT}`, 'memory.limit', 'EBUSY');
  }
}

function setSwapLimit(dir: string, val: bigint): void {
  if (val !== 0n) writeCgroupFile(dir, MEMSW_LIMIT, val.toString(), 'memory.swap');
}

/**
 * memory.limit_in_bytes and memory.memsw.limit_in_bytes in the order the kernel accepts (memsw must stay
 * >= limit): swap first when it grows or is unlimited. A limit of -1 with no swap given makes swap -1 too.
 */
function setMemoryAndSwap(dir: string, m: NonNullable<CgroupResources['memory']>): void {
  const limit = m.limit ?? 0n;
  let swap = m.swap ?? 0n;
  if (limit === -1n && swap === 0n && hasFile(dir, MEMSW_LIMIT)) swap = -1n;
  if (limit !== 0n && swap !== 0n) {
    const cur = readCgroupUint(dir, MEM_LIMIT);
    if (swap === -1n || cur < swap) {
      setSwapLimit(dir, swap);
      setMemoryLimit(dir, limit);
      return;
    }
  }
  setMemoryLimit(dir, limit);
  setSwapLimit(dir, swap);
}

/** The memory controller: limit/swap, soft limit, OOM killer, swappiness (runc 1.1's MemoryGroup.Set). */
export function setMemoryV1(dir: string, r: CgroupResources): void {
  const m = r.memory ?? {};
  setMemoryAndSwap(dir, m);
  // kernel / kernelTCP: ignored, as runc 1.1 does.
  if (m.reservation !== undefined && m.reservation !== 0n) writeCgroupFile(dir, 'memory.soft_limit_in_bytes', m.reservation.toString(), 'memory.reservation');
  if (m.disableOOMKiller) writeCgroupFile(dir, 'memory.oom_control', '1', 'memory.disableOOMKiller');
  const sw = m.swappiness;
  if (sw === undefined || sw === -1n) return;
  if (sw < 0n || sw > 100n) {
    throw new CgroupError(`memory.swappiness: invalid memory swappiness value: ${sw} (valid range is 0-100)`, `${dir}/memory.swappiness`, 'memory.swappiness', 'EINVAL');
  }
  writeCgroupFile(dir, 'memory.swappiness', sw.toString(), 'memory.swappiness');
}
