/**
 * File descriptors: pipes (the spawn engine's report, gate and stop pipes), fifos (the exec fifo of a created
 * container), closing a raw fd, and readiness on the event loop (koffi's poll), each failure a KernelError
 * naming the call, path and errno.
 */
import { O } from '../sys/flags.js';
import { C, fail, koffi } from '../sys/libc.js';

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
