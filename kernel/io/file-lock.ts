/**
 * Advisory whole-file locks (flock), so several cordon processes (the daemon and CLI verbs) can append to
 * one journal without interleaving, and verbs on one container run one at a time across processes. A flock
 * goes with the open file description: the kernel drops it when its holder dies, which is how a lock held by
 * a killed verb is told from one held by a verb in progress.
 */
import { fail, lastErrno, libc } from '../sys/libc.js';
import { ERRNO } from '../sys/numbers.js';

const flock = libc.func('int flock(int fd, int operation)');
const LOCK_EX = 2;
const LOCK_NB = 4;
const LOCK_UN = 8;

/** Hold an exclusive flock on `fd` while `fn` runs (blocks until the lock is free). */
export function withFileLock<T>(fd: number, fn: () => T): T {
  if ((flock(fd, LOCK_EX) as number) !== 0) fail('flock', undefined, '(LOCK_EX)');
  try {
    return fn();
  } finally {
    flock(fd, LOCK_UN);
  }
}

/**
 * Take an exclusive flock on `fd` without waiting: true when taken, false when another open file description
 * holds it (EWOULDBLOCK); any other failure throws a KernelError naming `path`.
 */
export function tryFileLock(fd: number, path?: string): boolean {
  if ((flock(fd, LOCK_EX | LOCK_NB) as number) === 0) return true;
  const e = lastErrno();
  if (e === ERRNO.EAGAIN) return false; // EWOULDBLOCK is EAGAIN on Linux
  fail('flock', path, '(LOCK_EX|LOCK_NB)');
}

/** Release a flock taken with tryFileLock (closing the fd releases it too). */
export function unlockFile(fd: number): void {
  flock(fd, LOCK_UN);
}
