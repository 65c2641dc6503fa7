/**
 * Which cgroup layout the host has, from /proc/self/mountinfo: v1 hierarchies (one per mount, possibly
 * combined like "cpu,cpuacct", or named like "name=systemd"), the cgroup2 hierarchy and the controllers its
 * root offers, and this process's own cgroup per controller (/proc/self/cgroup), which relative
 * `linux.cgroupsPath` values and the default path hang under.
 */
import fs from 'node:fs';
import path from 'node:path';
import { parseMountInfo, type MountInfo } from '../rootfs/mountinfo.js';
import { CgroupError } from '../../config/cgroup-error.js';

/** 'v1': only v1 controllers; 'v2': only the unified hierarchy; 'hybrid': v1 controllers plus cgroup2. */
export type CgroupMode = 'v1' | 'v2' | 'hybrid';

/** The key of the cgroup2 hierarchy in path maps (runc's state.json uses "" for it). */
export const UNIFIED = 'unified';

/** One mounted v1 hierarchy. */
export interface V1Hierarchy {
  /** Controllers of the mount ("cpu", "cpuacct"; "name=systemd" for a named one). */
  controllers: string[];
  /** Where it is mounted (under `root` when a test root is given). */
  mountPoint: string;
  /** The cgroup the mount shows at its mount point (mountinfo's root field; "/" normally). */
  mountRoot: string;
}

/** The cgroup2 hierarchy. */
export interface V2Hierarchy {
  mountPoint: string;
  mountRoot: string;
  /** Controllers its root offers (cgroup.controllers at the mount point). */
  controllers: string[];
}

/** The host's cgroup layout. */
export interface CgroupLayout {
  mode: CgroupMode;
  /** Every v1 hierarchy, in mountinfo order (first mount of each controller set). */
  v1: V1Hierarchy[];
  /** v1 controller (or "name=systemd") → its hierarchy. */
  v1ByController: Readonly<Record<string, V1Hierarchy>>;
  /** The cgroup2 hierarchy, if mounted. */
  v2?: V2Hierarchy;
  /** This process's cgroup per v1 controller and "unified" (paths as /proc/self/cgroup shows them). */
  own: Readonly<Record<string, string>>;
}

/** Inputs for {@link detectLayout}; every field defaults to the running system's. */
export interface LayoutSource {
  /** mountinfo text (default /proc/self/mountinfo). */
  mountinfo?: string;
  /** /proc/self/cgroup text (default the real one). */
  cgroupFile?: string;
  /** Directory every mount point is taken relative to (a fake cgroupfs tree in tests); default "/". */
  root?: string;
}

/** Parse /proc/PID/cgroup: controller (each of "cpu,cpuacct"; "name=systemd"; "unified" for "0::") → path. */
export function parseProcCgroup(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of text.split('\n')) {
    if (!line) continue;
    const a = line.indexOf(':');
    const b = line.indexOf(':', a + 1);
    if (a < 0 || b < 0) continue;
    const ctrls = line.slice(a + 1, b);
    const p = line.slice(b + 1);
    if (line.slice(0, a) === '0' && ctrls === '') out[UNIFIED] = p;
    else for (const c of ctrls.split(',')) if (c) out[c] = p;
  }
  return out;
}

/** v1 controllers from a cgroup mount's super options (drops rw/ro and other mount options). */
function v1Controllers(m: MountInfo): string[] {
  const skip = new Set(['rw', 'ro', 'none', 'noprefix', 'xattr', 'cpuset_v2_mode', 'clone_children', 'favordynmods', 'nofavordynmods']);
  return m.superOptions.filter((o) => !skip.has(o) && !o.startsWith('release_agent='));
}

/** Prefer the conventional mount point when a hierarchy is mounted more than once. */
function preferred(a: MountInfo, b: MountInfo): MountInfo {
  const score = (m: MountInfo) => (m.mountPoint.startsWith('/sys/fs/cgroup') ? 2 : 0) + (m.root === '/' ? 1 : 0);
  return score(b) > score(a) ? b : a;
}

/**
 * Detect the layout from mountinfo (the real one by default). Hybrid means both v1 controllers and a cgroup2
 * mount; a cgroup2 mount next to only named v1 hierarchies (name=systemd) counts as v2.
 */
export function detectLayout(src: LayoutSource = {}): CgroupLayout {
  const root = src.root ?? '/';
  const mounts = parseMountInfo(src.mountinfo ?? fs.readFileSync('/proc/self/mountinfo', 'utf8'));
  const own = parseProcCgroup(src.cgroupFile ?? fs.readFileSync('/proc/self/cgroup', 'utf8'));
  const at = (mp: string) => (root === '/' ? mp : path.join(root, mp));

  const byKey = new Map<string, MountInfo>();
  let v2Mount: MountInfo | undefined;
  for (const m of mounts) {
    if (m.fsType === 'cgroup2') v2Mount = v2Mount ? preferred(v2Mount, m) : m;
    else if (m.fsType === 'cgroup') {
      const key = v1Controllers(m).sort().join(',');
      if (key === '') continue;
      const prev = byKey.get(key);
      byKey.set(key, prev ? preferred(prev, m) : m);
    }
  }
  const v1: V1Hierarchy[] = [];
  const v1ByController: Record<string, V1Hierarchy> = {};
  for (const m of byKey.values()) {
    const h: V1Hierarchy = { controllers: v1Controllers(m), mountPoint: at(m.mountPoint), mountRoot: m.root };
    v1.push(h);
    for (const c of h.controllers) if (!v1ByController[c]) v1ByController[c] = h;
  }
  let v2: V2Hierarchy | undefined;
  if (v2Mount) {
    const mp = at(v2Mount.mountPoint);
    let controllers: string[] = [];
    try {
      controllers = fs.readFileSync(path.join(mp, 'cgroup.controllers'), 'utf8').trim().split(/\s+/).filter(Boolean);
    } catch {
      controllers = [];
    }
    v2 = { mountPoint: mp, mountRoot: v2Mount.root, controllers };
  }
  const hasV1Controllers = v1.some((h) => h.controllers.some((c) => !c.startsWith('name=')));
  let mode: CgroupMode;
  if (hasV1Controllers) mode = v2 ? 'hybrid' : 'v1';
  else if (v2) mode = 'v2';
  else throw new CgroupError('no cgroup hierarchy is mounted (no cgroup or cgroup2 entry in mountinfo)', '/proc/self/mountinfo');
  return { mode, v1, v1ByController, v2, own };
}

let cached: CgroupLayout | undefined;

/** The running system's layout, detected once per process. */
export function hostLayout(): CgroupLayout {
  cached ??= detectLayout();
  return cached;
}

/**
 * This process's own cgroup directory in a hierarchy (runc's GetOwnCgroupPath): the mount point joined with
 * the own path made relative to the mount's root. `key` is a v1 controller or "unified".
 */
export function ownCgroupDir(layout: CgroupLayout, key: string): string {
  const h = key === UNIFIED ? layout.v2 : layout.v1ByController[key];
  if (!h) throw new CgroupError(`the ${key} cgroup hierarchy is not mounted`, key);
  const ownPath = layout.own[key] ?? '/';
  const rel = path.posix.relative(h.mountRoot, ownPath);
  // Outside the mount's root (a cgroup namespace shows "/.." paths): fall back to the mount point itself.
  if (rel.startsWith('..')) return h.mountPoint;
  return path.join(h.mountPoint, rel);
}

/** Huge page sizes of the host as hugetlb file names use them ("2MB", "1GB"), from /sys/kernel/mm/hugepages. */
export function hugePageSizes(dir = '/sys/kernel/mm/hugepages'): string[] {
  let names: string[];
  try {
    names = fs.readdirSync(dir);
  } catch {
    return [];
  }
  const out: string[] = [];
  for (const n of names) {
    const m = /^hugepages-(\d+)kB$/.exec(n);
    if (m) out.push(hugePageName(Number(m[1]) * 1024));
  }
  return out;
}

/** A page size in bytes as the kernel names it in hugetlb files: 2097152 → "2MB" (runc's getHugePageSizeFromFilenames). */
export function hugePageName(bytes: number): string {
  const units = ['B', 'KB', 'MB', 'GB', 'TB', 'PB'];
  let v = bytes;
  let i = 0;
  while (v >= 1024 && v % 1024 === 0 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${v}${units[i]}`;
}
