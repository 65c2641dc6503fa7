/**
 * The other end of `linux.seccomp.listenerPath`: a seccomp user-notification agent. It listens on a unix
 * socket, receives each container's ContainerProcessState (JSON) with its seccomp listener fd (SCM_RIGHTS),
 * and answers the container's SCMP_ACT_NOTIFY syscalls through a handler — on the event loop, without
 * blocking it: the listener fd is polled (libuv) and SECCOMP_IOCTL_NOTIF_RECV is only issued when it is
 * readable.
 *
 *   const l = SeccompNotifyListener.listen('/run/agent.sock', (n) => (n.syscall === 'mkdir' ? { continue: true } : { error: 1 }));
 *   const session = await l.nextSession(); // session.state.state.id === container id
 *   ...
 *   l.close();
 */
import fs from 'node:fs';
import { C, KernelError, koffi, lastErrno, libc } from '../sys/libc.js';
import { ERRNO, SYS } from '../sys/numbers.js';
import { acceptUnix, listenUnix, recvFd } from '../io/unix-socket.js';

/** runtime-spec ContainerProcessState: what the runtime sends with the listener fd. */
export interface ContainerProcessState {
  ociVersion: string;
  /** Names of the fds sent with the message ("seccompFd"). */
  fds: string[];
  /** Host pid of the container process. */
  pid: number;
  /** linux.seccomp.listenerMetadata. */
  metadata: string;
  /** The container's OCI state. */
  state: { ociVersion: string; id: string; status: string; pid?: number; bundle: string; annotations?: Record<string, string> };
}

/** One intercepted syscall (struct seccomp_notif). */
export interface SeccompNotification {
  /** Cookie of this notification. */
  id: bigint;
  /** Host pid of the calling thread. */
  pid: number;
  flags: number;
  /** AUDIT_ARCH_* of the call (0xc000003e x86_64, 0x40000003 i386). */
  arch: number;
  /** Syscall number, for `arch`. */
  nr: number;
  /** Syscall name as libseccomp knows it for `arch` ("mkdir"), or "nr:N". */
  syscall: string;
  instructionPointer: bigint;
  /** The six raw argument registers. */
  args: bigint[];
}

/** The answer to a notification. */
export type SeccompNotifyResponse =
  /** Let the kernel run the syscall as if it had not been intercepted (SECCOMP_USER_NOTIF_FLAG_CONTINUE). */
  | { continue: true }
  /** Fail the syscall with this errno (positive, e.g. 1 for EPERM). */
  | { error: number }
  /** Make the syscall return this value without running it. */
  | { value: number | bigint };

/** One container connected to the listener. */
export interface SeccompNotifySession {
  state: ContainerProcessState;
  /** The seccomp listener fd (owned by the listener; closed when the session ends). */
  fd: number;
  /** Resolves when every process of the filter has exited (the fd hung up) or the listener was closed. */
  done: Promise<void>;
  /** SECCOMP_IOCTL_NOTIF_ID_VALID: true while the notification's caller still waits for the answer. */
  idValid(id: bigint): boolean;
}

/** Decides each notification; a throw (or rejection) answers EPERM and is reported through onError. */
export type SeccompNotifyHandler = (n: SeccompNotification, session: SeccompNotifySession) => SeccompNotifyResponse | Promise<SeccompNotifyResponse>;

/** Options of SeccompNotifyListener.listen. */
export interface SeccompNotifyOptions {
  /** Errors of a connection or a handler (default: ignored). */
  onError?: (e: Error) => void;
}

const NOTIF_SIZE = 80;
const RESP_SIZE = 24;
const ioc = (dir: number, nr: number, size: number) => ((dir << 30) | (size << 16) | (0x21 /* '!' */ << 8) | nr) >>> 0;
/** _IOWR('!', 0, struct seccomp_notif) = 0xc0502100. */
export const SECCOMP_IOCTL_NOTIF_RECV = ioc(3, 0, NOTIF_SIZE);
/** _IOWR('!', 1, struct seccomp_notif_resp) = 0xc0182101. */
export const SECCOMP_IOCTL_NOTIF_SEND = ioc(3, 1, RESP_SIZE);
/** _IOW('!', 2, __u64) = 0x40082102. */
export const SECCOMP_IOCTL_NOTIF_ID_VALID = ioc(1, 2, 8);
const SECCOMP_USER_NOTIF_FLAG_CONTINUE = 1;
const SECCOMP_GET_NOTIF_SIZES = 3;
const POLLIN = 1;
const POLLHUP = 0x10;

const declare = () => ({
  ioctl: libc.func('int ioctl(int fd, unsigned long req, void *arg)'),
  poll: libc.func('int poll(void *fds, unsigned long n, int timeout)'),
  free: libc.func('void free(void *p)'),
});
let fns: ReturnType<typeof declare> | undefined;
/** The libc calls of the listener, declared on first use (importing kernel/index.ts does not pay for them). */
function F(): ReturnType<typeof declare> {
  fns ??= declare();
  return fns;
}

let sizesChecked = false;
/** SECCOMP_GET_NOTIF_SIZES: the kernel's struct sizes must match the ones the ioctl numbers encode. */
function checkSizes(): void {
  if (sizesChecked) return;
  const b = Buffer.alloc(6);
  if ((C.syscall(SYS.seccomp, 'long', SECCOMP_GET_NOTIF_SIZES, 'long', 0, 'void *', b) as number) !== 0) throw new KernelError('seccomp(SECCOMP_GET_NOTIF_SIZES)', lastErrno());
  const [notif, resp, data] = [b.readUInt16LE(0), b.readUInt16LE(2), b.readUInt16LE(4)];
  if (notif !== NOTIF_SIZE || resp !== RESP_SIZE || data !== 64) throw new Error(`seccomp notify: kernel struct sizes ${notif}/${resp}/${data}, expected ${NOTIF_SIZE}/${RESP_SIZE}/64`);
  sizesChecked = true;
}

let resolveNum: ((arch: number, nr: number) => unknown) | null | undefined;
/** libseccomp's name of a syscall number on an architecture. */
function syscallName(arch: number, nr: number): string {
  if (resolveNum === undefined) {
    try {
      resolveNum = koffi.load('libseccomp.so.2').func('void *seccomp_syscall_resolve_num_arch(uint32_t arch, int num)') as (arch: number, nr: number) => unknown;
    } catch {
      resolveNum = null;
    }
  }
  const p = resolveNum?.(arch, nr);
  if (!p) return `nr:${nr}`;
  try {
    return koffi.decode(p, 'char', -1) as string;
  } finally {
    F().free(p);
  }
}

/** revents of a zero-timeout poll(2) on one fd. */
function revents(fd: number): number {
  const p = Buffer.alloc(8);
  p.writeInt32LE(fd, 0);
  p.writeInt16LE(POLLIN, 4);
  return (F().poll(p, 1, 0) as number) > 0 ? p.readInt16LE(6) : 0;
}

type Poll = ReturnType<typeof koffi.node.poll>;

/** A unix socket server handing every connecting container's notifications to one handler. */
export class SeccompNotifyListener {
  private readonly fd: number;
  private readonly polls = new Set<Poll>();
  private readonly closers = new Set<() => void>();
  private readonly ready: SeccompNotifySession[] = [];
  private readonly waiting: Array<(s: SeccompNotifySession) => void> = [];
  private closed = false;

  private constructor(readonly socketPath: string, private readonly handler: SeccompNotifyHandler, private readonly opts: SeccompNotifyOptions) {
    checkSizes();
    this.fd = listenUnix(socketPath);
    const p = koffi.node.poll(this.fd, { readable: true }, () => this.accept());
    this.polls.add(p);
  }

  /** Listen on `socketPath` (which must not exist; removed again by close()). */
  static listen(socketPath: string, handler: SeccompNotifyHandler, opts: SeccompNotifyOptions = {}): SeccompNotifyListener {
    return new SeccompNotifyListener(socketPath, handler, opts);
  }

  /** The next container session (the oldest one not yet taken). */
  nextSession(): Promise<SeccompNotifySession> {
    const s = this.ready.shift();
    if (s) return Promise.resolve(s);
    return new Promise((res) => this.waiting.push(res));
  }

  /** Stop listening, end every session (their pending syscalls fail with ENOSYS) and remove the socket. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    for (const c of [...this.closers]) c();
    for (const p of this.polls) p.close();
    this.polls.clear();
    C.close(this.fd);
    fs.rmSync(this.socketPath, { force: true });
  }

  private error(e: unknown): void {
    this.opts.onError?.(e instanceof Error ? e : new Error(String(e)));
  }

  private accept(): void {
    for (let conn = acceptUnix(this.fd); conn >= 0; conn = acceptUnix(this.fd)) this.receive(conn);
  }

  /** Read the state message and the listener fd from a runtime connection (until the JSON is complete). */
  private receive(conn: number): void {
    let data = Buffer.alloc(0);
    let notifyFd = -1;
    const end = () => {
      this.polls.delete(p);
      this.closers.delete(end);
      p.close();
      C.close(conn);
    };
    const p: Poll = koffi.node.poll(conn, { readable: true }, () => {
      try {
        const m = recvFd(conn, 65536);
        if (m.fd >= 0 && notifyFd < 0) notifyFd = m.fd;
        else if (m.fd >= 0) C.close(m.fd);
        data = Buffer.concat([data, m.data]);
        let state: ContainerProcessState;
        try {
          state = JSON.parse(data.toString('utf8')) as ContainerProcessState;
        } catch (e) {
          if (m.data.length > 0) return; // more to come
          throw new Error(`seccomp notify: connection closed before a complete state message (${data.length} bytes): ${(e as Error).message}`);
        }
        end();
        if (notifyFd < 0) throw new Error('seccomp notify: the runtime sent no listener fd');
        this.serve(state, notifyFd);
      } catch (e) {
        if (e instanceof KernelError && e.errno === ERRNO.EAGAIN) return;
        end();
        if (notifyFd >= 0) C.close(notifyFd);
        this.error(e);
      }
    });
    this.polls.add(p);
    this.closers.add(end);
  }

  /** Answer the notifications of one container until its filter has no process left. */
  private serve(state: ContainerProcessState, fd: number): void {
    let finish!: () => void;
    let ended = false;
    const done = new Promise<void>((res) => (finish = res));
    // errno of an ioctl on the listener fd; ENOENT without a call once the session has ended (the fd may be reused).
    const ioctl = (req: number, arg: Buffer) => (ended ? ERRNO.ENOENT : (F().ioctl(fd, req, arg) as number) === 0 ? 0 : lastErrno());
    const session: SeccompNotifySession = {
      state,
      fd,
      done,
      idValid: (id) => {
        const b = Buffer.alloc(8);
        b.writeBigUInt64LE(id);
        return ioctl(SECCOMP_IOCTL_NOTIF_ID_VALID, b) === 0;
      },
    };
    const buf = Buffer.alloc(NOTIF_SIZE);
    const end = () => {
      ended = true;
      this.polls.delete(p);
      this.closers.delete(end);
      p.close();
      C.close(fd);
      finish();
    };
    const p: Poll = koffi.node.poll(fd, { readable: true }, () => {
      const ev = revents(fd);
      if (!(ev & POLLIN)) {
        if (ev & POLLHUP) end();
        return;
      }
      buf.fill(0); // the kernel refuses a non-zeroed struct seccomp_notif
      if ((F().ioctl(fd, SECCOMP_IOCTL_NOTIF_RECV, buf) as number) !== 0) {
        const e = lastErrno();
        if (e !== ERRNO.ENOENT) this.error(new KernelError('ioctl(SECCOMP_IOCTL_NOTIF_RECV)', e));
        return; // ENOENT: the caller was interrupted before we took it
      }
      const arch = buf.readUInt32LE(20), nr = buf.readInt32LE(16);
      const n: SeccompNotification = {
        id: buf.readBigUInt64LE(0),
        pid: buf.readUInt32LE(8),
        flags: buf.readUInt32LE(12),
        nr,
        arch,
        syscall: syscallName(arch, nr),
        instructionPointer: buf.readBigUInt64LE(24),
        args: [0, 1, 2, 3, 4, 5].map((i) => buf.readBigUInt64LE(32 + 8 * i)),
      };
      void this.answer(n, session, ioctl);
    });
    this.polls.add(p);
    this.closers.add(end);
    const w = this.waiting.shift();
    if (w) w(session);
    else this.ready.push(session);
  }

  /** Run the handler and send its answer. */
  private async answer(n: SeccompNotification, session: SeccompNotifySession, ioctl: (req: number, arg: Buffer) => number): Promise<void> {
    let r: SeccompNotifyResponse;
    try {
      r = await this.handler(n, session);
    } catch (e) {
      this.error(e);
      r = { error: ERRNO.EPERM };
    }
    const resp = Buffer.alloc(RESP_SIZE);
    resp.writeBigUInt64LE(n.id, 0);
    if ('continue' in r) resp.writeUInt32LE(SECCOMP_USER_NOTIF_FLAG_CONTINUE, 20);
    else if ('error' in r) resp.writeInt32LE(-Math.abs(r.error), 16);
    else resp.writeBigInt64LE(BigInt(r.value), 8);
    const e = ioctl(SECCOMP_IOCTL_NOTIF_SEND, resp);
    // ENOENT: the caller is gone (killed), or the session has ended meanwhile.
    if (e !== 0 && e !== ERRNO.ENOENT) this.error(new KernelError('ioctl(SECCOMP_IOCTL_NOTIF_SEND)', e, undefined, `(${n.syscall} of pid ${n.pid})`));
  }
}
