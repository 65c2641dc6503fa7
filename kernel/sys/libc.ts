/**
 * The one binding to glibc through koffi: functions the parent calls, symbol addresses for the child's
 * chain, and errno-carrying errors. Everything else in kernel/ goes through this module.
 */
import koffi from 'koffi';

/** glibc, loaded once per thread. */
export const libc = koffi.load('libc.so.6');

const fn = (decl: string) => libc.func(decl);

/** Parent-side libc functions (called from JavaScript on the event loop thread). */
export const C = {
  getcontext: fn('int getcontext(void *ucp)'),
  makecontext: fn('void makecontext(void *ucp, void *func, int argc, ...)'),
  sigemptyset: fn('int sigemptyset(void *set)'),
  sigfillset: fn('int sigfillset(void *set)'),
  pthread_sigmask: fn('int pthread_sigmask(int how, void *set, void *oldset)'),
  clone: fn('int clone(void *fn, void *stack, int flags, void *arg, ...)'),
  errnoLocation: fn('void *__errno_location()'),
  pipe2: fn('int pipe2(_Out_ int *fds, int flags)'),
  close: fn('int close(int fd)'),
  syscall: fn('long syscall(long nr, ...)'),
  waitid: fn('int waitid(int idtype, int id, void *info, int options)'),
  strerror: fn('const char *strerror(int e)'),
  setns: fn('int setns(int fd, int nstype)'),
  mkfifo: fn('int mkfifo(const char *path, uint32_t mode)'),
  gnuGetLibcVersion: fn('const char *gnu_get_libc_version()'),
  fcntl: fn('int fcntl(int fd, int cmd, ...)'),
  prctl: fn('int prctl(int option, unsigned long a2, unsigned long a3, unsigned long a4, unsigned long a5)'),
};

const symbols = new Map<string, bigint>();

/** Address of a libc function, for a context of the child's chain. */
export function symbol(name: string): bigint {
  let a = symbols.get(name);
  if (a === undefined) {
    const s = libc.symbol(name) as unknown;
    if (s === null || s === undefined) throw new Error(`libc has no symbol ${name}`);
    a = BigInt(koffi.address(s));
    symbols.set(name, a);
  }
  return a;
}

const errnoNames = new Map<number, string>();
for (const [k, v] of Object.entries(koffi.os.errno)) if (!errnoNames.has(v)) errnoNames.set(v, k);

/** Symbolic name of an errno value ("ENOENT"). */
export function errnoName(e: number): string {
  return errnoNames.get(e) ?? `E${e}`;
}

/** "ENOENT (No such file or directory)". */
export function errnoText(e: number): string {
  return `${errnoName(e)} (${C.strerror(e) as string})`;
}

/** An error from a Linux call: names the operation, the path (if any) and errno. */
export class KernelError extends Error {
  /** The call that failed, e.g. "pidfd_open" or "mount". */
  readonly op: string;
  /** The path the call was about, if any. */
  readonly path?: string;
  /** errno value. */
  readonly errno: number;
  /** errno name, e.g. "EPERM". */
  readonly code: string;

  constructor(op: string, errno: number, path?: string, detail?: string) {
    super(`${op}${path !== undefined ? ` ${JSON.stringify(path)}` : ''}${detail ? ` ${detail}` : ''}: ${errnoText(errno)}`);
    this.name = 'KernelError';
    this.op = op;
    this.path = path;
    this.errno = errno;
    this.code = errnoName(errno);
  }
}

/** Throw a KernelError built from the current errno. */
export function fail(op: string, path?: string, detail?: string): never {
  throw new KernelError(op, koffi.errno(), path, detail);
}

/** Current thread's errno. */
export function lastErrno(): number {
  return koffi.errno();
}

/** Allocate zeroed native memory and a Buffer view on it; free with koffi.free(ptr). */
export function allocNative(size: number): { ptr: bigint; view: Buffer } {
  const ptr = BigInt(koffi.address(koffi.alloc('uint8_t', size)));
  const view = Buffer.from(koffi.view(ptr, size));
  view.fill(0);
  return { ptr, view };
}

/** Free memory from allocNative. */
export function freeNative(ptr: bigint): void {
  koffi.free(ptr);
}

export { koffi };
