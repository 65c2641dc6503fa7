/**
 * Unix sockets with fd passing (SCM_RIGHTS) from the parent side: socketpairs for the child, receiving an
 * fd the child sent, and handing fds plus a JSON message to a listener (seccomp notify, console socket).
 */
import { C, allocNative, fail, freeNative, koffi, libc } from '../sys/libc.js';
import { ERRNO } from '../sys/numbers.js';
import { SOCK } from '../sys/flags.js';
import { POLL, pollFd } from './fd.js';

const AF_UNIX = 1;
const SOL_SOCKET = 1;
const SCM_RIGHTS = 1;
const MSG_CMSG_CLOEXEC = 0x40000000;
const MSG_DONTWAIT = 0x40;
const MSG_TRUNC = 0x20;

const F = {
  socketpair: libc.func('int socketpair(int domain, int type, int protocol, _Out_ int *sv)'),
  socket: libc.func('int socket(int domain, int type, int protocol)'),
  connect: libc.func('int connect(int fd, const void *addr, uint32_t len)'),
  sendmsg: libc.func('intptr_t sendmsg(int fd, const void *msg, int flags)'),
  recvmsg: libc.func('intptr_t recvmsg(int fd, void *msg, int flags)'),
  bind: libc.func('int bind(int fd, const void *addr, uint32_t len)'),
  listen: libc.func('int listen(int fd, int backlog)'),
  accept4: libc.func('int accept4(int fd, void *addr, void *len, int flags)'),
};

/** A connected pair of stream sockets, both close-on-exec: [parent end, child end]. */
export function socketPair(): [number, number] {
  const sv = new Int32Array(2);
  if ((F.socketpair(AF_UNIX, SOCK.STREAM | SOCK.CLOEXEC, 0, sv) as number) !== 0) fail('socketpair');
  return [sv[0], sv[1]];
}

/**
 * A connected pair of SOCK_SEQPACKET unix sockets (message boundaries kept, as CRIU's RPC needs), both
 * close-on-exec: [parent end, child end]. Hand the child end to a child as one of its stdio fds (spawn dup2s
 * it, which clears close-on-exec there), then close it here so the parent sees EOF when the child is gone.
 */
export function seqpacketPair(): [number, number] {
  const sv = new Int32Array(2);
  if ((F.socketpair(AF_UNIX, SOCK.SEQPACKET | SOCK.CLOEXEC, 0, sv) as number) !== 0) fail('socketpair', undefined, '(AF_UNIX, SOCK_SEQPACKET)');
  return [sv[0], sv[1]];
}

/** One message received by {@link recvPacket}. */
export interface Packet {
  /** The message's bytes; empty with `eof` when the peer closed its end. */
  data: Buffer;
  /** Fds that came with it (SCM_RIGHTS), close-on-exec here; the caller owns them. */
  fds: number[];
  /** The peer closed the connection (no more messages will come). */
  eof: boolean;
}

/**
 * Receive one message without blocking (MSG_DONTWAIT) from a SOCK_SEQPACKET socket, with up to `maxFds`
 * fds. Returns null when none is queued (EAGAIN): wait with {@link watchReadable} and try again. A message
 * longer than `maxData` is an error (MSG_TRUNC), not a silently cut one.
 */
export function recvPacket(sock: number, maxData = 65536, maxFds = 4): Packet | null {
  const { m, fdOffset, bufOff } = buildMsg(Buffer.alloc(maxData), maxFds);
  try {
    const n = F.recvmsg(sock, m.ptr, MSG_CMSG_CLOEXEC | MSG_DONTWAIT) as number;
    if (n < 0) {
      const e = koffi.errno();
      if (e === ERRNO.EAGAIN) return null;
      fail('recvmsg', undefined, `(fd ${sock})`);
    }
    const fds: number[] = [];
    const ctlLen = Number(m.view.readBigUInt64LE(40));
    if (ctlLen >= 20 && m.view.readInt32LE(80) === SOL_SOCKET && m.view.readInt32LE(84) === SCM_RIGHTS) {
      const count = Math.floor((Number(m.view.readBigUInt64LE(72)) - 16) / 4);
      for (let i = 0; i < count; i++) fds.push(m.view.readInt32LE(fdOffset + 4 * i));
    }
    const flags = m.view.readInt32LE(48);
    if (flags & MSG_TRUNC) {
      for (const fd of fds) C.close(fd);
      throw new Error(`recvmsg (fd ${sock}): a message longer than ${maxData} bytes was cut (MSG_TRUNC)`);
    }
    return { data: Buffer.from(m.view.subarray(bufOff, bufOff + n)), fds, eof: n === 0 };
  } finally {
    freeNative(m.ptr);
  }
}

/** Send one message (no fds) over a connected socket; a full socket buffer waits (the socket is blocking). */
export function sendPacket(sock: number, data: Buffer): void {
  sendFds(sock, data, []);
}

/** struct msghdr (56 bytes) with one iovec and an SCM_RIGHTS control message for `nfds` fds. */
function buildMsg(data: Buffer, nfds: number) {
  const ctlLen = nfds ? 8 * Math.ceil((16 + 4 * nfds) / 8) : 0;
  const m = allocNative(56 + 16 + Math.max(ctlLen, 8) + Math.max(data.length, 1));
  const iov = m.ptr + 56n, ctl = iov + 16n, buf = ctl + BigInt(Math.max(ctlLen, 8));
  const bufOff = 56 + 16 + Math.max(ctlLen, 8);
  data.copy(m.view, bufOff);
  m.view.writeBigUInt64LE(iov, 16);
  m.view.writeBigUInt64LE(1n, 24);
  m.view.writeBigUInt64LE(nfds ? ctl : 0n, 32);
  m.view.writeBigUInt64LE(BigInt(ctlLen), 40);
  m.view.writeBigUInt64LE(buf, 56);
  m.view.writeBigUInt64LE(BigInt(Math.max(data.length, 1)), 64);
  if (nfds) {
    m.view.writeBigUInt64LE(BigInt(16 + 4 * nfds), 72);
    m.view.writeInt32LE(SOL_SOCKET, 80);
    m.view.writeInt32LE(SCM_RIGHTS, 84);
  }
  return { m, fdOffset: 88, bufOff };
}

/** Send `data` with `fds` attached over a connected unix socket. */
export function sendFds(sock: number, data: Buffer, fds: readonly number[]): void {
  const { m, fdOffset } = buildMsg(data.length ? data : Buffer.from([0]), fds.length);
  try {
    fds.forEach((fd, i) => m.view.writeInt32LE(fd, fdOffset + 4 * i));
    if ((F.sendmsg(sock, m.ptr, 0x4000 /* MSG_NOSIGNAL */) as number) < 0) fail('sendmsg');
  } finally {
    freeNative(m.ptr);
  }
}

/** Receive one message with up to one fd (close-on-exec); blocks. Returns the fd (or -1) and the data. */
export function recvFd(sock: number, maxData = 4096): { fd: number; data: Buffer } {
  const { fds, data } = recvFds(sock, 1, maxData);
  return { fd: fds[0] ?? -1, data };
}

/** Receive one message with up to `maxFds` fds (close-on-exec); blocks. */
export function recvFds(sock: number, maxFds: number, maxData = 4096): { fds: number[]; data: Buffer } {
  const { m, fdOffset, bufOff } = buildMsg(Buffer.alloc(maxData), maxFds);
  try {
    const n = F.recvmsg(sock, m.ptr, MSG_CMSG_CLOEXEC) as number;
    if (n < 0) fail('recvmsg');
    const ctlLen = Number(m.view.readBigUInt64LE(40));
    const fds: number[] = [];
    if (ctlLen >= 20 && m.view.readInt32LE(80) === SOL_SOCKET && m.view.readInt32LE(84) === SCM_RIGHTS) {
      const count = Math.floor((Number(m.view.readBigUInt64LE(72)) - 16) / 4);
      for (let i = 0; i < count; i++) fds.push(m.view.readInt32LE(fdOffset + 4 * i));
    }
    return { fds, data: Buffer.from(m.view.subarray(bufOff, bufOff + n)) };
  } finally {
    freeNative(m.ptr);
  }
}

/** struct sockaddr_un for a path (throws when it does not fit). */
function unixAddr(path: string): Buffer {
  if (Buffer.byteLength(path) > 107) throw new Error(`unix socket path too long: ${path}`);
  const addr = Buffer.alloc(110);
  addr.writeUInt16LE(AF_UNIX, 0);
  addr.write(path, 2);
  return addr;
}

/** A blocking stream connection to a unix socket path. */
export function connectUnix(path: string): number {
  const addr = unixAddr(path);
  const fd = F.socket(AF_UNIX, SOCK.STREAM | SOCK.CLOEXEC, 0) as number;
  if (fd < 0) fail('socket');
  if ((F.connect(fd, addr, 110) as number) !== 0) {
    const e = koffi.errno();
    C.close(fd);
    koffi.errno(e);
    fail('connect', path);
  }
  return fd;
}


/** A non-blocking, close-on-exec stream socket bound to `path` and listening (the path must not exist). */
export function listenUnix(path: string, backlog = 16): number {
  const addr = unixAddr(path);
  const fd = F.socket(AF_UNIX, SOCK.STREAM | SOCK.CLOEXEC | SOCK.NONBLOCK, 0) as number;
  if (fd < 0) fail('socket');
  for (const [op, r] of [['bind', () => F.bind(fd, addr, 110)], ['listen', () => F.listen(fd, backlog)]] as const) {
    if ((r() as number) !== 0) {
      const e = koffi.errno();
      C.close(fd);
      koffi.errno(e);
      fail(op, path);
    }
  }
  return fd;
}

/** Accept one connection (non-blocking, close-on-exec); -1 when none is pending. */
export function acceptUnix(fd: number): number {
  const c = F.accept4(fd, null, null, SOCK.CLOEXEC | SOCK.NONBLOCK) as number;
  if (c < 0) {
    if (koffi.errno() === ERRNO.EAGAIN) return -1;
    fail('accept4');
  }
  return c;
}

/**
 * Whether the peer of a connected stream socket is gone: it closed its end (it exited, or gave up waiting) or
 * shut down its writing side. Looks without waiting (POLLRDHUP, POLLHUP, POLLERR); data still queued from it
 * does not hide the hangup.
 */
export function peerHungUp(sock: number): boolean {
  return (pollFd(sock, POLL.RDHUP, 0) & (POLL.RDHUP | POLL.HUP | POLL.ERR | POLL.NVAL)) !== 0;
}
