/**
 * A container's network over its lifetime: set up by create while the init waits at its setup gate in its
 * new network namespace (veth strategy over rtnetlink, then CNI ADD), recorded in ROOT/ID/network.json
 * before each piece is made — so delete, from any process, and a failed create remove exactly what exists —
 * and torn down by delete (CNI DEL with the namespace while it lives, then any host end left).
 */
import fs from 'node:fs';
import path from 'node:path';
import { writeFileAtomic } from './state-file.js';
import type { CniConfList, NetworkPlan } from '../config/network.js';
import { openPidfd, pidfdSignal } from '../kernel/index.js';
import { closeFd } from '../kernel/index.js';
import { removeVeth, setupVeth } from '../kernel/index.js';
import { type CniResult, cniAdd, cniDel } from './cni.js';

/** What network.json records. */
export interface NetworkRecord {
  /** veth pairs made (host end name, container end name, its addresses). */
  veth: Array<{ hostInterfaceName: string; name: string; address?: string; ipv6Address?: string }>;
  /** The CNI network the container was added to, with the ADD result once there is one. */
  cni?: { confList: CniConfList; binDirs: string[]; ifName: string; args?: Record<string, string>; result?: CniResult };
}

const FILE = 'network.json';

/** Write network.json atomically (setup, as it goes; a supervisor restoring a lost state dir). */
export function writeNetworkRecord(dir: string, rec: NetworkRecord): void {
  writeFileAtomic(path.join(dir, FILE), JSON.stringify(rec) + '\n', `container ${path.basename(dir)}: network record`);
}

/** The network record in a state dir, if the container has a network. */
export function readNetworkRecord(dir: string): NetworkRecord | undefined {
  try {
    return JSON.parse(fs.readFileSync(path.join(dir, FILE), 'utf8')) as NetworkRecord;
  } catch {
    return undefined;
  }
}

/** Set up the network of container `id` whose init `pid` waits in its new network namespace. */
export async function setupNetwork(dir: string, id: string, pid: number, plan: NetworkPlan): Promise<NetworkRecord> {
  const rec: NetworkRecord = { veth: [] };
  const netns = `/proc/${pid}/ns/net`;
  for (let i = 0; i < plan.veth.length; i++) {
    const v = plan.veth[i];
    rec.veth.push({ hostInterfaceName: v.hostInterfaceName, name: v.name, address: v.address, ipv6Address: v.ipv6Address });
    writeNetworkRecord(dir, rec);
    setupVeth(v, netns, plan.vethFields[i]);
  }
  if (plan.cni) {
    rec.cni = { confList: plan.cni.confList, binDirs: plan.cni.binDirs, ifName: plan.cni.ifName, args: plan.cni.args };
    writeNetworkRecord(dir, rec);
    rec.cni.result = await cniAdd({ ...plan.cni, containerId: id, netns });
    writeNetworkRecord(dir, rec);
  }
  return rec;
}

/** What the create event says about a container's network: its interfaces and the addresses they got. */
export function networkSummary(rec: NetworkRecord): Record<string, unknown> {
  const interfaces: Array<Record<string, unknown>> = rec.veth.map((v) => ({ name: v.name, host: v.hostInterfaceName, addresses: [v.address, v.ipv6Address].filter(Boolean) }));
  if (rec.cni) {
    const ifs = rec.cni.result?.interfaces ?? [];
    const addresses = (rec.cni.result?.ips ?? []).map((ip) => ip.address);
    interfaces.push({ name: rec.cni.ifName, cni: rec.cni.confList.name, mac: ifs.find((i) => i.sandbox && i.name === rec.cni?.ifName)?.mac, addresses });
  }
  return { interfaces };
}

/**
 * The container's network namespace as a path that cannot be another process's: /proc/<us>/fd/N of a
 * namespace fd opened while the init (checked by start time through a pidfd) was alive. Undefined when the
 * init is gone (its namespace, and everything in it, with it).
 */
export function openNetns(pid: number, pidStartTime: bigint): { path: string; close(): void } | undefined {
  let pidfd: number;
  try {
    pidfd = openPidfd(pid, pidStartTime);
  } catch {
    return undefined;
  }
  try {
    const fd = fs.openSync(`/proc/${pid}/ns/net`, 'r');
    try {
      pidfdSignal(pidfd, 0);
    } catch {
      fs.closeSync(fd);
      return undefined;
    }
    return { path: `/proc/${process.pid}/fd/${fd}`, close: () => fs.closeSync(fd) };
  } catch {
    return undefined;
  } finally {
    closeFd(pidfd);
  }
}

/** A host interface that is one end of a pair (a veth), not a bridge: safe to remove as a leftover. */
function isLeftoverPeer(name: string): boolean {
  const sys = `/sys/class/net/${name}`;
  try {
    if (fs.existsSync(`${sys}/bridge`)) return false;
    return fs.readFileSync(`${sys}/iflink`, 'utf8').trim() !== fs.readFileSync(`${sys}/ifindex`, 'utf8').trim();
  } catch {
    return false;
  }
}

/**
 * Remove the network of the container in `dir`: CNI DEL (with `netns` while the namespace exists, "" after),
 * then every host end still there. Returns the problems met (each already tolerated); network.json goes.
 */
export async function teardownNetwork(dir: string, id: string, netns: string): Promise<string[]> {
  const rec = readNetworkRecord(dir);
  if (!rec) return [];
  const problems: string[] = [];
  if (rec.cni) {
    try {
      await cniDel({ confList: rec.cni.confList, binDirs: rec.cni.binDirs, ifName: rec.cni.ifName, args: rec.cni.args, containerId: id, netns }, rec.cni.result);
    } catch (e) {
      problems.push((e as Error).message);
    }
    for (const i of rec.cni.result?.interfaces ?? []) {
      if (i.sandbox || !isLeftoverPeer(i.name)) continue;
      try {
        removeVeth(i.name);
      } catch (e) {
        problems.push(`network.cni: remove host interface ${i.name}: ${(e as Error).message}`);
      }
    }
  }
  for (const v of rec.veth) {
    try {
      removeVeth(v.hostInterfaceName);
    } catch (e) {
      problems.push(`network: remove veth ${v.hostInterfaceName}: ${(e as Error).message}`);
    }
  }
  fs.rmSync(path.join(dir, FILE), { force: true });
  return problems;
}
