/**
 * Linux flags and names the kernel layer passes to its calls: clone, prctl, open, openat2 and mknod flags,
 * and signal names. Values are the x86_64 (and generic) Linux ABI. The tables config/ needs too (mount
 * flags, capability names, rlimit numbers) are in config/linux/.
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

/** Signal numbers by name (without SIG), as kill(1) and runc accept them. */
export const SIGNALS: Readonly<Record<string, number>> = {
  HUP: 1, INT: 2, QUIT: 3, ILL: 4, TRAP: 5, ABRT: 6, IOT: 6, BUS: 7, FPE: 8, KILL: 9, USR1: 10, SEGV: 11,
  USR2: 12, PIPE: 13, ALRM: 14, TERM: 15, STKFLT: 16, CHLD: 17, CONT: 18, STOP: 19, TSTP: 20, TTIN: 21,
  TTOU: 22, URG: 23, XCPU: 24, XFSZ: 25, VTALRM: 26, PROF: 27, WINCH: 28, IO: 29, POLL: 29, PWR: 30, SYS: 31,
};

/** Parse a signal given as a name ("TERM", "SIGTERM", "RTMIN+3") or number; undefined when invalid. */
export function parseSignal(s: string): number | undefined {
  const t = s.trim().toUpperCase();
  if (/^\d+$/.test(t)) {
    const n = Number(t);
    return n >= 1 && n <= 64 ? n : undefined;
  }
  const name = t.startsWith('SIG') ? t.slice(3) : t;
  if (name in SIGNALS) return SIGNALS[name];
  const rt = /^RTM(IN|AX)([+-]\d+)?$/.exec(name);
  if (rt) {
    const n = (rt[1] === 'IN' ? 34 : 64) + Number(rt[2] ?? 0);
    return n >= 34 && n <= 64 ? n : undefined;
  }
  return undefined;
}

/** Name of a signal number ("SIGTERM"), for messages. */
export function signalName(n: number): string {
  const e = Object.entries(SIGNALS).find(([, v]) => v === n);
  if (e) return `SIG${e[0]}`;
  if (n >= 34 && n <= 64) return `SIGRTMIN+${n - 34}`;
  return `signal ${n}`;
}
