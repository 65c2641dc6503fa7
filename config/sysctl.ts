/**
 * `linux.sysctl`, checked with runc's validateSysctl rules: only sysctls that live in a namespace the
 * container has (IPC, UTS, network) are allowed, so a container cannot change host-wide settings.
 */
import { describeValue, readObject } from './field-checks.js';
import { childPath, type Issues } from './issues.js';
import { isHostNetworkNamespace, type NamespaceSet } from './namespaces.js';

/** IPC-namespaced sysctls runc allows by name (plus the fs.mqueue.* prefix). */
export const IPC_SYSCTLS: readonly string[] = [
  'kernel.msgmax', 'kernel.msgmnb', 'kernel.msgmni', 'kernel.sem',
  'kernel.shmall', 'kernel.shmmax', 'kernel.shmmni', 'kernel.shm_rmid_forced',
];

/**
 * A sysctl name in dotted form, as runc's convertSysctlVariableToDotsSeparator: when the first separator
 * is "/", the name is slash-separated and "." and "/" swap ("net/ipv4/conf/eno2.100/rp_filter" becomes
 * "net.ipv4.conf.eno2/100.rp_filter", where the "/" is part of an interface name). To get back to the
 * /proc/sys path, swap them again.
 */
export function sysctlDottedName(name: string): string {
  const first = name.search(/[./]/);
  if (first === -1 || name[first] === '.') return name;
  return name.replace(/[./]/g, (c) => (c === '.' ? '/' : '.'));
}

/** The path under /proc/sys of a dotted sysctl name ("net.ipv4.conf.eno2/100.rp_filter" -> "net/ipv4/conf/eno2.100/rp_filter"). */
export function sysctlProcPath(dottedName: string): string {
  return dottedName.replace(/[./]/g, (c) => (c === '.' ? '/' : '.'));
}

/**
 * Check and normalise `linux.sysctl`. Values must be strings; names are normalised to dots; each must be
 * one runc allows for the container's namespaces:
 * IPC sysctls and fs.mqueue.* need an ipc namespace, net.* needs a network namespace other than the
 * caller's, kernel.domainname needs a uts namespace, kernel.hostname is refused (use `hostname`), and
 * anything else is not namespaced.
 *
 * @returns dotted name to value, for the names that passed
 */
export function convertSysctl(issues: Issues, raw: unknown, ns: NamespaceSet): Record<string, string> {
  const base = 'linux.sysctl';
  const obj = readObject(issues, base, raw);
  const out: Record<string, string> = {};
  if (obj === undefined) return out;
  const firstKey = new Map<string, string>();
  let hostNet: boolean | undefined;
  for (const [key, value] of Object.entries(obj)) {
    const p = childPath(base, key);
    if (typeof value !== 'string') {
      issues.error(p, `expected a string, got ${describeValue(value)}`);
      continue;
    }
    if (value.includes('\0')) {
      issues.error(p, 'must not contain a NUL byte');
      continue;
    }
    const name = sysctlDottedName(key);
    if (sysctlProcPath(name).split('/').some((part) => part === '' || part === '.' || part === '..')) {
      issues.error(p, `invalid sysctl name ${JSON.stringify(key)}`);
      continue;
    }
    const dup = firstKey.get(name);
    if (dup !== undefined) {
      issues.error(p, `duplicate sysctl ${JSON.stringify(name)} (also given as ${JSON.stringify(dup)})`);
      continue;
    }
    firstKey.set(name, key);
    const q = JSON.stringify(name);
    if (IPC_SYSCTLS.includes(name) || name.startsWith('fs.mqueue.')) {
      if (!ns.has('ipc')) issues.error(p, `sysctl ${q} is not allowed in the host's ipc namespace (add an "ipc" namespace)`);
      else out[name] = value;
      continue;
    }
    if (name.startsWith('net.')) {
      if (hostNet === undefined) hostNet = usesHostNetwork(issues, ns);
      if (hostNet) issues.error(p, `sysctl ${q} is not allowed in the host's network namespace (add a "network" namespace)`);
      else out[name] = value;
      continue;
    }
    if (ns.has('uts') && name === 'kernel.domainname') {
      out[name] = value;
      continue;
    }
    if (ns.has('uts') && name === 'kernel.hostname') {
      issues.error(p, `sysctl ${q} is not allowed as it conflicts with the OCI "hostname" field`);
      continue;
    }
    if (name === 'kernel.domainname' || name === 'kernel.hostname') {
      issues.error(p, `sysctl ${q} is not allowed in the host's uts namespace (add a "uts" namespace)`);
      continue;
    }
    issues.error(p, `sysctl ${q} is not in a separate kernel namespace`);
  }
  return out;
}

/** Whether the container would share the caller's network namespace; a bad netns path is an error. */
function usesHostNetwork(issues: Issues, ns: NamespaceSet): boolean {
  if (!ns.has('network')) return true;
  const nsPath = ns.pathOf('network');
  if (nsPath === undefined) return false;
  try {
    return isHostNetworkNamespace(nsPath);
  } catch (e) {
    issues.error('linux.namespaces', `invalid network namespace path ${JSON.stringify(nsPath)}: ${(e as Error).message}`);
    return false;
  }
}
