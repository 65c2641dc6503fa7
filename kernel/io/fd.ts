/**
 * File descriptors: pipes (the spawn engine's report, gate and stop pipes), fifos (the exec fifo of a created
 * container), closing a raw fd, and readiness on the event loop (koffi's poll), each failure a KernelError
 * naming the call, path and errno.
 */
import { O } from '../sys/flags.js';
import { C, fail, koffi, libc } from '../sys/libc.js';
import { ERRNO } from '../sys/numbers.js';

/** pipe2 with O_CLOEXEC: [read end, write end]. */
export function openPipe(flags: number = O.CLOEXEC): [number, number] {
  const a = new Int32Array(2);
  if ((C.pipe2(a, flags) as number) < 0) fail('pipe2');
  return [a[0], a[1]];
}

/** Make a fifo at `path` with `mode` (mkfifo(3)). */
export function mkfifo(path: string, mode: number): void {
  if ((C.mkfifo(path, mode) as number) !== 0) fail('mkfifo', path);
}

/** Close a raw fd (one not opened through node:fs, such as a pidfd). */
export function closeFd(fd: number): void {
  if ((C.close(fd) as number) !== 0) fail('close', undefined, `(fd ${fd})`);
}

/** A readiness watch on the event loop; close() ends it. */
export interface ReadableWatch {
  close(): void;
}

/** Call `onReadable` each time `fd` becomes readable, on the event loop (no thread blocks). */
export function watchReadable(fd: number, onReadable: () => void): ReadableWatch {
  const h = koffi.node.poll(fd, { readable: true }, () => onReadable());
  return { close: () => h.close() };
}

/** poll(2) event bits (asm-generic/poll.h). */
export const POLL = { IN: 0x001, PRI: 0x002, OUT: 0x004, ERR: 0x008, HUP: 0x010, NVAL: 0x020, RDHUP: 0x2000 } as const;

let pollCall: ((fds: Buffer, n: number, timeout: number) => number) | undefined;

/**
 * poll(2) on one fd, blocking this thread up to `timeoutMs` (-1: no limit; 0: just look) until it has one of
 * `events` — or an error or hangup, which poll always reports. Returns its revents, 0 when the time ran out.
 * Interrupted by a signal (EINTR), it waits again for the time left. For a process that has nothing else to do
 * meanwhile (a CLI waiting for an answer); on the event loop use {@link watchReadable}.
 */
export function pollFd(fd: number, events: number, timeoutMs: number): number {
  pollCall ??= libc.func('int poll(void *fds, unsigned long n, int timeout)') as unknown as (fds: Buffer, n: number, timeout: number) => number;
  const p = Buffer.alloc(8);
  p.writeInt32LE(fd, 0);
  p.writeInt16LE(events, 4);
  const end = timeoutMs < 0 ? Infinity : Date.now() + timeoutMs;
  for (;;) {
    const left = end === Infinity ? -1 : Math.max(0, Math.ceil(end - Date.now()));
    const n = pollCall(p, 1, left);
    if (n > 0) return p.readUInt16LE(6);
    if (n === 0) return 0;
    if (koffi.errno() !== ERRNO.EINTR) fail('poll', undefined, `(fd ${fd})`);
  }
}
