/**
 * spawn(): clone a child that runs a compiled plan — pipes, fd numbers patched into the arena, the pid
 * namespace joined around the clone, clone3 into a cgroup when asked — and return the SpawnHandle
 * (spawn-handle.ts) that follows it. The kernel layer's process primitive.
 */
import fs from 'node:fs';
import { ERRNO } from '../sys/numbers.js';
import { type CompiledPlan, resolveFd, type SpawnFds } from './chain.js';
import { clone3Available, clone3Chain } from './clone3.js';
import { SpawnHandle, type SpawnOptions } from './spawn-handle.js';
import { SIGNALS } from '../process/signals.js';
import { CLONE } from '../sys/flags.js';
import { C, KernelError, allocNative, lastErrno, symbol } from '../sys/libc.js';
import { openPipe } from '../io/fd.js';

const SIG_SETMASK = 2;
const F_DUPFD_CLOEXEC = 1030;
const allSignals = allocNative(256);
C.sigfillset(allSignals.ptr);
const pidfdBox = allocNative(8);

/**
 * Clone a child running `plan`. The returned handle reports progress; `started` resolves once execve
 * succeeded and rejects with a SpawnError (the child killed) when a step failed.
 */
export function spawn(plan: CompiledPlan, opts: SpawnOptions = {}): SpawnHandle {
  if (plan.arena === 0n) throw new Error('spawn: the compiled plan was freed');
  const t0 = performance.now();
  const [reportR, reportW] = openPipe();
  const [gateR, gateW] = openPipe();
  const [stopR, stopW] = openPipe();
  // With preserved fds, every fd the child uses must sit above 3..3+N-1, where they land: copies (close-on-exec).
  const raised: number[] = [];
  const above = (fd: number) => {
    if (plan.preserved === 0 || fd >= 3 + plan.preserved) return fd;
    const d = C.fcntl(fd, F_DUPFD_CLOEXEC, 'int', 3 + plan.preserved) as number;
    if (d < 0) throw new KernelError('fcntl', lastErrno(), undefined, `(F_DUPFD_CLOEXEC ${fd})`);
    raised.push(d);
    return d;
  };
  const closeOurs = () => [reportW, gateR, stopR, stopW, ...raised].forEach((fd) => C.close(fd));
  let fds: SpawnFds;
  try {
    fds = {
      report: above(reportW), gate: above(gateR), stopR: above(stopR), stopW: above(stopW),
      keep: plan.keepNames.map((n) => {
        const fd = opts.keep?.[n];
        if (fd === undefined) throw new Error(`spawn: no fd passed for "${n}"`);
        return above(fd);
      }),
      stdio: opts.stdio ?? [0, 1, 2],
      preserved: plan.preserved,
    };
  } catch (e) {
    closeOurs();
    C.close(reportR);
    C.close(gateW);
    throw e;
  }
  try {
    for (const p of plan.patches) {
      const fd = resolveFd(p.ref, fds, plan.keepNames);
      if (p.kind === 'register') plan.view.writeBigInt64LE(BigInt(fd), p.offset);
      else if (p.kind === 'int32') plan.view.writeInt32LE(fd, p.offset);
      else plan.view.write(`/proc/self/fd/${fd}\0`, p.offset, 'latin1');
    }
  } catch (e) {
    closeOurs();
    C.close(reportR);
    C.close(gateW);
    throw e;
  }
  let pid: number;
  let cloneErrno = 0;
  let pidnsErr: KernelError | undefined;
  let ownPidns = -1;
  if (opts.pidNamespaceFd !== undefined) {
    ownPidns = fs.openSync('/proc/self/ns/pid', fs.constants.O_RDONLY);
    if (C.setns(opts.pidNamespaceFd, CLONE.NEWPID) !== 0) pidnsErr = new KernelError('setns', lastErrno(), undefined, '(pid namespace to join)');
  }
  if (pidnsErr) {
    fs.closeSync(ownPidns);
    closeOurs();
    C.close(reportR);
    C.close(gateW);
    throw pidnsErr;
  }
  // Every signal blocked around clone, so nothing reaches Node's handlers in the child before context 0
  // installs its own (full) mask.
  C.pthread_sigmask(SIG_SETMASK, allSignals.ptr, allSignals.ptr + 128n);
  let intoCgroup = false;
  pid = -1;
  if (opts.intoCgroupFd !== undefined && clone3Available()) {
    const r = clone3Chain(opts.namespaces ?? 0, opts.intoCgroupFd, plan.firstContext, pidfdBox.ptr, CLONE.PIDFD);
    if (r >= 0) {
      pid = r;
      intoCgroup = true;
    } else if (r !== -ERRNO.ENOSYS && r !== -ERRNO.E2BIG) {
      cloneErrno = -r; // a kernel without clone3 or CLONE_INTO_CGROUP falls back to clone; the caller places the child
    }
  }
  if (!intoCgroup && !cloneErrno) {
    pid = C.clone(symbol('setcontext'), plan.cloneStackTop, (opts.namespaces ?? 0) | CLONE.PIDFD | SIGNALS.CHLD, plan.firstContext, 'void *', pidfdBox.ptr) as number;
    if (pid < 0) cloneErrno = lastErrno();
  }
  C.pthread_sigmask(SIG_SETMASK, allSignals.ptr + 128n, null);
  if (ownPidns >= 0) {
    C.setns(ownPidns, CLONE.NEWPID);
    fs.closeSync(ownPidns);
  }
  const pidfd = pidfdBox.view.readInt32LE(0);
  closeOurs();
  for (const fd of opts.closeAfter ?? []) C.close(fd);
  if (cloneErrno) {
    C.close(reportR);
    C.close(gateW);
    throw new KernelError(opts.intoCgroupFd !== undefined && clone3Available() ? 'clone3' : 'clone', cloneErrno, undefined, `(flags 0x${((opts.namespaces ?? 0) | CLONE.PIDFD).toString(16)}${opts.intoCgroupFd !== undefined ? ', into a cgroup' : ''})`);
  }
  return new SpawnHandle({ pid, pidfd, reportR, gateW, records: plan.records, opts, t0, intoCgroup });
}
