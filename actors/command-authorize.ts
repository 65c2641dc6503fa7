/**
 * The command policy's checks (the rules of actors/command-policy.ts) on what a request would actually make
 * run: the validated config of a create (the very object the create then uses, host paths pinned to the
 * symlink-free paths that were checked), the process of an exec together with the container it joins, the
 * device rules of an update, the host paths of checkpoint and restore. Every refusal is a PolicyDeniedError
 * (PermissionDenied) naming the rule and the field; nothing here changes anything on the host.
 */
import fs from 'node:fs';
import path from 'node:path';
import { CAPABILITY_SETS, HOOK_POINTS, type CgroupResources, type ContainerSetup, type DeviceRule, type ValidatedSpec } from '../config/index.js';
import { CAPABILITY_NAMES, capabilityNumber } from '../config/linux/capability-names.js';
import { MS } from '../config/linux/mount-flags.js';
import { RUNC_DEFAULT_MASKED_PATHS, RUNC_DEFAULT_READONLY_PATHS } from '../config/default-paths.js';
import { NETWORK_ANNOTATION } from '../config/network.js';
import { RUNC_ALLOWED_DEVICES } from '../config/validate.js';
import type { CommandRequests, CommandVerb } from '../events/command-api.js';
import { type BypassableRule, type Caller, type CommandPolicy, DEFAULT_CAPABILITIES, PolicyDeniedError } from './command-policy.js';

/** Namespaces a container must create (not join) unless the grant bypasses `namespaces`. */
export const REQUIRED_NAMESPACES = ['pid', 'mount', 'ipc', 'uts', 'network'] as const;

/** Mount types (besides binds) a container may have without the `mountTypes` rule bypassed. */
export const ALLOWED_MOUNT_TYPES: readonly string[] = ['proc', 'sysfs', 'tmpfs', 'devpts', 'mqueue', 'cgroup', 'cgroup2'];

const isObj = (x: unknown): x is Record<string, unknown> => typeof x === 'object' && x !== null && !Array.isArray(x);

/** A path with every symlink of its existing part resolved (the part that does not exist yet kept as given). */
export function realpathLoose(p: string): string {
  const abs = path.resolve(p);
  let head = abs;
  const tail: string[] = [];
  for (;;) {
    try {
      return path.join(fs.realpathSync(head), ...tail.reverse());
    } catch {
      if (head === '/') return abs;
      tail.push(path.basename(head));
      head = path.dirname(head);
    }
  }
}

/** Whether `p` is `root` or below it (both absolute, normalised). */
function under(p: string, root: string): boolean {
  return p === root || p.startsWith(root.endsWith('/') ? root : `${root}/`);
}

/** The canonical `CAP_*` name of a capability name, or the name itself when it is unknown. */
function canonicalCap(name: string): string {
  const n = capabilityNumber(name.startsWith('CAP_') ? name : `CAP_${name}`);
  return n === undefined ? name : `CAP_${CAPABILITY_NAMES[n]}`;
}

/** Whether a device cgroup allow rule is within the runtime's default rules (mknod of anything, rwm of the default nodes). */
function coveredByDefaults(r: DeviceRule): boolean {
  if (r.type === 'a') return false;
  return RUNC_ALLOWED_DEVICES.some((d) => d.type === r.type && (d.major === -1 || d.major === r.major) && (d.minor === -1 || d.minor === r.minor) && [...r.access].every((ch) => d.access.includes(ch)));
}

/** Whether a device node is one of the runtime's defaults (the nodes of its default rules; fifos are no devices). */
function defaultDevice(d: ContainerSetup['devices'][number]): boolean {
  if (d.type === 'p') return true;
  return RUNC_ALLOWED_DEVICES.some((r) => r.access.includes('r') && r.type === d.type && r.major === d.major && (r.minor === -1 || r.minor === d.minor));
}

/** The command policy applied to requests, for one service (its bundle roots include the service's own bundleRoot). */
export class Authorizer {
  private readonly bundleRoots: readonly string[];

  /**
   * @param policy - the validated policy
   * @param serviceBundleRoot - where the service writes bundles of `create { config }` (always a bundle root)
   */
  constructor(
    readonly policy: CommandPolicy,
    serviceBundleRoot: string,
  ) {
    this.bundleRoots = [...new Set([...policy.bundleRoots, path.resolve(serviceBundleRoot)])];
  }

  private bypasses(c: Caller, rule: BypassableRule): boolean {
    return c.grant.bypass.includes(rule);
  }

  private deny(c: Caller, rule: BypassableRule, reason: string, field: string): void {
    if (!this.bypasses(c, rule)) throw new PolicyDeniedError(rule, reason, field, c);
  }

  private roots(): string[] {
    return this.bundleRoots.map(realpathLoose);
  }

  private hostRoots(c: Caller): string[] {
    return [...this.bundleRoots, ...this.policy.hostPaths, ...c.grant.hostPaths].map(realpathLoose);
  }

  private capAllowed(c: Caller, name: string): boolean {
    const n = canonicalCap(name);
    return DEFAULT_CAPABILITIES.includes(n) || c.grant.capabilities.includes(n);
  }

  /** The verb must be in the caller's grant (rule "verbs", never bypassed). */
  verb(c: Caller, verb: CommandVerb): void {
    if (!c.grant.verbs.includes(verb)) throw new PolicyDeniedError('verbs', `the verb "${verb}" is not in the caller's grant`, undefined, c);
  }

  /**
   * A `create { bundle }` directory: symlinks resolved, under a bundle root (rule "bundleRoots"). Returns the
   * resolved directory, which the create then uses (its config.json read from there once).
   */
  bundleDir(c: Caller, bundle: string): string {
    const roots = this.roots();
    const lexical = path.resolve(bundle);
    const real = realpathLoose(lexical);
    for (const p of [lexical, real]) {
      if (!roots.some((r) => under(p, r))) this.deny(c, 'bundleRoots', `the bundle ${JSON.stringify(p)} is not under a bundle root (${roots.join(', ')})`, 'bundle');
    }
    // Its config.json too: a symlink out of the roots would have a host file read (and quoted in errors) as a config.
    const config = realpathLoose(path.join(real, 'config.json'));
    if (!roots.some((r) => under(config, r))) this.deny(c, 'bundleRoots', `the bundle's config.json is ${JSON.stringify(config)}, not under a bundle root (${roots.join(', ')})`, 'bundle');
    return real;
  }

  /** A rootfs a request names (before its config is validated, so nothing about the host is probed): rule "rootfs". */
  rootfsPath(c: Caller, field: string, rootfs: string): void {
    const roots = this.roots();
    for (const p of [path.resolve(rootfs), realpathLoose(rootfs)]) {
      if (!roots.some((r) => under(p, r))) this.deny(c, 'rootfs', `the rootfs ${JSON.stringify(p)} is not under a bundle root (${roots.join(', ')})`, field);
    }
  }

  /** A host path a request names (checkpoint/restore paths): under a bundle root or an allowed host path (rule "hostPaths"). */
  hostPath(c: Caller, field: string, p: string): void {
    const real = realpathLoose(p);
    const roots = this.hostRoots(c);
    if (!roots.some((r) => under(real, r))) this.deny(c, 'hostPaths', `the host path ${JSON.stringify(real)} is outside the bundle roots and allowed host paths (${roots.join(', ')})`, field);
  }

  /**
   * The validated config of a create (`raw` the parsed object `v` was validated from): every rule checked.
   * Returns the config to create from: `raw` with root.path and bind sources replaced by the symlink-free
   * paths that were checked, so what runs is what was checked.
   *
   * @param rootField - the request field naming the rootfs ("rootfs" when create gave it, else "root.path")
   */
  createConfig(c: Caller, raw: Record<string, unknown>, v: Pick<ValidatedSpec, 'setup' | 'hooks' | 'annotations'>, rootField: string): Record<string, unknown> {
    this.setup(c, v.setup, { rootField, what: '' });
    for (const point of HOOK_POINTS) {
      const list = v.hooks[point];
      if (Array.isArray(list) && list.length > 0) this.deny(c, 'hooks', 'process hooks run on the host, as root', `hooks.${point}[0]`);
    }
    if (v.annotations[NETWORK_ANNOTATION] !== undefined) {
      this.deny(c, 'network', 'a network config makes host interfaces and runs CNI plugins on the host', `annotations["${NETWORK_ANNOTATION}"]`);
    }
    if (v.setup.cgroupsPath !== undefined) {
      this.deny(c, 'cgroupsPath', "a cgroupsPath can name any cgroup of the host (without one the container gets its own, named by its id)", 'linux.cgroupsPath');
    }
    this.unified(c, v.setup.resources?.unified, 'linux.resources.unified');
    const linux = isObj(raw.linux) ? raw.linux : {};
    const resources = isObj(linux.resources) ? linux.resources : {};
    const ownRules = Array.isArray(resources.devices) ? resources.devices.length : 0;
    this.deviceRules(c, (v.setup.resources?.devices ?? []).slice(0, ownRules), 'linux.resources.devices');
    const proc = isObj(raw.process) ? raw.process : {};
    const caps = isObj(proc.capabilities) ? proc.capabilities : {};
    for (const set of CAPABILITY_SETS) {
      const names = caps[set];
      if (!Array.isArray(names)) continue;
      names.forEach((n, i) => {
        if (typeof n === 'string' && !this.capAllowed(c, n)) this.deny(c, 'capabilities', `${canonicalCap(n)} is beyond the default capabilities`, `process.capabilities.${set}[${i}]`);
      });
    }
    // Pin what was checked.
    const pinned: Record<string, unknown> = { ...raw, root: { ...(isObj(raw.root) ? raw.root : {}), path: v.setup.rootfs } };
    if (Array.isArray(raw.mounts)) {
      pinned.mounts = raw.mounts.map((m, i) => {
        const s = v.setup.mounts[i];
        return isObj(m) && s && (s.flags & MS.BIND) !== 0 ? { ...m, source: realpathLoose(s.source) } : m;
      });
    }
    return pinned;
  }

  /**
   * The rules on a container's setup (a create's, or the one an exec joins): rootfs, namespaces, mounts,
   * devices, masked paths, no-pivot, the seccomp listener path.
   */
  private setup(c: Caller, s: ContainerSetup, o: { rootField: string; what: string }): void {
    const roots = this.roots();
    const rootfs = realpathLoose(s.rootfs);
    if (!roots.some((r) => under(rootfs, r))) this.deny(c, 'rootfs', `${o.what}the rootfs ${JSON.stringify(rootfs)} is not under a bundle root (${roots.join(', ')})`, o.rootField);
    for (const t of REQUIRED_NAMESPACES) {
      if (!s.namespaces.some((n) => n.type === t)) this.deny(c, 'namespaces', `${o.what}a container without a new ${t} namespace shares the host's`, 'linux.namespaces');
    }
    s.namespaces.forEach((n, i) => {
      if (n.path !== undefined) this.deny(c, 'namespaces', `${o.what}joining an existing ${n.type} namespace (${n.path}) shares it`, `linux.namespaces[${i}].path`);
    });
    const hostRoots = this.hostRoots(c);
    s.mounts.forEach((m, i) => {
      const field = `mounts[${i}]`;
      if ((m.flags & MS.BIND) !== 0) {
        const src = realpathLoose(m.source);
        if (!hostRoots.some((r) => under(src, r))) this.deny(c, 'bindMounts', `${o.what}the bind source ${JSON.stringify(src)} is outside the bundle roots and allowed host paths (${hostRoots.join(', ')})`, `${field}.source`);
        return;
      }
      if (!ALLOWED_MOUNT_TYPES.includes(m.type)) {
        this.deny(c, 'mountTypes', `${o.what}a ${JSON.stringify(m.type)} mount can reach host storage or settings (allowed: ${ALLOWED_MOUNT_TYPES.join(', ')} and binds)`, `${field}.type`);
      } else if (m.type === 'proc' && m.destination !== '/proc') {
        this.deny(c, 'mountTypes', `${o.what}a proc mount elsewhere than /proc escapes the masked and read-only paths`, `${field}.destination`);
      } else if ((m.type === 'sysfs' || m.type === 'cgroup' || m.type === 'cgroup2') && (m.flags & MS.RDONLY) === 0) {
        this.deny(c, 'mountTypes', `${o.what}a writable ${m.type} mount changes host settings (add the "ro" option)`, `${field}.options`);
      }
    });
    const hasProc = s.mounts.some((m) => m.type === 'proc');
    const hasSys = s.mounts.some((m) => m.type === 'sysfs');
    const needed = (p: string) => (p.startsWith('/proc/') ? hasProc : hasSys);
    for (const p of RUNC_DEFAULT_MASKED_PATHS.filter(needed)) {
      if (!s.maskedPaths.includes(p)) this.deny(c, 'maskedPaths', `${o.what}${p} must stay masked (its root could read or change the host through it)`, 'linux.maskedPaths');
    }
    for (const p of RUNC_DEFAULT_READONLY_PATHS.filter(needed)) {
      if (!s.readonlyPaths.includes(p)) this.deny(c, 'maskedPaths', `${o.what}${p} must stay read-only (its root could change the host through it)`, 'linux.readonlyPaths');
    }
    s.devices.forEach((d, i) => {
      if (!defaultDevice(d)) this.deny(c, 'devices', `${o.what}the device ${d.type} ${d.major}:${d.minor} (${d.path}) is not one of the runtime's default devices`, `linux.devices[${i}]`);
    });
    if (s.noPivotRoot) this.deny(c, 'noPivot', `${o.what}MS_MOVE + chroot instead of pivot_root leaves the host's root reachable`, 'noPivot');
    if (s.seccomp?.listenerPath !== undefined) this.hostPath(c, 'linux.seccomp.listenerPath', s.seccomp.listenerPath);
  }

  /** Device cgroup rules: every allow rule within the runtime's defaults (rule "devices"). */
  deviceRules(c: Caller, rules: readonly DeviceRule[], base: string): void {
    rules.forEach((r, i) => {
      if (r.allow && !coveredByDefaults(r)) {
        const dev = r.type === 'a' ? 'all devices' : `${r.type} ${r.major === -1 ? '*' : r.major}:${r.minor === -1 ? '*' : r.minor} ${r.access}`;
        this.deny(c, 'devices', `a device rule allowing ${dev} goes beyond the runtime's default devices`, `${base}[${i}]`);
      }
    });
  }

  /**
   * An exec: the capabilities it asks for (`caps`, `process.capabilities`) and, when the container's config
   * is known, what it joins — the container's process capabilities it inherits without `process`, its
   * namespaces, mounts, devices and rootfs.
   *
   * @param container - the container's stored setup (undefined when it has none: the exec fails on its own)
   */
  exec(c: Caller, req: CommandRequests['exec'], container: ContainerSetup | undefined): void {
    req.caps?.forEach((n, i) => {
      if (!this.capAllowed(c, n)) this.deny(c, 'capabilities', `${canonicalCap(n)} is beyond the default capabilities`, `caps[${i}]`);
    });
    const pcaps = isObj(req.process) && isObj(req.process.capabilities) ? req.process.capabilities : undefined;
    for (const set of CAPABILITY_SETS) {
      const names = pcaps?.[set];
      if (!Array.isArray(names)) continue;
      names.forEach((n, i) => {
        if (typeof n === 'string' && !this.capAllowed(c, n)) this.deny(c, 'capabilities', `${canonicalCap(n)} is beyond the default capabilities`, `process.capabilities.${set}[${i}]`);
      });
    }
    if (!container) return;
    const what = `the container ${JSON.stringify(req.id)} the exec joins: `;
    if (req.process === undefined) {
      for (const set of CAPABILITY_SETS) {
        for (const n of container.process.capabilities[set]) {
          const name = `CAP_${CAPABILITY_NAMES[n] ?? n}`;
          if (!this.capAllowed(c, name)) this.deny(c, 'capabilities', `${what}its process has ${name} (in ${set}), which the exec would inherit`, `process.capabilities.${set}`);
        }
      }
    }
    this.setup(c, container, { rootField: 'root.path', what });
  }

  /** cgroup v2 files written as given: limits only, no core file (rule "cgroupFiles"). */
  private unified(c: Caller, unified: Readonly<Record<string, string>> | undefined, base: string): void {
    for (const k of Object.keys(unified ?? {})) {
      if (k.startsWith('cgroup.')) this.deny(c, 'cgroupFiles', `${k} is a cgroup core file (it moves processes or changes the hierarchy), not a limit`, `${base}["${k}"]`);
    }
  }

  /** An update's resources: device rules (rule "devices") and cgroup v2 files (rule "cgroupFiles"). */
  update(c: Caller, resources: Pick<CgroupResources, 'devices' | 'unified'>): void {
    if (resources.devices) this.deviceRules(c, resources.devices, 'resources.devices');
    this.unified(c, resources.unified, 'resources.unified');
  }
}
