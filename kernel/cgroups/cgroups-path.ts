/**
 * OCI `linux.cgroupsPath` to a directory per hierarchy, as runc's cgroupfs driver resolves it:
 *   - absolute ("/a/b"): under each hierarchy's mount point;
 *   - relative ("a/b"): under this process's own cgroup in each hierarchy (/proc/self/cgroup);
 *   - empty or absent: the container id, relative (runc 1.1.5 on this host puts `runc run x` in
 *     /sys/fs/cgroup/cpu/x, /sys/fs/cgroup/memory/<own memory cgroup>/x, /sys/fs/cgroup/unified/x, ...);
 *   - "slice:prefix:name" (runc's systemd driver form): rejected, no systemd cgroup driver here.
 * Unlike runc, which silently clamps "..", a path that climbs out of its base is rejected.
 */
import path from 'node:path';
import { ownCgroupDir, UNIFIED, type CgroupLayout } from './layout.js';
import { CgroupError } from './types.js';

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

/** A cleaned cgroupsPath: `inner` has no "." / ".." / empty segments; `absolute` tells which base it hangs under. */
export interface CgroupTarget {
  inner: string;
  absolute: boolean;
}

const FIELD = 'linux.cgroupsPath';

/**
 * Clean and check a cgroupsPath (empty → the container id). Throws a CgroupError for the systemd
 * "slice:prefix:name" form, for a path that climbs out of its base with "..", and for one that names the
 * base itself ("/" or "a/..").
 */
export function parseCgroupsPath(cgroupsPath: string | undefined, id: string): CgroupTarget {
  const raw = cgroupsPath ?? '';
  if (raw.includes('\0')) throw new CgroupError(`${FIELD}: must not contain a NUL byte`, raw, FIELD);
  if (raw === '') {
    if (id === '' || id.includes('/') || id === '.' || id === '..') {
      throw new CgroupError(`${FIELD}: the container id ${JSON.stringify(id)} cannot name a cgroup`, id, FIELD);
    }
    return { inner: id, absolute: false };
  }
  if (!raw.includes('/') && raw.split(':').length === 3) {
    throw new CgroupError(
      `${FIELD}: ${JSON.stringify(raw)} is in the systemd driver's "slice:prefix:name" form; the systemd cgroup driver is not supported (cordon manages cgroupfs directly)`,
      raw,
      FIELD,
    );
  }
  const absolute = raw.startsWith('/');
  const out: string[] = [];
  for (const seg of raw.split('/')) {
    if (seg === '' || seg === '.') continue;
    if (seg === '..') {
      if (out.length === 0) {
        throw new CgroupError(`${FIELD}: ${JSON.stringify(raw)} climbs out of ${absolute ? 'the cgroup hierarchy root' : "the runtime's own cgroup"} with ".."`, raw, FIELD);
      }
      out.pop();
      continue;
    }
    out.push(seg);
  }
  if (out.length === 0) {
    throw new CgroupError(`${FIELD}: ${JSON.stringify(raw)} names ${absolute ? 'the cgroup hierarchy root' : "the runtime's own cgroup"} itself; give the container a cgroup of its own`, raw, FIELD);
  }
  return { inner: out.join('/'), absolute };
}

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
