/**
 * Writing CgroupResources to cgroup v1 controllers, file by file as runc 1.1's cgroupfs driver does (same
 * files, same order, same special cases): cpuset, devices, memory, cpu, pids, blkio, hugetlb, net_cls,
 * net_prio, rdma. Kernel memory (memory.kmem.*) and memory.use_hierarchy are ignored as runc 1.1 ignores
 * them (runc warns "Kernel memory settings are ignored and will be removed"; this kernel rejects
 * use_hierarchy=0 and ignores kmem limits anyway).
 */
import { setCpuset, setRdma } from '../common-controllers.js';
import { DeviceEmulator, DeviceRuleError, deviceRuleString } from '../device-rules.js';
import { hasFile, readCgroupFile, readCgroupUint, writeCgroupFile } from '../files.js';
import { CgroupError } from '../../../config/cgroup-error.js';
import type { BlockDeviceValue, CgroupResources, DeviceRule } from '../../../config/model.js';

/** Controller → directory of the container's cgroup in that v1 hierarchy. */
export type V1Dirs = Readonly<Record<string, string>>;

/** The directory of `controller`, or a CgroupError saying the controller is not mounted. */
export function requireV1(dirs: V1Dirs, controller: string, resource: string): string {
  const d = dirs[controller];
  if (!d) throw new CgroupError(`${resource}: not supported: the ${controller} controller is not mounted`, controller, resource, 'ENOTSUP');
  return d;
}

/** True when the resources ask anything of this v1 controller. */
function wantsV1(r: CgroupResources, controller: string): boolean {
  const c = r.cpu;
  switch (controller) {
    case 'memory':
      return r.memory !== undefined && Object.values(r.memory).some((v) => v !== undefined);
    case 'cpu':
      return c !== undefined && [c.shares, c.quota, c.burst, c.period, c.realtimeRuntime, c.realtimePeriod, c.idle].some((v) => v !== undefined);
    case 'cpuset':
      return c !== undefined && (c.cpus !== undefined || c.mems !== undefined);
    case 'pids':
      return r.pids !== undefined;
    case 'blkio':
      return r.blockIO !== undefined && Object.values(r.blockIO).some((v) => v !== undefined);
    case 'hugetlb':
      return (r.hugepageLimits?.length ?? 0) > 0;
    case 'net_cls':
      return r.network?.classID !== undefined;
    case 'net_prio':
      return (r.network?.priorities?.length ?? 0) > 0;
    case 'devices':
      return r.devices !== undefined;
    case 'rdma':
      return r.rdma !== undefined && Object.keys(r.rdma).length > 0;
    default:
      return false;
  }
}

/** Apply `r` to the v1 controllers in `dirs`, in runc's subsystem order. */
export function applyV1(dirs: V1Dirs, r: CgroupResources): void {
  if (wantsV1(r, 'cpuset')) setCpuset(requireV1(dirs, 'cpuset', 'cpu.cpus'), r);
  if (r.devices !== undefined) setDevicesV1(requireV1(dirs, 'devices', 'devices'), r.devices);
  if (wantsV1(r, 'memory')) setMemoryV1(requireV1(dirs, 'memory', 'memory'), r);
  if (wantsV1(r, 'cpu')) setCpuV1(requireV1(dirs, 'cpu', 'cpu'), r);
  if (r.pids !== undefined) setPidsV1(requireV1(dirs, 'pids', 'pids.limit'), r.pids.limit);
  if (wantsV1(r, 'blkio')) setBlkioV1(requireV1(dirs, 'blkio', 'blockIO'), r);
  r.hugepageLimits?.forEach((h, i) => {
    const dir = requireV1(dirs, 'hugetlb', `hugepageLimits[${i}]`);
    writeCgroupFile(dir, `hugetlb.${h.pageSize}.limit_in_bytes`, h.limit.toString(), `hugepageLimits[${i}] (${h.pageSize})`);
  });
  if (r.network?.classID !== undefined && r.network.classID !== 0) {
    writeCgroupFile(requireV1(dirs, 'net_cls', 'network.classID'), 'net_cls.classid', String(r.network.classID), 'network.classID');
  }
  r.network?.priorities?.forEach((p, i) => {
    const dir = requireV1(dirs, 'net_prio', `network.priorities[${i}]`);
    writeCgroupFile(dir, 'net_prio.ifpriomap', `${p.name} ${p.priority}`, `network.priorities[${i}]`);
  });
  if (wantsV1(r, 'rdma')) setRdma(requireV1(dirs, 'rdma', 'rdma'), r.rdma ?? {});
}

/** The device rules through runc's emulator: minimal transition writes, then a check of devices.list. */
function setDevicesV1(dir: string, rules: readonly DeviceRule[]): void {
  let target: DeviceEmulator;
  let current: DeviceEmulator;
  try {
    target = DeviceEmulator.fromRules(rules);
    current = DeviceEmulator.fromList(readCgroupFile(dir, 'devices.list', 'devices'));
  } catch (e) {
    if (e instanceof DeviceRuleError) throw new CgroupError(`devices: ${e.message}`, `${dir}/devices.list`, 'devices');
    throw e;
  }
  for (const rule of current.transition(target)) {
    writeCgroupFile(dir, rule.allow ? 'devices.allow' : 'devices.deny', deviceRuleString(rule), 'devices');
  }
  const after = DeviceEmulator.fromList(readCgroupFile(dir, 'devices.list', 'devices'));
  if (!target.isBlacklist() && !after.equals(target)) {
    throw new CgroupError("devices: resulting devices cgroup doesn't precisely match target", `${dir}/devices.list`, 'devices');
  }
  if (target.isBlacklist() !== after.isBlacklist()) {
    throw new CgroupError("devices: resulting devices cgroup doesn't match target mode", `${dir}/devices.list`, 'devices');
  }
}

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
function setMemoryV1(dir: string, r: CgroupResources): void {
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
function setCpuV1(dir: string, r: CgroupResources): void {
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

/** pids.max: the limit, or "max" for -1 and 0 (unlimited). */
function setPidsV1(dir: string, limit: bigint): void {
  writeCgroupFile(dir, 'pids.max', limit > 0n ? limit.toString() : 'max', 'pids.limit');
}

const dev = (d: BlockDeviceValue) => `${d.major}:${d.minor}`;

/**
 * blkio: weight files are blkio.weight (CFQ kernels) or else blkio.bfq.weight (BFQ), as runc picks them;
 * leaf weights only exist with CFQ, so asking for one on a BFQ kernel fails naming blkio.leaf_weight.
 */
function setBlkioV1(dir: string, r: CgroupResources): void {
  const b = r.blockIO ?? {};
  const cfq = hasFile(dir, 'blkio.weight');
  const weightFile = cfq ? 'blkio.weight' : 'blkio.bfq.weight';
  const weightDeviceFile = cfq ? 'blkio.weight_device' : 'blkio.bfq.weight_device';
  if (b.weight !== undefined && b.weight !== 0) writeCgroupFile(dir, weightFile, String(b.weight), 'blockIO.weight');
  if (b.leafWeight !== undefined && b.leafWeight !== 0) writeCgroupFile(dir, 'blkio.leaf_weight', String(b.leafWeight), 'blockIO.leafWeight');
  b.weightDevice?.forEach((d, i) => {
    if (d.weight !== undefined && d.weight !== 0) writeCgroupFile(dir, weightDeviceFile, `${dev(d)} ${d.weight}`, `blockIO.weightDevice[${i}].weight`);
    if (d.leafWeight !== undefined && d.leafWeight !== 0) writeCgroupFile(dir, 'blkio.leaf_weight_device', `${dev(d)} ${d.leafWeight}`, `blockIO.weightDevice[${i}].leafWeight`);
  });
  const throttles: Array<[BlockDeviceValue[] | undefined, string, string]> = [
    [b.throttleReadBpsDevice, 'blkio.throttle.read_bps_device', 'throttleReadBpsDevice'],
    [b.throttleWriteBpsDevice, 'blkio.throttle.write_bps_device', 'throttleWriteBpsDevice'],
    [b.throttleReadIOPSDevice, 'blkio.throttle.read_iops_device', 'throttleReadIOPSDevice'],
    [b.throttleWriteIOPSDevice, 'blkio.throttle.write_iops_device', 'throttleWriteIOPSDevice'],
  ];
  for (const [list, file, name] of throttles) {
    list?.forEach((d, i) => writeCgroupFile(dir, file, `${dev(d)} ${d.rate ?? 0n}`, `blockIO.${name}[${i}]`));
  }
}
