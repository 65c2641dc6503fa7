/**
 * Linux flag values the kernel layer passes to its calls: clone, prctl, open, openat2, umount2, mknod and
 * socket flags, the tty ioctls, and AT_FDCWD. Values are the x86_64 (and generic) Linux ABI. The tables config/ needs too (mount
 * flags, capability names, rlimit numbers) are in config/linux/; syscall and errno numbers in numbers.ts.
 */

/** clone(2) namespace flags and CLONE_PIDFD. */
export const CLONE = {
  NEWTIME: 0x80,
  PIDFD: 0x1000,
  NEWNS: 0x20000,
  NEWCGROUP: 0x2000000,
  NEWUTS: 0x4000000,
  NEWIPC: 0x8000000,
  NEWUSER: 0x10000000,
  NEWPID: 0x20000000,
  NEWNET: 0x40000000,
} as const;

/** The dirfd argument of the *at() calls that means the current directory. */
export const AT_FDCWD = -100;

/** umount2(2) flags. */
export const MNT_DETACH = 2;

/** prctl(2) options used in the child. */
export const PR = {
  SET_PDEATHSIG: 1,
  SET_DUMPABLE: 4,
  SET_KEEPCAPS: 8,
  CAPBSET_DROP: 24,
  SET_NO_NEW_PRIVS: 38,
  CAP_AMBIENT: 47,
} as const;

/** PR_CAP_AMBIENT sub-operations. */
export const PR_CAP_AMBIENT = { RAISE: 2, LOWER: 3, CLEAR_ALL: 4 } as const;

/** open(2) flags (x86_64). */
export const O = {
  RDONLY: 0,
  WRONLY: 1,
  RDWR: 2,
  CREAT: 0o100,
  EXCL: 0o200,
  NOCTTY: 0o400,
  TRUNC: 0o1000,
  NONBLOCK: 0o4000,
  DIRECTORY: 0o200000,
  NOFOLLOW: 0o400000,
  CLOEXEC: 0o2000000,
  PATH: 0o10000000,
} as const;

/** openat2(2) resolve flags. */
export const RESOLVE = {
  NO_XDEV: 0x01,
  NO_MAGICLINKS: 0x02,
  NO_SYMLINKS: 0x04,
  BENEATH: 0x08,
  IN_ROOT: 0x10,
} as const;

/** File type bits for mknod(2). */
export const S_IF = { CHR: 0o020000, BLK: 0o060000, FIFO: 0o010000, DIR: 0o040000, REG: 0o100000 } as const;

/** socket(2) types and flags (x86_64). */
export const SOCK = { STREAM: 1, DGRAM: 2, RAW: 3, SEQPACKET: 5, NONBLOCK: 0o4000, CLOEXEC: 0o2000000 } as const;

/** Terminal ioctl requests (x86_64). */
export const TIOC = { SCTTY: 0x540e, GWINSZ: 0x5413, SWINSZ: 0x5414, GPTPEER: 0x5441, SPTLCK: 0x40045431 } as const;
