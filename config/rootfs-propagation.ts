/**
 * `linux.rootfsPropagation` to the MS_* propagation flags applied to the container's "/" (runc's
 * mountPropagationMapping; MS_SLAVE|MS_REC when the field is absent).
 */
import { MS } from './linux/mount-flags.js';
import { describeValue } from './field-checks.js';
import type { Issues } from './issues.js';

/** runc's default propagation for the container root: recursive slave. */
export const DEFAULT_ROOTFS_PROPAGATION: number = MS.SLAVE | MS.REC;

/** Accepted `linux.rootfsPropagation` values and their flags. */
export const ROOTFS_PROPAGATION: Readonly<Record<string, number>> = {
  shared: MS.SHARED,
  rshared: MS.SHARED | MS.REC,
  slave: MS.SLAVE,
  rslave: MS.SLAVE | MS.REC,
  private: MS.PRIVATE,
  rprivate: MS.PRIVATE | MS.REC,
  unbindable: MS.UNBINDABLE,
  runbindable: MS.UNBINDABLE | MS.REC,
};

/**
 * Flags for `linux.rootfsPropagation`. Absent or "" gives {@link DEFAULT_ROOTFS_PROPAGATION}; an unknown
 * value, or [r]private together with noPivotRoot (unsafe without pivot_root, runc refuses it), is an error.
 *
 * @param issues - where errors go
 * @param raw - the field's value
 * @param noPivotRoot - whether the container root is entered with MS_MOVE + chroot
 */
export function rootfsPropagationFlags(issues: Issues, raw: unknown, noPivotRoot: boolean): number {
  const p = 'linux.rootfsPropagation';
  if (raw === undefined || raw === null || raw === '') return DEFAULT_ROOTFS_PROPAGATION;
  if (typeof raw !== 'string') {
    issues.error(p, `expected a string, got ${describeValue(raw)}`);
    return DEFAULT_ROOTFS_PROPAGATION;
  }
  if (!Object.hasOwn(ROOTFS_PROPAGATION, raw)) {
    issues.error(p, `unknown propagation ${JSON.stringify(raw)} (expected one of ${Object.keys(ROOTFS_PROPAGATION).join(', ')})`);
    return DEFAULT_ROOTFS_PROPAGATION;
  }
  const flags = ROOTFS_PROPAGATION[raw];
  if (noPivotRoot && (flags & MS.PRIVATE) !== 0) {
    issues.error(p, `${JSON.stringify(raw)} is not safe without pivot_root (noPivotRoot is set)`);
  }
  return flags;
}
