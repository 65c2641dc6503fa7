/**
 * OCI `linux.cgroupsPath` to a directory per hierarchy, as runc's cgroupfs driver resolves it:
 *   - absolute ("/a/b"): under each hierarchy's mount point;
 *   - relative ("a/b"): under this process's own cgroup in each hierarchy (/proc/self/cgroup);
 *   - empty or absent: the container id, relative (runc 1.1.5 on this host puts `runc run x` in
 *     /sys/fs/cgroup/cpu/x, /sys/fs/cgroup/memory/<own memory cgroup>/x, /sys/fs/cgroup/unified/x, ...).
 * The path itself is cleaned and checked by config/cgroups-path.ts (parseCgroupsPath).
 */
import path from 'node:path';
import { ownCgroupDir, UNIFIED, type CgroupLayout } from './layout.js';
import { type CgroupTarget, parseCgroupsPath } from '../../config/cgroups-path.js';
import { CgroupError } from '../../config/cgroup-error.js';

/** v1 hierarchies a container gets a directory in, in runc's subsystem order (plus rdma; name=systemd last). */
export const V1_SUBSYSTEMS: readonly string[] = [
  'cpuset',
  'devices',
  'memory',
  'cpu',
  'cpuacct',
  'pids',
  'blkio',
  'hugetlb',
  'net_cls',
  'net_prio',
  'perf_event',
  'freezer',
  'rdma',
  'name=systemd',
];

/** The directory of `target` in one hierarchy (`key`: a v1 controller or "unified"). */
export function cgroupDir(layout: CgroupLayout, key: string, target: CgroupTarget): string {
  if (target.absolute) {
    const h = key === UNIFIED ? layout.v2 : layout.v1ByController[key];
    if (!h) throw new CgroupError(`the ${key} cgroup hierarchy is not mounted`, key);
    return path.join(h.mountPoint, target.inner);
  }
  return path.join(ownCgroupDir(layout, key), target.inner);
}

/**
 * The directory of the container's cgroup in every hierarchy of the layout: each mounted v1 subsystem runc
 * knows (combined mounts give several keys the same directory) and "unified" for the cgroup2 hierarchy.
 */
export function resolveCgroupPaths(layout: CgroupLayout, id: string, cgroupsPath?: string): Record<string, string> {
  const target = parseCgroupsPath(cgroupsPath, id);
  const out: Record<string, string> = {};
  if (layout.mode !== 'v2') {
    for (const s of V1_SUBSYSTEMS) if (layout.v1ByController[s]) out[s] = cgroupDir(layout, s, target);
  }
  if (layout.v2) out[UNIFIED] = cgroupDir(layout, UNIFIED, target);
  return out;
}
