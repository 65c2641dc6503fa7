/**
 * eventfd(2) for cgroup v1 OOM notifications (memory.oom_control through cgroup.event_control): a
 * non-blocking eventfd and a read of its counter.
 */
import fs from 'node:fs';
import { KernelError, lastErrno, libc } from '../../sys/libc.js';

const eventfdFn = libc.func('int eventfd(unsigned int initval, int flags)') as (initval: number, flags: number) => number;

/** EFD_CLOEXEC | EFD_NONBLOCK. */
const EFD_CLOEXEC = 0o2000000;
const EFD_NONBLOCK = 0o4000;

/** A non-blocking, close-on-exec eventfd. */
export function eventfd(): number {
  const fd = eventfdFn(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (fd < 0) throw new KernelError('eventfd', lastErrno());
  return fd;
}

/** Read an eventfd's 8-byte counter (resets it); 0n when nothing is pending (EAGAIN). */
export function readEventCounter(fd: number): bigint {
  const b = Buffer.alloc(8);
  try {
    return fs.readSync(fd, b, 0, 8, null) === 8 ? b.readBigUInt64LE(0) : 0n;
  } catch (e) {
    if ((e as { code?: string }).code === 'EAGAIN') return 0n;
    throw e;
  }
}
