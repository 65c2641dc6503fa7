/**
 * The whole-config check: walks every section of a parsed config.json, collects every problem with its
 * JSON path, applies the cross-section rules (namespaces needed by hostname, sysctls, masked paths,
 * mounts, user ids), and only when nothing is wrong builds the ContainerSetup.
 */
import type { ContainerSetup, IdMapping } from './model.js';
import { ConfigError } from './config-error.js';
import { checkAbsolute, describeValue, isJsonObject, readArray, readObject, readString } from './field-checks.js';
import { checkHooks } from './hooks.js';
import { indexPath, Issues } from './issues.js';
import { checkIntelRdt, checkMountLabel, checkPersonality, readAnnotations } from './kept-sections.js';
import { convertResources } from './resources.js';
import type { CgroupResources, DeviceRule } from './model.js';
import { parseCgroupsPath } from './cgroups-path.js';
import { CgroupError } from './cgroup-error.js';
import { convertMounts, normaliseDestination } from './mounts.js';
import { convertSeccomp } from './seccomp.js';
import { RUNC_DEFAULT_MASKED_PATHS, RUNC_DEFAULT_READONLY_PATHS } from './default-paths.js';
import { checkTimeOffsets, convertNamespaces, convertUserMappings, type NamespaceSet } from './namespaces.js';
import { checkOciVersion } from './oci-version.js';
import type { OciHooks, OciSpec } from './oci-spec.js';
import { convertProcess, type ProcessHostFacts } from './process.js';
import { resolveRootfs } from './rootfs.js';
import { rootfsPropagationFlags } from './rootfs-propagation.js';
import { convertSysctl } from './sysctl.js';
import { convertDevices } from './devices.js';

/** Longest host or domain name the kernel accepts (HOST_NAME_MAX / __NEW_UTS_LEN). */
export const MAX_UTS_NAME_LENGTH = 64;

/** Options of a config check. */
export interface ValidateOptions extends ProcessHostFacts {
  /** Enter the rootfs with MS_MOVE + chroot instead of pivot_root (runc --no-pivot). Default false. */
  noPivotRoot?: boolean;
  /**
   * Whether a seccomp syscall name exists (kernel/index.ts's `knownSyscall`, libseccomp). When given, unknown
   * names in linux.seccomp draw a warning and are skipped; when absent they are kept (the kernel's filter
   * compile skips them), and validation loads no native code.
   */
  knownSyscall?: (name: string) => boolean;
}

/** A config that passed every check, converted. */
export interface ValidatedSpec {
  /** The parsed config, as given (it matches OciSpec once validated). */
  spec: OciSpec;
  /** What the kernel layer needs to build the container. */
  setup: ContainerSetup;
  /** `hooks`, untouched ({} when absent). */
  hooks: OciHooks;
  /** `annotations` ({} when absent). */
  annotations: Record<string, string>;
  /** Things accepted with a warning (relative mount destinations, skipped capabilities, ...). */
  warnings: string[];
}

function readUtsName(issues: Issues, field: 'hostname' | 'domainname', raw: unknown, ns: NamespaceSet): string | undefined {
  const name = readString(issues, field, raw);
  if (name === undefined || name === '') return undefined;
  if (!ns.has('uts')) issues.error(field, `unable to set ${field} without a private UTS namespace (add a "uts" namespace)`);
  if (Buffer.byteLength(name) > MAX_UTS_NAME_LENGTH) issues.error(field, `must be at most ${MAX_UTS_NAME_LENGTH} bytes, got ${Buffer.byteLength(name)}`);
  return name;
}

function readPathList(issues: Issues, base: string, raw: unknown): string[] {
  const list = readArray(issues, base, raw) ?? [];
  const out: string[] = [];
  list.forEach((e, i) => {
    const p = indexPath(base, i);
    if (typeof e !== 'string') issues.error(p, `expected a string, got ${describeValue(e)}`);
    else if (e.includes('\0')) issues.error(p, 'must not contain a NUL byte');
    else if (checkAbsolute(issues, p, e)) out.push(normaliseDestination(e));
  });
  return out;
}

/** `linux.cgroupsPath`: a string; a non-empty one must not be runc's systemd form nor climb out with "..". */
function readCgroupsPath(issues: Issues, raw: unknown): string | undefined {
  const p = readString(issues, 'linux.cgroupsPath', raw);
  if (!p) return undefined;
  try {
    parseCgroupsPath(p, 'container');
  } catch (e) {
    if (!(e instanceof CgroupError)) throw e;
    issues.error('linux.cgroupsPath', e.message.replace(/^linux\.cgroupsPath: /, ''));
    return undefined;
  }
  return p;
}

/** Device rules runc appends to every container's (runc's AllowedDevices): mknod of any device, the default nodes, ptys and tun. */
export const RUNC_ALLOWED_DEVICES: readonly DeviceRule[] = [
  { allow: true, type: 'c', major: -1, minor: -1, access: 'm' },
  { allow: true, type: 'b', major: -1, minor: -1, access: 'm' },
  ...[[1, 3], [1, 8], [1, 7], [5, 0], [1, 5], [1, 9], [136, -1], [5, 2], [10, 200]].map(([major, minor]) => ({ allow: true, type: 'c' as const, major, minor, access: 'rwm' })),
];

function isMapped(id: number, mappings: readonly IdMapping[]): boolean {
  return mappings.some((m) => id >= m.containerID && id < m.containerID + m.size);
}

/**
 * Check a parsed config.json and convert it. Every problem is collected; if there is any, a
 * {@link ConfigError} listing all of them is thrown and nothing else happens. File system checks
 * (rootfs, bind sources, namespace paths) are synchronous.
 *
 * @param raw - the parsed config.json (from {@link parseConfigJson} or JSON.parse)
 * @param bundleDir - absolute bundle directory (relative root.path and bind sources resolve against it)
 * @param opts - noPivotRoot, the seccomp syscall resolver, and host facts (defaults read from the running system)
 * @throws ConfigError when the config is invalid
 */
export function validateSpec(raw: unknown, bundleDir: string, opts: ValidateOptions = {}): ValidatedSpec {
  if (!isJsonObject(raw)) {
    throw new ConfigError([{ path: 'config.json', message: `expected a JSON object at the top level, got ${describeValue(raw)}` }]);
  }
  const issues = new Issues();
  const noPivotRoot = opts.noPivotRoot ?? false;
  checkOciVersion(issues, raw.ociVersion);
  const root = resolveRootfs(issues, raw.root, bundleDir);
  const linux = readObject(issues, 'linux', raw.linux) ?? {};

  const ns = convertNamespaces(issues, linux.namespaces);
  const { uidMappings, gidMappings } = convertUserMappings(issues, linux, ns);
  checkTimeOffsets(issues, linux.timeOffsets, ns);
  const hostname = readUtsName(issues, 'hostname', raw.hostname, ns);
  const domainname = readUtsName(issues, 'domainname', raw.domainname, ns);

  const mounts = convertMounts(issues, raw.mounts, bundleDir);
  const hasMountNs = ns.has('mount');
  const noMountNs = ' without a private mount namespace (add a "mount" namespace)';
  if (!hasMountNs && Array.isArray(raw.mounts) && raw.mounts.length > 0) issues.error('mounts', `unable to mount${noMountNs}`);
  if (!hasMountNs && root?.readonly) issues.error('root.readonly', `unable to make the rootfs read-only${noMountNs}`);
  if (!hasMountNs && noPivotRoot) issues.error('linux.namespaces', `unable to use no-pivot${noMountNs}`);
  const rootPropagation = rootfsPropagationFlags(issues, linux.rootfsPropagation, noPivotRoot);
  const devices = convertDevices(issues, linux.devices);
  const sysctl = convertSysctl(issues, linux.sysctl, ns);
  // Secure by default: a config that leaves the lists out (absent, not empty) gets runc's lists, so /proc and
  // /sys of the container cannot change host settings. An explicit [] turns them off.
  const hasProc = mounts.some((m) => m.destination === '/proc' || m.destination === '/sys');
  const maskedPaths = linux.maskedPaths === undefined && hasProc ? [...RUNC_DEFAULT_MASKED_PATHS] : readPathList(issues, 'linux.maskedPaths', linux.maskedPaths);
  const readonlyPaths = linux.readonlyPaths === undefined && hasProc ? [...RUNC_DEFAULT_READONLY_PATHS] : readPathList(issues, 'linux.readonlyPaths', linux.readonlyPaths);
  if (!hasMountNs) {
    if (maskedPaths.length > 0) issues.error('linux.maskedPaths', `unable to restrict sys entries${noMountNs}`);
    if (readonlyPaths.length > 0) issues.error('linux.readonlyPaths', `unable to restrict sys entries${noMountNs}`);
  }

  const process = convertProcess(issues, raw.process, opts);
  if (process !== undefined && ns.creates('user') && uidMappings.length > 0 && gidMappings.length > 0) {
    if (!isMapped(process.uid, uidMappings)) issues.error('process.user.uid', `${process.uid} is not mapped in linux.uidMappings`);
    if (!isMapped(process.gid, gidMappings)) issues.error('process.user.gid', `${process.gid} is not mapped in linux.gidMappings`);
    process.additionalGids.forEach((g, i) => {
      if (!isMapped(g, gidMappings)) issues.error(indexPath('process.user.additionalGids', i), `${g} is not mapped in linux.gidMappings`);
    });
  }

  const hooks = checkHooks(issues, raw.hooks) ?? {};
  const annotations = readAnnotations(issues, raw.annotations);
  const resources = convertResources(issues, linux.resources);
  const seccomp = convertSeccomp(issues, linux.seccomp, opts.knownSyscall);
  const cgroupsPath = readCgroupsPath(issues, linux.cgroupsPath);
  checkIntelRdt(issues, linux.intelRdt);
  checkPersonality(issues, linux.personality);
  checkMountLabel(issues, linux.mountLabel);

  issues.throwIfAny();
  if (root === undefined || process === undefined) {
    // Unreachable: a missing root or process records an error above.
    throw new ConfigError([{ path: root === undefined ? 'root' : 'process', message: 'required field is missing' }]);
  }
  const setup: ContainerSetup = {
    rootfs: root.path,
    readonlyRootfs: root.readonly,
    rootPropagation,
    namespaces: [...ns.list],
    uidMappings,
    gidMappings,
    mounts,
    devices,
    maskedPaths,
    readonlyPaths,
    sysctl,
    process,
    noPivotRoot,
  };
  if (seccomp !== undefined) setup.seccomp = seccomp;
  // As runc: the config's device rules, then the devices every container may use, then its own linux.devices.
  const own = devices.flatMap((d) => (d.type === 'p' ? [] : [{ allow: true, type: d.type, major: d.major, minor: d.minor, access: 'rwm' }]));
  setup.resources = { ...resources, devices: [...(resources?.devices ?? []), ...RUNC_ALLOWED_DEVICES, ...own] } satisfies CgroupResources;
  if (cgroupsPath !== undefined) setup.cgroupsPath = cgroupsPath;
  if (hostname !== undefined) setup.hostname = hostname;
  if (domainname !== undefined) setup.domainname = domainname;
  return { spec: raw as unknown as OciSpec, setup, hooks, annotations, warnings: issues.warnings };
}
