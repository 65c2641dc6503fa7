/**
 * Domain-level steps for the child's chain (open in root, mkdir -p, mount via /proc/self/fd, write a file),
 * on top of SpawnPlan. It tracks which deterministic fd slots are open, since the child cannot return
 * values: an open() in the child lands on the lowest free slot, which this builder predicts.
 */
import { ERRNO, SYS } from '../sys/numbers.js';
import { type Blob, type CallOptions, type ChainArg, type FdRef, SpawnPlan } from './spawn-plan.js';
import { MS } from '../../config/linux/mount-flags.js';
import { O, RESOLVE } from '../sys/flags.js';

/** Render MS_* flags for labels ("MS_BIND|MS_REC"). */
export function msFlagNames(flags: number): string {
  const names = Object.entries(MS).filter(([, v]) => (flags & v) !== 0).map(([k]) => `MS_${k}`);
  return names.length ? names.join('|') : '0';
}

/** struct open_how {u64 flags; u64 mode; u64 resolve}. */
function openHow(flags: number, resolve: number, mode = 0): Uint8Array {
  const b = Buffer.alloc(24);
  b.writeBigUInt64LE(BigInt(flags), 0);
  b.writeBigUInt64LE(BigInt(mode), 8);
  b.writeBigUInt64LE(BigInt(resolve), 16);
  return b;
}

/** A plan under construction plus the child's fd slot bookkeeping. */
export class ChildSteps {
  readonly plan: SpawnPlan;
  private readonly open = new Set<number>();

  constructor(plan = new SpawnPlan()) {
    this.plan = plan;
  }

  /** The slot the next successful open() in the child lands on; marks it open. */
  private take(): FdRef {
    let k = 0;
    while (this.open.has(k)) k++;
    this.open.add(k);
    return { free: k };
  }

  /** Close a slot taken earlier. */
  close(ref: FdRef): void {
    if (!('free' in ref)) throw new Error('close: not a slot');
    this.plan.call('close', [ref], { check: 'none' });
    this.open.delete(ref.free);
  }

  /** openat2(dirfd, path, how) with resolve flags; 'stop' checked by default. */
  openat2(dirfd: FdRef | number, path: string, flags: number, resolve: number, opts: CallOptions = {}): FdRef {
    const ref = this.take();
    this.plan.sys(SYS.openat2, [dirfd, path, openHow(flags | O.CLOEXEC, resolve), 24], {
      label: opts.label ?? `openat2(${typeof dirfd === 'number' ? 'AT_FDCWD' : 'rootfs'}, ${JSON.stringify(path)}, RESOLVE_IN_ROOT)`,
      ...opts,
    });
    return ref;
  }

  /** A call that returns a new fd (socket, memfd, ...): it lands on the next free slot. */
  openPathLike(fn: string, args: ChainArg[], opts: CallOptions = {}): FdRef {
    const ref = this.take();
    this.plan.call(fn, args, opts);
    return ref;
  }

  /** open(path) relative to the current root. */
  openPath(path: string, flags: number, opts: CallOptions = {}): FdRef {
    const ref = this.take();
    this.plan.call('open', [path, flags | O.CLOEXEC, 0o644], { label: opts.label ?? `open(${JSON.stringify(path)})`, ...opts });
    return ref;
  }

  /**
   * mkdir -p of `path` inside the root held by `root`, one component at a time, every lookup confined to the
   * root (RESOLVE_IN_ROOT), so a symlink in the path can never lead the mkdir out of it. Existing parts are
   * fine; a real failure shows up when the path is opened for mounting.
   */
  mkdirAll(root: FdRef, path: string, opts: { asFile?: boolean; mode?: number } = {}): void {
    const parts = path.split('/').filter(Boolean);
    for (let i = 0; i < parts.length; i++) {
      const parent = '/' + parts.slice(0, i).join('/');
      const dir = this.openat2(root, parent, O.PATH | O.DIRECTORY, RESOLVE.IN_ROOT | RESOLVE.NO_MAGICLINKS, { check: 'none' });
      if (opts.asFile && i === parts.length - 1) {
        const f = this.take();
        this.plan.call('openat', [dir, parts[i], O.CREAT | O.WRONLY | O.NOFOLLOW | O.CLOEXEC, 0o644], { check: 'none' });
        this.close(f);
      } else {
        this.plan.call('mkdirat', [dir, parts[i], opts.mode ?? 0o755], { check: 'none' });
      }
      this.close(dir);
    }
  }

  /** mount(2) onto the object behind an fd (via its /proc/self/fd path), checked. */
  mountAt(target: FdRef, source: string | null, fstype: string | null, flags: number, data: string | null, opts: CallOptions & { dest: string }): void {
    const { dest, ...rest } = opts;
    this.plan.call('mount', [source, { procfd: target }, fstype, flags, data || null], {
      label: rest.label ?? `mount(${JSON.stringify(source ?? '')}, ${JSON.stringify(dest)}, ${JSON.stringify(fstype ?? '')}, ${msFlagNames(flags)}${data ? `, ${JSON.stringify(data)}` : ''})`,
      ...rest,
    });
  }

  /** mount(2) by path (after pivot_root, when paths are the container's own). */
  mountPath(source: string | null, target: string, fstype: string | null, flags: number, data: string | null, opts: CallOptions = {}): void {
    this.plan.call('mount', [source, target, fstype, flags, data || null], {
      label: opts.label ?? `mount(${JSON.stringify(source ?? '')}, ${JSON.stringify(target)}, ${JSON.stringify(fstype ?? '')}, ${msFlagNames(flags)})`,
      ...opts,
    });
  }

  /** Write `value` to a file of the container (sysctl, oom knobs): open, write, close, each checked. */
  writeFile(path: string, value: string, field?: string): void {
    const fd = this.openPath(path, O.WRONLY, { field, label: `open(${JSON.stringify(path)}, O_WRONLY)` });
    const bytes = Buffer.from(value);
    this.plan.call('write', [fd, bytes, bytes.length], { field, label: `write(${JSON.stringify(path)}, ${JSON.stringify(value)})` });
    this.close(fd);
  }

  /** symlinkat(target, dir, name), an existing link is fine. */
  symlink(dir: FdRef, target: string, name: string, field?: string): void {
    this.plan.call('symlinkat', [target, dir, name], { check: 'report', tolerate: [ERRNO.EEXIST], field, label: `symlinkat(${JSON.stringify(target)}, ${JSON.stringify(name)})` });
  }

  /** sendmsg(sock, one byte + SCM_RIGHTS [fd]): hand an fd made in the child to the parent. */
  sendFd(sock: FdRef, fd: FdRef, opts: CallOptions = {}): void {
    const msg = {
      struct: (blob: Blob) => {
        const data = blob.add(Buffer.from('F'));
        const iovBuf = Buffer.alloc(16);
        iovBuf.writeBigUInt64LE(1n, 8);
        const iov = blob.add(iovBuf);
        blob.pointer(iov, data);
        const cmsg = Buffer.alloc(24);
        cmsg.writeBigUInt64LE(20n, 0); // CMSG_LEN(sizeof(int))
        cmsg.writeInt32LE(1, 8); // SOL_SOCKET
        cmsg.writeInt32LE(1, 12); // SCM_RIGHTS
        const c = blob.add(cmsg);
        blob.fdSlot(c + 16, fd);
        const hdr = Buffer.alloc(56);
        hdr.writeBigUInt64LE(1n, 24); // msg_iovlen
        hdr.writeBigUInt64LE(24n, 40); // msg_controllen
        const m = blob.add(hdr);
        blob.pointer(m + 16, iov);
        blob.pointer(m + 32, c);
        return m;
      },
    };
    this.plan.sys(SYS.sendmsg, [sock, msg, 0x4000 /* MSG_NOSIGNAL */], { label: 'sendmsg(fd to the runtime)', ...opts });
  }

  /** A raw syscall step. */
  sys(nr: number, args: ChainArg[], opts: CallOptions = {}): void {
    this.plan.sys(nr, args, opts);
  }

  /** A libc call step. */
  call(fn: string, args: ChainArg[], opts: CallOptions = {}): void {
    this.plan.call(fn, args, opts);
  }
}

