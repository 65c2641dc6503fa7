/**
 * The cgroup v2 memory controller with runc 1.1's translations: memory.swap.max is OCI's memory+swap minus
 * the limit; kernel, kernelTCP, swappiness and disableOOMKiller are ignored on v2, as runc does.
 */
import { CgroupError } from '../../../config/cgroup-error.js';
import type { CgroupResources } from '../../../config/model.js';
import { hasFile, readCgroupUint, writeCgroupFile } from '../files.js';

/**
 * runc's ConvertMemorySwapToCgroupV2Value: OCI swap is memory+swap, v2 wants swap alone. -1 limit with no
 * swap means both unlimited; -1 and 0 swap stay as they are; otherwise swap - limit (limit must be set and
 * not above swap).
 */
export function swapToV2(swap: bigint, limit: bigint): bigint {
  if (limit === -1n && swap === 0n) return -1n;
  if (swap === -1n || swap === 0n) return swap;
  if (limit === 0n || limit === -1n) throw new CgroupError('memory.swap: unable to set swap limit without memory limit', 'memory.swap.max', 'memory.swap', 'EINVAL');
  if (limit < 0n) throw new CgroupError(`memory.limit: invalid memory value: ${limit}`, 'memory.max', 'memory.limit', 'EINVAL');
  if (swap < limit) throw new CgroupError('memory.swap: memory+swap limit should be >= memory limit', 'memory.swap.max', 'memory.swap', 'EINVAL');
  return swap - limit;
}

/** 0 → "" (unset), -1 → "max", else the number (runc's numToStr). */
function numToStr(v: bigint): string {
  return v === 0n ? '' : v === -1n ? 'max' : v.toString();
}

/** memory.max, memory.swap.max (swap alone, from OCI's memory+swap) and memory.low, as runc's fs2 setMemory. */
export function setMemoryV2(dir: string, m: NonNullable<CgroupResources['memory']>): void {
  const limit = m.limit ?? 0n;
  if (m.checkBeforeUpdate && limit > 0n && hasFile(dir, 'memory.current')) {
    const usage = readCgroupUint(dir, 'memory.current');
    if (usage >= limit) throw new CgroupError(`memory.limit: rejecting memory limit ${limit} below usage ${usage}`, `${dir}/memory.max`, 'memory.limit', 'EBUSY');
  }
  const swap = swapToV2(m.swap ?? 0n, limit);
  let swapStr = numToStr(swap);
  // memory and swap set to the same value: disable swap.
  if (swapStr === '' && swap === 0n && (m.swap ?? 0n) > 0n) swapStr = '0';
  if (swapStr !== '') {
    try {
      writeCgroupFile(dir, 'memory.swap.max', swapStr, 'memory.swap');
    } catch (e) {
      // No swap accounting: setting "max" or "0" asks for nothing that matters.
      if (!(e instanceof CgroupError && e.code === 'ENOENT' && (swapStr === 'max' || swapStr === '0'))) throw e;
    }
  }
  const max = numToStr(limit);
  if (max !== '') writeCgroupFile(dir, 'memory.max', max, 'memory.limit');
  // kernel / kernelTCP / swappiness / disableOOMKiller: ignored on v2, as runc does.
  const low = numToStr(m.reservation ?? 0n);
  if (low !== '') writeCgroupFile(dir, 'memory.low', low, 'memory.reservation');
}
