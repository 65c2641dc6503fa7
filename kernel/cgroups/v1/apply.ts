/**
 * Writing CgroupResources to cgroup v1 controllers, file by file as runc 1.1's cgroupfs driver does (same
 * files, same order, same special cases), in runc's subsystem order: cpuset, devices, memory, cpu, pids,
 * blkio, hugetlb, net_cls, net_prio, rdma. The larger controllers have a file each (memory.ts, cpu.ts,
 * blkio.ts, devices.ts); pids, hugetlb, net_cls and net_prio are one write each, here.
 */
import { CgroupError } from '../../../config/cgroup-error.js';
import type { CgroupResources } from '../../../config/model.js';
import { setCpuset, setRdma } from '../common-controllers.js';
import { writeCgroupFile } from '../files.js';
import { setBlkioV1 } from './blkio.js';
import { setCpuV1 } from './cpu.js';
import { setDevicesV1 } from './devices.js';
import { setMemoryV1 } from './memory.js';

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

/** pids.max: the limit, or "max" for -1 and 0 (unlimited). */
function setPidsV1(dir: string, limit: bigint): void {
  writeCgroupFile(dir, 'pids.max', limit > 0n ? limit.toString() : 'max', 'pids.limit');
}
