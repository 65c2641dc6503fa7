/**
 * Writing CgroupResources to a cgroup v2 directory with runc 1.1's v1→v2 translations (fs2 driver), in runc's
 * order: pids, memory, io, cpu, devices, cpuset, hugetlb, rdma, unified. Each controller that asks for more
 * than one write has a file (memory.ts, io.ts, cpu.ts, devices.ts as an eBPF program, unified.ts); every
 * controller used must be in the directory's cgroup.controllers.
 */
import { CgroupError } from '../../../config/cgroup-error.js';
import type { CgroupResources } from '../../../config/model.js';
import { setCpuset, setRdma } from '../common-controllers.js';
import { readOptionalFile, writeCgroupFile } from '../files.js';
import { setCpuV2 } from './cpu.js';
import { setDevicesV2 } from './devices.js';
import { setIoV2 } from './io.js';
import { setMemoryV2 } from './memory.js';
import { setUnified } from './unified.js';

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
