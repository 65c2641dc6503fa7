/**
 * The one table of x86_64 Linux numbers the kernel layer passes to or reads from the kernel: syscall numbers
 * (for raw syscall() calls, in the parent and as chain steps) and errno values (tolerated step failures,
 * retries, errors made here). Plain data, no native code: the spawn plan and the child-step builders use it
 * too. Names of errno values for messages come from libc (sys/libc.ts, errnoName).
 */

/** x86_64 syscall numbers used by the kernel layer. */
export const SYS = {
  ioctl: 16,
  sendmsg: 46,
  setgroups: 116,
  setresuid: 117,
  setresgid: 119,
  capget: 125,
  capset: 126,
  pivot_root: 155,
  seccomp: 317,
  bpf: 321,
  pidfd_send_signal: 424,
  pidfd_open: 434,
  clone3: 435,
  close_range: 436,
  openat2: 437,
  pidfd_getfd: 438,
  faccessat2: 439,
} as const;

/** errno values (asm-generic/errno-base.h and errno.h, as on x86_64). */
export const ERRNO = {
  EPERM: 1,
  ENOENT: 2,
  ESRCH: 3,
  EINTR: 4,
  E2BIG: 7,
  ECHILD: 10,
  EAGAIN: 11,
  EEXIST: 17,
  ENODEV: 19,
  ENOTDIR: 20,
  EINVAL: 22,
  ENOSYS: 38,
  ETIMEDOUT: 110,
  ECANCELED: 125,
} as const;

/**
 * What libseccomp's seccomp_syscall_resolve_name returns for a name it cannot turn into a syscall here:
 * __NR_SCMP_ERROR (-1), and -10199, which cordon has always treated as unknown too.
 */
export const SCMP_UNRESOLVED: readonly number[] = [-1, -10199];
