/**
 * The spawn plan ("context chain") and its compiler. A plan is a list of libc calls the child makes between
 * clone() and execve(); compile() lays it out in one native arena of ucontexts chained by uc_link, so the
 * child runs only libc code (see ../shared/design/SPAWN.md). Nothing here calls clone: see spawn.ts.
 */
import { ARG_REGS, SYS, UC, assertSupportedPlatform, signalMasks } from './abi.js';
import { PR } from './constants.js';
import { C, allocNative, fail, freeNative, symbol } from './libc.js';

/** A file descriptor whose number is known only at spawn time, patched into the arena then. */
export type FdRef =
  | { readonly fd: 'report' | 'gate' | 'stopR' | 'stopW' }
  /** An fd the caller passes to spawn() under this name (kept open in the child). */
  | { readonly keep: string }
  /** The k-th lowest fd number free in the child after its inherited fds are closed (for open/openat results). */
  | { readonly free: number }
  /** The caller's source for stdio slot i (defaults to i itself). */
  | { readonly stdio: number }
  /** Lower or upper bound of the j-th range between kept fds, for close_range. */
  | { readonly gap: number; readonly hi: boolean };

/** Addresses inside the arena, for lazily resolved arguments. */
export interface ArenaLayout {
  /** Address of the thread's errno (the child is a copy of this thread). */
  readonly errno: bigint;
  /** A scratch buffer of 4 KiB. */
  readonly scratch: bigint;
  /** Address of the blob offset returned by Blob.add(). */
  data(offset: number): bigint;
  /** Address of record k's static frame ({u64 length 16, u64 index}): what a gate or the exec marker writes. */
  record(k: number): bigint;
  /**
   * Address of record k's failure iovec {iov_base → its own iov_len, iov_len} followed by k: iov_len and k are
   * the failure frame's header (see failureFrame in compile).
   */
  failure(k: number): bigint;
  /** Address of the register slot holding argument `arg` of context `ctx`. */
  register(ctx: number, arg: number): bigint;
}

/** One argument of a chain call. Numbers and bigints are passed as one 64-bit register. */
export type ChainArg =
  | null
  | number
  | bigint
  | string
  | Uint8Array
  | FdRef
  | { readonly strv: readonly string[] }
  /** The string "/proc/self/fd/N" for an fd known only at spawn time (written into the arena then). */
  | { readonly procfd: FdRef }
  | { readonly struct: (blob: Blob) => number }
  | { readonly lazy: (layout: ArenaLayout) => bigint };

/** How the outcome of a call is handled. */
export type CheckMode =
  /** Report {step, errno}; a non-zero errno stops the child right there (parent kills it). */
  | 'stop'
  /** Report {step, errno} and go on; the parent fails the spawn unless errno is 0 or in `tolerate`. */
  | 'report'
  /** Fire and forget (signal resets, closes of scratch fds). */
  | 'none';

/** Options of one call step. */
export interface CallOptions {
  /** What the error message calls this step, e.g. `mount("proc", "/proc", "proc")`. Defaults to `fn()`. */
  label?: string;
  check?: CheckMode;
  /** errno values that are not a failure (with check 'report' or 'stop'). */
  tolerate?: readonly number[];
  /** The config field this step implements (`mounts[3]`), named in errors. */
  field?: string;
}

/** A step of the plan. */
export type PlanStep =
  | { t: 'call'; fn: string; args: ChainArg[]; label: string; check: CheckMode; tolerate: readonly number[]; field?: string }
  | { t: 'gate'; name: string; fd?: FdRef }
  | { t: 'exec'; path: string; argv: string[]; envp: string[] };

/**
 * A record of the plan: what the parent knows about a step. The child writes frames to the report pipe, each
 * {u64 length, u64 record index, length - 16 more bytes}: a gate's arrival and the exec marker (length 16,
 * errno 0) always, a call only when it failed (length errno × 256).
 */
export interface StepRecord {
  kind: 'step' | 'gate' | 'exec';
  label: string;
  /** Gate name for gates. */
  name?: string;
  /** For gates: released through the gate pipe by the spawning process (else through the gate's own fd). */
  pipe?: boolean;
  /** true when the child stops on failure (check 'stop', gates, exec). */
  stops: boolean;
  tolerate: readonly number[];
  field?: string;
}

/** Strings, tables and structs placed in the arena. */
export class Blob {
  /** [offset, bytes] parts. */
  readonly parts: Array<[number, Buffer]> = [];
  /** [offset of a pointer slot, offset it points to]. */
  readonly relocs: Array<[number, number]> = [];
  /** [offset of an int32 slot, fd whose number is written there at spawn time] (SCM_RIGHTS payloads). */
  readonly fdSlots: Array<[number, FdRef]> = [];
  size = 0;
  private readonly strings = new Map<string, number>();

  /** Append bytes aligned to `align`; returns their offset. */
  add(buf: Uint8Array, align = 8): number {
    this.size = Math.ceil(this.size / align) * align;
    const off = this.size;
    this.parts.push([off, Buffer.from(buf)]);
    this.size += buf.length;
    return off;
  }

  /** A NUL-terminated string (deduplicated). */
  str(s: string): number {
    let off = this.strings.get(s);
    if (off === undefined) {
      off = this.add(Buffer.from(s + '\0'), 1);
      this.strings.set(s, off);
    }
    return off;
  }

  /** A NULL-terminated table of string pointers (argv/envp). */
  strv(arr: readonly string[]): number {
    const offs = arr.map((s) => this.str(s));
    const table = this.add(Buffer.alloc(8 * (arr.length + 1)));
    offs.forEach((o, i) => this.relocs.push([table + 8 * i, o]));
    return table;
  }

  /** Mark the 4 bytes at `at` to receive the number of `ref` at spawn time. */
  fdSlot(at: number, ref: FdRef): void {
    this.fdSlots.push([at, ref]);
  }

  /** Mark the 8 bytes at `at` as a pointer to blob offset `target`. */
  pointer(at: number, target: number): void {
    this.relocs.push([at, target]);
  }
}

/** Signals the child must not touch (SIGKILL, SIGSTOP, glibc's internal 32 and 33). */
const UNRESETTABLE = new Set([9, 19, 32, 33]);
const SIGKILL = 9;
const F_SETFD = 2;

/** A spawn plan: the libc calls a child makes, in order, ending in execve. */
export class SpawnPlan {
  readonly steps: PlanStep[] = [];
  /** Names of fds the caller passes at spawn time (kept open in the child). */
  readonly keepNames: string[] = [];
  /** How many fds the caller passes as `keep["preserve:I"]` to become the exec'd process's 3, 4, ... (runc --preserve-fds). */
  preserved = 0;

  /** Pass `n` fds (keep names "preserve:0".."preserve:N-1") through to the exec'd process as fds 3..3+n-1. */
  preserveFds(n: number): this {
    for (let i = this.preserved; i < n; i++) this.keep(`preserve:${i}`);
    this.preserved = Math.max(this.preserved, n);
    return this;
  }

  /** Declare an fd the caller passes to spawn() as `keep[name]`; returns its reference for arguments. */
  keep(name: string): FdRef {
    if (!this.keepNames.includes(name)) this.keepNames.push(name);
    return { keep: name };
  }

  /** Append a libc call. */
  call(fn: string, args: ChainArg[], opts: CallOptions = {}): this {
    if (args.length > 6) throw new Error(`${fn}: at most 6 arguments`);
    this.steps.push({ t: 'call', fn, args, label: opts.label ?? `${fn}()`, check: opts.check ?? 'stop', tolerate: opts.tolerate ?? [], field: opts.field });
    return this;
  }

  /** Append a raw syscall (for calls whose glibc wrapper is unsafe in the child, such as set*id). */
  sys(nr: number, args: ChainArg[], opts: CallOptions = {}): this {
    if (args.length > 5) throw new Error(`syscall ${nr}: at most 5 arguments`);
    const name = Object.entries(SYS).find(([, v]) => v === nr)?.[0] ?? String(nr);
    return this.call('syscall', [nr, ...args], { ...opts, label: opts.label ?? `${name}()` });
  }

  /**
   * A gate: the child reports arrival, then reads one byte from the gate pipe (or from `fd`, e.g. the exec
   * fifo of a detached create); 0x00 lets it pass; EOF parks it forever.
   */
  gate(name: string, fd?: FdRef): this {
    this.steps.push({ t: 'gate', name, fd });
    return this;
  }

  /** The final execve. */
  exec(path: string, argv: string[], envp: string[]): this {
    this.steps.push({ t: 'exec', path, argv, envp });
    return this;
  }

  /** Lay the plan out in native memory. The result spawns any number of children; free() it when done. */
  compile(): CompiledPlan {
    return compilePlan(this);
  }
}

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

function compilePlan(plan: SpawnPlan): CompiledPlan {
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
  callStep('prctl', [PR.SET_PDEATHSIG, SIGKILL, 0, 0, 0], 'prctl(PR_SET_PDEATHSIG, SIGKILL)', 'stop');
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
  /** Time compile() took. */
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
