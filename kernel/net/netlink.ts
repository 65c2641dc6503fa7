/**
 * rtnetlink: the message encoding (nlmsghdr, ifinfomsg, ifaddrmsg, rtmsg, nested attributes) as pure
 * functions, and a NETLINK_ROUTE socket that sends one request and reads its ACK or reply. A socket can be
 * opened inside another network namespace (setns on this thread around socket(), which network namespaces
 * allow in a multithreaded process); it stays bound to that namespace.
 */
import fs from 'node:fs';
import { CLONE, SOCK } from '../sys/flags.js';
import { C, KernelError, fail, koffi, lastErrno, libc } from '../sys/libc.js';
import { ERRNO } from '../sys/numbers.js';

const F = {
  socket: libc.func('int socket(int domain, int type, int protocol)'),
  send: libc.func('intptr_t send(int fd, const void *buf, size_t len, int flags)'),
  recv: libc.func('intptr_t recv(int fd, void *buf, size_t len, int flags)'),
  setsockopt: libc.func('int setsockopt(int fd, int level, int name, const void *val, uint32_t len)'),
};

/** rtnetlink message types, flags and attribute numbers (linux/rtnetlink.h, if_link.h, if_addr.h). */
export const NL = {
  AF_UNSPEC: 0, AF_INET: 2, AF_BRIDGE: 7, AF_INET6: 10, AF_NETLINK: 16,
  NLMSG_ERROR: 2, NLMSG_DONE: 3,
  RTM_NEWLINK: 16, RTM_DELLINK: 17, RTM_GETLINK: 18, RTM_SETLINK: 19, RTM_NEWADDR: 20, RTM_NEWROUTE: 24,
  F_REQUEST: 0x1, F_ACK: 0x4, F_EXCL: 0x200, F_CREATE: 0x400,
  F_CAPPED: 0x100, F_ACK_TLVS: 0x200,
  IFLA_ADDRESS: 1, IFLA_IFNAME: 3, IFLA_MTU: 4, IFLA_MASTER: 10, IFLA_PROTINFO: 12, IFLA_TXQLEN: 13,
  IFLA_LINKINFO: 18, IFLA_NET_NS_FD: 28,
  IFLA_INFO_KIND: 1, IFLA_INFO_DATA: 2, VETH_INFO_PEER: 1,
  IFLA_BRPORT_MODE: 4,
  IFA_ADDRESS: 1, IFA_LOCAL: 2, IFA_BROADCAST: 4,
  RTA_DST: 1, RTA_OIF: 4, RTA_GATEWAY: 5,
  RT_TABLE_MAIN: 254, RTPROT_BOOT: 3, RT_SCOPE_UNIVERSE: 0, RTN_UNICAST: 1,
  IFF_UP: 0x1,
  NLA_F_NESTED: 0x8000,
  NLMSGERR_ATTR_MSG: 1,
} as const;

const align4 = (n: number) => (n + 3) & ~3;

/** One attribute: bytes, a string (NUL-terminated), a u32, a u8, or nested attributes. */
export type Attr =
  | { type: number; bytes: Uint8Array }
  | { type: number; str: string }
  | { type: number; u32: number }
  | { type: number; u8: number }
  | { type: number; nested: Attr[] }
  /** A nested attribute whose payload starts with a fixed header (VETH_INFO_PEER: an ifinfomsg). */
  | { type: number; header: Buffer; attrs: Attr[] };

/** Encode attributes (struct rtattr: u16 len, u16 type, payload padded to 4 bytes). */
export function encodeAttrs(attrs: readonly Attr[]): Buffer {
  const parts: Buffer[] = [];
  for (const a of attrs) {
    let payload: Buffer;
    let type = a.type;
    if ('bytes' in a) payload = Buffer.from(a.bytes);
    else if ('str' in a) payload = Buffer.from(`${a.str}\0`, 'latin1');
    else if ('u32' in a) {
      payload = Buffer.alloc(4);
      payload.writeUInt32LE(a.u32 >>> 0, 0);
    } else if ('u8' in a) payload = Buffer.from([a.u8 & 0xff]);
    else if ('nested' in a) {
      payload = encodeAttrs(a.nested);
      type |= NL.NLA_F_NESTED;
    } else payload = Buffer.concat([a.header, encodeAttrs(a.attrs)]);
    const len = 4 + payload.length;
    const b = Buffer.alloc(align4(len));
    b.writeUInt16LE(len, 0);
    b.writeUInt16LE(type, 2);
    payload.copy(b, 4);
    parts.push(b);
  }
  return Buffer.concat(parts);
}

/** Decode the attributes in `buf` (type without NLA_F_NESTED → payload). */
export function decodeAttrs(buf: Buffer): Map<number, Buffer> {
  const out = new Map<number, Buffer>();
  let off = 0;
  while (off + 4 <= buf.length) {
    const len = buf.readUInt16LE(off);
    const type = buf.readUInt16LE(off + 2) & 0x3fff;
    if (len < 4 || off + len > buf.length) break;
    out.set(type, buf.subarray(off + 4, off + len));
    off += align4(len);
  }
  return out;
}

/** struct ifinfomsg (16 bytes). */
export function ifinfomsg(p: { family?: number; index?: number; flags?: number; change?: number } = {}): Buffer {
  const b = Buffer.alloc(16);
  b.writeUInt8(p.family ?? NL.AF_UNSPEC, 0);
  b.writeInt32LE(p.index ?? 0, 4);
  b.writeUInt32LE(p.flags ?? 0, 8);
  b.writeUInt32LE(p.change ?? 0, 12);
  return b;
}

/** struct ifaddrmsg (8 bytes). */
export function ifaddrmsg(p: { family: number; prefixLen: number; index: number; scope?: number }): Buffer {
  const b = Buffer.alloc(8);
  b.writeUInt8(p.family, 0);
  b.writeUInt8(p.prefixLen, 1);
  b.writeUInt8(0, 2);
  b.writeUInt8(p.scope ?? 0, 3);
  b.writeUInt32LE(p.index, 4);
  return b;
}

/** struct rtmsg (12 bytes) for a unicast route in the main table. */
export function rtmsg(p: { family: number; dstLen?: number }): Buffer {
  const b = Buffer.alloc(12);
  b.writeUInt8(p.family, 0);
  b.writeUInt8(p.dstLen ?? 0, 1);
  b.writeUInt8(NL.RT_TABLE_MAIN, 4);
  b.writeUInt8(NL.RTPROT_BOOT, 5);
  b.writeUInt8(NL.RT_SCOPE_UNIVERSE, 6);
  b.writeUInt8(NL.RTN_UNICAST, 7);
  return b;
}

/** A whole netlink message: nlmsghdr (16 bytes) + fixed header + attributes. */
export function nlmsg(type: number, flags: number, seq: number, header: Buffer, attrs: readonly Attr[] = []): Buffer {
  const body = Buffer.concat([header, encodeAttrs(attrs)]);
  const b = Buffer.alloc(16 + body.length);
  b.writeUInt32LE(b.length, 0);
  b.writeUInt16LE(type, 4);
  b.writeUInt16LE(flags, 6);
  b.writeUInt32LE(seq >>> 0, 8);
  b.writeUInt32LE(0, 12);
  body.copy(b, 16);
  return b;
}

/** One message of a reply. */
export interface NlReply {
  type: number;
  flags: number;
  seq: number;
  /** Payload after the nlmsghdr. */
  payload: Buffer;
}

/** Split a datagram into its netlink messages. */
export function splitMessages(buf: Buffer): NlReply[] {
  const out: NlReply[] = [];
  let off = 0;
  while (off + 16 <= buf.length) {
    const len = buf.readUInt32LE(off);
    if (len < 16 || off + len > buf.length) break;
    out.push({ type: buf.readUInt16LE(off + 4), flags: buf.readUInt16LE(off + 6), seq: buf.readUInt32LE(off + 8), payload: buf.subarray(off + 16, off + len) });
    off += align4(len);
  }
  return out;
}

/** An NLMSG_ERROR payload: errno (positive; 0 is an ACK) and the kernel's extended-ack text, if any. */
export function parseError(m: NlReply): { errno: number; message?: string } {
  const errno = Math.abs(m.payload.readInt32LE(0));
  let message: string | undefined;
  if (errno !== 0 && m.flags & NL.F_ACK_TLVS) {
    // With NETLINK_CAP_ACK the echoed request is only its 16-byte header.
    const origLen = m.flags & NL.F_CAPPED ? 16 : m.payload.readUInt32LE(4);
    const tlv = decodeAttrs(m.payload.subarray(4 + align4(origLen)));
    const msg = tlv.get(NL.NLMSGERR_ATTR_MSG);
    if (msg) message = msg.toString('latin1').replace(/\0.*$/s, '');
  }
  return { errno, message };
}

const NETLINK_ROUTE = 0;
const SOL_NETLINK = 270;
const NETLINK_CAP_ACK = 10;
const NETLINK_EXT_ACK = 11;

/** A NETLINK_ROUTE socket (in the namespace it was opened in). */
export class RtNetlink {
  private seq = Math.floor(Math.random() * 0x7fffffff);
  private readonly buf = Buffer.alloc(65536);

  private constructor(readonly fd: number, readonly where: string) {}

  /** A socket in this thread's network namespace, or in the one of the nsfs file `netnsPath`. */
  static open(netnsPath?: string): RtNetlink {
    if (netnsPath === undefined) return new RtNetlink(openSocket(), 'host');
    const own = fs.openSync('/proc/thread-self/ns/net', 'r');
    let target: number;
    try {
      target = fs.openSync(netnsPath, 'r');
    } catch (e) {
      fs.closeSync(own);
      throw new KernelError('open', errnoOf(e), netnsPath, '(network namespace)');
    }
    try {
      if ((C.setns(target, CLONE.NEWNET) as number) !== 0) fail('setns', netnsPath, '(CLONE_NEWNET)');
      let fd: number;
      try {
        fd = openSocket();
      } finally {
        // Back before anything else runs on this thread: must never fail silently.
        if ((C.setns(own, CLONE.NEWNET) as number) !== 0) throw new Error(`setns back to the runtime's network namespace failed: errno ${lastErrno()}`);
      }
      return new RtNetlink(fd, netnsPath);
    } finally {
      fs.closeSync(target);
      fs.closeSync(own);
    }
  }

  /** Send one request (NLM_F_ACK added) and return the reply messages; throws KernelError on an error reply. */
  request(type: number, flags: number, header: Buffer, attrs: readonly Attr[], what: string): NlReply[] {
    const seq = ++this.seq;
    const msg = nlmsg(type, flags | NL.F_REQUEST | NL.F_ACK, seq, header, attrs);
    if ((F.send(this.fd, msg, msg.length, 0) as number) < 0) fail('netlink send', undefined, what);
    const replies: NlReply[] = [];
    for (;;) {
      const n = F.recv(this.fd, this.buf, this.buf.length, 0) as number;
      if (n < 0) {
        if (lastErrno() === ERRNO.EINTR) continue;
        fail('netlink recv', undefined, what);
      }
      for (const m of splitMessages(this.buf.subarray(0, n))) {
        if (m.seq !== seq) continue;
        if (m.type === NL.NLMSG_ERROR) {
          const { errno, message } = parseError(m);
          if (errno !== 0) throw new KernelError('netlink', errno, undefined, `${what}${message ? ` (${message})` : ''}${this.where === 'host' ? '' : ` in ${this.where}`}`);
          return replies;
        }
        if (m.type === NL.NLMSG_DONE) return replies;
        replies.push({ ...m, payload: Buffer.from(m.payload) });
      }
    }
  }

  /** Close the socket. */
  close(): void {
    C.close(this.fd);
  }
}

function openSocket(): number {
  const fd = F.socket(NL.AF_NETLINK, SOCK.RAW | SOCK.CLOEXEC, NETLINK_ROUTE) as number;
  if (fd < 0) fail('socket', undefined, '(AF_NETLINK, NETLINK_ROUTE)');
  const one = Buffer.alloc(4);
  one.writeInt32LE(1, 0);
  // Best effort: the kernel's reason text in errors, and short echoes of our requests.
  F.setsockopt(fd, SOL_NETLINK, NETLINK_EXT_ACK, one, 4);
  F.setsockopt(fd, SOL_NETLINK, NETLINK_CAP_ACK, one, 4);
  return fd;
}

function errnoOf(e: unknown): number {
  const code = (e as NodeJS.ErrnoException).code;
  return (code && (koffi.os.errno as Record<string, number>)[code]) || 0;
}
