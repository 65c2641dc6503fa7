/**
 * The controllers whose files are the same on cgroup v1 and v2: cpuset (cpuset.cpus, cpuset.mems) and rdma
 * (rdma.max).
 */
import type { CgroupResources } from '../../config/model.js';
import { writeCgroupFile } from './files.js';

/** cpuset.cpus and cpuset.mems (v1 and v2 use the same files). */
export function setCpuset(dir: string, r: CgroupResources): void {
  if (r.cpu?.cpus) writeCgroupFile(dir, 'cpuset.cpus', r.cpu.cpus, 'cpu.cpus');
  if (r.cpu?.mems) writeCgroupFile(dir, 'cpuset.mems', r.cpu.mems, 'cpu.mems');
}

/** rdma.max, one line per device: "mlx5_0 hca_handle=2 hca_object=2000" (v1 and v2). */
export function setRdma(dir: string, rdma: NonNullable<CgroupResources['rdma']>): void {
  for (const [device, lim] of Object.entries(rdma)) {
    let line = device;
    if (lim.hcaHandles !== undefined) line += ` hca_handle=${lim.hcaHandles}`;
    if (lim.hcaObjects !== undefined) line += ` hca_object=${lim.hcaObjects}`;
    writeCgroupFile(dir, 'rdma.max', line, `rdma.${device}`);
  }
}
