/**
 * libcontainer's `veth` network strategy over rtnetlink: a veth pair whose peer is created directly in the
 * container's network namespace under its final name, the host end attached to a bridge (if named) with
 * MTU, hairpin mode and tx queue length, then inside the namespace: MAC, addresses, MTU, up, default routes.
 * Plus link lookup and removal, used by teardown.
 */
import fs from 'node:fs';
import { type Cidr, broadcastOf, ipBytes, macBytes, parseCidr } from '../../config/ip-address.js';
import { KernelError } from '../sys/libc.js';
import { ERRNO } from '../sys/numbers.js';
import type { VethSetup } from '../../config/model.js';
import { type Attr, NL, RtNetlink, ifaddrmsg, ifinfomsg, rtmsg } from './netlink.js';

/** Interface index of `name` through `nl`, or undefined when there is no such link. */
export function linkIndex(nl: RtNetlink, name: string): number | undefined {
  try {
    const r = nl.request(NL.RTM_GETLINK, 0, ifinfomsg(), [{ type: NL.IFLA_IFNAME, str: name }], `RTM_GETLINK ${JSON.stringify(name)}`);
    const m = r.find((x) => x.type === NL.RTM_NEWLINK);
    return m ? m.payload.readInt32LE(4) : undefined;
  } catch (e) {
    if (e instanceof KernelError && e.errno === ERRNO.ENODEV) return undefined;
    throw e;
  }
}

function requireLink(nl: RtNetlink, name: string, field: string): number {
  const i = linkIndex(nl, name);
  if (i === undefined) throw new KernelError('netlink', ERRNO.ENODEV, undefined, `${field}: no interface ${JSON.stringify(name)}${nl.where === 'host' ? ' on the host' : ''}`);
  return i;
}

/** Set link attributes (RTM_NEWLINK on an existing index). */
export function setLink(nl: RtNetlink, index: number, attrs: Attr[], what: string, flags?: { up: boolean }): void {
  const hdr = ifinfomsg({ index, flags: flags?.up ? NL.IFF_UP : 0, change: flags ? NL.IFF_UP : 0 });
  nl.request(NL.RTM_NEWLINK, 0, hdr, attrs, what);
}

/** Add an address (IFA_LOCAL and IFA_ADDRESS, plus the broadcast address for IPv4). */
export function addAddress(nl: RtNetlink, index: number, c: Cidr, what: string): void {
  const attrs: Attr[] = [{ type: NL.IFA_LOCAL, bytes: c.bytes }, { type: NL.IFA_ADDRESS, bytes: c.bytes }];
  if (c.family === 4 && c.prefixLen < 31) attrs.push({ type: NL.IFA_BROADCAST, bytes: broadcastOf(c) });
  nl.request(NL.RTM_NEWADDR, NL.F_CREATE | NL.F_EXCL, ifaddrmsg({ family: c.family === 4 ? NL.AF_INET : NL.AF_INET6, prefixLen: c.prefixLen, index }), attrs, what);
}

/** Add a default route through `gateway` on link `index`. */
export function addDefaultRoute(nl: RtNetlink, index: number, gateway: Buffer, what: string): void {
  const family = gateway.length === 4 ? NL.AF_INET : NL.AF_INET6;
  nl.request(NL.RTM_NEWROUTE, NL.F_CREATE | NL.F_EXCL, rtmsg({ family }), [{ type: NL.RTA_GATEWAY, bytes: gateway }, { type: NL.RTA_OIF, u32: index }], what);
}

/** Delete a link by name; false when it does not exist (already gone with its namespace). */
export function deleteLink(nl: RtNetlink, name: string): boolean {
  const index = linkIndex(nl, name);
  if (index === undefined) return false;
  try {
    nl.request(NL.RTM_DELLINK, 0, ifinfomsg({ index }), [], `RTM_DELLINK ${JSON.stringify(name)}`);
  } catch (e) {
    if (e instanceof KernelError && e.errno === ERRNO.ENODEV) return false;
    throw e;
  }
  return true;
}

/** The RTM_NEWLINK request that creates the pair, peer named and placed in the namespace `netnsFd`. */
export function vethCreateAttrs(v: VethSetup, netnsFd: number): Attr[] {
  const peer: Attr[] = [{ type: NL.IFLA_IFNAME, str: v.name }, { type: NL.IFLA_NET_NS_FD, u32: netnsFd }];
  if (v.mtu) peer.push({ type: NL.IFLA_MTU, u32: v.mtu });
  if (v.txQueueLen) peer.push({ type: NL.IFLA_TXQLEN, u32: v.txQueueLen });
  const attrs: Attr[] = [{ type: NL.IFLA_IFNAME, str: v.hostInterfaceName }];
  if (v.txQueueLen) attrs.push({ type: NL.IFLA_TXQLEN, u32: v.txQueueLen });
  attrs.push({
    type: NL.IFLA_LINKINFO,
    nested: [
      { type: NL.IFLA_INFO_KIND, str: 'veth' },
      { type: NL.IFLA_INFO_DATA, nested: [{ type: NL.VETH_INFO_PEER, header: ifinfomsg(), attrs: peer }] },
    ],
  });
  return attrs;
}

function cidr(text: string, field: string): Cidr {
  const c = parseCidr(text);
  if (!c) throw new Error(`${field}: invalid CIDR ${JSON.stringify(text)}`);
  return c;
}

/**
 * Create and configure one veth interface for the container whose network namespace is `netnsPath`
 * (/proc/PID/ns/net). On failure the pair is removed again and the error names the step.
 */
export function setupVeth(v: VethSetup, netnsPath: string, field = 'network'): void {
  const host = RtNetlink.open();
  let created = false;
  try {
    const nsFd = fs.openSync(netnsPath, 'r');
    try {
      host.request(NL.RTM_NEWLINK, NL.F_CREATE | NL.F_EXCL, ifinfomsg(), vethCreateAttrs(v, nsFd), `${field}: create veth ${v.hostInterfaceName} <-> ${v.name}`);
    } finally {
      fs.closeSync(nsFd);
    }
    created = true;
    const hostIndex = requireLink(host, v.hostInterfaceName, `${field}.hostInterfaceName`);
    if (v.bridge) {
      const br = requireLink(host, v.bridge, `${field}.bridge`);
      setLink(host, hostIndex, [{ type: NL.IFLA_MASTER, u32: br }], `${field}.bridge: attach ${v.hostInterfaceName} to ${v.bridge}`);
    }
    if (v.mtu) setLink(host, hostIndex, [{ type: NL.IFLA_MTU, u32: v.mtu }], `${field}.mtu: set ${v.mtu} on ${v.hostInterfaceName}`);
    if (v.hairpinMode) {
      const hdr = ifinfomsg({ family: NL.AF_BRIDGE, index: hostIndex });
      host.request(NL.RTM_SETLINK, 0, hdr, [{ type: NL.IFLA_PROTINFO, nested: [{ type: NL.IFLA_BRPORT_MODE, u8: 1 }] }], `${field}.hairpinMode: on ${v.hostInterfaceName}`);
    }
    setLink(host, hostIndex, [], `${field}: set ${v.hostInterfaceName} up`, { up: true });
    configureInside(v, netnsPath, field);
  } catch (e) {
    if (created) {
      try {
        deleteLink(host, v.hostInterfaceName);
      } catch {
        // the error that got us here is the one to report
      }
    }
    throw e;
  } finally {
    host.close();
  }
}

function configureInside(v: VethSetup, netnsPath: string, field: string): void {
  const nl = RtNetlink.open(netnsPath);
  try {
    const index = requireLink(nl, v.name, `${field}.name`);
    if (v.macAddress) {
      const mac = macBytes(v.macAddress);
      if (!mac) throw new Error(`${field}.macAddress: invalid MAC address ${JSON.stringify(v.macAddress)}`);
      setLink(nl, index, [{ type: NL.IFLA_ADDRESS, bytes: mac }], `${field}.macAddress: set ${v.macAddress} on ${v.name}`);
    }
    if (v.address) addAddress(nl, index, cidr(v.address, `${field}.address`), `${field}.address: add ${v.address} to ${v.name}`);
    if (v.ipv6Address) addAddress(nl, index, cidr(v.ipv6Address, `${field}.ipv6Address`), `${field}.ipv6Address: add ${v.ipv6Address} to ${v.name}`);
    setLink(nl, index, [], `${field}: set ${v.name} up`, { up: true });
    for (const [key, gw] of [['gateway', v.gateway], ['ipv6Gateway', v.ipv6Gateway]] as const) {
      if (!gw) continue;
      const bytes = ipBytes(gw);
      if (!bytes) throw new Error(`${field}.${key}: invalid IP address ${JSON.stringify(gw)}`);
      addDefaultRoute(nl, index, bytes, `${field}.${key}: default route via ${gw} dev ${v.name}`);
    }
  } finally {
    nl.close();
  }
}

/** Remove the host end of a veth pair (the peer goes with it); false when it is gone already. */
export function removeVeth(hostInterfaceName: string): boolean {
  const host = RtNetlink.open();
  try {
    return deleteLink(host, hostInterfaceName);
  } finally {
    host.close();
  }
}

/** True when a network interface of this name exists in this process's network namespace. */
export function hostLinkExists(name: string): boolean {
  const host = RtNetlink.open();
  try {
    return linkIndex(host, name) !== undefined;
  } finally {
    host.close();
  }
}
