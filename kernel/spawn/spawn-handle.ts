/**
 * The handle of a spawned child: its pid and pidfd, its progress through the plan read from the report pipe
 * (per-step failures, gates, the exec marker), its exit through the pidfd on the event loop, and the
 * SpawnError that names a failed step. spawn.ts creates it; the options it follows are SpawnOptions.
 */
import fs from 'node:fs';
import net from 'node:net';
import { C, errnoName, errnoText, koffi } from '../sys/libc.js';
import { SYS } from '../sys/numbers.js';
import { type ExitStatus, reapOwnChild } from '../process/pidfd.js';
import type { StepRecord } from './spawn-plan.js';

/** Why a spawn failed: which step, with which arguments, and errno (or another reason). */
export class SpawnError extends Error {
  /** Index of the failing record. */
  readonly step: number;
  /** The step, with its arguments, e.g. `mount("proc", "/proc", "proc")`. */
  readonly label: string;
  /** errno of the failing call, if it failed with one. */
  readonly errno?: number;
  /** errno name ("ENOENT"), if any. */
  readonly code?: string;
  /** The config field the step implements, if known. */
  readonly field?: string;
  /** The child's pid. */
  readonly pid: number;

  constructor(info: { step: number; label: string; errno?: number; why?: string; field?: string; pid: number }) {
    const what = info.errno !== undefined ? `failed: ${errnoText(info.errno)}` : (info.why ?? 'failed');
    super(`${info.field ? `${info.field}: ` : ''}${info.label} ${what}`);
    this.name = 'SpawnError';
    this.step = info.step;
    this.label = info.label;
    this.errno = info.errno;
    this.code = info.errno !== undefined ? errnoName(info.errno) : undefined;
    this.field = info.field;
    this.pid = info.pid;
  }
}

/** Called when the child arrives at a gate. For pipe gates the child passes when the returned promise resolves. */
export type GateHandler = (handle: SpawnHandle) => void | Promise<void>;

/** Per-spawn options. */
export interface SpawnOptions {
  /** CLONE_NEW* flags for the namespaces to create. */
  namespaces?: number;
  /** Parent fds to place on the child's 0, 1, 2 (default: the parent's own 0-2). */
  stdio?: readonly number[];
  /** Fds passed under the names the plan declared with keep(). */
  keep?: Record<string, number>;
  /** Parent fds to close right after clone (the child has its copies). */
  closeAfter?: readonly number[];
  /** Handlers for gates by name. */
  gates?: Record<string, GateHandler>;
  /** Fail (and kill the child) if it has not exec'd within this time; arriving at a gate named `start` (a created container, which waits there as long as it likes) stops the clock. */
  timeoutMs?: number;
  /** An open pid namespace fd: the child is created inside that namespace (setns of pid_for_children). */
  pidNamespaceFd?: number;
  /**
   * An open cgroup v2 directory: the child is created in it (clone3 with CLONE_INTO_CGROUP), when the platform
   * allows; the handle's `intoCgroup` says whether it was.
   */
  intoCgroupFd?: number;
}

/** Timestamps (performance.now()) of one spawn. */
export interface SpawnTimings {
  start: number;
  cloned: number;
  gates: Record<string, number>;
  exec?: number;
  reaped?: number;
}

type State = 'setup' | 'started' | 'failed' | 'died' | 'detached';

/** A spawned child: its pid and pidfd, its progress through the plan, and its exit. */
export class SpawnHandle {
  /** Host pid of the child. */
  readonly pid: number;
  /** pidfd of the child (-1 once reaped or detached). */
  pidfd: number;
  /** Resolves when execve succeeded; rejects with SpawnError when a step failed. */
  readonly started: Promise<void>;
  /** Resolves with the exit status once the child was reaped. */
  readonly exited: Promise<ExitStatus>;
  readonly timings: SpawnTimings;
  /** Exit status once known. */
  status: ExitStatus | null = null;
  /** The child was created in the cgroup of SpawnOptions.intoCgroupFd (clone3 with CLONE_INTO_CGROUP). */
  readonly intoCgroup: boolean;
  /** Steps that failed with a tolerated errno (an absent masked path, an existing device node). */
  readonly tolerated: Array<{ step: number; label: string; errno: number }> = [];

  private state: State = 'setup';
  /** Index after the last record a frame came for. */
  private next = 0;
  /** The child wrote the exec marker: EOF without a failure frame then means execve succeeded. */
  private execReached = false;
  private eof = false;
  private gateW: number;
  private buf: Buffer = Buffer.alloc(0);
  private records: readonly StepRecord[];
  private opts: SpawnOptions;
  private readonly sock: net.Socket;
  private poll: { close(): void } | null;
  private timer?: NodeJS.Timeout;
  private resolveStarted!: () => void;
  private rejectStarted!: (e: Error) => void;
  private resolveExited!: (s: ExitStatus) => void;
  private readonly arrivals = new Map<string, { promise: Promise<void>; resolve: () => void; reject: (e: Error) => void }>();

  constructor(p: { pid: number; pidfd: number; reportR: number; gateW: number; records: readonly StepRecord[]; opts: SpawnOptions; t0: number; intoCgroup?: boolean }) {
    this.pid = p.pid;
    this.intoCgroup = p.intoCgroup === true;
    this.pidfd = p.pidfd;
    this.gateW = p.gateW;
    this.records = p.records;
    this.opts = p.opts;
    this.timings = { start: p.t0, cloned: performance.now(), gates: {} };
    this.started = new Promise((res, rej) => {
      this.resolveStarted = res;
      this.rejectStarted = rej;
    });
    this.started.catch(() => {});
    this.exited = new Promise((res) => {
      this.resolveExited = res;
    });
    this.sock = new net.Socket({ fd: p.reportR, readable: true, writable: false });
    this.sock.on('data', (d: Buffer) => this.onData(d));
    this.sock.on('end', () => this.onEof());
    this.sock.on('close', () => this.onEof());
    this.sock.on('error', () => {});
    this.poll = koffi.node.poll(this.pidfd, { readable: true }, () => this.reap());
    // Closures here must not capture `p`: the pidfd poll's callback lives as long as the child, and would pin p.opts.
    const timeoutMs = p.opts.timeoutMs;
    if (timeoutMs) {
      this.timer = setTimeout(() => this.failWith({ ...this.whereabouts(), why: `timed out after ${timeoutMs} ms` }), timeoutMs);
    }
  }

  /** Resolves when the child reports arrival at gate `name`; rejects if it fails or dies first. */
  arrived(name: string): Promise<void> {
    return this.arrival(name).promise;
  }

  private arrival(name: string) {
    let a = this.arrivals.get(name);
    if (!a) {
      let resolve!: () => void, reject!: (e: Error) => void;
      const promise = new Promise<void>((res, rej) => {
        resolve = res;
        reject = rej;
      });
      promise.catch(() => {});
      a = { promise, resolve, reject };
      this.arrivals.set(name, a);
    }
    return a;
  }

  /** Send a signal through the pidfd (no pid-reuse race). Returns false if the child is gone. */
  kill(signal = 9): boolean {
    if (this.pidfd < 0) return false;
    return (C.syscall(SYS.pidfd_send_signal, 'int', this.pidfd, 'int', signal, 'void *', null, 'uint', 0) as number) === 0;
  }

  /**
   * Stop following the child without reaping it: close the pidfd, the report pipe and the gate, so this
   * process can exit while the child lives on (a detached `create`).
   */
  detach(): void {
    if (this.state === 'setup') this.state = 'detached';
    this.poll?.close();
    this.poll = null;
    if (this.pidfd >= 0) C.close(this.pidfd);
    this.pidfd = -1;
    this.closeGate();
    this.sock.destroy();
  }

  // Frames: {u64 length, u64 record index, length - 16 bytes to skip}; a call's frame comes only when it failed,
  // with length errno × 256; gates and the exec marker have length 16 (chain.ts, "failureFrame").
  private onData(d: Buffer): void {
    this.buf = this.buf.length ? Buffer.concat([this.buf, d]) : d;
    while (this.buf.length >= 16) {
      const len = Number(this.buf.readBigUInt64LE(0));
      const idx = Number(this.buf.readBigUInt64LE(8));
      if (len < 16 || (len > 16 && len % 256 !== 0)) {
        this.buf = Buffer.alloc(0);
        this.failWith({ step: idx, label: this.records[idx]?.label ?? '?', why: `protocol error (frame length ${len})` });
        return;
      }
      if (this.buf.length < len) return;
      this.buf = this.buf.subarray(len);
      const errno = len === 16 ? 0 : len / 256;
      if (this.state !== 'setup') continue;
      const r = this.records[idx];
      // In order; the exec record twice at most: its marker, then a failure frame if execve returned.
      const execFailure = r?.kind === 'exec' && errno !== 0 && this.execReached && idx === this.next - 1;
      if ((idx < this.next && !execFailure) || !r) {
        this.failWith({ step: idx, label: r?.label ?? '?', why: `protocol error (record ${idx} after ${this.next - 1})` });
        continue;
      }
      this.next = idx + 1;
      if (r.kind === 'gate') void this.onGate(r.name ?? '', r.pipe === true);
      else if (r.kind === 'exec' && errno === 0) this.execReached = true;
      else if (errno !== 0 && !r.tolerate.includes(errno)) this.failWith({ step: idx, label: r.label, errno, field: r.field });
      else if (errno !== 0) this.tolerated.push({ step: idx, label: r.label, errno });
    }
  }

  /** Where the child is known to be, for errors without a failure frame (a timeout, a death). */
  private whereabouts(): { step: number; label: string } {
    const last = this.records[this.next - 1];
    return { step: this.next, label: last ? `a step after ${last.label}` : (this.records[0]?.label ?? '?') };
  }

  // Arrival is announced first; a pipe gate is then released once the handler (if any) resolved, so a
  // handler can hold the child at its gate (the start gate of a created container waits for start()).
  private async onGate(name: string, pipe: boolean): Promise<void> {
    this.timings.gates[name] = performance.now();
    if (name === 'start' && this.timer) clearTimeout(this.timer);
    this.arrival(name).resolve();
    const handler = this.opts.gates?.[name];
    try {
      if (handler) await handler(this);
    } catch (e) {
      this.failWith({ step: this.next - 1, label: `gate(${name})`, why: `failed: ${(e as Error).message}`, cause: e });
      return;
    }
    if (this.state !== 'setup') return;
    if (pipe && this.gateW >= 0) fs.writeSync(this.gateW, Buffer.from([0]));
  }

  private onEof(): void {
    this.eof = true;
    this.settle();
  }

  // The report pipe is close-on-exec: EOF after every record but execve's means the exec happened.
  private settle(): void {
    if (this.state !== 'setup' || !this.eof) return;
    if (this.execReached) {
      this.state = 'started';
      // Gate handlers and step records are done with after execve; let them (and the setup they close over) go.
      this.opts = { ...this.opts, gates: undefined };
      this.records = [];
      this.timings.exec = performance.now();
      this.closeGate();
      this.resolveStarted();
    } else if (this.status) {
      const s = this.status;
      this.failWith({ ...this.whereabouts(), why: `not reached: the child died before exec (${s.signal ? `signal ${s.signal}` : `exit ${s.code}`})` }, false);
      this.state = 'died';
    }
  }

  private failWith(info: { step: number; label: string; errno?: number; why?: string; field?: string; cause?: unknown }, kill = true): void {
    if (this.state !== 'setup') return;
    this.state = 'failed';
    if (kill) this.kill(9);
    this.closeGate();
    const err = new SpawnError({ ...info, pid: this.pid });
    if (info.cause !== undefined) (err as { cause?: unknown }).cause = info.cause;
    for (const a of this.arrivals.values()) a.reject(err);
    this.rejectStarted(err);
  }

  private closeGate(): void {
    if (this.gateW >= 0) {
      C.close(this.gateW);
      this.gateW = -1;
    }
    if (this.timer) clearTimeout(this.timer);
  }

  private reap(): void {
    if (this.pidfd < 0) return;
    // Another waiter here (a reconcile) may have reaped it first: then its status comes from that waiter.
    const status = reapOwnChild(this.pidfd, this.pid);
    if (!status) return;
    this.status = status;
    this.timings.reaped = performance.now();
    this.poll?.close();
    this.poll = null;
    C.close(this.pidfd);
    this.pidfd = -1;
    this.settle();
    this.resolveExited(status);
  }
}
