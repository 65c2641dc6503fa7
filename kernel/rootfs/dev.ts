/**
 * The container's /dev, as child steps after its mounts: device nodes (mknodat, or binds of the host's nodes
 * in a user namespace, where mknod is not allowed) for the default devices and linux.devices, then the
 * /dev/fd, stdin, stdout, stderr, core and ptmx symlinks. Skipped when /dev is a bind mount, as runc does.
 */
import fs from 'node:fs';
import path from 'node:path';
import { MS } from '../../config/linux/mount-flags.js';
import { RUNC_DEFAULT_DEVICES } from '../../config/default-devices.js';
import type { ContainerSetup, DeviceSetup, MountSetup } from '../../config/model.js';
import type { ChildSteps } from '../spawn/child-steps.js';
import type { FdRef } from '../spawn/spawn-plan.js';
import { O, RESOLVE, S_IF } from '../sys/flags.js';
import { ERRNO } from '../sys/numbers.js';

const IN_ROOT = RESOLVE.IN_ROOT | RESOLVE.NO_MAGICLINKS;

/** True when cordon makes device nodes in /dev (not when /dev is a bind mount, as runc). */
export function needsDevSetup(mounts: MountSetup[]): boolean {
  const dev = mounts.find((m) => m.destination === '/dev');
  return !(dev && (dev.flags & MS.BIND) !== 0);
}

/** glibc's makedev(). */
export function makedev(major: number, minor: number): bigint {
  const ma = BigInt(major), mi = BigInt(minor);
  return ((ma & 0xfffff000n) << 32n) | ((ma & 0xfffn) << 8n) | ((mi & 0xffffff00n) << 12n) | (mi & 0xffn);
}

/** Device nodes (mknod, or binds of the host's nodes in a user namespace) and the /dev symlinks. */
export function setupDev(s: ChildSteps, root: FdRef, setup: ContainerSetup, userns: boolean, mounts: readonly MountSetup[]): void {
  const devices = new Map<string, { d: DeviceSetup; field: string }>();
  for (const d of RUNC_DEFAULT_DEVICES) devices.set(d.path, { d, field: 'default devices' });
  setup.devices.forEach((d, i) => devices.set(d.path, { d, field: `linux.devices[${i}]` }));
  for (const { d, field } of devices.values()) {
    const dir = path.posix.dirname(d.path), base = path.posix.basename(d.path);
    if (dir !== '/dev') s.mkdirAll(root, dir);
    const p = s.openat2(root, dir, O.PATH | O.DIRECTORY, IN_ROOT, { field });
    if (userns) {
      const f = s.openat2(p, base, O.CREAT | O.WRONLY | O.NOFOLLOW, 0, { check: 'none' });
      s.close(f);
      const t = s.openat2(root, d.path, O.PATH, IN_ROOT, { field });
      s.mountAt(t, d.path, null, MS.BIND, null, { field, dest: d.path });
      s.close(t);
    } else {
      const kind = d.type === 'b' ? S_IF.BLK : d.type === 'p' ? S_IF.FIFO : S_IF.CHR;
      s.call('mknodat', [p, base, kind | d.fileMode, d.type === 'p' ? 0 : makedev(d.major, d.minor)], {
        check: 'report', tolerate: [ERRNO.EEXIST], field, label: `mknodat(${JSON.stringify(d.path)}, ${d.type} ${d.major}:${d.minor}, 0${d.fileMode.toString(8)})`,
      });
      s.call('fchownat', [p, base, d.uid, d.gid, 0x100 /* AT_SYMLINK_NOFOLLOW */], { field, label: `fchownat(${JSON.stringify(d.path)}, ${d.uid}, ${d.gid})` });
    }
    s.close(p);
  }
  const dev = s.openat2(root, '/dev', O.PATH | O.DIRECTORY, IN_ROOT, { field: 'default /dev' });
  const hasProc = mounts.some((m) => m.destination === '/proc');
  s.symlink(dev, '/proc/self/fd', 'fd');
  s.symlink(dev, '/proc/self/fd/0', 'stdin');
  s.symlink(dev, '/proc/self/fd/1', 'stdout');
  s.symlink(dev, '/proc/self/fd/2', 'stderr');
  // As runc: /dev/core only when the kernel has /proc/kcore (CONFIG_PROC_KCORE), never a dangling link.
  if (hasProc && fs.existsSync('/proc/kcore')) s.symlink(dev, '/proc/kcore', 'core');
  if (mounts.some((m) => m.destination === '/dev/pts') && !devices.has('/dev/ptmx')) {
    s.call('unlinkat', [dev, 'ptmx', 0], { check: 'none' });
    s.symlink(dev, 'pts/ptmx', 'ptmx');
  }
  s.close(dev);
}
