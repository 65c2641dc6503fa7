/**
 * The machine ABI the spawn engine depends on: ucontext_t layout and argument registers (x86_64 glibc; the
 * syscall numbers are in numbers.ts). A load-time self-check proves the layout with documented calls and
 * refuses to run otherwise, with a message that says why.
 */
import { C, allocNative, freeNative, symbol } from './libc.js';

/**
 * ucontext_t layout on x86_64 glibc. `stride` is the spacing of contexts in the arena; `fpregs` is uc_mcontext.fpregs,
 * a pointer getcontext sets to the context's own `__fpregs_mem` (at fpregsMem).
 */
export const UC = { size: 968, stride: 1024, link: 8, ssSp: 16, ssFlags: 24, ssSize: 32, gregs: 40, fpregs: 224, sigmask: 296, fpregsMem: 424 } as const;

let maskCache: { full: Buffer; empty: Buffer } | undefined;

/** glibc's full and empty sigset_t (128 bytes each), made once by sigfillset/sigemptyset. */
export function signalMasks(): { full: Buffer; empty: Buffer } {
  if (!maskCache) {
    const { ptr, view } = allocNative(256);
    try {
      C.sigfillset(ptr);
      C.sigemptyset(ptr + 128n);
      maskCache = { full: Buffer.from(view.subarray(0, 128)), empty: Buffer.from(view.subarray(128, 256)) };
    } finally {
      freeNative(ptr);
    }
  }
  return maskCache;
}

/** gregs indices that makecontext fills with arguments 0..5 (RDI, RSI, RDX, RCX, R8, R9). */
export const ARG_REGS = [8, 9, 12, 14, 0, 1] as const;

/** Why the spawn engine cannot run here, or undefined when it can. */
export class UnsupportedPlatformError extends Error {
  constructor(why: string) {
    super(`cordon's spawn engine cannot run on this machine: ${why}. Supported: Linux x86_64 with glibc.`);
    this.name = 'UnsupportedPlatformError';
  }
}

let checked: UnsupportedPlatformError | null | undefined;

/**
 * Verify once per process that this libc and CPU match the hard-coded layout: makecontext must leave its
 * marker arguments in the register slots the chain patches, and getcontext must store the signal mask
 * at uc_sigmask. Throws UnsupportedPlatformError otherwise.
 */
export function assertSupportedPlatform(): void {
  if (checked === undefined) checked = selfCheck();
  if (checked) throw checked;
}

function selfCheck(): UnsupportedPlatformError | null {
  if (process.platform !== 'linux') return new UnsupportedPlatformError(`platform is ${process.platform}, not linux`);
  if (process.arch !== 'x64') return new UnsupportedPlatformError(`architecture is ${process.arch}; only x86_64 is implemented (aarch64 has a different ucontext layout and syscall numbers)`);
  let version: string;
  try {
    version = C.gnuGetLibcVersion() as string;
  } catch {
    return new UnsupportedPlatformError('libc is not glibc (musl has no getcontext/makecontext)');
  }
  const u = allocNative(UC.size), stk = allocNative(4096), set = allocNative(256);
  try {
    C.sigemptyset(set.ptr);
    set.view[1] |= 0x02; // SIGUSR1 (10) as a marker
    C.pthread_sigmask(0 /* SIG_BLOCK */, set.ptr, set.ptr + 128n);
    C.getcontext(u.ptr);
    C.pthread_sigmask(2 /* SIG_SETMASK */, set.ptr + 128n, null);
    if ((u.view.readBigUInt64LE(UC.sigmask) & 0x200n) === 0n) return new UnsupportedPlatformError(`glibc ${version}: uc_sigmask is not at offset ${UC.sigmask}`);
    u.view.writeBigUInt64LE(stk.ptr, UC.ssSp);
    u.view.writeBigUInt64LE(4096n, UC.ssSize);
    u.view.writeBigUInt64LE(0n, UC.link);
    const marker = (i: number) => 0x5a5a5a5a00000000n + BigInt(i);
    const args: unknown[] = [];
    for (let i = 0; i < 6; i++) args.push('int64_t', marker(i));
    C.makecontext(u.ptr, symbol('_exit'), 6, ...args);
    for (let i = 0; i < 6; i++) {
      const got = u.view.readBigUInt64LE(UC.gregs + 8 * ARG_REGS[i]);
      if (got !== marker(i)) return new UnsupportedPlatformError(`glibc ${version}: makecontext argument ${i} is not in gregs[${ARG_REGS[i]}]`);
    }
    return null;
  } finally {
    freeNative(u.ptr);
    freeNative(stk.ptr);
    freeNative(set.ptr);
  }
}
