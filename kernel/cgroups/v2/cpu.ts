/**
 * The cgroup v2 cpu controller with runc 1.1's translations: cpu.weight from shares, cpu.max "quota period",
 * cpu.max.burst (retried after cpu.max when the old quota refuses it), cpu.idle.
 */
import { CgroupError } from '../../../config/cgroup-error.js';
import type { CgroupResources } from '../../../config/model.js';
import { writeCgroupFile } from '../files.js';

/** runc's ConvertCPUSharesToCgroupV2Value: [2, 262144] → [1, 10000]; 0 stays 0 (unset). */
export function sharesToWeight(shares: bigint): bigint {
  if (shares === 0n) return 0n;
  return 1n + ((shares - 2n) * 9999n) / 262142n;
}

/** cpu.idle, cpu.weight (from shares), cpu.max "quota period" and cpu.max.burst, as runc's fs2 setCpu. */
export function setCpuV2(dir: string, c: NonNullable<CgroupResources['cpu']>): void {
  if (c.idle !== undefined) writeCgroupFile(dir, 'cpu.idle', c.idle.toString(), 'cpu.idle');
  if (c.shares !== undefined && c.shares !== 0n) writeCgroupFile(dir, 'cpu.weight', sharesToWeight(c.shares).toString(), 'cpu.shares');
  const quota = c.quota ?? 0n;
  const period = c.period ?? 0n;
  let burst: string | undefined;
  if (c.burst !== undefined) {
    try {
      writeCgroupFile(dir, 'cpu.max.burst', c.burst.toString(), 'cpu.burst');
    } catch (e) {
      // Bursting above the current quota is refused until the new quota is in: retry after cpu.max.
      if (!(e instanceof CgroupError && e.code === 'EINVAL' && quota !== 0n)) throw e;
      burst = c.burst.toString();
    }
  }
  if (quota !== 0n || period !== 0n) {
    let v = quota > 0n ? quota.toString() : 'max';
    if (period !== 0n) v += ` ${period}`;
    writeCgroupFile(dir, 'cpu.max', v, 'cpu.quota');
    if (burst !== undefined) writeCgroupFile(dir, 'cpu.max.burst', burst, 'cpu.burst');
  }
}
