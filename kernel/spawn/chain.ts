/**
 * The spawn plan's compiler ("context chain"): compilePlan() lays a SpawnPlan out in one native arena of
 * ucontexts chained by uc_link, so the child runs only libc code between clone() and execve() (see
 * ../shared/design/SPAWN.md). The plan itself is built in spawn-plan.ts, which imports nothing from here;
 * nothing here calls clone: see spawn.ts.
 */
import { ARG_REGS, UC, assertSupportedPlatform, signalMasks } from '../sys/abi.js';
import { SYS } from '../sys/numbers.js';
import { SIGNALS } from '../process/signals.js';
import { PR } from '../sys/flags.js';
import { C, allocNative, fail, freeNative, symbol } from '../sys/libc.js';
import { type ArenaLayout, Blob, type ChainArg, type CheckMode, type FdRef, type PlanStep, type SpawnPlan, type StepRecord } from './spawn-plan.js';

/** Signals the child must not touch (SIGKILL, SIGSTOP, glibc's internal 32 and 33). */
const UNRESETTABLE = new Set([9, 19, 32, 33]);
const F_SETFD = 2;

interface Ctx {
  fn: string;
  args: Array<bigint | { data: number } | { lazy: (l: ArenaLayout) => bigint } | FdRef>;
  emptyMask: boolean;
}

const STACK = 64 * 1024;
const STAGGER = 128;
const CLONE_STACK = 16 * 1024;
const SCRATCH = 4096;

/** An fd-valued register slot (or a "/proc/self/fd/N" string) patched into the arena at spawn time. */
export interface FdPatch {
  offset: number;
  ref: FdRef;
  kind: 'register' | 'procfd' | 'int32';
}

const PROCFD_BYTES = 32;

function isFdRef(a: object): a is FdRef {
  return 'fd' in a || 'keep' in a || 'free' in a || 'stdio' in a || 'gap' in a;
}

/** Lay a plan out in native memory. The result spawns any number of children; free() it when done. */
export function compilePlan(plan: SpawnPlan): CompiledPlan {
  assertSupportedPlatform();
  const t0 = performance.now();
  const blob = new Blob();
  const ctxs: Ctx[] = [];
  // errno is known to be 0 right after a 'stop' step the child went on from (a non-zero one parks it), and a
  // successful call never sets it: a checked step right after one needs no memset. Any other context clears it.
  let errnoClean = false;
  const records: StepRecord[] = [];
  const procfdPatches: Array<{ blobOffset: number; ref: FdRef }> = [];
  const norm = (a: ChainArg): Ctx['args'][number] => {
    if (a === null) return 0n;
    if (typeof a === 'number' || typeof a === 'bigint') return BigInt(a);
    if (typeof a === 'string') return { data: blob.str(a) };
    if (a instanceof Uint8Array) return { data: blob.add(a) };
    if ('strv' in a) return { data: blob.strv(a.strv) };
    if ('procfd' in a) {
      const off = blob.add(Buffer.alloc(PROCFD_BYTES));
      procfdPatches.push({ blobOffset: off, ref: a.procfd });
      return { data: off };
    }
    if ('struct' in a) return { data: a.struct(blob) };
    if ('lazy' in a) return { lazy: a.lazy };
    if (isFdRef(a)) return a;
    throw new TypeError('bad chain argument');
  };
  const add = (fn: string, args: ChainArg[], emptyMask = false): number => {
    errnoClean = false;
    ctxs.push({ fn, args: args.map(norm), emptyMask });
    return ctxs.length - 1;
  };
  const lazy = (f: (l: ArenaLayout) => bigint): ChainArg => ({ lazy: f });
  const record = (r: StepRecord) => records.push(r) - 1;
  const frame = (k: number): ChainArg[] => [{ fd: 'report' }, lazy((l) => l.record(k)), 16];
  // The failure frame of record k: errno goes into bytes 1-4 of the iov_len of k's iovec, whose iov_base points
  // at that iov_len, so writev writes errno × 256 bytes — nothing after a success (a zero-length pipe write: no
  // data, no wake-up of the parent): the frame is iov_len (u64 length), k (u64 index), then whatever follows
  // in the arena (at least 80 KiB do: the blob's scratch and the stacks), which the parent skips. A 'stop' step
  // then readv()s the stop pipe through the same iovec: nothing to read returns at once, errno × 256 bytes
  // block forever (the child holds both ends; the parent kills it through its pidfd).
  const failureFrame = (k: number) => {
    add('memcpy', [lazy((l) => l.failure(k) + 9n), lazy((l) => l.errno), 4]);
    add('writev', [{ fd: 'report' }, lazy((l) => l.failure(k)), 1]);
  };
  const callStep = (fn: string, args: ChainArg[], label: string, check: CheckMode, tolerate: readonly number[] = [], field?: string) => {
    if (check === 'none') {
      add(fn, args);
      return;
    }
    const k = record({ kind: 'step', label, stops: check === 'stop', tolerate, field });
    if (!errnoClean) add('memset', [lazy((l) => l.errno), 0, 4]);
    add(fn, args);
    failureFrame(k);
    if (check === 'stop' && tolerate.length === 0) {
      add('readv', [{ fd: 'stopR' }, lazy((l) => l.failure(k)), 1]);
      errnoClean = true; // after the step's last context (add() clears it)
    }
  };

  // Prologue: die with the parent while parked, default signal dispositions, stdio, close inherited fds.
  callStep('prctl', [PR.SET_PDEATHSIG, SIGNALS.KILL, 0, 0, 0], 'prctl(PR_SET_PDEATHSIG, SIGKILL)', 'stop');
  // Until execve the child is an image of the runtime (Node's binary and heap): non-dumpable, so nothing in
  // the container can open its /proc/PID/exe, mem or fds (the CVE-2019-5736 class). execve resets it.
  callStep('prctl', [PR.SET_DUMPABLE, 0, 0, 0, 0], 'prctl(PR_SET_DUMPABLE, 0)', 'stop');
  for (let s = 1; s <= 64; s++) if (!UNRESETTABLE.has(s)) add('sigaction', [s, lazy((l) => l.data(dflOffset)), 0]);
  for (let i = 0; i < 3; i++) {
    callStep('dup2', [{ stdio: i }, i], `dup2(stdio[${i}], ${i})`, 'stop');
    add('fcntl', [i, F_SETFD, 0]); // Node marks 0-2 close-on-exec; dup2(i, i) keeps that flag
  }
  // Preserved fds to 3..: spawn() has moved every fd the child needs (these sources too) above that range.
  for (let i = 0; i < plan.preserved; i++) callStep('dup2', [{ keep: `preserve:${i}` }, 3 + i], `dup2(preserved fd ${i}, ${3 + i})`, 'stop');
  const nClose = 4 + plan.keepNames.length + 1;
  for (let j = 0; j < nClose; j++) {
    callStep('syscall', [SYS.close_range, { gap: j, hi: false }, { gap: j, hi: true }, 0], `close_range(inherited fds, part ${j})`, 'stop');
  }

  let exec: Extract<PlanStep, { t: 'exec' }> | undefined;
  for (const st of plan.steps) {
    if (st.t === 'call') callStep(st.fn, st.args, st.label, st.check, st.tolerate, st.field);
    else if (st.t === 'gate') {
      const k = record({ kind: 'gate', name: st.name, label: `gate(${st.name})`, stops: true, tolerate: [], pipe: st.fd === undefined });
      add('write', frame(k));
      const stop = ctxs.length + 1;
      // The byte read lands in the count slot of the next read: 0x00 passes; EOF leaves 1 and parks the child.
      add('read', [st.fd ?? { fd: 'gate' }, lazy((l) => l.register(stop, 2)), 1]);
      add('read', [{ fd: 'stopR' }, lazy((l) => l.scratch), 1]);
    } else exec = st;
  }
  if (!exec) throw new Error('spawn plan has no exec step');
  const kx = record({ kind: 'exec', label: `execve(${JSON.stringify(exec.path)})`, stops: true, tolerate: [] });
  // The exec marker: EOF of the (close-on-exec) report pipe after it, without a failure frame, is a done execve.
  add('write', frame(kx));
  // A parent that detached (`run -d`, a `create` process that exited) has closed the report pipe: the marker's
  // write then raised a SIGPIPE, pending because every signal is blocked, which execve's unblocked mask would
  // deliver with its default action. Take it off the queue first (nothing pending: EAGAIN, ignored).
  add('sigtimedwait', [lazy((l) => l.data(sigpipeSetOffset)), null, lazy((l) => l.data(zeroTimeOffset))]);
  add('execve', [exec.path, { strv: exec.argv }, { strv: exec.envp }], true); // the only context with signals unblocked
  failureFrame(kx);
  add('_exit', [127]);

  const dflOffset = blob.add(Buffer.alloc(152)); // struct sigaction with SIG_DFL
  const sigpipeSet = Buffer.alloc(128);
  sigpipeSet.writeBigUInt64LE(1n << 12n, 0); // SIGPIPE (13)
  const sigpipeSetOffset = blob.add(sigpipeSet);
  const zeroTimeOffset = blob.add(Buffer.alloc(16)); // struct timespec {0, 0}
  // Per record, 40 bytes: failure iovec {iov_base, iov_len 0}, k, then the static frame {16, k}.
  const FRAMES = 40;
  const recBase = blob.add(Buffer.alloc(FRAMES * records.length));
  const scratch = blob.add(Buffer.alloc(SCRATCH));

  // Arena: [ucontexts][blob][clone stack][chain stack region].
  const n = ctxs.length;
  const blobOff = n * UC.stride;
  const cloneStackOff = Math.ceil((blobOff + blob.size) / 64) * 64;
  const stackOff = cloneStackOff + CLONE_STACK;
  const total = stackOff + STACK + STAGGER * (n + 1);
  const { ptr: A, view: V } = allocNative(total);
  const D = A + BigInt(blobOff);
  for (const [off, b] of blob.parts) b.copy(V, blobOff + off);
  for (const [at, target] of blob.relocs) V.writeBigUInt64LE(D + BigInt(target), blobOff + at);
  for (let k = 0; k < records.length; k++) {
    const o = blobOff + recBase + FRAMES * k;
    V.writeBigUInt64LE(D + BigInt(recBase + FRAMES * k + 8), o);
    V.writeBigUInt64LE(0n, o + 8);
    V.writeBigUInt64LE(BigInt(k), o + 16);
    V.writeBigUInt64LE(16n, o + 24);
    V.writeBigUInt64LE(BigInt(k), o + 32);
  }
  const ctxAddr = (i: number) => A + BigInt(i * UC.stride);
  const errnoAddr = BigInt(C.errnoLocation() as bigint);
  const layout: ArenaLayout = {
    errno: errnoAddr,
    scratch: D + BigInt(scratch),
    data: (off) => D + BigInt(off),
    record: (k) => D + BigInt(recBase + FRAMES * k + 24),
    failure: (k) => D + BigInt(recBase + FRAMES * k),
    register: (i, a) => ctxAddr(i) + BigInt(UC.gregs + 8 * ARG_REGS[a]),
  };
  const patches: FdPatch[] = [];
  const stackBase = A + BigInt(stackOff);
  const masks = signalMasks();
  try {
    // One getcontext; the other contexts are copies of it with uc_mcontext.fpregs re-pointed at their own
    // __fpregs_mem (two thirds fewer native calls: a fresh CLI process compiles ~1,200 contexts cold).
    if (n > 0 && C.getcontext(ctxAddr(0)) !== 0) fail('getcontext');
    const copyable = n > 0 && V.readBigUInt64LE(UC.fpregs) === ctxAddr(0) + BigInt(UC.fpregsMem);
    for (let i = 0; i < n; i++) {
      const c = ctxs[i];
      const u = ctxAddr(i);
      const o = i * UC.stride;
      if (i > 0) {
        if (copyable) {
          V.copy(V, o, 0, UC.size);
          V.writeBigUInt64LE(u + BigInt(UC.fpregsMem), o + UC.fpregs);
        } else if (C.getcontext(u) !== 0) fail('getcontext');
      }
      V.writeBigUInt64LE(i + 1 < n ? ctxAddr(i + 1) : 0n, o + UC.link);
      // One stack region; context i's top is STACK + i*STAGGER above the base, so the return trampoline and
      // uc_link that makecontext stores at each top never collide (SPAWN.md, "Stacks").
      V.writeBigUInt64LE(stackBase, o + UC.ssSp);
      V.writeInt32LE(0, o + UC.ssFlags);
      V.writeBigUInt64LE(BigInt(STACK + STAGGER * i), o + UC.ssSize);
      (c.emptyMask ? masks.empty : masks.full).copy(V, o + UC.sigmask);
      const vals = c.args.map((a, j) => {
        if (typeof a === 'bigint') return BigInt.asIntN(64, a);
        if ('data' in a) return D + BigInt(a.data);
        if ('lazy' in a) return BigInt.asIntN(64, a.lazy(layout));
        patches.push({ offset: o + UC.gregs + 8 * ARG_REGS[j], ref: a, kind: 'register' });
        return 0n;
      });
      const varargs: unknown[] = [];
      for (const v of vals) varargs.push('int64_t', v);
      C.makecontext(u, symbol(c.fn), vals.length, ...varargs);
    }
  } catch (e) {
    freeNative(A);
    throw e;
  }
  for (const p of procfdPatches) patches.push({ offset: blobOff + p.blobOffset, ref: p.ref, kind: 'procfd' });
  for (const [at, ref] of blob.fdSlots) patches.push({ offset: blobOff + at, ref, kind: 'int32' });
  return new CompiledPlan({
    arena: A,
    view: V,
    size: total,
    contexts: n,
    records,
    patches,
    keepNames: [...plan.keepNames],
    preserved: plan.preserved,
    cloneStackTop: A + BigInt(cloneStackOff + CLONE_STACK),
    firstContext: ctxAddr(0),
    compileMs: performance.now() - t0,
  });
}

/** A plan laid out in native memory, ready to spawn from. */
export class CompiledPlan {
  /** Arena base address. */
  arena: bigint;
  readonly view: Buffer;
  /** Arena size in bytes. */
  readonly size: number;
  /** Number of ucontexts. */
  readonly contexts: number;
  readonly records: readonly StepRecord[];
  readonly patches: readonly FdPatch[];
  readonly keepNames: readonly string[];
  /** Fds passed through as 3..3+N-1 (see SpawnPlan.preserveFds). */
  readonly preserved: number;
  readonly cloneStackTop: bigint;
  readonly firstContext: bigint;
  /** Time compilePlan() took. */
  readonly compileMs: number;

  constructor(p: {
    arena: bigint; view: Buffer; size: number; contexts: number; records: StepRecord[]; patches: FdPatch[];
    keepNames: string[]; preserved: number; cloneStackTop: bigint; firstContext: bigint; compileMs: number;
  }) {
    this.arena = p.arena;
    this.view = p.view;
    this.size = p.size;
    this.contexts = p.contexts;
    this.records = p.records;
    this.patches = p.patches;
    this.keepNames = p.keepNames;
    this.preserved = p.preserved;
    this.cloneStackTop = p.cloneStackTop;
    this.firstContext = p.firstContext;
    this.compileMs = p.compileMs;
  }

  /** Release the native arena. Children already spawned keep their own copy. */
  free(): void {
    if (this.arena !== 0n) {
      freeNative(this.arena);
      this.arena = 0n;
    }
  }
}

/** The fd numbers of one spawn, from which every FdRef is resolved. */
export interface SpawnFds {
  report: number;
  gate: number;
  stopR: number;
  stopW: number;
  /** Kept fds in the order of CompiledPlan.keepNames. */
  keep: readonly number[];
  stdio: readonly number[];
  /** Number of preserved fds at 3..3+N-1 (0 when none); every other fd here is above them. */
  preserved?: number;
}

/**
 * The number behind an FdRef for one spawn. Gaps are the ranges between kept fds that close_range closes;
 * an empty gap becomes close_range(~0, ~0), a no-op.
 */
export function resolveFd(ref: FdRef, fds: SpawnFds, keepNames: readonly string[]): number {
  if ('fd' in ref) return fds[ref.fd];
  if ('stdio' in ref) return fds.stdio[ref.stdio] ?? ref.stdio;
  if ('keep' in ref) {
    const i = keepNames.indexOf(ref.keep);
    if (i < 0 || fds.keep[i] === undefined) throw new Error(`spawn: no fd passed for "${ref.keep}"`);
    return fds.keep[i];
  }
  const kept = [fds.report, fds.gate, fds.stopR, fds.stopW, ...fds.keep].sort((a, b) => a - b);
  const first = 3 + (fds.preserved ?? 0);
  if ('free' in ref) {
    let k = ref.free;
    for (let x = first; ; x++) {
      if (kept.includes(x)) continue;
      if (k-- === 0) return x;
    }
  }
  let lo = first;
  for (let i = 0; i < kept.length; i++) {
    if (i === ref.gap) return kept[i] > lo ? (ref.hi ? kept[i] - 1 : lo) : 0xffffffff;
    lo = kept[i] + 1;
  }
  return ref.hi ? 0xffffffff : lo;
}
