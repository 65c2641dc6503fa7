/**
 * The cgroup v1 cpu controller as runc 1.1's CpuGroup.Set: shares (read back and checked), CFS period, quota
 * and burst, idle, then real-time period and runtime, each pair written in the order the kernel accepts.
 */
import { CgroupError } from '../../../config/cgroup-error.js';
import type { CgroupResources } from '../../../config/model.js';
import { readCgroupUint, writeCgroupFile } from '../files.js';

/** Write `file`; on EINVAL return false instead of throwing when `retryLater` (runc's period-before-quota dance). */
function writeOrDefer(dir: string, file: string, value: string, resource: string, retryLater: boolean): boolean {
  try {
    writeCgroupFile(dir, file, value, resource);
    return true;
  } catch (e) {
    if (retryLater && e instanceof CgroupError && e.code === 'EINVAL') return false;
    throw e;
  }
}

/** cpu.rt_period_us / cpu.rt_runtime_us, period first unless the kernel wants the runtime first. */
function setRtSched(dir: string, r: CgroupResources): void {
  const c = r.cpu ?? {};
  const runtime = c.realtimeRuntime ?? 0n;
  let period: string | undefined;
  if (c.realtimePeriod !== undefined && c.realtimePeriod !== 0n) {
    if (!writeOrDefer(dir, 'cpu.rt_period_us', c.realtimePeriod.toString(), 'cpu.realtimePeriod', runtime !== 0n)) period = c.realtimePeriod.toString();
  }
  if (runtime !== 0n) {
    writeCgroupFile(dir, 'cpu.rt_runtime_us', runtime.toString(), 'cpu.realtimeRuntime');
    if (period !== undefined) writeCgroupFile(dir, 'cpu.rt_period_us', period, 'cpu.realtimePeriod');
  }
}

/** The cpu controller: shares (read back and checked), CFS period/quota/burst, idle, then RT (runc's CpuGroup.Set). */
export function setCpuV1(dir: string, r: CgroupResources): void {
  const c = r.cpu ?? {};
  if (c.shares !== undefined && c.shares !== 0n) {
    writeCgroupFile(dir, 'cpu.shares', c.shares.toString(), 'cpu.shares');
    const got = readCgroupUint(dir, 'cpu.shares');
    if (c.shares > got) throw new CgroupError(`cpu.shares: the maximum allowed cpu-shares is ${got}`, `${dir}/cpu.shares`, 'cpu.shares', 'ERANGE');
    if (c.shares < got) throw new CgroupError(`cpu.shares: the minimum allowed cpu-shares is ${got}`, `${dir}/cpu.shares`, 'cpu.shares', 'ERANGE');
  }
  const quota = c.quota ?? 0n;
  let period: string | undefined;
  if (c.period !== undefined && c.period !== 0n) {
    if (!writeOrDefer(dir, 'cpu.cfs_period_us', c.period.toString(), 'cpu.period', quota !== 0n)) period = c.period.toString();
  }
  let burst: string | undefined;
  if (c.burst !== undefined) {
    try {
      if (!writeOrDefer(dir, 'cpu.cfs_burst_us', c.burst.toString(), 'cpu.burst', quota !== 0n)) burst = c.burst.toString();
    } catch (e) {
      // No burst knob (kernel < 5.14): runc ignores a burst of 0 then, and so does cordon.
      if (!(e instanceof CgroupError && e.code === 'ENOENT' && c.burst === 0n)) throw e;
    }
  }
  if (quota !== 0n) {
    writeCgroupFile(dir, 'cpu.cfs_quota_us', quota.toString(), 'cpu.quota');
    if (period !== undefined) writeCgroupFile(dir, 'cpu.cfs_period_us', period, 'cpu.period');
    if (burst !== undefined) writeCgroupFile(dir, 'cpu.cfs_burst_us', burst, 'cpu.burst');
  }
  if (c.idle !== undefined) writeCgroupFile(dir, 'cpu.idle', c.idle.toString(), 'cpu.idle');
  setRtSched(dir, r);
}
