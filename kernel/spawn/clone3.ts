/**
 * clone3() for the context chain, for CLONE_INTO_CGROUP: the child starts in its cgroup v2 cgroup without a
 * cgroup.procs write (whose first use after a quiet spell waits for an RCU grace period, ~10 ms here).
 *
 * glibc 2.36 has no clone3 wrapper, so the call is the raw syscall through glibc's syscall(). The child
 * returns inside that wrapper on the stack clone3 gave it: the wrapper's `ret` pops the address planted at
 * that stack's top (setcontext), with %rdi still pointing at the clone_args. clone_args is the head of a
 * trampoline ucontext whose saved context calls setcontext(first context of the plan): its 88 bytes overlay
 * uc_flags, uc_link, uc_stack and gregs R8-R13, which setcontext does not need for a one-argument context
 * (makecontext has consumed uc_stack before). The wrapper's code is checked at load; anything else → null.
 */
import { ARG_REGS, UC, signalMasks } from '../sys/abi.js';
import { C, allocNative, koffi, lastErrno, symbol } from '../sys/libc.js';
import { ERRNO, SYS } from '../sys/numbers.js';
import { SIGNALS } from '../process/signals.js';

/** CLONE_INTO_CGROUP (a 64-bit clone3 flag). */
export const CLONE_INTO_CGROUP = 0x200000000n;
/** sizeof(struct clone_args) up to `cgroup` (CLONE_ARGS_SIZE_VER2). */
const ARGS_SIZE = 88;
const TRAMPOLINE_STACK = 16 * 1024;
const CHILD_STACK = 8 * 1024;
/**
 * glibc x86_64 syscall(): mov %rdi,%rax; mov %rsi,%rdi; mov %rdx,%rsi; mov %rcx,%rdx; mov %r8,%r10;
 * mov %r9,%r8; mov 8(%rsp),%r9; syscall; cmp $-4095,%rax; jae +1; ret.
 */
const SYSCALL_CODE = Buffer.from('4889f84889f74889d64889ca4d89c24d89c84c8b4c24080f05483d01f0ffff7301c3', 'hex');

interface Trampoline {
  ctx: { ptr: bigint; view: Buffer };
  childStack: bigint;
}

let tramp: Trampoline | null | undefined;

function trampoline(): Trampoline | null {
  if (tramp !== undefined) return tramp;
  tramp = null;
  if (process.arch !== 'x64') return null;
  const code = Buffer.from(koffi.view(symbol('syscall'), SYSCALL_CODE.length) as ArrayBuffer);
  if (!code.equals(SYSCALL_CODE)) return null;
  const ctx = allocNative(UC.size);
  const stack = allocNative(TRAMPOLINE_STACK);
  const child = allocNative(CHILD_STACK + 64);
  if (C.getcontext(ctx.ptr) !== 0) return null;
  ctx.view.writeBigUInt64LE(stack.ptr, UC.ssSp);
  ctx.view.writeInt32LE(0, UC.ssFlags);
  ctx.view.writeBigUInt64LE(BigInt(TRAMPOLINE_STACK), UC.ssSize);
  ctx.view.writeBigUInt64LE(0n, UC.link);
  signalMasks().full.copy(ctx.view, UC.sigmask);
  C.makecontext(ctx.ptr, symbol('setcontext'), 1, 'int64_t', 0n);
  // The wrapper's `ret` in the child pops this: setcontext(%rdi = clone_args = the trampoline context).
  child.view.writeBigUInt64LE(symbol('setcontext'), CHILD_STACK);
  tramp = { ctx, childStack: child.ptr };
  return tramp;
}

/** True when clone3 can start a context chain on this platform (x86_64 glibc with the expected syscall()). */
export function clone3Available(): boolean {
  return trampoline() !== null;
}

/**
 * clone3(flags | CLONE_PIDFD, exit SIGCHLD, into cgroup `cgroupFd`) of a child that runs setcontext(firstContext).
 * Returns the pid (the pidfd is stored at `pidfdPtr`), or -errno. The caller blocks signals around it.
 */
export function clone3Chain(flags: number, cgroupFd: number, firstContext: bigint, pidfdPtr: bigint, pidfdFlag: number): number {
  const t = trampoline();
  if (!t) return -ERRNO.ENOSYS;
  const v = t.ctx.view;
  v.writeBigUInt64LE(BigInt(flags) | BigInt(pidfdFlag) | CLONE_INTO_CGROUP, 0); // flags
  v.writeBigUInt64LE(pidfdPtr, 8); // pidfd
  v.writeBigUInt64LE(0n, 16); // child_tid
  v.writeBigUInt64LE(0n, 24); // parent_tid
  v.writeBigUInt64LE(BigInt(SIGNALS.CHLD), 32); // exit_signal
  v.writeBigUInt64LE(t.childStack, 40); // stack
  v.writeBigUInt64LE(BigInt(CHILD_STACK), 48); // stack_size
  v.writeBigUInt64LE(0n, 56); // tls
  v.writeBigUInt64LE(0n, 64); // set_tid
  v.writeBigUInt64LE(0n, 72); // set_tid_size
  v.writeBigUInt64LE(BigInt(cgroupFd), 80); // cgroup
  v.writeBigUInt64LE(firstContext, UC.gregs + 8 * ARG_REGS[0]); // the trampoline's setcontext argument
  const r = Number(C.syscall(SYS.clone3, 'void *', t.ctx.ptr, 'size_t', ARGS_SIZE));
  return r < 0 ? -lastErrno() : r;
}

