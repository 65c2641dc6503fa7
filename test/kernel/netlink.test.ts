/**
 * rtnetlink encoding against byte layouts taken from linux/rtnetlink.h (and what iproute2 sends), address
 * parsing, and — as root — the veth strategy against a real network namespace (an `unshare -n` sleeper),
 * checked with iproute2 from inside it.
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { broadcastOf, ipBytes, macBytes, parseCidr } from '../../config/ip-address.js';
import { KernelError } from '../../kernel/sys/libc.js';
import { NL, RtNetlink, decodeAttrs, encodeAttrs, ifaddrmsg, ifinfomsg, nlmsg, parseError, rtmsg, splitMessages } from '../../kernel/net/netlink.js';
import { hostLinkExists, removeVeth, setupVeth, vethCreateAttrs } from '../../kernel/net/veth.js';

describe('netlink encoding', () => {
  it('pads attributes to 4 bytes, NUL-terminates strings and sets NLA_F_NESTED on nested ones', () => {
    const b = encodeAttrs([{ type: NL.IFLA_IFNAME, str: 'eth0' }, { type: NL.IFLA_MTU, u32: 1400 }, { type: 4, u8: 1 }]);
    // len=9 ("eth0\0"), type 3, padded to 12; len 8 type 4 u32 1400; len 5 type 4 u8 1 padded to 8
    expect(b.toString('hex')).toBe('0900' + '0300' + '6574683000000000' + '0800' + '0400' + '78050000' + '0500' + '0400' + '01000000');
    const n = encodeAttrs([{ type: NL.IFLA_LINKINFO, nested: [{ type: NL.IFLA_INFO_KIND, str: 'veth' }] }]);
    expect(n.readUInt16LE(0)).toBe(4 + 12);
    expect(n.readUInt16LE(2)).toBe(NL.IFLA_LINKINFO | NL.NLA_F_NESTED);
    expect(decodeAttrs(n.subarray(4)).get(NL.IFLA_INFO_KIND)?.toString('latin1')).toBe('veth\0');
  });

  it('lays out nlmsghdr, ifinfomsg, ifaddrmsg and rtmsg as the kernel headers do', () => {
    const m = nlmsg(NL.RTM_NEWLINK, NL.F_REQUEST | NL.F_ACK | NL.F_CREATE | NL.F_EXCL, 7, ifinfomsg({ index: 5, flags: NL.IFF_UP, change: NL.IFF_UP }), [{ type: NL.IFLA_MTU, u32: 9000 }]);
    expect(m.length).toBe(16 + 16 + 8);
    expect(m.readUInt32LE(0)).toBe(m.length);
    expect(m.readUInt16LE(4)).toBe(16);
    expect(m.readUInt16LE(6)).toBe(0x605);
    expect(m.readUInt32LE(8)).toBe(7);
    expect(m.readInt32LE(16 + 4)).toBe(5);
    expect(m.readUInt32LE(16 + 8)).toBe(1);
    expect(m.readUInt32LE(16 + 12)).toBe(1);
    expect(ifaddrmsg({ family: NL.AF_INET6, prefixLen: 64, index: 3 }).toString('hex')).toBe('0a40000003000000');
    // family, dst_len, src_len, tos, table=main(254), protocol=boot(3), scope=universe(0), type=unicast(1), flags
    expect(rtmsg({ family: NL.AF_INET }).toString('hex')).toBe('02000000fe03000100000000');
  });

  it('builds the veth request with the peer (ifinfomsg + name + netns fd) under IFLA_INFO_DATA/VETH_INFO_PEER', () => {
    const attrs = vethCreateAttrs({ name: 'eth0', hostInterfaceName: 'vh0', mtu: 1400, txQueueLen: 500 }, 42);
    const top = decodeAttrs(encodeAttrs(attrs));
    expect(top.get(NL.IFLA_IFNAME)?.toString('latin1')).toBe('vh0\0');
    expect(top.get(NL.IFLA_TXQLEN)?.readUInt32LE(0)).toBe(500);
    const info = decodeAttrs(top.get(NL.IFLA_LINKINFO) as Buffer);
    expect(info.get(NL.IFLA_INFO_KIND)?.toString('latin1')).toBe('veth\0');
    const data = decodeAttrs(info.get(NL.IFLA_INFO_DATA) as Buffer);
    const peer = data.get(NL.VETH_INFO_PEER) as Buffer;
    expect(peer.subarray(0, 16).equals(Buffer.alloc(16))).toBe(true);
    const pa = decodeAttrs(peer.subarray(16));
    expect(pa.get(NL.IFLA_IFNAME)?.toString('latin1')).toBe('eth0\0');
    expect(pa.get(NL.IFLA_NET_NS_FD)?.readUInt32LE(0)).toBe(42);
    expect(pa.get(NL.IFLA_MTU)?.readUInt32LE(0)).toBe(1400);
  });

  it('reads error replies: errno, and the extended-ack message of a capped echo', () => {
    const tlv = encodeAttrs([{ type: NL.NLMSGERR_ATTR_MSG, str: 'Unknown device type' }]);
    const payload = Buffer.concat([Buffer.from([0xea, 0xff, 0xff, 0xff]), Buffer.alloc(16), tlv]); // -22 = EINVAL
    const msg = nlmsg(NL.NLMSG_ERROR, NL.F_CAPPED | NL.F_ACK_TLVS, 9, payload);
    const [m] = splitMessages(Buffer.concat([msg, Buffer.alloc(3)]));
    expect(m.seq).toBe(9);
    expect(parseError(m)).toEqual({ errno: 22, message: 'Unknown device type' });
    expect(parseError(splitMessages(nlmsg(NL.NLMSG_ERROR, 0, 1, Buffer.alloc(20)))[0])).toEqual({ errno: 0, message: undefined });
  });

  it('parses IPv4/IPv6 addresses, CIDRs and MACs, and rejects malformed ones', () => {
    expect(ipBytes('10.213.0.7')?.toString('hex')).toBe('0ad50007');
    expect(ipBytes('fd00::1')?.toString('hex')).toBe('fd000000000000000000000000000001');
    expect(ipBytes('::ffff:10.0.0.1')?.toString('hex')).toBe('00000000000000000000ffff0a000001');
    expect(ipBytes('2001:db8:1:2:3:4:5:6')?.toString('hex')).toBe('20010db8000100020003000400050006');
    expect(ipBytes('10.0.0.256')).toBeUndefined();
    expect(parseCidr('10.213.0.7/24')).toMatchObject({ family: 4, prefixLen: 24 });
    expect(parseCidr('fd00::2/64')).toMatchObject({ family: 6, prefixLen: 64 });
    expect(parseCidr('10.0.0.1/33')).toBeUndefined();
    expect(parseCidr('10.0.0.1')).toBeUndefined();
    expect(broadcastOf(parseCidr('10.213.0.7/24') as never).toString('hex')).toBe('0ad500ff');
    expect(macBytes('02:42:ac:11:00:02')?.toString('hex')).toBe('0242ac110002');
    expect(macBytes('02:42:ac:11:00')).toBeUndefined();
  });
});

describe('veth strategy on a real network namespace', () => {
  let sleeper: ChildProcess;
  const host = `cdt-vh${process.pid % 10000}`;
  const bridge = `cdt-br${process.pid % 10000}`;
  const inNs = (...args: string[]) => execFileSync('nsenter', ['-t', String(sleeper.pid), '-n', ...args], { encoding: 'utf8' });

  beforeAll(async () => {
    sleeper = spawn('unshare', ['-n', 'sleep', '60'], { stdio: 'ignore' });
    for (let i = 0; i < 100 && execFileSync('readlink', [`/proc/${sleeper.pid}/ns/net`], { encoding: 'utf8' }) === execFileSync('readlink', ['/proc/self/ns/net'], { encoding: 'utf8' }); i++) await new Promise((r) => setTimeout(r, 20));
    execFileSync('ip', ['link', 'add', bridge, 'type', 'bridge']);
  });
  afterAll(() => {
    sleeper.kill('SIGKILL');
    execFileSync('ip', ['link', 'del', bridge]);
    try {
      execFileSync('ip', ['link', 'del', host], { stdio: 'ignore' });
    } catch {
      // gone already
    }
  });

  it('creates the pair with the peer inside, attached to the bridge, addressed, routed, hairpin, MTU, MAC, txqueuelen', () => {
    setupVeth({ name: 'eth7', hostInterfaceName: host, bridge, mtu: 1380, macAddress: '02:42:0a:d5:09:02', address: '10.213.9.2/24', gateway: '10.213.9.1', ipv6Address: 'fd00:213:9::2/64', ipv6Gateway: 'fd00:213:9::1', hairpinMode: true, txQueueLen: 777 }, `/proc/${sleeper.pid}/ns/net`);
    expect(hostLinkExists(host)).toBe(true);
    expect(execFileSync('readlink', [`/sys/class/net/${host}/master`], { encoding: 'utf8' }).trim()).toMatch(new RegExp(`/${bridge}$`));
    expect(execFileSync('cat', [`/sys/class/net/${host}/brport/hairpin_mode`], { encoding: 'utf8' }).trim()).toBe('1');
    expect(execFileSync('cat', [`/sys/class/net/${host}/mtu`], { encoding: 'utf8' }).trim()).toBe('1380');
    expect(execFileSync('cat', [`/sys/class/net/${host}/tx_queue_len`], { encoding: 'utf8' }).trim()).toBe('777');
    const addr = inNs('ip', '-o', 'addr', 'show', 'eth7');
    expect(addr).toContain('inet 10.213.9.2/24 brd 10.213.9.255');
    expect(addr).toContain('inet6 fd00:213:9::2/64');
    const link = inNs('ip', '-o', 'link', 'show', 'eth7');
    expect(link).toContain('mtu 1380');
    expect(link).toContain('link/ether 02:42:0a:d5:09:02');
    expect(link).toMatch(/<[^>]*\bUP\b/);
    expect(inNs('ip', 'route', 'show', 'default')).toContain('default via 10.213.9.1 dev eth7');
    expect(inNs('ip', '-6', 'route', 'show', 'default')).toContain('default via fd00:213:9::1 dev eth7');
    expect(removeVeth(host)).toBe(true);
    expect(hostLinkExists(host)).toBe(false);
    expect(inNs('ip', '-o', 'link')).not.toContain('eth7');
    expect(removeVeth(host)).toBe(false);
  });

  it('a failing step names the field and removes the pair again', () => {
    let err: unknown;
    try {
      setupVeth({ name: 'eth8', hostInterfaceName: host, bridge: 'cdt-nobridge' }, `/proc/${sleeper.pid}/ns/net`, 'network.interfaces[0]');
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(KernelError);
    expect((err as Error).message).toContain('network.interfaces[0].bridge: no interface "cdt-nobridge" on the host');
    expect(hostLinkExists(host)).toBe(false);
    expect(inNs('ip', '-o', 'link')).not.toContain('eth8');
  });

  it('a socket opened in another namespace leaves this thread in its own', () => {
    const before = execFileSync('readlink', ['/proc/self/ns/net'], { encoding: 'utf8' });
    RtNetlink.open(`/proc/${sleeper.pid}/ns/net`).close();
    expect(execFileSync('readlink', [`/proc/${process.pid}/task/${process.pid}/ns/net`], { encoding: 'utf8' })).toBe(before);
    expect(() => RtNetlink.open('/nonexistent/netns')).toThrow(/open "\/nonexistent\/netns" \(network namespace\): ENOENT/);
  });
});
