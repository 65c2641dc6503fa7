/**
 * Processes by pidfd: open one for a pid (checking its start time against pid reuse), signal it, wait for
 * its exit on the event loop whether or not it is our child, and decode exit statuses.
 */
import fs from 'node:fs';
import { ERRNO, SYS } from '../sys/numbers.js';
import { C, KernelError, allocNative, fail, koffi } from '../sys/libc.js';

/** How a process ended: an exit code, or the signal that killed it. */
export interface ExitStatus {
  /** Exit code, or null when killed by a signal. */
  code: number | null;
  /** Signal number, or null when it exited. */
  signal: number | null;
  /** True when it dumped core. */
  core?: boolean;
}

/** Shell-style exit code of a status: the code, or 128+signal. */
export function exitCodeOf(s: ExitStatus): number {
  return s.signal !== null ? 128 + s.signal : (s.code ?? 255);
}

const P_PIDFD = 3;
const WEXITED = 4;
const WNOHANG = 1;
const siginfo = allocNative(128);

/**
 * Statuses of our children that reapZombieChild reaped, by pid: a spawn handle following the same child then
 * finds it gone (ECHILD) and takes its status from here instead of waiting for an exit it can no longer see.
 */
const reapedHere = new Map<number, ExitStatus>();

/**
 * Reap our own child `pid` through its pidfd without blocking: its status, or null while it runs. A child another
 * waiter in this process reaped first has the status that waiter got (code and signal null when none did).
 */
export function reapOwnChild(pidfd: number, pid: number): ExitStatus | null {
  const st = decodeWaitid(pidfd);
  if (st || koffi.errno() !== ERRNO.ECHILD) return st;
  const known = reapedHere.get(pid);
  reapedHere.delete(pid);
  return known ?? { code: null, signal: null };
}

/** Reap a child through its pidfd without blocking: its status, or null when it has not exited (or is not our child). */
export function decodeWaitid(pidfd: number): ExitStatus | null {
  siginfo.view.fill(0);
  if ((C.waitid(P_PIDFD, pidfd, siginfo.ptr, WEXITED | WNOHANG) as number) !== 0) return null;
  if (siginfo.view.readInt32LE(16) === 0) return null; // si_pid 0: still running
  const code = siginfo.view.readInt32LE(8); // si_code: CLD_EXITED 1, CLD_KILLED 2, CLD_DUMPED 3
  const st = siginfo.view.readInt32LE(24);
  return code === 1 ? { code: st, signal: null } : { code: null, signal: st, core: code === 3 };
}

/** The fields of /proc/PID/stat a runtime needs: state, parent pid, start time (undefined when there is no such pid). */
function procStat(pid: number): { state: string; ppid: number; startTime: bigint } | undefined {
  let stat: string;
  try {
    stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return undefined;
  }
  // comm (field 2) may contain spaces and parentheses: split after the last ')'. rest[0] is field 3.
  const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return { state: rest[0], ppid: Number(rest[1]), startTime: BigInt(rest[19]) };
}

/** Start time of a process in clock ticks since boot (/proc/PID/stat field 22), or undefined when gone (or a zombie). */
export function processStartTime(pid: number): bigint | undefined {
  const st = procStat(pid);
  return st && st.state !== 'Z' && st.state !== 'X' ? st.startTime : undefined;
}

/** The parent pid of a process, zombies included; -1 when there is no such pid. */
export function parentPid(pid: number): number {
  return procStat(pid)?.ppid ?? -1;
}

/**
 * Reap `pid` if it is a zombie child of this process with the recorded start time (it exited while nothing
 * here followed it: a library reopened after close, a watcher started after the exit): its exit status, else
 * null. pidfd_open works on zombies; waitid through the pidfd reaps only a child of ours.
 */
export function reapZombieChild(pid: number, startTime: bigint): ExitStatus | null {
  const st = procStat(pid);
  if (!st || st.state !== 'Z' || st.ppid !== process.pid || st.startTime !== startTime) return null;
  const fd = C.syscall(SYS.pidfd_open, 'int', pid, 'uint', 0) as number;
  if (fd < 0) return null;
  try {
    const status = decodeWaitid(fd);
    if (status) {
      reapedHere.set(pid, status);
      if (reapedHere.size > 1024) reapedHere.delete(reapedHere.keys().next().value as number);
    }
    return status;
  } finally {
    C.close(fd);
  }
}

/** True when `pid` is alive and has the recorded start time (so it is the same process). */
export function isSameProcess(pid: number, startTime: bigint): boolean {
  return processStartTime(pid) === startTime;
}

/** A pidfd for a live process that has the given start time; throws KernelError (ESRCH) otherwise. */
export function openPidfd(pid: number, startTime?: bigint): number {
  const fd = C.syscall(SYS.pidfd_open, 'int', pid, 'uint', 0) as number;
  if (fd < 0) fail('pidfd_open', `/proc/${pid}`);
  if (startTime !== undefined && processStartTime(pid) !== startTime) {
    C.close(fd);
    throw new KernelError('pidfd_open', ERRNO.ESRCH, `/proc/${pid}`, '(the pid now belongs to another process)');
  }
  return fd;
}

/** Send a signal through a pidfd. */
export function pidfdSignal(pidfd: number, signal: number): void {
  if ((C.syscall(SYS.pidfd_send_signal, 'int', pidfd, 'int', signal, 'void *', null, 'uint', 0) as number) !== 0) {
    fail('pidfd_send_signal', undefined, `(signal ${signal})`);
  }
}

/**
 * Wait on the event loop until the process behind `pidfd` has exited (our child or not). Reaps it and
 * returns its status when it is our child; returns null for another's child. Closes the pidfd. An abort
 * signal ends the wait (rejects with ECANCELED), so a watcher that is no longer wanted does not hold the
 * event loop open.
 */
export function waitPidfd(pidfd: number, timeoutMs?: number, abort?: AbortSignal): Promise<ExitStatus | null> {
  return new Promise((resolve, reject) => {
    let timer: NodeJS.Timeout | undefined;
    const finish = () => {
      if (timer) clearTimeout(timer);
      abort?.removeEventListener('abort', onAbort);
      handle.close();
    };
    const done = () => {
      finish();
      const st = decodeWaitid(pidfd);
      C.close(pidfd);
      resolve(st);
    };
    const give = (e: Error) => {
      finish();
      C.close(pidfd);
      reject(e);
    };
    const onAbort = () => give(new KernelError('poll', ERRNO.ECANCELED, undefined, '(pidfd: wait cancelled)'));
    const handle = koffi.node.poll(pidfd, { readable: true }, done);
    if (timeoutMs !== undefined) {
      timer = setTimeout(() => give(new KernelError('poll', ERRNO.ETIMEDOUT, undefined, `(pidfd: no exit within ${timeoutMs} ms)`)), timeoutMs);
    }
    if (abort?.aborted) onAbort();
    else abort?.addEventListener('abort', onAbort, { once: true });
  });
}

/** True when errno says the process does not exist. */
export function isNoSuchProcess(e: unknown): boolean {
  return e instanceof KernelError && e.code === 'ESRCH';
}

