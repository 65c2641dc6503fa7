/**
 * The container's filesystem, as child steps in libcontainer's order: root propagation, the rootfs bind,
 * every mount (targets opened with openat2(RESOLVE_IN_ROOT) and mounted through /proc/self/fd, so no
 * symlink can redirect a mount out of the rootfs), /dev (dev.ts), pivot_root or MS_MOVE + chroot
 * (pivot-root.ts), then the read-only root, readonly paths and masked paths.
 */
import path from 'node:path';
import { type FdRef } from '../spawn/spawn-plan.js';
import { ChildSteps } from '../spawn/child-steps.js';
import { MS } from '../../config/linux/mount-flags.js';
import { O, RESOLVE } from '../sys/flags.js';
import { type MountInfo, isShared, lockedFlags, mountContaining } from './mountinfo.js';
import type { ContainerSetup, MountSetup } from '../../config/model.js';
import { ERRNO } from '../sys/numbers.js';
import { needsDevSetup, setupDev } from './dev.js';
import { moveRoot, pivotRoot } from './pivot-root.js';
import { resolveInRoot } from './root-path.js';

const IN_ROOT = RESOLVE.IN_ROOT | RESOLVE.NO_MAGICLINKS;
const ATIME = MS.NOATIME | MS.NODIRATIME | MS.RELATIME | MS.STRICTATIME;
const LOCKABLE = MS.NOSUID | MS.NODEV | MS.NOEXEC | MS.RDONLY;

/** Facts about the host the rootfs steps depend on. */
export interface HostMounts {
  /** Host mount table (the parent's view; the child starts with a copy). */
  mounts: MountInfo[];
}

/** A mount in the order it is made, with the config field it came from. */
interface PlannedMount extends MountSetup {
  field: string;
}


const DEV_TMPFS: MountSetup = { destination: '/dev', type: 'tmpfs', source: 'tmpfs', flags: MS.NOSUID | MS.STRICTATIME, clearedFlags: 0, propagationFlags: [], data: 'mode=755,size=65536k' };
const DEV_PTS: MountSetup = { destination: '/dev/pts', type: 'devpts', source: 'devpts', flags: MS.NOSUID | MS.NOEXEC, clearedFlags: 0, propagationFlags: [], data: 'newinstance,ptmxmode=0666,mode=0620,gid=5' };
const DEV_SHM: MountSetup = { destination: '/dev/shm', type: 'tmpfs', source: 'shm', flags: MS.NOSUID | MS.NOEXEC | MS.NODEV, clearedFlags: 0, propagationFlags: [], data: 'mode=1777,size=65536k' };

const under = (p: string, dir: string) => dir === '/' || p === dir || p.startsWith(dir + '/');
const isBind = (m: MountSetup) => (m.flags & MS.BIND) !== 0;

/** The config's mounts plus the default /dev, /dev/pts and /dev/shm where the config has none. */
export function plannedMounts(setup: ContainerSetup): PlannedMount[] {
  const out: PlannedMount[] = setup.mounts.map((m, i) => ({ ...m, field: `mounts[${i}]` }));
  const has = (d: string) => out.some((m) => m.destination === d);
  const dev = out.find((m) => m.destination === '/dev');
  if (dev && isBind(dev)) return out;
  const firstUnderDev = () => {
    const i = out.findIndex((m) => m.destination.startsWith('/dev/'));
    return i < 0 ? out.length : i;
  };
  if (!dev) out.splice(firstUnderDev(), 0, { ...DEV_TMPFS, field: 'default /dev' });
  const devAt = out.findIndex((m) => m.destination === '/dev');
  if (!has('/dev/pts')) out.splice(devAt + 1, 0, { ...DEV_PTS, field: 'default /dev/pts' });
  if (!has('/dev/shm')) out.splice(devAt + 2, 0, { ...DEV_SHM, field: 'default /dev/shm' });
  return out;
}


/** Options of the rootfs steps. */
export interface RootfsOptions {
  setup: ContainerSetup;
  host: HostMounts;
  /** The container has its own (new or joined) user namespace: device nodes are bind-mounted, not mknod'ed. */
  userns: boolean;
  /** The container has a new cgroup namespace (cgroup filesystems can be mounted fresh). */
  cgroupns: boolean;
  /** Steps to add after the mounts, before pivot_root (the hooks gate). */
  beforePivot?: () => void;
}

/** Steps up to and including pivot_root. Returns the planned mounts (for flag lookups after pivot). */
export function mountRootfs(s: ChildSteps, o: RootfsOptions): PlannedMount[] {
  const { setup, host } = o;
  const rootfs = setup.rootfs;
  s.call('umask', [0], { check: 'none' });
  s.call('mount', [null, '/', null, setup.rootPropagation, null], { label: `mount("", "/", "", ${propagationName(setup.rootPropagation)})`, field: 'linux.rootfsPropagation' });
  const parent = mountContaining(path.dirname(rootfs), host.mounts);
  if (parent && (setup.rootPropagation & MS.SHARED || isShared(parent))) {
    // pivot_root refuses a shared parent mount: make it private in this namespace only.
    s.call('mount', [null, parent.mountPoint, null, MS.PRIVATE, null], { check: 'report', tolerate: [ERRNO.ENOENT], label: `mount("", ${JSON.stringify(parent.mountPoint)}, MS_PRIVATE)`, field: 'root.path' });
  }
  s.call('mount', [rootfs, rootfs, null, MS.BIND | MS.REC, null], { label: `mount(${JSON.stringify(rootfs)}, ${JSON.stringify(rootfs)}, MS_BIND|MS_REC)`, field: 'root.path' });
  const root = s.openPath(rootfs, O.PATH | O.DIRECTORY, { field: 'root.path', label: `open(${JSON.stringify(rootfs)}, O_PATH|O_DIRECTORY)` });
  const mounts = plannedMounts(setup);
  for (const m of mounts) {
    // A destination through an absolute symlink (/mnt -> /srv/x) resolves inside the rootfs (/srv/x there):
    // create that path first, as runc's MkdirAll of the securejoin'ed path does.
    const inRoot = resolvedDestination(rootfs, m.destination);
    if (inRoot !== m.destination) s.mkdirAll(root, inRoot, { asFile: m.sourceIsFile });
    if (m.type === 'cgroup') mountCgroup(s, root, m, o);
    else mountOne(s, root, m, host.mounts);
  }
  if (needsDevSetup(setup.mounts)) setupDev(s, root, setup, o.userns, mounts);
  if (setup.process.cwd !== '/') s.mkdirAll(root, setup.process.cwd);
  o.beforePivot?.();
  if (setup.noPivotRoot) moveRoot(s, root, rootfs);
  else pivotRoot(s, root, rootfs);
  s.close(root);
  // Only shared and unbindable need re-applying on the new "/" (runc applies no flags after pivot_root when
  // rootfsPropagation is absent). Re-applying (r)slave would only demote the config's own rshared/shared bind
  // mounts to slaves: "/" was made (r)slave before any container mount already.
  if ((setup.rootPropagation & (MS.SHARED | MS.UNBINDABLE)) !== 0) {
    s.mountPath(null, '/', null, setup.rootPropagation, null, { field: 'linux.rootfsPropagation', label: `mount("", "/", "", ${propagationName(setup.rootPropagation)}) after pivot_root` });
  }
  return mounts;
}

/** Container path a destination resolves to through the rootfs's symlinks (itself when there are none, or on a loop). */
function resolvedDestination(rootfs: string, destination: string): string {
  try {
    const r = resolveInRoot(rootfs, destination);
    return r.hops.length ? r.containerPath : destination;
  } catch {
    return destination;
  }
}

function propagationName(f: number): string {
  const base = f & MS.SHARED ? 'shared' : f & MS.SLAVE ? 'slave' : f & MS.PRIVATE ? 'private' : f & MS.UNBINDABLE ? 'unbindable' : String(f);
  return f & MS.REC ? `MS_REC|${base}` : base;
}

function mountOne(s: ChildSteps, root: FdRef, m: PlannedMount, hostMounts: MountInfo[]): void {
  const field = m.field;
  s.mkdirAll(root, m.destination, { asFile: m.sourceIsFile });
  let target = s.openat2(root, m.destination, O.PATH, IN_ROOT, { field, label: `openat2(rootfs, ${JSON.stringify(m.destination)}, RESOLVE_IN_ROOT)` });
  const bind = isBind(m);
  if (bind) {
    s.mountAt(target, m.source, null, MS.BIND | (m.flags & MS.REC), null, { field, dest: m.destination });
  } else {
    s.mountAt(target, m.source, m.type, m.flags & ~MS.REMOUNT, m.data, { field, dest: m.destination });
  }
  const extra = m.flags & ~(MS.BIND | MS.REC | MS.REMOUNT);
  const remount = bind && extra !== 0;
  if (remount || m.propagationFlags.length) {
    // The fd still points at the directory under the new mount: open the path again to reach the mount itself.
    s.close(target);
    target = s.openat2(root, m.destination, O.PATH, IN_ROOT, { field, label: `openat2(rootfs, ${JSON.stringify(m.destination)}) after mount` });
    if (remount) {
      const src = mountContaining(m.source, hostMounts);
      let keep = src ? lockedFlags(src) & LOCKABLE & ~m.clearedFlags : 0;
      if (src && (m.flags & ATIME) === 0) keep |= lockedFlags(src) & ATIME;
      s.mountAt(target, null, null, MS.BIND | MS.REMOUNT | extra | keep, null, { field, dest: m.destination });
    }
    for (const p of m.propagationFlags) s.mountAt(target, null, null, p, null, { field, dest: m.destination });
  }
  s.close(target);
}

/**
 * The unified hierarchy without a cgroup namespace: a bind of the host's mount, not a fresh cgroup2 mount. A
 * cgroup2 mount in the init cgroup namespace re-applies its options to the whole hierarchy (it would clear the
 * host's nsdelegate / memory_recursiveprot) and waits for an RCU grace period (~8-20 ms measured here). The view
 * is the same: without a cgroup namespace a fresh mount shows the hierarchy's root too.
 */
function bindCgroup2(s: ChildSteps, root: FdRef, t: FdRef, hostMount: string, flags: number, where: { field: string; dest: string }): void {
  s.mountAt(t, hostMount, null, MS.BIND, null, where);
  // The remount needs the new mount's root: `t` still names the directory under it.
  const top = s.openat2(root, where.dest, O.PATH, IN_ROOT, { field: where.field });
  const perMount = flags & (MS.RDONLY | MS.NOSUID | MS.NODEV | MS.NOEXEC | MS.NOATIME | MS.NODIRATIME | MS.RELATIME | MS.STRICTATIME);
  s.mountAt(top, null, null, MS.BIND | MS.REMOUNT | perMount, null, where);
  s.close(top);
}

/** Mount "cgroup": the host's hierarchies, fresh in a cgroup namespace, bound from the host otherwise. */
function mountCgroup(s: ChildSteps, root: FdRef, m: PlannedMount, o: RootfsOptions): void {
  const field = m.field;
  const cgroupMounts = o.host.mounts.filter((x) => x.fsType === 'cgroup' || x.fsType === 'cgroup2');
  const v2only = cgroupMounts.length === 1 && cgroupMounts[0].fsType === 'cgroup2' && cgroupMounts[0].mountPoint === '/sys/fs/cgroup';
  const fresh = o.cgroupns || !o.userns;
  s.mkdirAll(root, m.destination);
  if (v2only) {
    const t = s.openat2(root, m.destination, O.PATH, IN_ROOT, { field });
    if (fresh && o.cgroupns) s.mountAt(t, 'cgroup2', 'cgroup2', m.flags, null, { field, dest: m.destination });
    else if (fresh) bindCgroup2(s, root, t, '/sys/fs/cgroup', m.flags, { field, dest: m.destination });
    else s.mountAt(t, '/sys/fs/cgroup', null, MS.BIND | MS.REC, null, { field, dest: m.destination });
    s.close(t);
    return;
  }
  let t = s.openat2(root, m.destination, O.PATH, IN_ROOT, { field });
  s.mountAt(t, 'tmpfs', 'tmpfs', m.flags & (MS.NOSUID | MS.NODEV | MS.NOEXEC), 'mode=755', { field, dest: m.destination });
  s.close(t);
  for (const cg of cgroupMounts) {
    if (!cg.mountPoint.startsWith('/sys/fs/cgroup/')) continue;
    const name = cg.mountPoint.slice('/sys/fs/cgroup/'.length);
    if (name.includes('/')) continue;
    const dest = path.posix.join(m.destination, name);
    s.mkdirAll(root, dest);
    t = s.openat2(root, dest, O.PATH, IN_ROOT, { field });
    if (!fresh) {
      s.mountAt(t, cg.mountPoint, null, MS.BIND | MS.REC, null, { field, dest });
    } else if (cg.fsType === 'cgroup2') {
      if (o.cgroupns) s.mountAt(t, 'cgroup2', 'cgroup2', m.flags, null, { field, dest });
      else bindCgroup2(s, root, t, cg.mountPoint, m.flags, { field, dest });
    } else {
      const controllers = cg.superOptions.filter((x) => x !== 'rw' && x !== 'ro');
      const data = controllers.some((c) => c.startsWith('name=')) && controllers.length === 1 ? `none,${controllers[0]}` : controllers.join(',');
      s.mountAt(t, 'cgroup', 'cgroup', m.flags, data, { field, dest });
    }
    if (!fresh && m.flags & MS.RDONLY) {
      s.close(t);
      t = s.openat2(root, dest, O.PATH, IN_ROOT, { field });
      s.mountAt(t, null, null, MS.BIND | MS.REMOUNT | MS.RDONLY | (lockedFlags(cg) & ~MS.RDONLY), null, { field, dest });
    }
    s.close(t);
    if (name.includes(',')) {
      const dir = s.openat2(root, m.destination, O.PATH | O.DIRECTORY, IN_ROOT, { field });
      for (const part of name.split(',')) s.symlink(dir, name, part, field);
      s.close(dir);
    }
  }
  if (m.flags & MS.RDONLY) {
    t = s.openat2(root, m.destination, O.PATH, IN_ROOT, { field });
    s.mountAt(t, null, null, MS.BIND | MS.REMOUNT | MS.RDONLY | (m.flags & (MS.NOSUID | MS.NODEV | MS.NOEXEC)), null, { field, dest: m.destination });
    s.close(t);
  }
}


/** After pivot_root: read-only root, readonlyPaths, maskedPaths (libcontainer's order). */
export function finalizeRootfs(s: ChildSteps, o: RootfsOptions, mounts: PlannedMount[]): void {
  const { setup } = o;
  const rootMount = mountContaining(setup.rootfs, o.host.mounts);
  const rootLocked = rootMount ? lockedFlags(rootMount) & ~MS.RDONLY : 0;
  const lockedAt = (p: string) => {
    let best: PlannedMount | undefined;
    for (const m of mounts) if (under(p, m.destination) && (!best || m.destination.length >= best.destination.length)) best = m;
    return best ? best.flags & (MS.NOSUID | MS.NODEV | MS.NOEXEC | ATIME) : rootLocked;
  };
  if (setup.readonlyRootfs) {
    s.mountPath(null, '/', null, MS.BIND | MS.REMOUNT | MS.RDONLY | rootLocked, null, { field: 'root.readonly', label: 'mount("/", MS_BIND|MS_REMOUNT|MS_RDONLY)' });
  }
  setup.readonlyPaths.forEach((p, i) => {
    const field = `linux.readonlyPaths[${i}]`;
    s.mountPath(p, p, null, MS.BIND | MS.REC, null, { check: 'report', tolerate: [ERRNO.ENOENT], field, label: `mount(${JSON.stringify(p)}, ${JSON.stringify(p)}, MS_BIND|MS_REC)` });
    s.mountPath(p, p, null, MS.BIND | MS.REMOUNT | MS.RDONLY | lockedAt(p), null, { check: 'report', tolerate: [ERRNO.ENOENT], field, label: `mount(${JSON.stringify(p)}, MS_BIND|MS_REMOUNT|MS_RDONLY)` });
  });
  setup.maskedPaths.forEach((p, i) => {
    const field = `linux.maskedPaths[${i}]`;
    // A file gets /dev/null bound over it, a directory a read-only tmpfs; the other attempt fails ENOTDIR.
    s.mountPath('/dev/null', p, null, MS.BIND, null, { check: 'report', tolerate: [ERRNO.ENOENT, ERRNO.ENOTDIR], field, label: `mount("/dev/null", ${JSON.stringify(p)}, MS_BIND)` });
    s.mountPath('tmpfs', p, 'tmpfs', MS.RDONLY, null, { check: 'report', tolerate: [ERRNO.ENOENT, ERRNO.ENOTDIR], field, label: `mount("tmpfs", ${JSON.stringify(p)}, "tmpfs", MS_RDONLY)` });
  });
}
