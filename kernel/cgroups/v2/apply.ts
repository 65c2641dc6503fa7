/**
 * Writing CgroupResources to a cgroup v2 directory with runc 1.1's v1→v2 translations (fs2 driver):
 * cpu.weight from shares, cpu.max "quota period", memory.swap.max = swap - limit, io.weight from the blkio
 * weight (or io.bfq.weight as given when BFQ is there), io.max per device, hugetlb.<size>.max, rdma.max,
 * the device controller as an eBPF program, and `unified` files written verbatim. Order as runc: pids,
 * memory, io, cpu, devices, cpuset, hugetlb, rdma, unified.
 */
import fs from 'node:fs';
import { buildDeviceFilter, DEVICE_FILTER_LICENSE } from './device-filter.js';
import { errnoCode, errnoDescription, hasFile, readCgroupUint, readOptionalFile, writeCgroupFile } from '../files.js';
import { attachDeviceProgram, BPF_F_ALLOW_MULTI, detachDeviceProgram, loadDeviceProgram, programFdById, queryDevicePrograms } from './bpf.js';
import { CgroupError } from '../../../config/cgroup-error.js';
import type { BlockDeviceValue, CgroupResources, DeviceRule } from '../../../config/model.js';
import { setCpuset, setRdma } from '../common-controllers.js';

/** runc's ConvertCPUSharesToCgroupV2Value: [2, 262144] → [1, 10000]; 0 stays 0 (unset). */
export function sharesToWeight(shares: bigint): bigint {
  if (shares === 0n) return 0n;
  return 1n + ((shares - 2n) * 9999n) / 262142n;
}

/** runc's ConvertBlkIOToIOWeightValue: [10, 1000] → [1, 10000]; 0 stays 0 (unset). */
export function blkioWeightToIoWeight(weight: number): number {
  if (weight === 0) return 0;
  return 1 + Math.floor(((weight - 10) * 9999) / 990);
}

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

/** Controllers a v2 cgroup directory can use (its cgroup.controllers). */
export function availableControllers(dir: string): Set<string> {
  return new Set((readOptionalFile(dir, 'cgroup.controllers') ?? '').trim().split(/\s+/).filter(Boolean));
}

function need(avail: Set<string>, dir: string, controller: string, resource: string): void {
  if (!avail.has(controller)) {
    throw new CgroupError(
      `${resource}: not supported: the ${controller} controller is not available in ${dir} (cgroup.controllers: ${[...avail].join(' ') || 'none'})`,
      `${dir}/cgroup.controllers`,
      resource,
      'ENOTSUP',
    );
  }
}

/** Apply `r` to the v2 cgroup `dir`. */
export function applyV2(dir: string, r: CgroupResources): void {
  const avail = availableControllers(dir);
  if (r.pids !== undefined) {
    need(avail, dir, 'pids', 'pids.limit');
    const v = r.pids.limit <= 0n ? 'max' : r.pids.limit.toString();
    writeCgroupFile(dir, 'pids.max', v, 'pids.limit');
  }
  const m = r.memory;
  if (m && ((m.limit ?? 0n) !== 0n || (m.reservation ?? 0n) !== 0n || (m.swap ?? 0n) !== 0n)) {
    need(avail, dir, 'memory', 'memory');
    setMemoryV2(dir, m);
  }
  const b = r.blockIO;
  if (b && ((b.weight ?? 0) !== 0 || [b.weightDevice, b.throttleReadBpsDevice, b.throttleWriteBpsDevice, b.throttleReadIOPSDevice, b.throttleWriteIOPSDevice].some((l) => (l?.length ?? 0) > 0))) {
    need(avail, dir, 'io', 'blockIO');
    setIoV2(dir, b);
  }
  const c = r.cpu;
  if (c && (c.realtimeRuntime !== undefined || c.realtimePeriod !== undefined) && ((c.realtimeRuntime ?? 0n) !== 0n || (c.realtimePeriod ?? 0n) !== 0n)) {
    throw new CgroupError('cpu.realtimeRuntime: not supported: cgroup v2 has no real-time group scheduling knobs (cpu.rt_*)', `${dir}/cpu.max`, 'cpu.realtimeRuntime', 'ENOTSUP');
  }
  if (c && (c.idle !== undefined || [c.shares, c.quota, c.period, c.burst].some((v) => v !== undefined && v !== 0n))) need(avail, dir, 'cpu', 'cpu');
  if (c) setCpuV2(dir, c);
  if (r.devices !== undefined) setDevicesV2(dir, r.devices);
  if (c?.cpus || c?.mems) {
    need(avail, dir, 'cpuset', 'cpu.cpus');
    setCpuset(dir, r);
  }
  r.hugepageLimits?.forEach((h, i) => {
    need(avail, dir, 'hugetlb', `hugepageLimits[${i}]`);
    writeCgroupFile(dir, `hugetlb.${h.pageSize}.max`, h.limit.toString(), `hugepageLimits[${i}] (${h.pageSize})`);
  });
  if (r.rdma && Object.keys(r.rdma).length > 0) {
    need(avail, dir, 'rdma', 'rdma');
    setRdma(dir, r.rdma);
  }
  if (r.unified) setUnified(dir, r.unified, avail);
}

function setMemoryV2(dir: string, m: NonNullable<CgroupResources['memory']>): void {
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

/** io.bfq.weight with per-device lines (kernel 5.4+) reads "default N" plus device lines, not a bare number. */
function bfqDeviceWeightSupported(dir: string): boolean {
  const t = readOptionalFile(dir, 'io.bfq.weight');
  return t !== undefined && !/^\s*\d+\s*$/.test(t);
}

const devKey = (d: BlockDeviceValue) => `${d.major}:${d.minor}`;

function setIoV2(dir: string, b: NonNullable<CgroupResources['blockIO']>): void {
  const wantsWeight = (b.weight ?? 0) !== 0 || (b.weightDevice?.length ?? 0) > 0;
  const bfq = wantsWeight && hasFile(dir, 'io.bfq.weight');
  const bfqDevices = bfq && bfqDeviceWeightSupported(dir);
  if (b.weight !== undefined && b.weight !== 0) {
    if (bfq) writeCgroupFile(dir, 'io.bfq.weight', String(b.weight), 'blockIO.weight');
    else writeCgroupFile(dir, 'io.weight', String(blkioWeightToIoWeight(b.weight)), 'blockIO.weight');
  }
  if (bfqDevices) {
    b.weightDevice?.forEach((d, i) => {
      if (d.weight !== undefined && d.weight !== 0) writeCgroupFile(dir, 'io.bfq.weight', `${devKey(d)} ${d.weight}`, `blockIO.weightDevice[${i}]`);
    });
  }
  // One io.max line per device with every limit it has (the kernel keeps keys a line leaves out).
  const lines = new Map<string, string[]>();
  const add = (list: BlockDeviceValue[] | undefined, key: string) => {
    for (const d of list ?? []) {
      if (d.rate === undefined) continue;
      const k = devKey(d);
      if (!lines.has(k)) lines.set(k, []);
      lines.get(k)?.push(`${key}=${d.rate}`);
    }
  };
  add(b.throttleReadBpsDevice, 'rbps');
  add(b.throttleWriteBpsDevice, 'wbps');
  add(b.throttleReadIOPSDevice, 'riops');
  add(b.throttleWriteIOPSDevice, 'wiops');
  for (const [k, parts] of lines) writeCgroupFile(dir, 'io.max', `${k} ${parts.join(' ')}`, `blockIO throttle ${k}`);
}

function setCpuV2(dir: string, c: NonNullable<CgroupResources['cpu']>): void {
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

/**
 * The device rules as an eBPF program attached to the cgroup (BPF_F_ALLOW_MULTI); programs attached before
 * (an earlier apply) are detached afterwards, so the rules are replaced, never stacked.
 */
function setDevicesV2(dir: string, rules: readonly DeviceRule[]): void {
  const prog = buildDeviceFilter(rules);
  let dirFd: number;
  try {
    dirFd = fs.openSync(dir, fs.constants.O_RDONLY | fs.constants.O_DIRECTORY);
  } catch (e) {
    throw new CgroupError(`devices: open ${dir}: ${errnoDescription(e)}`, dir, 'devices', errnoCode(e));
  }
  const fds: number[] = [];
  try {
    const oldFds = queryDevicePrograms(dirFd, dir).map((id) => programFdById(id));
    fds.push(...oldFds);
    const progFd = loadDeviceProgram(prog.bytes, DEVICE_FILTER_LICENSE);
    fds.push(progFd);
    attachDeviceProgram(dirFd, progFd, BPF_F_ALLOW_MULTI, dir);
    for (const fd of oldFds) detachDeviceProgram(dirFd, fd, dir);
  } catch (e) {
    if (e instanceof CgroupError) throw e;
    const msg = e instanceof Error ? e.message : String(e);
    throw new CgroupError(`devices: ${msg}`, dir, 'devices', (e as { code?: string }).code);
  } finally {
    for (const fd of fds) fs.closeSync(fd);
    fs.closeSync(dirFd);
  }
}

/** `unified`: each key a plain file name of the cgroup directory, written as given. */
function setUnified(dir: string, unified: Readonly<Record<string, string>>, avail: Set<string>): void {
  for (const [k, v] of Object.entries(unified)) {
    const res = `unified[${JSON.stringify(k)}]`;
    if (k === '' || k === '.' || k === '..' || k.includes('/') || k.includes('\0')) {
      throw new CgroupError(`${res}: unified resource ${JSON.stringify(k)} must be a file name (no slashes)`, k, res, 'EINVAL');
    }
    try {
      writeCgroupFile(dir, k, v, res);
    } catch (e) {
      if (e instanceof CgroupError && (e.code === 'ENOENT' || e.code === 'EPERM' || e.code === 'EACCES')) {
        const dot = k.indexOf('.');
        if (dot <= 0) throw new CgroupError(`${res}: unified resource ${JSON.stringify(k)} must be in the form CONTROLLER.PARAMETER`, `${dir}/${k}`, res, e.code);
        const ctrl = k.slice(0, dot);
        if (ctrl !== 'cgroup' && !avail.has(ctrl)) {
          throw new CgroupError(`${res}: unified resource ${JSON.stringify(k)} can't be set: controller ${JSON.stringify(ctrl)} not available`, `${dir}/${k}`, res, e.code);
        }
      }
      throw e;
    }
  }
}
