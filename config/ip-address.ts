/**
 * IP addresses as the kernel wants them: dotted IPv4 and RFC 4291 IPv6 text to network-order bytes, CIDRs
 * with their prefix length, MAC addresses to 6 bytes. Pure functions; undefined for anything malformed.
 */
import net from 'node:net';

/** An address with its prefix length ("10.0.0.2/24"). */
export interface Cidr {
  family: 4 | 6;
  /** Address bytes in network order (4 or 16). */
  bytes: Buffer;
  prefixLen: number;
}

/** Network-order bytes of an IPv4 or IPv6 address, or undefined when it is neither. */
export function ipBytes(text: string): Buffer | undefined {
  const v = net.isIP(text);
  if (v === 4) return Buffer.from(text.split('.').map(Number));
  if (v !== 6) return undefined;
  let s = text;
  const zone = s.indexOf('%');
  if (zone >= 0) s = s.slice(0, zone);
  let tail: number[] = [];
  const v4 = /(\d+\.\d+\.\d+\.\d+)$/.exec(s);
  if (v4) {
    const q = v4[1].split('.').map(Number);
    tail = [(q[0] << 8) | q[1], (q[2] << 8) | q[3]];
    s = s.slice(0, -v4[1].length);
    if (s.endsWith(':') && !s.endsWith('::')) s = s.slice(0, -1);
  }
  const [head, rest] = s.includes('::') ? s.split('::') : [s, undefined];
  const words = (x: string) => (x === '' ? [] : x.split(':').map((w) => parseInt(w, 16)));
  const a = words(head);
  const b = rest === undefined ? [] : words(rest);
  const fill = 8 - a.length - b.length - tail.length;
  const all = rest === undefined ? [...a, ...tail] : [...a, ...new Array<number>(fill).fill(0), ...b, ...tail];
  if (all.length !== 8) return undefined;
  const out = Buffer.alloc(16);
  all.forEach((w, i) => out.writeUInt16BE(w, 2 * i));
  return out;
}

/** Parse "ADDR/LEN" (the prefix length required and in range for the family). */
export function parseCidr(text: string): Cidr | undefined {
  const m = /^([^/]+)\/(\d{1,3})$/.exec(text);
  if (!m) return undefined;
  const bytes = ipBytes(m[1]);
  if (!bytes) return undefined;
  const family = bytes.length === 4 ? 4 : 6;
  const prefixLen = Number(m[2]);
  if (prefixLen > bytes.length * 8) return undefined;
  return { family, bytes, prefixLen };
}

/** The IPv4 broadcast address of a CIDR (all host bits set). */
export function broadcastOf(c: Cidr): Buffer {
  const v = c.bytes.readUInt32BE(0);
  const mask = c.prefixLen === 0 ? 0 : (~0 << (32 - c.prefixLen)) >>> 0;
  const out = Buffer.alloc(4);
  out.writeUInt32BE((v | ~mask) >>> 0, 0);
  return out;
}

/** Six bytes of a MAC address "aa:bb:cc:dd:ee:ff" (or with dashes), or undefined. */
export function macBytes(text: string): Buffer | undefined {
  const m = /^([0-9a-f]{2})[:-]([0-9a-f]{2})[:-]([0-9a-f]{2})[:-]([0-9a-f]{2})[:-]([0-9a-f]{2})[:-]([0-9a-f]{2})$/i.exec(text);
  return m ? Buffer.from(m.slice(1).map((h) => parseInt(h, 16))) : undefined;
}
