/**
 * A container's network, which the OCI spec does not describe: libcontainer's network strategies
 * (`interfaces`: configs.Network entries of type loopback or veth) and CNI (`cni`: a conflist run against
 * the container's network namespace). Given as the `network` create option (library, `--network FILE`)
 * or as the `org.cordon.network` annotation of config.json (a JSON string), validated here into a
 * NetworkPlan with every problem named by its path.
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { ipBytes, macBytes, parseCidr } from './ip-address.js';
import type { NamespaceSetup } from './model.js';
import type { VethSetup } from './model.js';
import { describeValue, isAbsent, isJsonObject, readArray, readBoolean, readInteger, readObject, readString } from './field-checks.js';
import { Issues, childPath, indexPath } from './issues.js';

/** The annotation of config.json that carries a network config (JSON text), so a bundle can bring its own. */
export const NETWORK_ANNOTATION = 'org.cordon.network';

/** Where CNI plugins are looked for when `cni.binDir` is not given (Debian's package path first). */
export const DEFAULT_CNI_BIN_DIRS = ['/usr/lib/cni', '/opt/cni/bin'];

/** One interface of libcontainer's network strategies (configs.Network). */
export type NetworkInterfaceConfig =
  | { type: 'loopback' }
  | ({ type: 'veth'; name?: string; hostInterfaceName?: string } & Omit<VethSetup, 'name' | 'hostInterfaceName'>);

/** A CNI network list (the `.conflist` format). */
export interface CniConfList {
  cniVersion: string;
  name: string;
  plugins: Array<Record<string, unknown> & { type: string }>;
  [key: string]: unknown;
}

/** CNI for a container: a conflist (path or object) run with ADD on create and DEL on delete. */
export interface CniConfig {
  /** Absolute path of a .conflist file, or the conflist itself. */
  confList: string | CniConfList;
  /** Directories of plugin binaries (CNI_PATH); default /usr/lib/cni then /opt/cni/bin. */
  binDir?: string | string[];
  /** Interface name in the container (CNI_IFNAME); default "eth0". */
  ifName?: string;
  /** CNI_ARGS as key/value pairs. */
  args?: Record<string, string>;
}

/** How a container's network is set up (the `network` create option, or the annotation). */
export interface NetworkConfig {
  /** libcontainer's strategies, applied in order (loopback: lo up; veth: a pair into the container). */
  interfaces?: NetworkInterfaceConfig[];
  /** A CNI network list to add the container to. */
  cni?: CniConfig;
}

/** A validated network config. */
export interface NetworkPlan {
  /** veth interfaces to create (host names chosen when not given). */
  veth: VethSetup[];
  /** JSON path of each veth entry, for errors. */
  vethFields: string[];
  cni?: { confList: CniConfList; binDirs: string[]; ifName: string; args?: Record<string, string> };
}

const IFNAME = /^[^\s/:]+$/;
const VETH_KEYS = new Set(['type', 'name', 'hostInterfaceName', 'bridge', 'mtu', 'macAddress', 'address', 'gateway', 'ipv6Address', 'ipv6Gateway', 'hairpinMode', 'txQueueLen']);

function readIfName(issues: Issues, p: string, v: unknown): string | undefined {
  const s = readString(issues, p, v);
  if (s === undefined) return undefined;
  if (s === '' || Buffer.byteLength(s) > 15 || !IFNAME.test(s) || s === '.' || s === '..') {
    issues.error(p, `invalid interface name ${describeValue(s)} (1-15 bytes, no whitespace, "/" or ":")`);
    return undefined;
  }
  return s;
}

function readCidr(issues: Issues, p: string, v: unknown, family?: 4 | 6): string | undefined {
  const s = readString(issues, p, v);
  if (!s) return undefined;
  const c = parseCidr(s);
  if (!c) issues.error(p, `invalid CIDR ${describeValue(s)} (expected ADDRESS/PREFIX, e.g. "10.0.0.2/24")`);
  else if (family && c.family !== family) issues.error(p, `expected an IPv${family} address, got ${describeValue(s)}`);
  else return s;
  return undefined;
}

function readGateway(issues: Issues, p: string, v: unknown, address: string | undefined, family: 4 | 6): string | undefined {
  const s = readString(issues, p, v);
  if (!s) return undefined;
  const b = ipBytes(s);
  if (!b || b.length !== (family === 4 ? 4 : 16)) {
    issues.error(p, `invalid IPv${family} address ${describeValue(s)}`);
    return undefined;
  }
  if (!address) issues.error(p, `a gateway needs an IPv${family} address on the interface to be reachable`);
  return s;
}

function readVeth(issues: Issues, p: string, o: Record<string, unknown>): VethSetup | undefined {
  for (const k of Object.keys(o)) if (!VETH_KEYS.has(k)) issues.error(childPath(p, k), 'unknown field');
  const before = issues.errorCount;
  const name = readIfName(issues, `${p}.name`, o.name) ?? 'eth0';
  const hostInterfaceName = readIfName(issues, `${p}.hostInterfaceName`, o.hostInterfaceName) ?? `veth${randomBytes(4).toString('hex')}`;
  const bridge = readIfName(issues, `${p}.bridge`, o.bridge);
  const mtu = readInteger(issues, `${p}.mtu`, o.mtu, { min: 68, max: 65535 });
  const txQueueLen = readInteger(issues, `${p}.txQueueLen`, o.txQueueLen, { min: 0, max: 0xffff_ffff });
  const macAddress = readString(issues, `${p}.macAddress`, o.macAddress) || undefined;
  if (macAddress !== undefined) {
    const mac = macBytes(macAddress);
    if (!mac) issues.error(`${p}.macAddress`, `invalid MAC address ${describeValue(macAddress)}`);
    else if (mac[0] & 1) issues.error(`${p}.macAddress`, `${macAddress} is a multicast address`);
  }
  const address = readCidr(issues, `${p}.address`, o.address);
  const ipv6Address = readCidr(issues, `${p}.ipv6Address`, o.ipv6Address, 6);
  const addrFamily = address ? parseCidr(address)?.family : undefined;
  const gateway = readGateway(issues, `${p}.gateway`, o.gateway, addrFamily === 4 ? address : undefined, 4);
  const ipv6Gateway = readGateway(issues, `${p}.ipv6Gateway`, o.ipv6Gateway, ipv6Address ?? (addrFamily === 6 ? address : undefined), 6);
  const hairpinMode = readBoolean(issues, `${p}.hairpinMode`, o.hairpinMode, false);
  if (hairpinMode && !bridge) issues.error(`${p}.hairpinMode`, 'hairpin mode needs a bridge');
  if (issues.errorCount > before) return undefined;
  return { name, hostInterfaceName, bridge, mtu, txQueueLen, macAddress, address, gateway, ipv6Address, ipv6Gateway, hairpinMode };
}

function readConfList(issues: Issues, p: string, v: unknown): CniConfList | undefined {
  let raw = v;
  if (typeof v === 'string') {
    if (!path.isAbsolute(v)) {
      issues.error(p, `must be an absolute path, got ${describeValue(v)}`);
      return undefined;
    }
    try {
      raw = JSON.parse(fs.readFileSync(v, 'utf8'));
    } catch (e) {
      issues.error(p, `cannot read ${v}: ${(e as Error).message}`);
      return undefined;
    }
  } else if (!isJsonObject(v)) {
    issues.error(p, `expected a path or a conflist object, got ${describeValue(v)}`);
    return undefined;
  }
  const o = raw as Record<string, unknown>;
  const before = issues.errorCount;
  if (typeof o.cniVersion !== 'string' || o.cniVersion === '') issues.error(`${p}.cniVersion`, 'required string');
  if (typeof o.name !== 'string' || o.name === '') issues.error(`${p}.name`, 'required string');
  const plugins = readArray(issues, `${p}.plugins`, o.plugins);
  if (!plugins?.length) issues.error(`${p}.plugins`, 'at least one plugin is required');
  plugins?.forEach((pl, i) => {
    const pp = indexPath(`${p}.plugins`, i);
    if (!isJsonObject(pl)) issues.error(pp, `expected an object, got ${describeValue(pl)}`);
    else if (typeof pl.type !== 'string' || !/^[\w.+-]+$/.test(pl.type)) issues.error(`${pp}.type`, `expected a plugin name, got ${describeValue(pl.type)}`);
  });
  return issues.errorCount > before ? undefined : (o as CniConfList);
}

function readCni(issues: Issues, p: string, o: Record<string, unknown>): NetworkPlan['cni'] {
  for (const k of Object.keys(o)) if (!['confList', 'binDir', 'ifName', 'args'].includes(k)) issues.error(childPath(p, k), 'unknown field');
  if (isAbsent(o.confList)) {
    issues.error(`${p}.confList`, 'required field is missing');
    return undefined;
  }
  const confList = readConfList(issues, `${p}.confList`, o.confList);
  let binDirs = DEFAULT_CNI_BIN_DIRS;
  if (typeof o.binDir === 'string') binDirs = [o.binDir];
  else if (Array.isArray(o.binDir) && o.binDir.every((d) => typeof d === 'string')) binDirs = o.binDir as string[];
  else if (!isAbsent(o.binDir)) issues.error(`${p}.binDir`, `expected a path or a list of paths, got ${describeValue(o.binDir)}`);
  binDirs.forEach((d, i) => {
    if (!path.isAbsolute(d)) issues.error(typeof o.binDir === 'string' ? `${p}.binDir` : indexPath(`${p}.binDir`, i), `must be an absolute path, got ${describeValue(d)}`);
  });
  const ifName = readIfName(issues, `${p}.ifName`, o.ifName) ?? 'eth0';
  let args: Record<string, string> | undefined;
  const a = readObject(issues, `${p}.args`, o.args);
  if (a) {
    args = {};
    for (const [k, val] of Object.entries(a)) {
      if (typeof val !== 'string' || /[;=]/.test(k) || val.includes(';')) issues.error(childPath(`${p}.args`, k), 'keys and values are strings without ";" (and keys without "=")');
      else args[k] = val;
    }
  }
  confList?.plugins.forEach((pl, i) => {
    if (!binDirs.some((d) => isExecutable(path.join(d, pl.type)))) issues.error(`${indexPath(`${p}.confList.plugins`, i)}.type`, `plugin ${JSON.stringify(pl.type)} not found in ${binDirs.join(':')}`);
  });
  return confList ? { confList, binDirs, ifName, args } : undefined;
}

function isExecutable(file: string): boolean {
  try {
    fs.accessSync(file, fs.constants.X_OK);
    return fs.statSync(file).isFile();
  } catch {
    return false;
  }
}

/** Check a network config (already parsed JSON) found at JSON path `base`; problems go to `issues`. */
export function convertNetwork(issues: Issues, base: string, raw: unknown): NetworkPlan | undefined {
  const o = readObject(issues, base, raw);
  if (!o) return undefined;
  for (const k of Object.keys(o)) if (k !== 'interfaces' && k !== 'cni') issues.error(childPath(base, k), 'unknown field (expected "interfaces" or "cni")');
  const plan: NetworkPlan = { veth: [], vethFields: [] };
  const names = new Map<string, string>();
  // Container-side and host-side names live in different namespaces: each must be unique in its own.
  const claim = (name: string, p: string, side: 'container' | 'host' = 'container') => {
    const key = `${side}:${name}`;
    const prev = names.get(key);
    if (prev) issues.error(p, `interface name ${JSON.stringify(name)} is used by ${prev} too`);
    names.set(key, p);
  };
  readArray(issues, `${base}.interfaces`, o.interfaces)?.forEach((e, i) => {
    const p = indexPath(`${base}.interfaces`, i);
    if (!isJsonObject(e)) return issues.error(p, `expected an object, got ${describeValue(e)}`);
    if (e.type === 'loopback') return; // lo is brought up in every new network namespace
    if (e.type !== 'veth') return issues.error(`${p}.type`, `unknown network type ${describeValue(e.type)} (expected "loopback" or "veth")`);
    const v = readVeth(issues, p, e);
    if (!v) return;
    claim(v.name, `${p}.name`);
    claim(v.hostInterfaceName, `${p}.hostInterfaceName`, 'host');
    plan.veth.push(v);
    plan.vethFields.push(p);
  });
  const c = readObject(issues, `${base}.cni`, o.cni);
  if (c) {
    plan.cni = readCni(issues, `${base}.cni`, c);
    if (plan.cni) claim(plan.cni.ifName, `${base}.cni.ifName`);
  }
  return plan;
}

/**
 * The network plan of a create: the `network` option when given, else the annotation; undefined when there
 * is neither (or nothing to do). Throws ConfigError naming each bad field; a network needs a new network
 * namespace of the container's own.
 */
export function networkPlanOf(option: NetworkConfig | undefined, annotations: Record<string, string>, namespaces: readonly NamespaceSetup[]): NetworkPlan | undefined {
  const issues = new Issues();
  let plan: NetworkPlan | undefined;
  if (option !== undefined) plan = convertNetwork(issues, 'network', option);
  else if (annotations[NETWORK_ANNOTATION] !== undefined) {
    const p = childPath('annotations', NETWORK_ANNOTATION);
    let raw: unknown;
    try {
      raw = JSON.parse(annotations[NETWORK_ANNOTATION]);
    } catch (e) {
      issues.error(p, `invalid JSON: ${(e as Error).message}`);
    }
    if (raw !== undefined) plan = convertNetwork(issues, p, raw);
  }
  if (plan && (plan.veth.length || plan.cni)) {
    const net = namespaces.find((n) => n.type === 'network');
    if (!net) issues.error('linux.namespaces', 'a network config needs a network namespace (add {"type": "network"})');
    else if (net.path !== undefined) issues.error('linux.namespaces', `a network config needs a new network namespace, not the joined ${net.path}`);
  }
  issues.throwIfAny();
  return plan && (plan.veth.length || plan.cni) ? plan : undefined;
}
