/**
 * OCI mount options to mount(2) flags, propagation changes and filesystem data, exactly as runc's
 * libcontainer/specconv parseMountOptions splits them.
 */
import { MS } from './linux/mount-flags.js';

/** MS_I_VERSION (1 << 23); not in linux/mount-flags.ts, needed for "iversion"/"noiversion". */
const MS_I_VERSION = 0x800000;

/** How one flag option acts: sets `flag`, or (`clear`) removes it and records it as explicitly cleared. */
export interface MountFlagOption {
  clear: boolean;
  flag: number;
}

/**
 * Options that are mount(2) flags (runc's mountFlags table). "defaults" is in runc's table with flag 0,
 * so — as in runc — it falls through to the data string.
 */
export const MOUNT_FLAG_OPTIONS: Readonly<Record<string, MountFlagOption>> = {
  async: { clear: true, flag: MS.SYNCHRONOUS },
  atime: { clear: true, flag: MS.NOATIME },
  bind: { clear: false, flag: MS.BIND },
  dev: { clear: true, flag: MS.NODEV },
  diratime: { clear: true, flag: MS.NODIRATIME },
  dirsync: { clear: false, flag: MS.DIRSYNC },
  exec: { clear: true, flag: MS.NOEXEC },
  iversion: { clear: false, flag: MS_I_VERSION },
  lazytime: { clear: false, flag: MS.LAZYTIME },
  loud: { clear: true, flag: MS.SILENT },
  mand: { clear: false, flag: MS.MANDLOCK },
  noatime: { clear: false, flag: MS.NOATIME },
  nodev: { clear: false, flag: MS.NODEV },
  nodiratime: { clear: false, flag: MS.NODIRATIME },
  noexec: { clear: false, flag: MS.NOEXEC },
  noiversion: { clear: true, flag: MS_I_VERSION },
  nolazytime: { clear: true, flag: MS.LAZYTIME },
  nomand: { clear: true, flag: MS.MANDLOCK },
  norelatime: { clear: true, flag: MS.RELATIME },
  nostrictatime: { clear: true, flag: MS.STRICTATIME },
  nosuid: { clear: false, flag: MS.NOSUID },
  nosymfollow: { clear: false, flag: MS.NOSYMFOLLOW },
  rbind: { clear: false, flag: MS.BIND | MS.REC },
  relatime: { clear: false, flag: MS.RELATIME },
  remount: { clear: false, flag: MS.REMOUNT },
  ro: { clear: false, flag: MS.RDONLY },
  rw: { clear: true, flag: MS.RDONLY },
  silent: { clear: false, flag: MS.SILENT },
  strictatime: { clear: false, flag: MS.STRICTATIME },
  suid: { clear: true, flag: MS.NOSUID },
  sync: { clear: false, flag: MS.SYNCHRONOUS },
  symfollow: { clear: true, flag: MS.NOSYMFOLLOW },
};

/** Propagation options, each one extra mount(2) call after the mount (runc's mountPropagationMapping). */
export const MOUNT_PROPAGATION_OPTIONS: Readonly<Record<string, number>> = {
  rprivate: MS.PRIVATE | MS.REC,
  private: MS.PRIVATE,
  rslave: MS.SLAVE | MS.REC,
  slave: MS.SLAVE,
  rshared: MS.SHARED | MS.REC,
  shared: MS.SHARED,
  runbindable: MS.UNBINDABLE | MS.REC,
  unbindable: MS.UNBINDABLE,
};

/**
 * Options runc understands but cordon cannot honour yet (MountSetup has no place for them), with the
 * reason reported. Passing them on as data would fail later at mount(2) or be silently wrong.
 */
export const UNSUPPORTED_MOUNT_OPTIONS: Readonly<Record<string, string>> = {
  tmpcopyup: 'copying the underlying directory into a tmpfs ("tmpcopyup") is not supported',
  idmap: 'id-mapped mounts ("idmap") are not supported',
  ridmap: 'id-mapped mounts ("ridmap") are not supported',
  ...Object.fromEntries(
    [
      'rro', 'rrw', 'rnosuid', 'rsuid', 'rnodev', 'rdev', 'rnoexec', 'rexec', 'rnodiratime', 'rdiratime',
      'rrelatime', 'rnorelatime', 'rnoatime', 'ratime', 'rstrictatime', 'rnostrictatime', 'rnosymfollow', 'rsymfollow',
    ].map((o) => [o, `recursive mount attribute "${o}" (mount_setattr) is not supported`]),
  ),
};

/** An option that was recognised but cannot be honoured, with its index in the options array. */
export interface UnsupportedMountOption {
  index: number;
  option: string;
  reason: string;
}

/** The options of one mount, split up. */
export interface ParsedMountOptions {
  /** MS_* flags for the mount(2) call. */
  flags: number;
  /** Flags the options explicitly cleared ("rw", "suid", ...). */
  clearedFlags: number;
  /** Propagation changes, in option order. */
  propagationFlags: number[];
  /** Everything else, comma-joined in option order (filesystem data such as "mode=755,size=65536k"). */
  data: string;
  /** Options cordon cannot honour. */
  unsupported: UnsupportedMountOption[];
}

/**
 * Split OCI mount options into flags, cleared flags, propagation changes and data, as runc does: a later
 * option overrides an earlier one ("ro" then "rw" ends read-write, with MS_RDONLY in clearedFlags).
 *
 * @param options - the `mounts[i].options` strings
 */
export function parseMountOptions(options: readonly string[]): ParsedMountOptions {
  let flags = 0;
  let clearedFlags = 0;
  const propagationFlags: number[] = [];
  const data: string[] = [];
  const unsupported: UnsupportedMountOption[] = [];
  options.forEach((o, index) => {
    const f = Object.hasOwn(MOUNT_FLAG_OPTIONS, o) ? MOUNT_FLAG_OPTIONS[o] : undefined;
    if (f !== undefined) {
      if (f.clear) {
        flags &= ~f.flag;
        clearedFlags |= f.flag;
      } else {
        flags |= f.flag;
        clearedFlags &= ~f.flag;
      }
    } else if (Object.hasOwn(MOUNT_PROPAGATION_OPTIONS, o)) {
      propagationFlags.push(MOUNT_PROPAGATION_OPTIONS[o]);
    } else if (Object.hasOwn(UNSUPPORTED_MOUNT_OPTIONS, o)) {
      unsupported.push({ index, option: o, reason: UNSUPPORTED_MOUNT_OPTIONS[o] });
    } else {
      data.push(o);
    }
  });
  return { flags, clearedFlags, propagationFlags, data: data.join(','), unsupported };
}
