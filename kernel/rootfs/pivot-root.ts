/**
 * Entering the rootfs, as child steps once its mounts are made: runc's pivotRoot (pivot_root(".", ".") in
 * the new root, then the old root made a slave and detached), or, for a rootfs on ramfs where pivot_root is
 * not possible (runc --no-pivot), runc's msMoveRoot (MS_MOVE onto "/" and chroot).
 */
import { MS } from '../../config/linux/mount-flags.js';
import type { ChildSteps } from '../spawn/child-steps.js';
import type { FdRef } from '../spawn/spawn-plan.js';
import { MNT_DETACH, O } from '../sys/flags.js';
import { SYS } from '../sys/numbers.js';

/** runc's pivotRoot: pivot_root(".", ".") in the new root, then detach the old root stacked on top. */
export function pivotRoot(s: ChildSteps, root: FdRef, rootfs: string): void {
  const oldRoot = s.openPath('/', O.DIRECTORY | O.RDONLY, { label: 'open("/") (old root)' });
  s.call('fchdir', [root], { label: `fchdir(${JSON.stringify(rootfs)})` });
  s.sys(SYS.pivot_root, ['.', '.'], { label: `pivot_root(${JSON.stringify(rootfs)}, ".")`, field: 'root.path' });
  s.call('fchdir', [oldRoot], { label: 'fchdir(old root)' });
  s.mountPath(null, '.', null, MS.SLAVE | MS.REC, null, { label: 'mount("", old root, MS_SLAVE|MS_REC)' });
  s.call('umount2', ['.', MNT_DETACH], { label: 'umount2(old root, MNT_DETACH)' });
  s.call('chdir', ['/'], { label: 'chdir("/")' });
  s.close(oldRoot);
}

/** runc's msMoveRoot, for a rootfs on ramfs where pivot_root is not possible: MS_MOVE onto "/" and chroot. */
export function moveRoot(s: ChildSteps, root: FdRef, rootfs: string): void {
  s.call('fchdir', [root], { label: `fchdir(${JSON.stringify(rootfs)})` });
  s.mountPath(rootfs, '/', null, MS.MOVE, null, { field: 'root.path', label: `mount(${JSON.stringify(rootfs)}, "/", MS_MOVE)` });
  s.call('chroot', ['.'], { label: 'chroot(".")', field: 'root.path' });
  s.call('chdir', ['/'], { label: 'chdir("/")' });
}
