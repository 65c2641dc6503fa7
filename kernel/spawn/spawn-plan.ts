/**
 * The spawn plan: the list of libc calls a child makes between clone() and execve(), with the fds, gates and
 * per-step error handling they need, and the blob of data (strings, structs) they point into. Pure data:
 * chain.ts compiles it into native memory, spawn.ts runs it.
 */
import { SYS } from '../sys/numbers.js';

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
}
