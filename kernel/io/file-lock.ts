/**
 * Advisory whole-file locks (flock), so several cordon processes (the daemon and CLI verbs) can append to
 * one journal without interleaving.
 */
import { fail, libc } from '../sys/libc.js';

const flock = libc.func('int flock(int fd, int operation)');
const LOCK_EX = 2;
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
